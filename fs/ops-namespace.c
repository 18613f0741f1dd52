/* ops-namespace.c — lookup, forget, attributes, and the namespace
 * changes: mkdir, mknod, symlink, link, unlink, rmdir, rename.
 */
#include "config.h"

#include "ops.h"
#include "attr.h"
#include "authority.h"
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
  int err;

  if (fs->authority->lookup != NULL && (err = fs->authority->lookup (fs, parent, name)) < 0)
    return (void) fuse_reply_err (req, -err);
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
  int err;

  if (fs->authority->refresh != NULL && (err = fs->authority->refresh (fs, ino)) < 0)
    return (void) fuse_reply_err (req, -err);
  g_mutex_lock (&fs->tree_lock);
  node = shmfs_resolve_locked (fs, ino, &raw);
  if (node == NULL)
    {
      g_mutex_unlock (&fs->tree_lock);
      return (void) fuse_reply_err (req, ESTALE);
    }
  shm_node_ref (node);
  g_mutex_unlock (&fs->tree_lock);

  if ((err = shmfs_textview_size_of (fs, node, raw, &text_size)) < 0)
    {
      shmfs_unref_node (fs, node);
      return (void) fuse_reply_err (req, -err);
    }
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

void
shmfs_setattr (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
               struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
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

  shm_node_ref (node);
  g_mutex_unlock (&fs->tree_lock);

  if ((err = fs->authority->set_attr (fs, node, attr, to_set)) < 0)
    {
      shmfs_unref_node (fs, node);
      return (void) fuse_reply_err (req, -err);
    }
  shmfs_inval_twin (fs, node, raw);
  shmfs_getattr (req, ino, fi);
  shmfs_unref_node (fs, node);
}

void
shmfs_mkdir (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
  int err = fs->authority->create (fs, req, parent, name, TRUE, mode, &node);

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
  if ((err = fs->authority->create (fs, req, parent, name, FALSE, mode, &node)) < 0)
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
  fuse_ino_t raw_ino = 0;
  int err = fs->authority->remove (fs, parent, name, is_dir, &raw_ino);

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

  fuse_reply_err (req, -fs->authority->rename (fs, parent, name, newparent, newname, flags));
}
