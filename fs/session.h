/* session.h — node states and inode numbers (session.c).  _locked: with
 * tree_lock held.
 */
#pragma once

#include "shmfs.h"

G_BEGIN_DECLS

/* Gives node its FUSE-layer state. */
void shmfs_attach_state (Shmfs *fs, ShmNode *node);
/* Gives every node of a new (or loaded) tree its FUSE-layer state. */
void shmfs_attach_states (Shmfs *fs);
/* The table of renumbered raw twins: made before the first request. */
void shmfs_twin_ids_init (Shmfs *fs);
/* Clears the table of renumbered raw twins, after the tree is freed. */
void shmfs_twin_ids_clear (Shmfs *fs);
/* Gives the raw twins of dir and of the directories below it new numbers. */
gboolean shmfs_renumber_twins_locked (ShmNode *dir, gpointer user_data);
/* The node behind ino, or NULL for stale or unknown numbers. */
ShmNode *shmfs_resolve_locked (Shmfs *fs, fuse_ino_t ino, gboolean *raw);
/* Whether ino is the old number of a raw twin directory that has moved. */
gboolean shmfs_retired_twin_locked (Shmfs *fs, fuse_ino_t ino);
/* Drops a reference taken to use node outside tree_lock. */
void shmfs_unref_node (Shmfs *fs, ShmNode *node);
/* Counts one more kernel lookup of node's view. */
void shmfs_lookup_inc_locked (ShmNode *node, gboolean raw);
/* Drops nlookup kernel lookups of ino (FORGET). */
void shmfs_forget_locked (Shmfs *fs, fuse_ino_t ino, guint64 nlookup);
/* Whether the kernel holds the inode of node's view. */
gboolean shmfs_kernel_holds_locked (ShmNode *node, gboolean raw);
/* Frees the bytes of a node that is unlinked and closed. */
void shmfs_release_if_unreachable_locked (Shmfs *fs, ShmNode *node);
/* Types node, waiting a moment for pending releases past the capacity. */
int shmfs_set_type_locked (Shmfs *fs, ShmNode *node, const ShmType *type);
/* "cached", "passthrough" or "remote": the mode in force. */
const char *shmfs_mode_name (Shmfs *fs);

G_END_DECLS
