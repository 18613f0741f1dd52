/* namespace.h — the namespace changes the operations share (namespace.c).
 * _locked: with tree_lock held.
 */
#pragma once

#include "shmfs.h"

/* Permission bits an object or directory may have, as on tmpfs: setuid
 * and setgid included (the mount is nosuid and nothing in it runs; a setgid
 * directory gives its group to new entries). */
#define SHMFS_MODE_BITS 07777

G_BEGIN_DECLS

/* Resolves the parent of a namespace change: a main-tree directory. */
int shmfs_resolve_parent_locked (Shmfs *fs, fuse_ino_t parent, ShmNode **dir);
/* Creates name in parent as the caller: 0 and a reference in *out, or -errno. */
int shmfs_make_node (Shmfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name, gboolean is_dir, mode_t mode, ShmNode **out);
/* Removes name from dir: the tree, the .raw twin's dentry, the store. */
int shmfs_remove_locked (Shmfs *fs, ShmNode *dir, const char *name, gboolean is_dir, fuse_ino_t *raw_ino);

G_END_DECLS
