/* coherence.h — the bytes of the binary views, in either mode (DESIGN.md
 * §6): the one interface the operations and the text view call, which
 * hands each call to the mode in force.
 *
 * Cached mode (pagecache.h): the kernel caches each .raw file's pages; the
 * daemon keeps its memfds and those pages one.  Passthrough mode
 * (passthrough.h): the kernel maps, reads and writes the memfds
 * themselves; one copy of the bytes, nothing to keep coherent.  An
 * object's own state, both modes, is a ShmfsSync (sync.h).
 */
#pragma once

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>
#include <glib.h>

#include "sync.h"

typedef struct _ShmfsCoherence ShmfsCoherence;

ShmfsCoherence *shmfs_coherence_new (void);
/* Starts serving se (at init).  In passthrough mode clients reach the
 * memfds directly and nothing needs notifying; changed(user_data, owner) is
 * called when a client wrote an object's memfd with write(2). */
void shmfs_coherence_start (ShmfsCoherence *c, struct fuse_session *se, size_t max_write,
                            gboolean passthrough,
                            void (*changed) (gpointer user_data, gpointer owner),
                            gpointer user_data);
/* Stops notifications and wakes every waiter (at unmount). */
void shmfs_coherence_stop (ShmfsCoherence *c);
void shmfs_coherence_free (ShmfsCoherence *c);

/* Hands a retrieve reply to its waiter (the retrieve_reply operation). */
void shmfs_coherence_retrieve_reply (ShmfsCoherence *c, void *cookie, off_t offset,
                                     struct fuse_bufvec *bufv);

/* Passthrough: registers the memfd as the backing of an open (shared by
 * every open of the object); returns the backing id or -errno. */
int shmfs_coherence_backing_open (ShmfsCoherence *c, ShmfsSync *sync, fuse_req_t req);
/* Drops an open's hold on the backing; the last one unregisters it. */
void shmfs_coherence_backing_release (ShmfsCoherence *c, ShmfsSync *sync, fuse_req_t req);

/* Cached: a raw-view handle that can write (and so mmap writably)
 * opened/closed. */
void shmfs_coherence_writer_open (ShmfsCoherence *c, ShmfsSync *sync);
void shmfs_coherence_writer_close (ShmfsCoherence *c, ShmfsSync *sync);

/* The kernel dropped the raw view's inode, and with it every cached page. */
void shmfs_coherence_forget_cache (ShmfsCoherence *c, ShmfsSync *sync);

/* Answers a client read of [off, off+len) (into the page cache, in cached
 * mode). */
void shmfs_coherence_reply_read (ShmfsCoherence *c, ShmfsSync *sync, fuse_req_t req,
                                 guint64 off, guint64 len);
/* Applies a client write of the raw view (write(2) or writeback). */
void shmfs_coherence_client_write (ShmfsCoherence *c, ShmfsSync *sync, guint64 off,
                                   const void *data, guint64 len, gboolean writeback);

/* Stores data at [off, off+len) of the object: memfd, then page cache. */
void shmfs_coherence_store (ShmfsCoherence *c, ShmfsSync *sync, guint64 off, const void *data, guint64 len);
/* Read-modify-write of [off, off+len): modify gets those bytes as they are
 * now (cached pages included) and returns whether it changed them; they
 * are then stored.  In passthrough mode modify works on the shared memfd
 * itself, so it must use CPU atomics.  Returns what modify returned. */
gboolean shmfs_coherence_modify (ShmfsCoherence *c, ShmfsSync *sync, guint64 off, guint64 len,
                                 gboolean (*modify) (guint8 *bytes, gpointer user_data),
                                 gpointer user_data);

/* Accounts every client write that has returned (passthrough writes reach
 * the daemon through inotify): call before reading or arming a version.
 * With sync, first makes the object's next such write known too (a watch
 * fires once, then waits for a reader or poller to set it again). */
void shmfs_coherence_settle (ShmfsCoherence *c, ShmfsSync *sync);

/* Brings the mapped stores still in dirty pages into the memfd. */
void shmfs_coherence_pull (ShmfsCoherence *c, ShmfsSync *sync);
/* Copies [off, off+len) of the object's current bytes, cached pages
 * included, into buf (len bytes); bytes an unlinked object no longer has
 * read as zeros. */
void shmfs_coherence_snapshot (ShmfsCoherence *c, ShmfsSync *sync, void *buf, guint64 off,
                               guint64 len);
