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

#include "remote-bytes.h"
#include "shm-atomic.h"
#include "sync.h"

typedef struct _ShmfsCoherence ShmfsCoherence;

ShmfsCoherence *shmfs_coherence_new (void);
/* Remote mode: the bytes live in r (remote-bytes.h), and none here.  Set
 * before start; start's passthrough is then ignored. */
void shmfs_coherence_set_remote (ShmfsCoherence *c, ShmRemote *r);
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

/* Sets how the kernel serves an open of the raw view (fi's direct_io,
 * keep_cache, backing_id); *backing and *counted tell what the open holds,
 * for release.  empty: the untyped view, with no bytes.  0 or -errno. */
int shmfs_coherence_open_raw (ShmfsCoherence *c, ShmfsSync *sync, fuse_req_t req, gboolean empty,
                              gboolean writer, struct fuse_file_info *fi, gboolean *backing,
                              gboolean *counted);

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
/* Applies a client write of the raw view (write(2) or writeback): 0 or
 * -errno (remote mode only). */
int shmfs_coherence_client_write (ShmfsCoherence *c, ShmfsSync *sync, guint64 off,
                                   const void *data, guint64 len, gboolean writeback);

/* Stores data at [off, off+len) of the object: memfd, then page cache. */
void shmfs_coherence_store (ShmfsCoherence *c, ShmfsSync *sync, guint64 off, const void *data, guint64 len);
/* Stores the ranges, as one change: remotely one step (so another host
 * sees all or none), locally one store each.  0 or -errno. */
int shmfs_coherence_store_ranges (ShmfsCoherence *c, ShmfsSync *sync, const ShmfsRange *ranges,
                                  guint n);
/* Applies a checked atomic operation a of process pid to the scalar elem
 * at byte off of the value: CPU atomics on the daemon's copy, or in the
 * store.  *changed: whether the value may have changed.  0, -EAGAIN while
 * a process on another host holds the object's lock (remote mode), or
 * -errno. */
int shmfs_coherence_atomic (ShmfsCoherence *c, ShmfsSync *sync, const ShmType *elem, guint64 off,
                            ShmAtomic *a, pid_t pid, gboolean *changed);
/* The value's version (after settle); with bump, a new one first, as a
 * change the daemon did not see would (fsync, SHMFS_IOC_NOTIFY).  0 or
 * -errno. */
int shmfs_coherence_version (ShmfsCoherence *c, ShmfsSync *sync, gboolean bump, guint64 *version);
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
/* Copies the whole value (nbytes) into buf, and its version into
 * *version: read before the bytes locally, with them in one step
 * remotely.  0 or -errno (remote mode only). */
int shmfs_coherence_snapshot_value (ShmfsCoherence *c, ShmfsSync *sync, void *buf,
                                    guint64 nbytes, guint64 *version);
/* Copies [off, off+len) of the object's current bytes, cached pages
 * included, into buf (len bytes); bytes an unlinked object no longer has
 * read as zeros.  0 or -errno (remote mode only). */
int shmfs_coherence_snapshot (ShmfsCoherence *c, ShmfsSync *sync, void *buf, guint64 off,
                               guint64 len);
