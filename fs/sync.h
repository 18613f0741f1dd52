/* sync.h — an object's bytes as the daemon reaches them, in either
 * coherence mode (pagecache.c, passthrough.c; coherence.h chooses).
 *
 * Locks, outermost first:
 *   the store lock  serializes what the daemon itself does to an object's
 *                   bytes (stores, snapshots, resyncs).  Never taken by a
 *                   handler of a client write or writeback: a daemon store
 *                   waits on page locks that a client write(2) holds until
 *                   its FUSE_WRITE is answered, and that a write fault on a
 *                   page under writeback holds until that writeback is.
 *   the data lock   protects the memfd bytes and the mode's state of the
 *                   object.
 */
#pragma once

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>
#include <glib.h>

#include "shm-object.h"
#include "shm-tree.h"

typedef struct _ShmfsSync ShmfsSync;

/* The state of obj, whose binary view is raw_ino; owner is handed to the
 * changed callback (coherence.h) and must outlive the open binary views. */
ShmfsSync *shmfs_sync_new (ShmObject *obj, fuse_ino_t raw_ino, gpointer owner);
ShmfsSync *shmfs_sync_ref (ShmfsSync *sync);
void shmfs_sync_unref (ShmfsSync *sync);

/* The object, its raw inode (as given to shmfs_sync_new, or since set)
 * and its owner. */
ShmObject *shmfs_sync_get_object (ShmfsSync *sync);
fuse_ino_t shmfs_sync_get_raw_ino (ShmfsSync *sync);
gpointer shmfs_sync_get_owner (ShmfsSync *sync);
/* The raw view has a new inode number (its object was typed). */
void shmfs_sync_set_raw_ino (ShmfsSync *sync, fuse_ino_t raw_ino);

/* Takes and drops the store lock (see above). */
void shmfs_sync_lock_store (ShmfsSync *sync);
void shmfs_sync_unlock_store (ShmfsSync *sync);
/* Takes and drops the data lock (see above). */
void shmfs_sync_lock (ShmfsSync *sync);
void shmfs_sync_unlock (ShmfsSync *sync);

/* The state the mode in force keeps for the object, made by make() at the
 * first call and freed by free_state with the object; data lock held. */
gpointer shmfs_sync_state_locked (ShmfsSync *sync, gpointer (*make) (void),
                                  GDestroyNotify free_state);

/* Whether [off, off+len) is inside the object's bytes (an unlinked
 * object's are freed at its last close); data lock held. */
gboolean shmfs_sync_has_bytes_locked (ShmfsSync *sync, guint64 off, guint64 len);
/* Copies [off, off+len) of the memfd into buf, zeros where the object has
 * no bytes; data lock held. */
void shmfs_sync_read_locked (ShmfsSync *sync, guint64 off, void *buf, guint64 len);
/* Copies buf into [off, off+len) of the memfd, if the object has those
 * bytes; data lock held. */
void shmfs_sync_write_locked (ShmfsSync *sync, guint64 off, const void *buf, guint64 len);

/* Frees the bytes of an unlinked, closed object (shm_tree_release_bytes)
 * once no daemon copy of them is under way; later copies find none.
 * sync may be NULL (a directory). */
void shmfs_sync_drop_bytes (ShmfsSync *sync, ShmTree *tree, ShmNode *node);
