/* authority-local.c — the tree decides the namespace: each change is made
 * in the tree, then written through to the persistent store if there is
 * one (store-mirror.c), in one section of tree_lock.
 */
#include "config.h"

#include "authority.h"
#include "attr.h"
#include "inval.h"
#include "namespace.h"
#include "session.h"
#include "store-mirror.h"

#include <errno.h>

static void
set_time (ShmTree *tree, struct timespec *t, const struct timespec *value, gboolean now)
{
  if (now)
    shm_tree_now (tree, t);
  else
    *t = *value;
}

void
shmfs_authority_apply_attr (ShmTree *tree, ShmAttr *a, gboolean is_dir, const struct stat *attr,
                            int to_set)
{
  if (to_set & FUSE_SET_ATTR_MODE)
    a->mode = (a->mode & S_IFMT) | (attr->st_mode & SHMFS_MODE_BITS);
  /* The kernel leaves clearing setuid/setgid to us (killpriv v2): at a
   * change of owner, as Linux does, and where it says so (a truncation by
   * a caller without CAP_FSETID). */
  if (((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) && !is_dir) ||
      (to_set & (FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID)))
    shmfs_kill_suid_locked (a);
  if (to_set & FUSE_SET_ATTR_UID)
    a->uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID)
    a->gid = attr->st_gid;
  if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW))
    set_time (tree, &a->atime, &attr->st_atim, to_set & FUSE_SET_ATTR_ATIME_NOW);
  if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))
    set_time (tree, &a->mtime, &attr->st_mtim, to_set & FUSE_SET_ATTR_MTIME_NOW);
  shm_tree_now (tree, &a->ctime);
}

static int
local_create (Shmfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name, gboolean is_dir,
              mode_t mode, ShmNode **out)
{
  const struct fuse_ctx *ctx = fuse_req_ctx (req);
  ShmNode *dir, *node = NULL;
  gid_t gid;
  int err;

  g_mutex_lock (&fs->tree_lock);
  err = shmfs_check_create_locked (fs, parent, name, is_dir, &dir, &mode, &gid, ctx);
  if (err == 0)
    err = shm_tree_create (fs->tree, dir, name, is_dir, mode, ctx->uid, gid, &node);
  if (err == 0 && (err = shmfs_store_create_locked (fs, dir, name, node)) < 0)
    shm_tree_remove (fs->tree, dir, name, is_dir);
  if (err == 0)
    {
      shmfs_attach_state (fs, node);
      *out = shm_node_ref (node);
    }
  g_mutex_unlock (&fs->tree_lock);
  return err;
}

static int
local_remove (Shmfs *fs, fuse_ino_t parent, const char *name, gboolean is_dir, fuse_ino_t *raw_ino)
{
  ShmNode *dir;
  int err;

  *raw_ino = 0;
  g_mutex_lock (&fs->tree_lock);
  err = shmfs_check_remove_locked (fs, parent, name, is_dir, &dir);
  if (err == 0)
    err = shmfs_remove_locked (fs, dir, name, is_dir, raw_ino);
  g_mutex_unlock (&fs->tree_lock);
  return err;
}

static int
local_rename (Shmfs *fs, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
              const char *newname, guint flags)
{
  ShmNode *olddir, *newdir, *replaced = NULL;
  int err;

  g_mutex_lock (&fs->tree_lock);
  err = shmfs_check_rename_locked (fs, parent, name, newparent, newname, &olddir, &newdir);
  if (err == 0)
    err = shm_tree_rename (fs->tree, olddir, name, newdir, newname, flags, &replaced);
  if (err == 0)
    shmfs_renamed_locked (fs, olddir, name, newdir, newname, flags, replaced);
  if (err == 0)
    shmfs_store_rename_locked (fs, olddir, name, newdir, newname, flags);
  g_mutex_unlock (&fs->tree_lock);
  return err;
}

static int
local_set_attr (Shmfs *fs, ShmNode *node, const struct stat *attr, int to_set)
{
  g_mutex_lock (&fs->tree_lock);
  shmfs_authority_apply_attr (fs->tree, shm_node_get_attr (node), shm_node_is_dir (node), attr,
                              to_set);
  shmfs_store_set_attr_locked (fs, node);
  g_mutex_unlock (&fs->tree_lock);
  return 0;
}

static int
local_set_type (Shmfs *fs, ShmNode *node, const ShmType *type)
{
  int err;

  g_mutex_lock (&fs->tree_lock);
  err = shm_object_is_typed (shm_node_get_object (node)) ? -EPERM
      : shmfs_set_type_locked (fs, node, type);
  g_mutex_unlock (&fs->tree_lock);
  return err;
}

static void
local_expire (Shmfs *fs, guint64 node_id, pid_t pid)
{
  g_autofree char *name = NULL;
  g_autofree char *path = NULL;
  fuse_ino_t parent_ino = 0, child_ino = 0, raw_ino = 0;
  ShmNode *node, *parent;
  int err = -ENOENT;

  /* One locked section: the name removed is the bound object's. */
  g_mutex_lock (&fs->tree_lock);
  node = shm_tree_find_id (fs->tree, node_id);
  if (node != NULL && shmfs_node_state (node)->bound_pid == pid &&
      (parent = shm_node_get_parent (node)) != NULL)
    {
      name = g_strdup (shm_node_get_name (node));
      path = shm_node_dup_path (node);
      parent_ino = shmfs_ino (parent, FALSE);
      child_ino = shmfs_ino (node, FALSE);
      err = shmfs_remove_locked (fs, parent, name, FALSE, &raw_ino);
    }
  g_mutex_unlock (&fs->tree_lock);
  if (err == 0)
    shmfs_expired (fs, parent_ino, child_ino, name, raw_ino, path, pid);
}

const ShmfsAuthority shmfs_authority_local = {
  .create = local_create,
  .remove = local_remove,
  .rename = local_rename,
  .set_attr = local_set_attr,
  .set_type = local_set_type,
  .expire = local_expire,
};
