/* ops-namespace.c — lookup, forget, attributes, and the namespace
 * changes: mkdir, mknod, symlink, link, unlink, rmdir, rename.
 */
#include "config.h"

#include "ops.h"
#include "attr.h"
#include "inval.h"
#include "log.h"
#include "namespace.h"
#include "session.h"
#include "store-mirror.h"
#include "textview.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void
shmfs_lookup (fuse_req_t req, fuse_ino_t parent, const char *name)
{
  Shmfs *fs = shmfs_from_req (req);
  struct fuse_entry_param e;
  ShmNode *dir, *child;
  gboolean raw;

  g_mutex_lock (&fs->tree_lock);
  dir = shmfs_resolve_locked (fs, parent, &raw);
  if (dir == NULL || !shm_node_is_dir (dir))
    {
      g_mutex_unlock (&fs->tree_lock);
      return (void) fuse_reply_err (req, dir == NULL ? ESTALE : ENOTDIR);
    }
  if (strlen (name) > SHM_TREE_NAME_MAX)
    {
      g_mutex_unlock (&fs->tree_lock);
      return (void) fuse_reply_err (req, ENAMETOOLONG);
    }
  if (shmfs_retired_twin_locked (fs, parent))
    {
      g_mutex_unlock (&fs->tree_lock);
      return (void) fuse_reply_err (req, ENOENT);
    }
  child = shmfs_is_raw_dir_name (dir, raw, name) ? dir : shm_tree_lookup (dir, name);
  /* Filled in the section that found it: a rename in between would
   * renumber a twin directory, and this name would get its new number. */
  if (child != NULL)
    shmfs_fill_entry_locked (fs, child, raw || child == dir, 0, raw, &e);
  g_mutex_unlock (&fs->tree_lock);
  if (child == NULL)
    return (void) fuse_reply_err (req, ENOENT);
  shmfs_send_entry (fs, req, &e);
}

void
shmfs_forget (fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
  Shmfs *fs = shmfs_from_req (req);

  g_mutex_lock (&fs->tree_lock);
  shmfs_forget_locked (fs, ino, nlookup);
  g_mutex_unlock (&fs->tree_lock);
  fuse_reply_none (req);
}

void
shmfs_forget_multi (fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
  Shmfs *fs = shmfs_from_req (req);

  g_mutex_lock (&fs->tree_lock);
  for (size_t i = 0; i < count; i++)
    shmfs_forget_locked (fs, forgets[i].ino, forgets[i].nlookup);
  g_mutex_unlock (&fs->tree_lock);
  fuse_reply_none (req);
}

void
shmfs_getattr (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
  gboolean raw;
  guint64 text_size;
  struct stat st;

  g_mutex_lock (&fs->tree_lock);
  node = shmfs_resolve_locked (fs, ino, &raw);
  if (node == NULL)
    {
      g_mutex_unlock (&fs->tree_lock);
      return (void) fuse_reply_err (req, ESTALE);
    }
  shm_node_ref (node);
  g_mutex_unlock (&fs->tree_lock);

  text_size = shmfs_textview_size_of (fs, node, raw);
  g_mutex_lock (&fs->tree_lock);
  shmfs_fill_stat_locked (fs, node, raw, text_size, &st);
  if (raw && st.st_ino != ino && !shm_node_is_dir (node))
    {
      /* The raw view of the object from before it was typed: empty. */
      st.st_ino = ino;
      st.st_size = st.st_blocks = 0;
    }
  shm_node_unref (node);
  g_mutex_unlock (&fs->tree_lock);
  fuse_reply_attr (req, &st, shmfs_attr_timeout (fs, node, raw));
}

/* Checks a size change: the bytes of an object never grow or shrink.
 * Truncating to 0 (what O_TRUNC does) or to the current size is accepted
 * and changes nothing. */
static int
check_size_locked (ShmNode *node, gboolean raw, off_t size)
{
  guint64 nbytes;

  if (shm_node_is_dir (node))
    return -EISDIR;
  nbytes = shm_object_get_nbytes (shm_node_get_object (node));
  if (size == 0 || (raw && (guint64) size == nbytes))
    return 0;
  return -EINVAL;
}

static void
set_time (ShmTree *tree, struct timespec *t, const struct timespec *value, gboolean now)
{
  if (now)
    shm_tree_now (tree, t);
  else
    *t = *value;
}

void
shmfs_setattr (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
               struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
  ShmAttr *a;
  gboolean raw;
  int err = 0;

  g_mutex_lock (&fs->tree_lock);
  node = shmfs_resolve_locked (fs, ino, &raw);
  if (node == NULL)
    err = -ESTALE;
  else if (to_set & FUSE_SET_ATTR_SIZE)
    err = check_size_locked (node, raw, attr->st_size);
  if (err < 0)
    {
      g_mutex_unlock (&fs->tree_lock);
      if (node != NULL)
        {
          shm_node_ref (node);
          shmfs_log_rejected (fs, node, err, "size %" G_GINT64_FORMAT " (the size of an object is fixed by its type)",
                              (gint64) attr->st_size);
          shmfs_unref_node (fs, node);
        }
      return (void) fuse_reply_err (req, -err);
    }

  a = shm_node_get_attr (node);
  if (to_set & FUSE_SET_ATTR_MODE)
    a->mode = (a->mode & S_IFMT) | (attr->st_mode & SHMFS_MODE_BITS);
  /* The kernel leaves clearing setuid/setgid to us (killpriv v2): at a
   * change of owner, as Linux does, and where it says so (a truncation by
   * a caller without CAP_FSETID). */
  if (((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) && !shm_node_is_dir (node)) ||
      (to_set & (FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID)))
    shmfs_kill_suid_locked (a);
  if (to_set & FUSE_SET_ATTR_UID)
    a->uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID)
    a->gid = attr->st_gid;
  if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW))
    set_time (fs->tree, &a->atime, &attr->st_atim, to_set & FUSE_SET_ATTR_ATIME_NOW);
  if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))
    set_time (fs->tree, &a->mtime, &attr->st_mtim, to_set & FUSE_SET_ATTR_MTIME_NOW);
  shm_node_touch (fs->tree, node, FALSE, FALSE, TRUE);
  shmfs_store_set_attr_locked (fs, node);
  shm_node_ref (node);
  g_mutex_unlock (&fs->tree_lock);

  shmfs_inval_twin (fs, node, raw);
  shmfs_getattr (req, ino, fi);
  shmfs_unref_node (fs, node);
}

void
shmfs_mkdir (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
  int err = shmfs_make_node (fs, req, parent, name, TRUE, mode, &node);

  if (err < 0)
    return (void) fuse_reply_err (req, -err);
  shmfs_reply_entry (fs, req, node, FALSE, FALSE);
}

void
shmfs_mknod (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
  int err;

  if (!S_ISREG (mode))
    return (void) fuse_reply_err (req, EPERM);  /* objects and directories only */
  if ((err = shmfs_make_node (fs, req, parent, name, FALSE, mode, &node)) < 0)
    return (void) fuse_reply_err (req, -err);
  shmfs_reply_entry (fs, req, node, FALSE, FALSE);
}

void
shmfs_symlink (fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
  fuse_reply_err (req, EPERM);
}

void
shmfs_link (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
  fuse_reply_err (req, EPERM);
}

static void
remove_entry (fuse_req_t req, fuse_ino_t parent, const char *name, gboolean is_dir)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *dir;
  fuse_ino_t raw_ino = 0;
  int err;

  g_mutex_lock (&fs->tree_lock);
  err = shmfs_resolve_parent_locked (fs, parent, &dir);
  if (err == 0 && shmfs_is_raw_dir_name (dir, FALSE, name))
    err = is_dir ? -EBUSY : -EISDIR;   /* like a mount point: it stays */
  if (err == 0)
    err = shmfs_remove_locked (fs, dir, name, is_dir, &raw_ino);
  g_mutex_unlock (&fs->tree_lock);
  if (raw_ino != 0)
    shmfs_inval_attr (fs, raw_ino);
  fuse_reply_err (req, -err);
}

void
shmfs_unlink (fuse_req_t req, fuse_ino_t parent, const char *name)
{
  remove_entry (req, parent, name, FALSE);
}

void
shmfs_rmdir (fuse_req_t req, fuse_ino_t parent, const char *name)
{
  remove_entry (req, parent, name, TRUE);
}

void
shmfs_rename (fuse_req_t req, fuse_ino_t parent, const char *name,
              fuse_ino_t newparent, const char *newname, unsigned int flags)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *olddir, *newdir, *replaced = NULL;
  int err;

  g_mutex_lock (&fs->tree_lock);
  err = shmfs_resolve_parent_locked (fs, parent, &olddir);
  if (err == 0)
    err = shmfs_resolve_parent_locked (fs, newparent, &newdir);
  if (err == 0 && shmfs_is_raw_dir_name (olddir, FALSE, name))
    err = -EBUSY;   /* like a mount point: it stays */
  else if (err == 0 && shmfs_is_raw_dir_name (newdir, FALSE, newname))
    err = -EEXIST;
  if (err == 0)
    err = shm_tree_rename (fs->tree, olddir, name, newdir, newname, flags, &replaced);
  if (err == 0)
    {
      /* What moved: newname now, and name too after an exchange. */
      shmfs_renumber_twins_locked (shm_tree_lookup (newdir, newname), fs);
      if (flags & RENAME_EXCHANGE)
        shmfs_renumber_twins_locked (shm_tree_lookup (olddir, name), fs);
    }
  if (replaced != NULL)
    {
      shmfs_release_if_unreachable_locked (fs, replaced);
      shm_node_unref (replaced);
    }
  if (err == 0)
    {
      shmfs_inval_forget_entry (fs->inval, shmfs_ino (olddir, TRUE), name);
      shmfs_inval_forget_entry (fs->inval, shmfs_ino (newdir, TRUE), newname);
    }
  if (err == 0 && fs->store != NULL)
    {
      g_autofree char *from = shmfs_child_path_locked (olddir, name);
      g_autofree char *to = shmfs_child_path_locked (newdir, newname);
      shmfs_store_result (fs, "rename", from, shm_store_rename (fs->store, from, to, flags));
    }
  g_mutex_unlock (&fs->tree_lock);
  fuse_reply_err (req, -err);
}
