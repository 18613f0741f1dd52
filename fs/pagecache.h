/* pagecache.h — cached mode: keeping the daemon's bytes and the kernel's
 * page cache of the binary views one (DESIGN.md §6).
 *
 * The kernel caches each .raw file's pages, shared by read(2), write(2) and
 * every mmap of it.  write(2) is write-through, so the backing memfd sees it
 * before the call returns; mmap stores stay in dirty pages until writeback.
 * So: daemon stores go to the memfd and then into the page cache
 * (notify_store, copied in while the kernel holds each page lock); daemon
 * reads take the memfd and lay over it every cached page
 * (notify_retrieve), dirty ones included.  A writeback carries bytes copied
 * from its pages before its handler runs, so it may undo in the memfd a
 * daemon store that reached those pages since.  Its handler then copies the
 * pages back into the memfd before answering, while the kernel still holds
 * them under writeback (they cannot be dropped first); a store that such a
 * writeback overtook does the same once its pages are stored.
 */
#pragma once

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>
#include <glib.h>

#include "sync.h"

typedef struct _ShmfsPageCache ShmfsPageCache;

ShmfsPageCache *shmfs_pagecache_new (void);
/* Starts notifying se (at init); requests carry at most max_write bytes. */
void shmfs_pagecache_start (ShmfsPageCache *pc, struct fuse_session *se, size_t max_write);
/* Stops notifications and wakes every waiter (at unmount). */
void shmfs_pagecache_stop (ShmfsPageCache *pc);
void shmfs_pagecache_free (ShmfsPageCache *pc);

/* Hands a retrieve reply to its waiter (the retrieve_reply operation). */
void shmfs_pagecache_retrieve_reply (ShmfsPageCache *pc, void *cookie, off_t offset,
                                     struct fuse_bufvec *bufv);

/* A raw-view handle that can write (and so mmap writably) opened/closed. */
void shmfs_pagecache_writer_open (ShmfsSync *sync);
void shmfs_pagecache_writer_close (ShmfsSync *sync);
/* The kernel dropped the raw view's inode, and with it every cached page. */
void shmfs_pagecache_forget (ShmfsSync *sync);

/* Answers a client read of [off, off+len) into the page cache. */
void shmfs_pagecache_reply_read (ShmfsSync *sync, fuse_req_t req, guint64 off, guint64 len);
/* Applies a client write of the raw view (write(2) or writeback). */
void shmfs_pagecache_client_write (ShmfsPageCache *pc, ShmfsSync *sync, guint64 off,
                                   const void *data, guint64 len, gboolean writeback);

/* Copies [off, off+len) of the object's current bytes, cached pages
 * included, into buf. */
void shmfs_pagecache_snapshot (ShmfsPageCache *pc, ShmfsSync *sync, void *buf, guint64 off,
                               guint64 len);
/* Stores data at [off, off+len): memfd, then page cache. */
void shmfs_pagecache_store (ShmfsPageCache *pc, ShmfsSync *sync, guint64 off,
                            const void *data, guint64 len);
/* Read-modify-write of [off, off+len) (see shmfs_coherence_modify). */
gboolean shmfs_pagecache_modify (ShmfsPageCache *pc, ShmfsSync *sync, guint64 off, guint64 len,
                                 gboolean (*modify) (guint8 *bytes, gpointer user_data),
                                 gpointer user_data);
/* Brings the mapped stores still in dirty pages into the memfd. */
void shmfs_pagecache_pull (ShmfsPageCache *pc, ShmfsSync *sync);
