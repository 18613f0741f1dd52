/* shm-slab.h — small objects packed into shared chunks.
 *
 * A process may hold only so many file descriptors and mappings; one of
 * each per object would cap the count of objects far below what a
 * namespace of small values needs.  Objects of at most SHM_SLAB_MAX bytes
 * therefore live in slots of large memfd-backed chunks instead.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SHM_SLAB_MAX 4096      /* largest object kept in a slot */
#define SHM_SLAB_ALIGN 64      /* slots start on a cache line */

typedef struct _ShmSlab ShmSlab;

ShmSlab *shm_slab_new (void);
ShmSlab *shm_slab_ref (ShmSlab *slab);
void shm_slab_unref (ShmSlab *slab);

/* Returns a zero-filled slot of at least size bytes, or NULL when size is
 * not within 1..SHM_SLAB_MAX or no memory could be mapped. */
gpointer shm_slab_alloc (ShmSlab *slab, gsize size);
/* Gives a slot of that size back. */
void shm_slab_release (ShmSlab *slab, gpointer slot, gsize size);

/* Bytes mapped for chunks, used or not. */
guint64 shm_slab_get_mapped_bytes (ShmSlab *slab);

G_END_DECLS
