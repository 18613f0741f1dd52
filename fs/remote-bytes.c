/* remote-bytes.c — an object's bytes on a remote mount: each call is one
 * call of core's shm-remote on the object's oid (its node id).
 */
#include "config.h"

#include "remote-bytes.h"
#include "shm-remote.h"

#include <errno.h>

G_STATIC_ASSERT (sizeof (ShmfsRange) == sizeof (ShmRemoteRange));
G_STATIC_ASSERT (G_STRUCT_OFFSET (ShmfsRange, data) == G_STRUCT_OFFSET (ShmRemoteRange, data));

/* The value of an open object that is gone from the store (removed and
 * its lease over, or the store wiped): a stale file, as NFS says. */
static int
stale (int err)
{
  return err == -ENOENT ? -ESTALE : err;
}

static guint64
oid_of (ShmfsSync *sync)
{
  return shm_node_get_id (shmfs_sync_get_owner (sync));
}

static guint64
nbytes_of (ShmfsSync *sync)
{
  return shm_object_get_nbytes (shmfs_sync_get_object (sync));
}

void
shmfs_remote_bytes_reply_read (ShmRemote *r, ShmfsSync *sync, fuse_req_t req, guint64 off,
                               guint64 len)
{
  g_autofree guint8 *buf = g_try_malloc (MAX (len, 1));
  int err;

  if (buf == NULL)
    return (void) fuse_reply_err (req, ENOMEM);
  err = stale (shm_remote_read (r, oid_of (sync), nbytes_of (sync), off, len, buf, NULL));
  if (err < 0)
    return (void) fuse_reply_err (req, -err);
  fuse_reply_buf (req, (const char *) buf, len);
}

int
shmfs_remote_bytes_store (ShmRemote *r, ShmfsSync *sync, const ShmfsRange *ranges, guint n)
{
  return stale (shm_remote_write (r, oid_of (sync), nbytes_of (sync),
                                  (const ShmRemoteRange *) ranges, n, NULL));
}

int
shmfs_remote_bytes_snapshot (ShmRemote *r, ShmfsSync *sync, void *buf, guint64 off, guint64 len)
{
  return stale (shm_remote_read (r, oid_of (sync), nbytes_of (sync), off, len, buf, NULL));
}

int
shmfs_remote_bytes_snapshot_value (ShmRemote *r, ShmfsSync *sync, void *buf, guint64 nbytes,
                                   guint64 *version)
{
  return stale (shm_remote_read (r, oid_of (sync), nbytes, 0, nbytes, buf, version));
}

int
shmfs_remote_bytes_atomic (ShmRemote *r, ShmfsSync *sync, const ShmType *elem, guint64 off,
                           ShmAtomic *a, pid_t pid, gboolean *changed)
{
  int err = stale (shm_remote_atomic (r, oid_of (sync), nbytes_of (sync), elem, off, a, pid, NULL));

  /* As shm_atomic_apply_elem says: a load and a failed cas change nothing. */
  *changed = err == 0 && a->op != SHM_ATOMIC_LOAD && (a->op != SHM_ATOMIC_CAS || a->swapped);
  return err;
}

int
shmfs_remote_bytes_version (ShmRemote *r, ShmfsSync *sync, gboolean bump, guint64 *version)
{
  ShmObject *obj = shmfs_sync_get_object (sync);

  /* Untyped: no value in the store yet, nothing another host can see. */
  if (!shm_object_is_typed (obj))
    {
      if (bump)
        shm_object_bump_version (obj);
      *version = shm_object_get_version (obj);
      return 0;
    }
  if (bump)
    return stale (shm_remote_bump (r, oid_of (sync), version));
  return stale (shm_remote_version (r, oid_of (sync), version));
}
