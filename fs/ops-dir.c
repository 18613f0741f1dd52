/* ops-dir.c — reading directories (readdir, readdirplus).
 */
#include "config.h"

#include "ops.h"
#include "attr.h"
#include "authority.h"
#include "session.h"

#include <errno.h>
#include <string.h>

/* ---- directories ------------------------------------------------------- */

/* Directory offsets: 1 after ".", 2 after "..", id+2 after a child. */
typedef struct {
  Shmfs   *fs;
  fuse_req_t req;
  gboolean raw;
  gboolean plus;
  char    *buf;
  size_t   size, pos;
} DirFill;

static gboolean
add_dirent (DirFill *d, const char *name, ShmNode *node, gboolean raw, off_t next, gboolean count)
{
  size_t need;

  if (d->plus)
    {
      struct fuse_entry_param e;

      memset (&e, 0, sizeof e);
      e.ino = shmfs_ino (node, raw);
      e.attr_timeout = shmfs_attr_timeout (d->fs, node, raw);
      e.entry_timeout = d->raw ? 0.0 : d->fs->timeout;
      /* A text size costs a rendering: readdirplus leaves it to getattr
       * (the text view has no attribute cache time). */
      shmfs_fill_stat_locked (d->fs, node, raw, 0, &e.attr);
      /* The kernel takes no lookup for "." and "..": count = FALSE. */
      need = fuse_add_direntry_plus (d->req, d->buf + d->pos, d->size - d->pos, name, &e, next);
      if (need > d->size - d->pos)
        return FALSE;
      if (count)
        shmfs_lookup_inc_locked (node, raw);
    }
  else
    {
      struct stat st = { .st_ino = shmfs_ino (node, raw),
                         .st_mode = shm_node_get_attr (node)->mode };

      need = fuse_add_direntry (d->req, d->buf + d->pos, d->size - d->pos, name, &st, next);
      if (need > d->size - d->pos)
        return FALSE;
    }
  d->pos += need;
  return TRUE;
}

static gboolean
add_child (ShmNode *child, gpointer user_data)
{
  DirFill *d = user_data;

  return add_dirent (d, shm_node_get_name (child), child, d->raw,
                     (off_t) shm_node_get_id (child) + 2, TRUE);
}

static void
read_directory (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, gboolean plus)
{
  Shmfs *fs = shmfs_from_req (req);
  DirFill d = { fs, req, FALSE, plus, NULL, size, 0 };
  ShmNode *dir, *parent;
  int err;

  /* The children as they are now, at the start of a listing; later calls
   * continue from the offsets, which stay valid. */
  if (off == 0 && fs->authority->list != NULL && (err = fs->authority->list (fs, ino)) < 0)
    return (void) fuse_reply_err (req, -err);
  g_mutex_lock (&fs->tree_lock);
  dir = shmfs_resolve_locked (fs, ino, &d.raw);
  if (dir == NULL || !shm_node_is_dir (dir))
    {
      g_mutex_unlock (&fs->tree_lock);
      return (void) fuse_reply_err (req, dir == NULL ? ESTALE : ENOTDIR);
    }
  d.buf = g_malloc (size);
  parent = shm_node_get_parent (dir);
  if (parent == NULL)
    parent = dir;
  /* The .raw directory's parent is the root's main view. */
  if (off < 1 && !add_dirent (&d, ".", dir, d.raw, 1, FALSE))
    goto out;
  if (off < 2 && !add_dirent (&d, "..", parent,
                              d.raw && shm_node_get_id (dir) != SHM_TREE_ROOT_ID, 2, FALSE))
    goto out;
  if (!shmfs_retired_twin_locked (fs, ino))
    shm_tree_foreach_child (dir, off < 2 ? 0 : (guint64) off - 2, add_child, &d);
out:
  g_mutex_unlock (&fs->tree_lock);
  fuse_reply_buf (req, d.buf, d.pos);
  g_free (d.buf);
}

void
shmfs_readdir (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
  read_directory (req, ino, size, off, FALSE);
}

void
shmfs_readdirplus (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
  read_directory (req, ino, size, off, TRUE);
}
