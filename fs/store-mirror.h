/* store-mirror.h — the persistent store kept in step with the tree
 * (store-mirror.c).  Each does nothing without a store.  _locked: with
 * tree_lock held.
 */
#pragma once

#include "shmfs.h"

G_BEGIN_DECLS

/* The store path of name in dir; g_free() it. */
char *shmfs_child_path_locked (ShmNode *dir, const char *name);
/* Logs a store operation that failed; returns err. */
int shmfs_store_result (Shmfs *fs, const char *what, const char *path, int err);
/* Mirrors node, new as name in dir, into the store: 0 or -errno. */
int shmfs_store_create_locked (Shmfs *fs, ShmNode *dir, const char *name, ShmNode *node);
/* Writes node's attributes to the store. */
void shmfs_store_set_attr_locked (Shmfs *fs, ShmNode *node);
/* Removes name, removed from dir, from the store. */
void shmfs_store_remove_locked (Shmfs *fs, ShmNode *dir, const char *name, gboolean is_dir);

/* Renames name in olddir to newname in newdir (rename(2)'s flags). */
void shmfs_store_rename_locked (Shmfs *fs, ShmNode *olddir, const char *name, ShmNode *newdir,
                                const char *newname, guint flags);

G_END_DECLS
