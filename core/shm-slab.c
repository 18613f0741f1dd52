/* shm-slab.c — size-classed slots in memfd-backed chunks. */
#include "config.h"

#include "shm-slab.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHUNK_SIZE (4 * 1024 * 1024)
#define N_CLASSES 7            /* 64, 128, ..., 4096 */

struct _ShmSlab {
  gint       ref_count;
  GMutex     lock;
  GPtrArray *chunks;               /* mapped chunk bases; lock */
  guint8    *bump;                 /* next unused byte of the newest chunk */
  gsize      bump_left;
  GSList    *free_slots[N_CLASSES];/* released slots, per class; lock */
};

static guint
size_class (gsize size)
{
  guint c = 0;

  while ((gsize) SHM_SLAB_ALIGN << c < size)
    c++;
  return c;
}

ShmSlab *
shm_slab_new (void)
{
  ShmSlab *slab = g_new0 (ShmSlab, 1);

  slab->ref_count = 1;
  g_mutex_init (&slab->lock);
  slab->chunks = g_ptr_array_new ();
  return slab;
}

ShmSlab *
shm_slab_ref (ShmSlab *slab)
{
  g_atomic_int_inc (&slab->ref_count);
  return slab;
}

void
shm_slab_unref (ShmSlab *slab)
{
  if (slab == NULL || !g_atomic_int_dec_and_test (&slab->ref_count))
    return;
  for (guint i = 0; i < slab->chunks->len; i++)
    munmap (slab->chunks->pdata[i], CHUNK_SIZE);
  g_ptr_array_unref (slab->chunks);
  for (guint c = 0; c < N_CLASSES; c++)
    g_slist_free (slab->free_slots[c]);
  g_mutex_clear (&slab->lock);
  g_free (slab);
}

/* Maps a new chunk; the memfd's fd is not kept, the mapping holds it. */
static gboolean
add_chunk (ShmSlab *slab)
{
  int fd = memfd_create ("shmfs-slab", MFD_CLOEXEC);
  void *base;

  if (fd < 0)
    return FALSE;
  if (ftruncate (fd, CHUNK_SIZE) < 0 || fallocate (fd, 0, 0, CHUNK_SIZE) < 0)
    {
      close (fd);
      return FALSE;
    }
  base = mmap (NULL, CHUNK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close (fd);
  if (base == MAP_FAILED)
    return FALSE;
  g_ptr_array_add (slab->chunks, base);
  slab->bump = base;
  slab->bump_left = CHUNK_SIZE;
  return TRUE;
}

gpointer
shm_slab_alloc (ShmSlab *slab, gsize size)
{
  guint c;
  gsize slot_size;
  gpointer slot = NULL;

  if (size == 0 || size > SHM_SLAB_MAX)
    return NULL;
  c = size_class (size);
  slot_size = (gsize) SHM_SLAB_ALIGN << c;

  g_mutex_lock (&slab->lock);
  if (slab->free_slots[c] != NULL)
    {
      slot = slab->free_slots[c]->data;
      slab->free_slots[c] = g_slist_delete_link (slab->free_slots[c], slab->free_slots[c]);
    }
  else if (slab->bump_left >= slot_size || add_chunk (slab))
    {
      slot = slab->bump;
      slab->bump += slot_size;
      slab->bump_left -= slot_size;
    }
  g_mutex_unlock (&slab->lock);
  if (slot != NULL)
    memset (slot, 0, slot_size);
  return slot;
}

void
shm_slab_release (ShmSlab *slab, gpointer slot, gsize size)
{
  guint c = size_class (size);

  g_mutex_lock (&slab->lock);
  slab->free_slots[c] = g_slist_prepend (slab->free_slots[c], slot);
  g_mutex_unlock (&slab->lock);
}

guint64
shm_slab_get_mapped_bytes (ShmSlab *slab)
{
  guint64 bytes;

  g_mutex_lock (&slab->lock);
  bytes = (guint64) slab->chunks->len * CHUNK_SIZE;
  g_mutex_unlock (&slab->lock);
  return bytes;
}
