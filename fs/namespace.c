/* namespace.c — the namespace changes the operations share: the parent of
 * a change, a new file or directory made as the caller, a name removed.
 */
#include "config.h"

#include "namespace.h"
#include "attr.h"
#include "session.h"
#include "store-mirror.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Resolves the parent of a namespace change: a main-tree directory. */
int
shmfs_resolve_parent_locked (Shmfs *fs, fuse_ino_t parent, ShmNode **dir)
{
  gboolean raw;

  *dir = shmfs_resolve_locked (fs, parent, &raw);
  if (*dir == NULL)
    return -ESTALE;
  if (!shm_node_is_dir (*dir))
    return -ENOTDIR;
  if (raw)
    {
      if (fs->verbose)
        fprintf (stderr, "shmfs: rejected /.raw: namespace changes are made in the main tree (%s)\n",
                 g_strerror (EPERM));
      return -EPERM;
    }
  return 0;
}

int
shmfs_check_create_locked (Shmfs *fs, fuse_ino_t parent, const char *name, gboolean is_dir,
                           ShmNode **dir, mode_t *mode, gid_t *gid, const struct fuse_ctx *ctx)
{
  int err = shmfs_resolve_parent_locked (fs, parent, dir);

  if (err == 0 && shmfs_is_raw_dir_name (*dir, FALSE, name))
    err = -EEXIST;
  if (err < 0)
    return err;
  *gid = ctx->gid;
  if (shm_node_get_attr (*dir)->mode & S_ISGID)
    {
      /* A setgid directory gives its group to what is made in it, and its
       * setgid bit to directories (POSIX, tmpfs). */
      *gid = shm_node_get_attr (*dir)->gid;
      if (is_dir)
        *mode |= S_ISGID;
    }
  *mode &= SHMFS_MODE_BITS;
  return 0;
}

int
shmfs_check_remove_locked (Shmfs *fs, fuse_ino_t parent, const char *name, gboolean is_dir,
                           ShmNode **dir)
{
  int err = shmfs_resolve_parent_locked (fs, parent, dir);

  if (err == 0 && shmfs_is_raw_dir_name (*dir, FALSE, name))
    err = is_dir ? -EBUSY : -EISDIR;   /* like a mount point: it stays */
  return err;
}

int
shmfs_check_rename_locked (Shmfs *fs, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                           const char *newname, ShmNode **olddir, ShmNode **newdir)
{
  int err = shmfs_resolve_parent_locked (fs, parent, olddir);

  if (err == 0)
    err = shmfs_resolve_parent_locked (fs, newparent, newdir);
  if (err == 0 && shmfs_is_raw_dir_name (*olddir, FALSE, name))
    err = -EBUSY;   /* like a mount point: it stays */
  else if (err == 0 && shmfs_is_raw_dir_name (*newdir, FALSE, newname))
    err = -EEXIST;
  return err;
}

void
shmfs_renamed_locked (Shmfs *fs, ShmNode *olddir, const char *name, ShmNode *newdir,
                      const char *newname, guint flags, ShmNode *replaced)
{
  /* What moved: newname now, and name too after an exchange. */
  shmfs_renumber_twins_locked (shm_tree_lookup (newdir, newname), fs);
  if (flags & RENAME_EXCHANGE)
    shmfs_renumber_twins_locked (shm_tree_lookup (olddir, name), fs);
  if (replaced != NULL)
    {
      shmfs_release_if_unreachable_locked (fs, replaced);
      shm_node_unref (replaced);
    }
  shmfs_inval_forget_entry (fs->inval, shmfs_ino (olddir, TRUE), name);
  shmfs_inval_forget_entry (fs->inval, shmfs_ino (newdir, TRUE), newname);
}

/* Removes name from dir: the tree, the .raw twin's dentry, the store.
 * Sets *raw_ino to the removed object's raw inode if the kernel holds it
 * (its link count is 0 now: invalidate it once unlocked).  tree_lock held. */
int
shmfs_remove_locked (Shmfs *fs, ShmNode *dir, const char *name, gboolean is_dir, fuse_ino_t *raw_ino)
{
  ShmNode *child = shm_tree_lookup (dir, name);
  int err;

  *raw_ino = 0;
  if (child != NULL && shmfs_kernel_holds_locked (child, TRUE))
    *raw_ino = shmfs_ino (child, TRUE);
  if (child != NULL)
    shm_node_ref (child);
  err = shm_tree_remove (fs->tree, dir, name, is_dir);
  if (child != NULL)
    {
      if (err == 0)
        shmfs_release_if_unreachable_locked (fs, child);
      shm_node_unref (child);
    }
  if (err < 0)
    return err;
  shmfs_inval_forget_entry (fs->inval, shmfs_ino (dir, TRUE), name);
  shmfs_store_remove_locked (fs, dir, name, is_dir);
  return 0;
}

void
shmfs_expired (Shmfs *fs, fuse_ino_t parent_ino, fuse_ino_t child_ino, const char *name,
               fuse_ino_t raw_ino, const char *path, pid_t pid)
{
  /* The daemon removed it: the kernel must forget the name. */
  fuse_lowlevel_notify_delete (fs->se, parent_ino, child_ino, name, strlen (name));
  if (raw_ino != 0)
    shmfs_inval_attr (fs, raw_ino);
  if (fs->verbose && pid > 0)
    fprintf (stderr, "shmfs: removed %s: process %d exited\n", path, (int) pid);
  else if (fs->verbose)
    fprintf (stderr, "shmfs: removed %s: its host stopped renewing its lifetime\n", path);
}
