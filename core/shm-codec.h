/* shm-codec.h — the text view: values of a ShmType to text and back.
 *
 * Text out: integers in decimal, floats as the shortest text that parses
 * back to the same bits (inf, -inf, nan), bool as 0/1, char[N] as the bytes
 * up to the first NUL.  A 1-D array is one line with single spaces; higher
 * ranks print one line per innermost row.  Every rendering ends in '\n'.
 *
 * Text in: surrounding whitespace and one trailing newline ignored; integers
 * in decimal or 0x hex (a leading zero is still decimal, an optional sign);
 * floats as strtod reads them in the C locale; bool as 0 1 true false yes no
 * on off in any case.  Array elements are separated by spaces, tabs,
 * newlines or commas, and brackets [ ] may enclose rows or the whole.  An
 * array of char[N] takes one element per line.
 *
 * Records read and write as JSON (shm-json.h): one object per element,
 * one per line; a text written merges into the value.
 */
#pragma once

#include <glib.h>
#include "shm-type.h"
#include "shm-json.h"

G_BEGIN_DECLS

/* Appends the rendering of the value at data (shm_type_nbytes (t) bytes) to out. */
void shm_codec_format (const ShmType *t, const void *data, GString *out);
/* Appends the rendering of elements [first, first + n) (a char[N] type's
 * element is one string), each with the separator that follows it, from
 * data, the bytes of element first: consecutive ranges make up
 * shm_codec_format's text, so a large value renders in pieces. */
void shm_codec_format_items (const ShmType *t, const void *data, guint64 first, guint64 n,
                             GString *out);

/* Parses text (len bytes, need not be NUL-terminated) as a whole value of
 * type t into out (shm_type_nbytes (t) bytes; a record's fields the text
 * does not name are zero).  Returns 0, -EINVAL (malformed, wrong element
 * count, string over capacity) or -ERANGE (a number outside the element's
 * range).  out is untouched on error. */
int shm_codec_parse (const ShmType *t, const char *text, gsize len, void *out);

/* Writes text into value, which holds the current value: a record's text
 * sets the fields it names (shm_json_merge), any other type's the whole
 * value.  Sets to 1 the bytes of mask (shm_type_nbytes (t) bytes) that
 * were written.  Returns as shm_codec_parse; on error value and mask may
 * be partly written (pass copies). */
int shm_codec_merge (const ShmType *t, const char *text, gsize len, guint8 *value,
                     guint8 *mask);

/* Text room per element (digits, sign, exponent, separators, brackets;
 * plus the capacity of a char[N]) and besides them (blanks, newlines). */
#define SHM_CODEC_TEXT_PER_ELEMENT 64
#define SHM_CODEC_TEXT_SLACK 4096

/* The longest text of a value of t that the text view accepts. */
guint64 shm_codec_max_text (const ShmType *t);

/* Infers the type of a first write to an untyped object: an integer -> i64;
 * any other number (inf, nan, exponents) -> f64; true/false -> bool; a list of
 * numbers -> i64[N] or f64[N] (f64 if any element is not an integer).
 * Returns 0, -EINVAL (anything else, an empty text included) or -ERANGE
 * (a value outside the inferred type, such as an integer beyond i64). */
int shm_codec_infer (const char *text, gsize len, ShmType *out);

/* Progress through a value's text that arrives in pieces. */
typedef struct {
  gsize   pos;        /* bytes scanned so far */
  guint64 elements;   /* elements seen, the one being scanned included */
  gboolean in_token;  /* pos is inside an element (it may continue) */
  ShmJsonScan json;   /* records */
} ShmCodecScan;

/* Scans text[scan->pos, len) (the whole text so far; earlier bytes are not
 * rescanned) and updates *scan.  Cost is proportional to the new bytes. */
void shm_codec_scan (const ShmType *t, ShmCodecScan *scan, const char *text, gsize len);

G_END_DECLS
