/* coherence.c — hands each call on an object's bytes to the mode in force:
 * the page cache (pagecache.c) or passthrough (passthrough.c).
 */
#include "config.h"

#include "coherence.h"

#include "pagecache.h"
#include "passthrough.h"

struct _ShmfsCoherence {
  gboolean    passthrough;        /* the mode in force, from start on */
  ShmRemote  *remote;             /* remote mode: not owned */
  ShmfsPageCache *cache;
  ShmfsPassthrough *pt;
};

ShmfsCoherence *
shmfs_coherence_new (void)
{
  ShmfsCoherence *c = g_new0 (ShmfsCoherence, 1);

  c->cache = shmfs_pagecache_new ();
  c->pt = shmfs_passthrough_new ();
  return c;
}

void
shmfs_coherence_set_remote (ShmfsCoherence *c, ShmRemote *r)
{
  c->remote = r;
}

void
shmfs_coherence_start (ShmfsCoherence *c, struct fuse_session *se, size_t max_write,
                       gboolean passthrough,
                       void (*changed) (gpointer user_data, gpointer owner), gpointer user_data)
{
  c->passthrough = passthrough && c->remote == NULL;
  if (c->remote != NULL)
    return;
  if (c->passthrough)
    shmfs_passthrough_start (c->pt, changed, user_data);
  else
    shmfs_pagecache_start (c->cache, se, max_write);
}

void
shmfs_coherence_stop (ShmfsCoherence *c)
{
  shmfs_pagecache_stop (c->cache);
  shmfs_passthrough_stop (c->pt);
}

void
shmfs_coherence_free (ShmfsCoherence *c)
{
  if (c == NULL)
    return;
  shmfs_pagecache_free (c->cache);
  shmfs_passthrough_free (c->pt);
  g_free (c);
}

void
shmfs_coherence_retrieve_reply (ShmfsCoherence *c, void *cookie, off_t offset,
                                struct fuse_bufvec *bufv)
{
  shmfs_pagecache_retrieve_reply (c->cache, cookie, offset, bufv);
}

int
shmfs_coherence_open_raw (ShmfsCoherence *c, ShmfsSync *sync, fuse_req_t req, gboolean empty,
                          gboolean writer, struct fuse_file_info *fi, gboolean *backing,
                          gboolean *counted)
{
  *backing = *counted = FALSE;
  if (c->remote != NULL || (c->passthrough && empty))
    {
      /* Read and written through the daemon, never cached: mmap(MAP_SHARED)
       * is refused (ENODEV), as for the text view.  Passthrough: no bytes
       * yet, nothing to pass through to. */
      fi->direct_io = 1;
      fi->keep_cache = 0;
      return 0;
    }
  if (c->passthrough)
    {
      int id = shmfs_passthrough_backing_open (c->pt, sync, req);

      if (id < 0)
        return id;
      *backing = TRUE;
      fi->backing_id = id;
      fi->keep_cache = 0;
      fi->direct_io = 0;
      return 0;
    }
  fi->keep_cache = 1;   /* one page cache, shared by every open and map */
  fi->direct_io = 0;
  if (writer)
    {
      shmfs_pagecache_writer_open (sync);
      *counted = TRUE;
    }
  return 0;
}

int
shmfs_coherence_backing_open (ShmfsCoherence *c, ShmfsSync *sync, fuse_req_t req)
{
  return shmfs_passthrough_backing_open (c->pt, sync, req);
}

void
shmfs_coherence_backing_release (ShmfsCoherence *c, ShmfsSync *sync, fuse_req_t req)
{
  shmfs_passthrough_backing_release (c->pt, sync, req);
}

void
shmfs_coherence_writer_open (ShmfsCoherence *c, ShmfsSync *sync)
{
  shmfs_pagecache_writer_open (sync);
}

void
shmfs_coherence_writer_close (ShmfsCoherence *c, ShmfsSync *sync)
{
  shmfs_pagecache_writer_close (sync);
}

void
shmfs_coherence_forget_cache (ShmfsCoherence *c, ShmfsSync *sync)
{
  if (!c->passthrough && c->remote == NULL)
    shmfs_pagecache_forget (sync);
}

void
shmfs_coherence_reply_read (ShmfsCoherence *c, ShmfsSync *sync, fuse_req_t req,
                            guint64 off, guint64 len)
{
  /* In passthrough mode, only an open made before the object had bytes
   * (direct I/O) reads through the daemon. */
  if (c->remote != NULL)
    shmfs_remote_bytes_reply_read (c->remote, sync, req, off, len);
  else if (c->passthrough)
    shmfs_passthrough_reply_read (sync, req, off, len);
  else
    shmfs_pagecache_reply_read (sync, req, off, len);
}

int
shmfs_coherence_client_write (ShmfsCoherence *c, ShmfsSync *sync, guint64 off,
                              const void *data, guint64 len, gboolean writeback)
{
  ShmfsRange range = { off, len, data };

  if (c->remote != NULL)
    return shmfs_remote_bytes_store (c->remote, sync, &range, 1);
  if (c->passthrough)
    shmfs_passthrough_client_write (sync, off, data, len);
  else
    shmfs_pagecache_client_write (c->cache, sync, off, data, len, writeback);
  return 0;
}

void
shmfs_coherence_store (ShmfsCoherence *c, ShmfsSync *sync, guint64 off,
                       const void *data, guint64 len)
{
  if (c->passthrough)
    shmfs_passthrough_store (sync, off, data, len);
  else
    shmfs_pagecache_store (c->cache, sync, off, data, len);
}

int
shmfs_coherence_store_ranges (ShmfsCoherence *c, ShmfsSync *sync, const ShmfsRange *ranges,
                              guint n)
{
  if (c->remote != NULL)
    return shmfs_remote_bytes_store (c->remote, sync, ranges, n);
  for (guint i = 0; i < n; i++)
    shmfs_coherence_store (c, sync, ranges[i].off, ranges[i].data, ranges[i].len);
  return 0;
}

static gboolean
apply_atomic (guint8 *bytes, gpointer user_data)
{
  gpointer *args = user_data;

  return shm_atomic_apply_elem (args[0], bytes, args[1]);
}

int
shmfs_coherence_atomic (ShmfsCoherence *c, ShmfsSync *sync, const ShmType *elem, guint64 off,
                        ShmAtomic *a, pid_t pid, gboolean *changed)
{
  gpointer args[2] = { (gpointer) elem, a };

  if (c->remote != NULL)
    return shmfs_remote_bytes_atomic (c->remote, sync, elem, off, a, pid, changed);
  *changed = shmfs_coherence_modify (c, sync, off, shm_type_elem_size (elem), apply_atomic, args);
  return 0;
}

int
shmfs_coherence_version (ShmfsCoherence *c, ShmfsSync *sync, gboolean bump, guint64 *version)
{
  ShmObject *obj = shmfs_sync_get_object (sync);

  if (c->remote != NULL)
    return shmfs_remote_bytes_version (c->remote, sync, bump, version);
  if (bump)
    shm_object_bump_version (obj);
  *version = shm_object_get_version (obj);
  return 0;
}

gboolean
shmfs_coherence_modify (ShmfsCoherence *c, ShmfsSync *sync, guint64 off, guint64 len,
                        gboolean (*modify) (guint8 *bytes, gpointer user_data),
                        gpointer user_data)
{
  if (c->passthrough)
    return shmfs_passthrough_modify (sync, off, len, modify, user_data);
  return shmfs_pagecache_modify (c->cache, sync, off, len, modify, user_data);
}

void
shmfs_coherence_settle (ShmfsCoherence *c, ShmfsSync *sync)
{
  if (c->passthrough)
    shmfs_passthrough_settle (c->pt, sync);
}

void
shmfs_coherence_pull (ShmfsCoherence *c, ShmfsSync *sync)
{
  if (!c->passthrough)
    shmfs_pagecache_pull (c->cache, sync);
}

int
shmfs_coherence_snapshot (ShmfsCoherence *c, ShmfsSync *sync, void *buf, guint64 off,
                          guint64 len)
{
  if (c->remote != NULL)
    return shmfs_remote_bytes_snapshot (c->remote, sync, buf, off, len);
  if (c->passthrough)
    shmfs_passthrough_snapshot (sync, buf, off, len);
  else
    shmfs_pagecache_snapshot (c->cache, sync, buf, off, len);
  return 0;
}

int
shmfs_coherence_snapshot_value (ShmfsCoherence *c, ShmfsSync *sync, void *buf, guint64 nbytes,
                                guint64 *version)
{
  int err;

  if (c->remote != NULL)
    return shmfs_remote_bytes_snapshot_value (c->remote, sync, buf, nbytes, version);
  if ((err = shmfs_coherence_version (c, sync, FALSE, version)) < 0)
    return err;
  return shmfs_coherence_snapshot (c, sync, buf, 0, nbytes);
}
