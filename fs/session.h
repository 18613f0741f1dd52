/* session.h — the daemon's state shared by the operations (session.c).
 * Everything here runs with the locks its name says (_locked: tree_lock).
 */
#pragma once

#include "shmfs.h"

#define XATTR_PREFIX "user.shmfs."
/* Permission bits an object or directory may have, as on tmpfs: setuid
 * and setgid included (the mount is nosuid and nothing in it runs; a setgid
 * directory gives its group to new entries). */
#define SHMFS_MODE_BITS 07777

G_BEGIN_DECLS

/* Gives the raw twins of dir, and of every directory below it, new numbers
 * (see the design comment); tree_lock held. */
gboolean shmfs_renumber_twins_locked (ShmNode *dir, gpointer user_data);

/* Finds the node behind ino; tree_lock held.  Returns NULL for stale or
 * unknown numbers. */
ShmNode *shmfs_resolve_locked (Shmfs *fs, fuse_ino_t ino, gboolean *raw);

/* Whether ino is the old number of a raw twin directory that has moved:
 * the kernel still has it at the old path, where it has no entries (a
 * lookup there must not hand out the current numbers of what is below,
 * which would give a directory two dentries).  tree_lock held. */
gboolean shmfs_retired_twin_locked (Shmfs *fs, fuse_ino_t ino);

/* Drops a reference taken to use node outside tree_lock. */
void shmfs_unref_node (Shmfs *fs, ShmNode *node);

/* Counts one more kernel lookup of node's view; tree_lock held. */
void shmfs_lookup_inc_locked (ShmNode *node, gboolean raw);

/* Drops nlookup kernel lookups of ino (FORGET); tree_lock held. */
void shmfs_forget_locked (Shmfs *fs, fuse_ino_t ino, guint64 nlookup);

/* Frees the bytes of a node that is unlinked and closed: the kernel's
 * lookup references alone cannot reach them.  An unlinked node still open
 * is counted until its last release, which may come a little after the
 * close(2) that caused it.  tree_lock held. */
void shmfs_release_if_unreachable_locked (Shmfs *fs, ShmNode *node);

/* Makes the kernel forget ino's cached attributes. */
void shmfs_inval_attr (Shmfs *fs, fuse_ino_t ino);

/* Invalidates the attributes of the node's other view, if the kernel has it. */
void shmfs_inval_twin (Shmfs *fs, ShmNode *node, gboolean raw);

/* The value changed: new times, for both views. */
void shmfs_node_times_changed (Shmfs *fs, ShmNode *node);

/* The attributes of node's view (text_size for the text view); tree_lock
 * held. */
void shmfs_fill_stat_locked (Shmfs *fs, ShmNode *node, gboolean raw, guint64 text_size,
                             struct stat *st);

/* How long the kernel may keep the attributes of node's view. */
double shmfs_attr_timeout (Shmfs *fs, ShmNode *node, gboolean raw);

/* Fills e for node and counts the lookup; tree_lock held. */
void shmfs_fill_entry_locked (Shmfs *fs, ShmNode *node, gboolean raw, guint64 text_size,
                              gboolean twin_entry, struct fuse_entry_param *e);

/* Whether name in parent is the .raw directory (the root's only). */
gboolean shmfs_is_raw_dir_name (ShmNode *parent, gboolean raw, const char *name);

/* Replies with the entry of node and drops the caller's reference.  A text
 * view's attributes are never cached (attr_timeout 0): the kernel asks
 * getattr for its size when it needs it, so the entry does not render the
 * value for a size nobody reads (every open would, for the permission
 * check's lookup). */
void shmfs_send_entry (Shmfs *fs, fuse_req_t req, const struct fuse_entry_param *e);

/* Fills and sends the entry of node's view, counting the lookup. */
void shmfs_reply_entry (Shmfs *fs, fuse_req_t req, ShmNode *node, gboolean raw,
                        gboolean twin_entry);

/* The store path of name in dir; tree_lock held.  g_free() it. */
char *shmfs_child_path_locked (ShmNode *dir, const char *name);

/* Logs a store operation that failed; returns err. */
int shmfs_store_result (Shmfs *fs, const char *what, const char *path, int err);

/* Writes node's attributes to the store, if any; tree_lock held. */
void shmfs_store_set_attr_locked (Shmfs *fs, ShmNode *node);

/* Clears setuid, and setgid where it means "run as the group" (group
 * execute set), as the kernel does for a write or a chown.  Returns whether
 * the mode changed. */
gboolean shmfs_kill_suid_locked (ShmAttr *a);

/* Resolves the parent of a namespace change: a main-tree directory. */
int shmfs_resolve_parent_locked (Shmfs *fs, fuse_ino_t parent, ShmNode **dir);

/* Creates name in parent as the caller (mode, owner, setgid directories);
 * returns 0 and a reference in *out, or -errno. */
int shmfs_make_node (Shmfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
                     gboolean is_dir, mode_t mode, ShmNode **out);

/* Removes name from dir: the tree, the .raw twin's dentry, the store.
 * Sets *raw_ino to the removed object's raw inode if the kernel holds it
 * (its link count is 0 now: invalidate it once unlocked).  tree_lock held. */
int shmfs_remove_locked (Shmfs *fs, ShmNode *dir, const char *name, gboolean is_dir,
                         fuse_ino_t *raw_ino);

/* A new open file of node's view; tree_lock held. */
ShmfsHandle *shmfs_handle_new_locked (Shmfs *fs, ShmNode *node, gboolean raw, int flags);

/* Frees an open file (release, or an open that could not be answered). */
void shmfs_handle_free (Shmfs *fs, fuse_req_t req, ShmfsHandle *h);

/* Says why an object could not get the file descriptor it needs. */
void shmfs_log_fd_shortage (Shmfs *fs, ShmNode *node, int err);

/* The open file behind fi. */
ShmfsHandle *shmfs_handle_of (struct fuse_file_info *fi);

G_END_DECLS
