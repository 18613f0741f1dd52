/* attr.h — the attributes and entries the kernel sees, and their
 * invalidation (attr.c).  _locked: with tree_lock held.
 */
#pragma once

#include "shmfs.h"

G_BEGIN_DECLS

/* Makes the kernel forget ino's cached attributes. */
void shmfs_inval_attr (Shmfs *fs, fuse_ino_t ino);
/* Invalidates the attributes of the node's other view, if the kernel has it. */
void shmfs_inval_twin (Shmfs *fs, ShmNode *node, gboolean raw);
/* The node was typed: its raw twin has a size now. */
void shmfs_node_typed (Shmfs *fs, ShmNode *node);
/* The value changed: new times, for both views. */
void shmfs_node_times_changed (Shmfs *fs, ShmNode *node);
/* The value changed: new times, and its pollers woken. */
void shmfs_node_changed (Shmfs *fs, ShmNode *node);
/* The attributes of node's view (text_size for the text view). */
void shmfs_fill_stat_locked (Shmfs *fs, ShmNode *node, gboolean raw, guint64 text_size, struct stat *st);
/* How long the kernel may keep the attributes of node's view. */
double shmfs_attr_timeout (Shmfs *fs, ShmNode *node, gboolean raw);
/* Fills e for node and counts the lookup. */
void shmfs_fill_entry_locked (Shmfs *fs, ShmNode *node, gboolean raw, guint64 text_size, gboolean twin_entry, struct fuse_entry_param *e);
/* Whether name in parent is the .raw directory (the root's only). */
gboolean shmfs_is_raw_dir_name (ShmNode *parent, gboolean raw, const char *name);
/* Replies with entry e; forgets the lookup if the kernel never got it. */
void shmfs_send_entry (Shmfs *fs, fuse_req_t req, const struct fuse_entry_param *e);
/* Fills and sends the entry of node's view, dropping the caller's reference. */
void shmfs_reply_entry (Shmfs *fs, fuse_req_t req, ShmNode *node, gboolean raw, gboolean twin_entry);
/* Clears setuid (and setgid with group execute), as for a write or chown. */
gboolean shmfs_kill_suid_locked (ShmAttr *a);

G_END_DECLS
