/* shm-textread.h — a value's text read in pieces, as seq_file does.
 *
 * A read at offset 0 takes a snapshot of the value's bytes; later reads
 * continue that snapshot, so a large value's text never mixes two versions
 * of it.  The text is rendered only as far as reads ask, and only what has
 * not been read past is kept: memory stays bounded by one read and one
 * chunk of elements.  A read before what is kept renders the same snapshot
 * again from its start.
 */
#pragma once

#include <glib.h>
#include "shm-type.h"

G_BEGIN_DECLS

/* Elements are rendered about this many bytes of value at a time. */
#define SHM_TEXTREAD_CHUNK (64 * 1024)

typedef struct _ShmTextRead ShmTextRead;

/* A reader with no snapshot yet (an empty text). */
ShmTextRead *shm_textread_new (void);
/* Frees tr (NULL is ignored). */
void shm_textread_free (ShmTextRead *tr);

/* Starts over on a snapshot: bytes (shm_type_nbytes (t), taken: g_free'd
 * by tr) of a value of type t, or t NULL for an untyped object (no text). */
void shm_textread_reset (ShmTextRead *tr, const ShmType *t, guint8 *bytes);

/* Returns the text at [off, off + size) of the snapshot and its length in
 * *len (0 at or past the end); valid until the next call on tr. */
const char *shm_textread_read (ShmTextRead *tr, guint64 off, gsize size, gsize *len);

G_END_DECLS
