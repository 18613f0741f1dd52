/* shm-textwrite.h — a value's text written in pieces: when it is complete.
 *
 * The write(2)s to an open text view arrive one by one.  A write at offset
 * 0 starts a new text; later ones must continue it where it stands.  The
 * text is complete, and is committed, with the write that brings the last
 * element followed by a separator, or when it arrives whole in one write;
 * otherwise close commits what there is.  A first write that is one line
 * ending in a newline (echo's) is the whole text, unless it holds exactly
 * one element or one row: then the text comes a line at a time, each line
 * ending on a whole row.  A refused text stays refused until a write at 0.
 * An untyped object commits (and infers its type from) every write.
 *
 * This module only decides; the caller parses, stores and says how the
 * commit went (docs/contract.md §4, docs/semantics.md "The text view").
 */
#pragma once

#include <glib.h>
#include "shm-codec.h"
#include "shm-type.h"

G_BEGIN_DECLS

/* Text longer than shm_codec_max_text cannot be a value: it is refused,
 * not buffered without end.  An untyped object's first text is at most
 * one element's room and the slack. */
#define SHM_TEXTWRITE_BYTES_PER_ELEMENT SHM_CODEC_TEXT_PER_ELEMENT
#define SHM_TEXTWRITE_SLACK SHM_CODEC_TEXT_SLACK

/* What a write asks of the caller, or why it was refused. */
typedef enum {
  SHM_TEXTWRITE_KEEP,         /* taken; the text may go on */
  SHM_TEXTWRITE_COMMIT,       /* taken and complete: commit the text now */
  SHM_TEXTWRITE_HOLE,         /* neither at 0 nor where the text stands */
  SHM_TEXTWRITE_REFUSED,      /* the text being written was refused already */
  SHM_TEXTWRITE_TOO_LONG,     /* longer than any value of the type */
  SHM_TEXTWRITE_TOO_MANY,     /* more elements than the type has */
  SHM_TEXTWRITE_TOO_FEW,      /* a line that had to end the text, or a row, does not */
} ShmTextWriteStep;

typedef struct _ShmTextWrite ShmTextWrite;

/* A new, empty text. */
ShmTextWrite *shm_textwrite_new (void);
/* Frees tw (NULL is ignored). */
void shm_textwrite_free (ShmTextWrite *tw);

/* Takes size bytes at text offset off for a value of type t (NULL while
 * untyped; each write passes the type as it is now).  Returns 0 with *step
 * KEEP or COMMIT, or -EINVAL with *step saying why; every refusal but HOLE
 * refuses the rest of the text too. */
int shm_textwrite_write (ShmTextWrite *tw, const ShmType *t, guint64 off,
                         const char *buf, gsize size, ShmTextWriteStep *step);

/* Whether close must commit the text: taken since the last commit, not refused. */
gboolean shm_textwrite_needs_commit (const ShmTextWrite *tw);

/* Records the verdict of committing the text (0 or -errno); a failure
 * refuses the rest of it. */
void shm_textwrite_committed (ShmTextWrite *tw, int err);

/* The text so far (NUL-terminated) and its length in *len (may be NULL). */
const char *shm_textwrite_get_text (const ShmTextWrite *tw, gsize *len);

/* Elements seen in the text so far, the one being written included (typed only). */
guint64 shm_textwrite_get_elements (const ShmTextWrite *tw);

G_END_DECLS
