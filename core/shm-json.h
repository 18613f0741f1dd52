/* shm-json.h — the text view of records: JSON (shm-codec.c's records).
 *
 * A record is one JSON object, its fields in declaration order; numbers as
 * the scalar text view writes them, except non-finite floats, which read
 * NaN, Infinity and -Infinity as Python's json module writes them; bool as
 * true/false; char[N] as a string of its bytes up to the first NUL, bytes
 * that are not UTF-8 escaped as \udcXX (Python's "surrogateescape": XX is
 * the byte); a field array as a JSON array (nested per dimension); a
 * nested record as a nested object.  An array of records is one object
 * per line.
 *
 * Text in merges: an object sets the fields it names, the others keep
 * their values.  The text is a sequence of objects, one per element, as
 * lines or inside JSON arrays (nested or not).
 */
#pragma once

#include <glib.h>
#include "shm-type.h"

G_BEGIN_DECLS

/* Appends records [first, first + n) of t, from data (the bytes of record
 * first), one line each. */
void shm_json_format_items (const ShmType *t, const void *data, guint64 first, guint64 n,
                            GString *out);

/* Merges text into value (shm_type_nbytes (t) bytes holding the current
 * value) and sets to 1 the bytes of mask (as many, or NULL) it wrote: the
 * fields named, and the padding of every record element an object reached.
 * Returns 0, -EINVAL (malformed JSON, an unknown or repeated field, a
 * wrong JSON type, a wrong count of objects or array items, a string over
 * its capacity or holding a NUL) or -ERANGE (a number outside its field's
 * range).  On error value and mask may be partly written. */
int shm_json_merge (const ShmType *t, const char *text, gsize len, guint8 *value,
                    guint8 *mask);

/* The state of shm_json_scan. */
typedef struct {
  guint    depth;       /* open objects and arrays */
  guint    objects;     /* open objects */
  gboolean in_string;
  gboolean escaped;     /* in a string, after a backslash */
  gboolean in_junk;     /* in a token outside any object */
  gboolean empty_array; /* after a '[' outside objects, nothing else yet */
} ShmJsonScan;

/* Counts the elements that start at the top level (outside any object) in
 * text[from, len), updating *state; returns how many started: objects,
 * and anything else there but brackets and commas (which no parse takes).  *open is
 * TRUE while an object, array or string is still open at len. */
guint64 shm_json_scan (ShmJsonScan *state, const char *text, gsize from, gsize len,
                       gboolean *open);

/* The longest text of one record of type t shm_json_merge accepts (with
 * generous room for blanks). */
guint64 shm_json_max_text (const ShmType *t);

G_END_DECLS
