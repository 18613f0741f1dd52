/* attr.c — what the kernel sees of a node: the attributes of its views,
 * the entries that hand them out, and their invalidation when they change.
 */
#include "config.h"

#include "attr.h"
#include "handles.h"
#include "session.h"

#include <errno.h>
#include <string.h>

void
shmfs_inval_attr (Shmfs *fs, fuse_ino_t ino)
{
  /* A negative offset invalidates attributes only: no page lock is taken,
   * so this is safe inside a handler for another inode. */
  int res = fuse_lowlevel_notify_inval_inode (fs->se, ino, -1, 0);
  if (res < 0 && res != -ENOENT && res != -ENOTCONN && res != -EBADF)
    g_warning ("invalidating attributes of %" G_GUINT64_FORMAT ": %s",
               (guint64) ino, g_strerror (-res));
}

/* Invalidates the attributes of the node's other view, if the kernel has it. */
void
shmfs_inval_twin (Shmfs *fs, ShmNode *node, gboolean raw)
{
  gboolean held;
  fuse_ino_t ino;

  g_mutex_lock (&fs->tree_lock);
  held = shmfs_kernel_holds_locked (node, !raw);
  ino = shmfs_ino (node, !raw);
  g_mutex_unlock (&fs->tree_lock);
  if (held)
    shmfs_inval_attr (fs, ino);
}

void
shmfs_node_typed (Shmfs *fs, ShmNode *node)
{
  shmfs_inval_twin (fs, node, FALSE);
}

/* The value changed: new times, for both views. */
void
shmfs_node_times_changed (Shmfs *fs, ShmNode *node)
{
  g_mutex_lock (&fs->tree_lock);
  shm_node_touch (fs->tree, node, FALSE, TRUE, TRUE);
  g_mutex_unlock (&fs->tree_lock);
  shmfs_inval_twin (fs, node, FALSE);
}

void
shmfs_node_changed (Shmfs *fs, ShmNode *node)
{
  shmfs_node_times_changed (fs, node);
  shmfs_node_wake_pollers (fs, node);
}

static guint64
view_size_locked (Shmfs *fs, ShmNode *node, gboolean raw, guint64 text_size)
{
  if (shm_node_is_dir (node))
    return 4096;
  return raw ? shm_object_get_nbytes (shm_node_get_object (node)) : text_size;
}

void
shmfs_fill_stat_locked (Shmfs *fs, ShmNode *node, gboolean raw, guint64 text_size, struct stat *st)
{
  ShmAttr *a = shm_node_get_attr (node);
  guint64 size = view_size_locked (fs, node, raw, text_size);

  memset (st, 0, sizeof *st);
  st->st_ino = shmfs_ino (node, raw);
  st->st_mode = a->mode;
  st->st_nlink = shm_node_get_nlink (node);
  st->st_uid = a->uid;
  st->st_gid = a->gid;
  st->st_size = (off_t) size;
  st->st_blksize = 4096;
  st->st_blocks = (blkcnt_t) ((size + 511) / 512);
  st->st_atim = a->atime;
  st->st_mtim = a->mtime;
  st->st_ctim = a->ctime;
}

double
shmfs_attr_timeout (Shmfs *fs, ShmNode *node, gboolean raw)
{
  return (!raw && !shm_node_is_dir (node)) ? 0.0 : fs->timeout;
}

/* Fills e for node and counts the lookup; tree_lock held. */
void
shmfs_fill_entry_locked (Shmfs *fs, ShmNode *node, gboolean raw, guint64 text_size,
                   gboolean twin_entry, struct fuse_entry_param *e)
{
  memset (e, 0, sizeof *e);
  e->ino = shmfs_ino (node, raw);
  e->generation = 0;
  e->attr_timeout = shmfs_attr_timeout (fs, node, raw);
  e->entry_timeout = twin_entry ? 0.0 : fs->timeout;
  shmfs_fill_stat_locked (fs, node, raw, text_size, &e->attr);
  shmfs_lookup_inc_locked (node, raw);
}

gboolean
shmfs_is_raw_dir_name (ShmNode *parent, gboolean raw, const char *name)
{
  return !raw && shm_node_get_id (parent) == SHM_TREE_ROOT_ID &&
         strcmp (name, SHMFS_RAW_DIR_NAME) == 0;
}

/* Replies with the entry of node and drops the caller's reference.  A text
 * view's attributes are never cached (shmfs_attr_timeout 0): the kernel asks
 * getattr for its size when it needs it, so the entry does not render the
 * value for a size nobody reads (every open would, for the permission
 * check's lookup). */
void
shmfs_send_entry (Shmfs *fs, fuse_req_t req, const struct fuse_entry_param *e)
{
  if (fuse_reply_entry (req, e) != 0)
    {
      /* The kernel will never forget what it never got. */
      g_mutex_lock (&fs->tree_lock);
      shmfs_forget_locked (fs, e->ino, 1);
      g_mutex_unlock (&fs->tree_lock);
    }
}

void
shmfs_reply_entry (Shmfs *fs, fuse_req_t req, ShmNode *node, gboolean raw, gboolean twin_entry)
{
  struct fuse_entry_param e;

  g_mutex_lock (&fs->tree_lock);
  shmfs_fill_entry_locked (fs, node, raw, 0, twin_entry, &e);
  shm_node_unref (node);
  g_mutex_unlock (&fs->tree_lock);
  shmfs_send_entry (fs, req, &e);
}
/* Clears setuid, and setgid where it means "run as the group" (group
 * execute set), as the kernel does for a write or a chown.  Returns whether
 * the mode changed. */
gboolean
shmfs_kill_suid_locked (ShmAttr *a)
{
  mode_t mode = a->mode & ~S_ISUID;

  if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
    mode &= ~S_ISGID;
  if (mode == a->mode)
    return FALSE;
  a->mode = mode;
  return TRUE;
}
