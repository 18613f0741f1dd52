/* remote-bytes.h — an object's bytes on a remote mount (remote-bytes.c):
 * they live in the store (core's shm-remote), and every read, write and
 * atomic operation is one round trip to it.  Nothing is cached here, so
 * whatever returned on any host is seen at once.  Without remote support
 * built in, nothing here is ever called.
 */
#pragma once

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>
#include <glib.h>

#include "shm-atomic.h"
#include "sync.h"

typedef struct _ShmRemote ShmRemote;

/* A piece of an object's bytes to store. */
typedef struct {
  guint64      off;
  guint64      len;
  const void  *data;
} ShmfsRange;

#ifdef SHMFS_HAVE_REMOTE

/* Answers a read of [off, off+len) of the raw view. */
void shmfs_remote_bytes_reply_read (ShmRemote *r, ShmfsSync *sync, fuse_req_t req,
                                    guint64 off, guint64 len);
/* Stores the ranges at once.  0 or -errno. */
int shmfs_remote_bytes_store (ShmRemote *r, ShmfsSync *sync, const ShmfsRange *ranges, guint n);
/* Copies [off, off+len) of the value into buf: one snapshot.  0 or -errno. */
int shmfs_remote_bytes_snapshot (ShmRemote *r, ShmfsSync *sync, void *buf, guint64 off,
                                 guint64 len);
/* Copies the whole value into buf, with the version it is at: one step. */
int shmfs_remote_bytes_snapshot_value (ShmRemote *r, ShmfsSync *sync, void *buf, guint64 nbytes,
                                       guint64 *version);
/* Applies a checked atomic operation to the scalar elem at off, for
 * process pid: 0, -EAGAIN while another process holds the object's lock
 * (on any host), or -errno. */
int shmfs_remote_bytes_atomic (ShmRemote *r, ShmfsSync *sync, const ShmType *elem, guint64 off,
                               ShmAtomic *a, pid_t pid, gboolean *changed);
/* The value's version; with bump, a new one first.  0 or -errno. */
int shmfs_remote_bytes_version (ShmRemote *r, ShmfsSync *sync, gboolean bump, guint64 *version);

#else

#include <errno.h>

static inline void
shmfs_remote_bytes_reply_read (ShmRemote *r, ShmfsSync *sync, fuse_req_t req, guint64 off,
                               guint64 len)
{
  fuse_reply_err (req, ENOTSUP);
}
static inline int
shmfs_remote_bytes_store (ShmRemote *r, ShmfsSync *sync, const ShmfsRange *ranges, guint n)
{
  return -ENOTSUP;
}
static inline int
shmfs_remote_bytes_snapshot (ShmRemote *r, ShmfsSync *sync, void *buf, guint64 off, guint64 len)
{
  return -ENOTSUP;
}
static inline int
shmfs_remote_bytes_snapshot_value (ShmRemote *r, ShmfsSync *sync, void *buf, guint64 nbytes,
                                   guint64 *version)
{
  return -ENOTSUP;
}
static inline int
shmfs_remote_bytes_atomic (ShmRemote *r, ShmfsSync *sync, const ShmType *elem, guint64 off,
                           ShmAtomic *a, pid_t pid, gboolean *changed)
{
  return -ENOTSUP;
}
static inline int
shmfs_remote_bytes_version (ShmRemote *r, ShmfsSync *sync, gboolean bump, guint64 *version)
{
  return -ENOTSUP;
}

#endif
