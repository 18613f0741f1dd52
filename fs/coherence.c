/* coherence.c — hands each call on an object's bytes to the mode in force:
 * the page cache (pagecache.c) or passthrough (passthrough.c).
 */
#include "config.h"

#include "coherence.h"

#include "pagecache.h"
#include "passthrough.h"

struct _ShmfsCoherence {
  gboolean    passthrough;        /* the mode in force, from start on */
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
shmfs_coherence_start (ShmfsCoherence *c, struct fuse_session *se, size_t max_write,
                       gboolean passthrough,
                       void (*changed) (gpointer user_data, gpointer owner), gpointer user_data)
{
  c->passthrough = passthrough;
  if (passthrough)
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
  if (!c->passthrough)
    shmfs_pagecache_forget (sync);
}

void
shmfs_coherence_reply_read (ShmfsCoherence *c, ShmfsSync *sync, fuse_req_t req,
                            guint64 off, guint64 len)
{
  /* In passthrough mode, only an open made before the object had bytes
   * (direct I/O) reads through the daemon. */
  if (c->passthrough)
    shmfs_passthrough_reply_read (sync, req, off, len);
  else
    shmfs_pagecache_reply_read (sync, req, off, len);
}

void
shmfs_coherence_client_write (ShmfsCoherence *c, ShmfsSync *sync, guint64 off,
                              const void *data, guint64 len, gboolean writeback)
{
  if (c->passthrough)
    shmfs_passthrough_client_write (sync, off, data, len);
  else
    shmfs_pagecache_client_write (c->cache, sync, off, data, len, writeback);
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

void
shmfs_coherence_snapshot (ShmfsCoherence *c, ShmfsSync *sync, void *buf, guint64 off,
                          guint64 len)
{
  if (c->passthrough)
    shmfs_passthrough_snapshot (sync, buf, off, len);
  else
    shmfs_pagecache_snapshot (c->cache, sync, buf, off, len);
}
