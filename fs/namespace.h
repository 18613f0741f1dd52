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
/* Checks a create of name in parent by ctx: *dir gets the directory, *mode
 * the permission bits and *gid the group it is made with.  0 or -errno. */
int shmfs_check_create_locked (Shmfs *fs, fuse_ino_t parent, const char *name, gboolean is_dir,
                               ShmNode **dir, mode_t *mode, gid_t *gid, const struct fuse_ctx *ctx);
/* Checks a removal of name from parent: *dir gets the directory.  0 or -errno. */
int shmfs_check_remove_locked (Shmfs *fs, fuse_ino_t parent, const char *name, gboolean is_dir,
                               ShmNode **dir);
/* Checks a rename: *olddir and *newdir get the directories.  0 or -errno. */
int shmfs_check_rename_locked (Shmfs *fs, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                               const char *newname, ShmNode **olddir, ShmNode **newdir);
/* What follows a rename the tree made: moved twins get new numbers, a
 * replaced node (referenced; consumed) may lose its bytes, the kernel
 * forgets both names under .raw. */
void shmfs_renamed_locked (Shmfs *fs, ShmNode *olddir, const char *name, ShmNode *newdir,
                           const char *newname, guint flags, ShmNode *replaced);
/* Removes name from dir: the tree, the .raw twin's dentry, the store. */
int shmfs_remove_locked (Shmfs *fs, ShmNode *dir, const char *name, gboolean is_dir, fuse_ino_t *raw_ino);

/* After an object bound to process pid was removed (pid 0: its host
 * stopped renewing the binding): the kernel forgets name, and the raw
 * inode's attributes; path is logged. */
void shmfs_expired (Shmfs *fs, fuse_ino_t parent_ino, fuse_ino_t child_ino, const char *name,
                    fuse_ino_t raw_ino, const char *path, pid_t pid);

G_END_DECLS
