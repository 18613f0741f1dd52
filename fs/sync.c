/* sync.c — an object's locks and bytes, shared by both coherence modes.
 * See sync.h for the locks.
 */
#include "config.h"

#include "sync.h"

#include <string.h>
#include <unistd.h>

struct _ShmfsSync {
  gint        ref_count;
  ShmObject  *obj;
  fuse_ino_t  raw_ino;            /* atomic: typing renumbers it */
  gpointer    owner;              /* passed to the changed callback */
  GMutex      store_lock;
  GMutex      data_lock;
  gpointer    state;              /* the mode's, or NULL; data_lock */
  GDestroyNotify free_state;
};

static gsize page_size;

ShmfsSync *
shmfs_sync_new (ShmObject *obj, fuse_ino_t raw_ino, gpointer owner)
{
  ShmfsSync *sync = g_new0 (ShmfsSync, 1);

  page_size = (gsize) sysconf (_SC_PAGESIZE);
  sync->ref_count = 1;
  sync->owner = owner;
  sync->obj = shm_object_ref (obj);
  sync->raw_ino = raw_ino;
  g_mutex_init (&sync->store_lock);
  g_mutex_init (&sync->data_lock);
  return sync;
}

ShmfsSync *
shmfs_sync_ref (ShmfsSync *sync)
{
  g_atomic_int_inc (&sync->ref_count);
  return sync;
}

void
shmfs_sync_unref (ShmfsSync *sync)
{
  if (sync == NULL || !g_atomic_int_dec_and_test (&sync->ref_count))
    return;
  shm_object_unref (sync->obj);
  if (sync->state != NULL)
    sync->free_state (sync->state);
  g_mutex_clear (&sync->store_lock);
  g_mutex_clear (&sync->data_lock);
  g_free (sync);
}

ShmObject *
shmfs_sync_get_object (ShmfsSync *sync)
{
  return sync->obj;
}

fuse_ino_t
shmfs_sync_get_raw_ino (ShmfsSync *sync)
{
  return __atomic_load_n (&sync->raw_ino, __ATOMIC_ACQUIRE);
}

void
shmfs_sync_set_raw_ino (ShmfsSync *sync, fuse_ino_t raw_ino)
{
  __atomic_store_n (&sync->raw_ino, raw_ino, __ATOMIC_RELEASE);
}

gpointer
shmfs_sync_get_owner (ShmfsSync *sync)
{
  return sync->owner;
}

void
shmfs_sync_lock_store (ShmfsSync *sync)
{
  g_mutex_lock (&sync->store_lock);
}

void
shmfs_sync_unlock_store (ShmfsSync *sync)
{
  g_mutex_unlock (&sync->store_lock);
}

void
shmfs_sync_lock (ShmfsSync *sync)
{
  g_mutex_lock (&sync->data_lock);
}

void
shmfs_sync_unlock (ShmfsSync *sync)
{
  g_mutex_unlock (&sync->data_lock);
}

gpointer
shmfs_sync_state_locked (ShmfsSync *sync, gpointer (*make) (void), GDestroyNotify free_state)
{
  if (sync->state == NULL)
    {
      sync->state = make ();
      sync->free_state = free_state;
    }
  /* One mode a daemon: a state of the other one would be read as its own. */
  g_assert (sync->free_state == free_state);
  return sync->state;
}

gboolean
shmfs_sync_has_bytes_locked (ShmfsSync *sync, guint64 off, guint64 len)
{
  guint64 nbytes = shm_object_get_nbytes (sync->obj);

  return off <= nbytes && len <= nbytes - off && shm_object_get_data (sync->obj) != NULL;
}

/* A page or more goes through the fd: the kernel copies from the memfd's
 * pages directly, where the daemon's mapping would first fault on every
 * page it has not touched yet (which made a first touch of a large mapping
 * cost twice what it does on /dev/shm). */
void
shmfs_sync_read_locked (ShmfsSync *sync, guint64 off, void *buf, guint64 len)
{
  int fd = len >= page_size ? shm_object_get_fd (sync->obj) : -1;

  if (!shmfs_sync_has_bytes_locked (sync, off, len))
    memset (buf, 0, len);
  else if (fd < 0 || pread (fd, buf, len, (off_t) off) != (ssize_t) len)
    memcpy (buf, shm_object_get_data (sync->obj) + off, len);
}

void
shmfs_sync_write_locked (ShmfsSync *sync, guint64 off, const void *buf, guint64 len)
{
  int fd = len >= page_size ? shm_object_get_fd (sync->obj) : -1;

  if (!shmfs_sync_has_bytes_locked (sync, off, len))
    return;
  if (fd < 0 || pwrite (fd, buf, len, (off_t) off) != (ssize_t) len)
    memcpy (shm_object_get_data (sync->obj) + off, buf, len);
}

void
shmfs_sync_drop_bytes (ShmfsSync *sync, ShmTree *tree, ShmNode *node)
{
  if (sync == NULL)
    return shm_tree_release_bytes (tree, node);
  g_mutex_lock (&sync->data_lock);
  shm_tree_release_bytes (tree, node);
  g_mutex_unlock (&sync->data_lock);
}
