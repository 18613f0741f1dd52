/* store-mirror.c — the persistent store (-o store=DIR) kept in step with
 * the tree: every namespace and attribute change is written through, and a
 * failure logged.
 */
#include "config.h"

#include "store-mirror.h"

#include <stdio.h>

/* The store path of name in dir; tree_lock held.  g_free() it. */
char *
shmfs_child_path_locked (ShmNode *dir, const char *name)
{
  g_autofree char *dir_path = shm_node_dup_path (dir);

  return *dir_path ? g_strconcat (dir_path, "/", name, NULL) : g_strdup (name);
}

int
shmfs_store_result (Shmfs *fs, const char *what, const char *path, int err)
{
  if (err < 0)
    fprintf (stderr, "shmfs: store: cannot %s %s: %s\n", what, path, g_strerror (-err));
  return err;
}
int
shmfs_store_create_locked (Shmfs *fs, ShmNode *dir, const char *name, ShmNode *node)
{
  g_autofree char *path = NULL;

  if (fs->store == NULL)
    return 0;
  path = shmfs_child_path_locked (dir, name);
  return shmfs_store_result (fs, "create", path,
                       shm_store_create (fs->store, path, shm_node_is_dir (node),
                                         shm_node_get_attr (node)));
}

void
shmfs_store_set_attr_locked (Shmfs *fs, ShmNode *node)
{
  g_autofree char *path = NULL;

  if (fs->store == NULL || shm_node_get_parent (node) == NULL)
    return;
  path = shm_node_dup_path (node);
  shmfs_store_result (fs, "update", path, shm_store_set_attr (fs->store, path, shm_node_get_attr (node)));
}

void
shmfs_store_remove_locked (Shmfs *fs, ShmNode *dir, const char *name, gboolean is_dir)
{
  g_autofree char *path = NULL;

  if (fs->store == NULL)
    return;
  path = shmfs_child_path_locked (dir, name);
  shmfs_store_result (fs, "remove", path, shm_store_remove (fs->store, path, is_dir));
}

void
shmfs_store_rename_locked (Shmfs *fs, ShmNode *olddir, const char *name, ShmNode *newdir,
                           const char *newname, guint flags)
{
  g_autofree char *from = NULL, *to = NULL;

  if (fs->store == NULL)
    return;
  from = shmfs_child_path_locked (olddir, name);
  to = shmfs_child_path_locked (newdir, newname);
  shmfs_store_result (fs, "rename", from, shm_store_rename (fs->store, from, to, flags));
}
