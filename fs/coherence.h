/* coherence.h — keeping the daemon's bytes and the kernel's page cache of
 * the binary views one (cached mode, DESIGN.md §6).
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
 *
 * In passthrough mode the kernel maps, reads and writes the memfds
 * themselves: one copy of the bytes, nothing to keep coherent.
 */
#pragma once

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>
#include <glib.h>

#include "shm-object.h"
#include "shm-tree.h"

typedef struct _ShmfsCoherence ShmfsCoherence;
typedef struct _ShmfsSync ShmfsSync;

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
/* Drops the kernel's dentry of name in parent soon, outside any request:
 * a twin entry under /.raw kept after its main entry went would keep the
 * object's inode, and so its memory, alive. */
void shmfs_coherence_forget_entry (ShmfsCoherence *c, fuse_ino_t parent, const char *name);

/* Hands a retrieve reply to its waiter (the retrieve_reply operation). */
void shmfs_coherence_retrieve_reply (ShmfsCoherence *c, void *cookie, off_t offset,
                                     struct fuse_bufvec *bufv);

/* Per-object state: locks, writers of the raw view, pages maybe cached. */
/* owner is handed to the changed callback; it must outlive the object's
 * open binary views. */
ShmfsSync *shmfs_sync_new (ShmObject *obj, fuse_ino_t raw_ino, gpointer owner);
/* The raw view has a new inode number (its object was typed). */
void shmfs_sync_set_raw_ino (ShmfsSync *sync, fuse_ino_t raw_ino);
ShmfsSync *shmfs_sync_ref (ShmfsSync *sync);
void shmfs_sync_unref (ShmfsSync *sync);

/* Passthrough: registers the memfd as the backing of an open (shared by
 * every open of the object); returns the backing id or -errno. */
int shmfs_sync_backing_open (ShmfsCoherence *c, ShmfsSync *sync, fuse_req_t req);
/* Drops an open's hold on the backing; the last one unregisters it. */
void shmfs_sync_backing_release (ShmfsCoherence *c, ShmfsSync *sync, fuse_req_t req);

/* A raw-view handle that can write (and so mmap writably) opened/closed. */
void shmfs_sync_writer_open (ShmfsSync *sync);
void shmfs_sync_writer_close (ShmfsSync *sync);

/* Frees the bytes of an unlinked, closed object (shm_tree_release_bytes)
 * once no daemon copy of them is under way; later copies find none.
 * sync may be NULL (a directory). */
void shmfs_sync_drop_bytes (ShmfsSync *sync, ShmTree *tree, ShmNode *node);

/* The kernel dropped the raw view's inode, and with it every cached page. */
void shmfs_sync_forget_cache (ShmfsSync *sync);

/* Answers a client read of [off, off+len) (into the page cache, in cached
 * mode). */
void shmfs_sync_reply_read (ShmfsSync *sync, fuse_req_t req, guint64 off, guint64 len);
/* Applies a client write of the raw view (write(2) or writeback). */
void shmfs_sync_client_write (ShmfsCoherence *c, ShmfsSync *sync, guint64 off, const void *data, guint64 len, gboolean writeback);

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
