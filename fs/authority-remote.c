/* authority-remote.c — a store shared with other hosts decides the
 * namespace (-o remote=URL, docs/design/remote.md): every change is made
 * there first, in one step, and the tree then follows the answer.  The
 * tree holds what the kernel knows of, node id = oid, and is brought in
 * step before it answers a lookup, a getattr or a readdir.  No round trip
 * is made under tree_lock.
 */
#include "config.h"

#include "authority.h"
#include "attr.h"
#include "inval.h"
#include "namespace.h"
#include "session.h"
#include "shm-remote.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The node id of ino's node and whether it is a directory; 0 for stale
 * numbers. */
static guint64
id_of (Shmfs *fs, fuse_ino_t ino, gboolean *is_dir)
{
  ShmNode *node;
  gboolean raw;
  guint64 id = 0;

  g_mutex_lock (&fs->tree_lock);
  node = shmfs_resolve_locked (fs, ino, &raw);
  if (node != NULL)
    {
      id = shm_node_get_id (node);
      if (is_dir != NULL)
        *is_dir = shm_node_is_dir (node);
    }
  g_mutex_unlock (&fs->tree_lock);
  return id;
}

/* Types node as the store has it, if it is untyped here. */
static void
follow_type_locked (Shmfs *fs, ShmNode *node, const ShmRemoteEntry *e)
{
  ShmType type;

  if (e->type == NULL || shm_node_is_dir (node) || shm_object_is_typed (shm_node_get_object (node)))
    return;
  if (shm_type_parse (e->type, strlen (e->type), &type) < 0)
    {
      g_warning ("remote: object %" G_GUINT64_FORMAT " has a type this daemon cannot read: %s",
                 e->oid, e->type);
      return;
    }
  shmfs_set_type_locked (fs, node, &type);
  shm_type_clear (&type);
}

static gboolean
collect_child (ShmNode *child, gpointer user_data)
{
  g_ptr_array_add (user_data, child);
  return TRUE;
}

/* The node is gone from the store (or moved where this tree has not
 * looked): unlinked here too.  A directory's nodes below it go with it:
 * the tree frees a directory without looking at its children, which
 * would keep pointing at it.  tree_lock held. */
static void
follow_removal_locked (Shmfs *fs, ShmNode *node)
{
  ShmNode *dir = shm_node_get_parent (node);

  if (dir == NULL)
    return;
  if (shm_node_is_dir (node))
    {
      g_autoptr (GPtrArray) children = g_ptr_array_new ();

      shm_tree_foreach_child (node, 0, collect_child, children);
      for (guint i = 0; i < children->len; i++)
        follow_removal_locked (fs, children->pdata[i]);
    }
  shmfs_inval_forget_entry (fs->inval, shmfs_ino (dir, FALSE), shm_node_get_name (node));
  shmfs_inval_forget_entry (fs->inval, shmfs_ino (dir, TRUE), shm_node_get_name (node));
  shm_node_ref (node);
  shm_tree_detach (fs->tree, node);
  shmfs_release_if_unreachable_locked (fs, node);
  shm_node_unref (node);
}

/* Whether dir is a directory this tree took out (removed, or moved where
 * it has not looked) that the kernel still holds. */
static gboolean
detached (ShmNode *dir)
{
  return shm_node_get_id (dir) != SHM_TREE_ROOT_ID && shm_node_get_parent (dir) == NULL;
}

/* Makes the tree agree with e, a child of dir: the node, made or moved,
 * in *out (not referenced; optional).  tree_lock held. */
static int
follow_entry_locked (Shmfs *fs, ShmNode *dir, const ShmRemoteEntry *e, ShmNode **out)
{
  ShmNode *node, *old, *from;
  gboolean moved;
  int err;

  /* Never below a directory this tree has detached: nothing would take
   * the child out again before the directory is freed. */
  if (detached (dir))
    return -ENOENT;
  /* Another node under that name: gone from here first, the nodes below
   * it too (shm_tree_adopt would only detach it, and might free it). */
  old = shm_tree_lookup (dir, e->name);
  if (old != NULL && shm_node_get_id (old) != e->oid)
    follow_removal_locked (fs, old);
  /* Moved by another host: the kernel's entry at the old place goes
   * (a directory it finds at a second place while it still has the
   * first fails the lookup with ESTALE). */
  if ((node = shm_tree_find_id (fs->tree, e->oid)) != NULL && (from = shm_node_get_parent (node)) != NULL &&
      (from != dir || strcmp (shm_node_get_name (node), e->name) != 0))
    {
      shmfs_inval_forget_entry (fs->inval, shmfs_ino (from, FALSE), shm_node_get_name (node));
      shmfs_inval_forget_entry (fs->inval, shmfs_ino (from, TRUE), shm_node_get_name (node));
    }
  err = shm_tree_adopt (fs->tree, dir, e->name, e->oid, e->is_dir, &e->attr, &node, &moved);
  if (err == -EINVAL && (node = shm_tree_find_id (fs->tree, e->oid)) != NULL &&
      shm_node_is_dir (node))
    {
      /* The tree still has dir below the directory moving into it: moved
       * elsewhere since, in the store.  What is below it on that path is
       * stale here (-ESTALE: reattach dir, then again). */
      ShmNode *below = dir;

      while (below != NULL && shm_node_get_parent (below) != node)
        below = shm_node_get_parent (below);
      if (below != NULL)
        {
          /* dir goes with it: the caller puts it back where it is now
           * and asks again. */
          follow_removal_locked (fs, below);
          err = -ESTALE;
        }
    }
  if (err < 0)
    return err;
  if (shm_node_get_data (node) == NULL)
    shmfs_attach_state (fs, node);
  if (moved)
    shmfs_renumber_twins_locked (node, fs);
  follow_type_locked (fs, node, e);
  g_free (shmfs_node_state (node)->bound_elsewhere);
  shmfs_node_state (node)->bound_elsewhere = g_strdup (e->bound);
  if (out != NULL)
    *out = node;
  return 0;
}

/* The store was wiped: everything the tree knows is gone.  Open files
 * now find their objects stale (ESTALE). */
static void
follow_reset (Shmfs *fs)
{
  g_autoptr (GPtrArray) children = g_ptr_array_new ();
  ShmNode *root;

  g_message ("remote: store was reset: every object of before is gone");
  g_mutex_lock (&fs->tree_lock);
  root = shm_tree_get_root (fs->tree);
  shm_tree_foreach_child (root, 0, collect_child, children);
  for (guint i = 0; i < children->len; i++)
    follow_removal_locked (fs, children->pdata[i]);
  g_mutex_unlock (&fs->tree_lock);
}

/* The root is gone from the store: was it wiped?  Then the tree follows
 * (TRUE: ask again). */
static gboolean
store_was_reset (Shmfs *fs, guint64 dir_id, int err)
{
  gboolean reset = FALSE;

  if (dir_id != SHM_TREE_ROOT_ID || (err != -ENOTDIR && err != -ENOENT))
    return FALSE;
  if (shm_remote_check_store (fs->remote, &reset) == 0 && reset)
    follow_reset (fs);
  return reset;
}

/* Puts the directory id back where the store has it, and its ancestors
 * first, when this tree took it out (another host moved it while the
 * kernel held it here, as a working directory or mid-walk).  Best
 * effort: a directory gone from the store stays out. */
static void
reattach (Shmfs *fs, guint64 id, guint depth)
{
  ShmRemoteEntry e = { 0 };
  ShmNode *node, *dir;

  g_mutex_lock (&fs->tree_lock);
  node = shm_tree_find_id (fs->tree, id);
  g_mutex_unlock (&fs->tree_lock);
  if ((node != NULL && !detached (node)) || depth > 4096)
    return;
  if (shm_remote_getattr (fs->remote, id, &e) == 0 && e.parent != 0 && e.name != NULL)
    {
      reattach (fs, e.parent, depth + 1);
      g_mutex_lock (&fs->tree_lock);
      if ((dir = shm_tree_find_id (fs->tree, e.parent)) != NULL && shm_node_is_dir (dir))
        follow_entry_locked (fs, dir, &e, NULL);
      g_mutex_unlock (&fs->tree_lock);
    }
  shm_remote_entry_clear (&e);
}

static int
remote_lookup (Shmfs *fs, fuse_ino_t parent, const char *name)
{
  ShmRemoteEntry e = { 0 };
  ShmNode *dir, *child;
  gboolean is_dir = FALSE;
  guint64 dir_id = id_of (fs, parent, &is_dir);
  int err;

  if (dir_id == 0 || !is_dir || strlen (name) > SHM_TREE_NAME_MAX ||
      (dir_id == SHM_TREE_ROOT_ID && strcmp (name, SHMFS_RAW_DIR_NAME) == 0))
    return 0;   /* the tree answers these itself */
  reattach (fs, dir_id, 0);
  err = shm_remote_lookup (fs->remote, dir_id, name, &e);
  if (err == -ENOTDIR && store_was_reset (fs, dir_id, err))
    err = shm_remote_lookup (fs->remote, dir_id, name, &e);
  g_mutex_lock (&fs->tree_lock);
  dir = shm_tree_find_id (fs->tree, dir_id);
  if (dir != NULL && err == 0 && (err = follow_entry_locked (fs, dir, &e, NULL)) == -ESTALE)
    {
      /* dir was below a stale place here: put it back, then again. */
      g_mutex_unlock (&fs->tree_lock);
      reattach (fs, dir_id, 0);
      g_mutex_lock (&fs->tree_lock);
      dir = shm_tree_find_id (fs->tree, dir_id);
      err = dir != NULL ? follow_entry_locked (fs, dir, &e, NULL) : -ENOENT;
    }
  else if (dir != NULL && err == -ENOENT)
    {
      if ((child = shm_tree_lookup (dir, name)) != NULL)
        follow_removal_locked (fs, child);
      err = 0;
    }
  else if (dir != NULL && err == -ENOTDIR)
    {
      /* The directory itself is gone. */
      follow_removal_locked (fs, dir);
      err = -ENOENT;
    }
  g_mutex_unlock (&fs->tree_lock);
  shm_remote_entry_clear (&e);
  return err;
}

static int
remote_refresh (Shmfs *fs, fuse_ino_t ino)
{
  ShmRemoteEntry e = { 0 };
  ShmNode *node, *dir;
  guint64 id = id_of (fs, ino, NULL);
  int err;

  if (id == 0)
    return 0;
  err = shm_remote_getattr (fs->remote, id, &e);
  g_mutex_lock (&fs->tree_lock);
  node = shm_tree_find_id (fs->tree, id);
  if (node != NULL && err == 0)
    {
      dir = e.parent != 0 ? shm_tree_find_id (fs->tree, e.parent) : NULL;
      if (dir != NULL && e.name != NULL && !detached (dir))
        err = follow_entry_locked (fs, dir, &e, NULL);
      else
        {
          /* The root, or somewhere the kernel has not looked yet. */
          ShmAttr *a = shm_node_get_attr (node);
          mode_t type = a->mode & S_IFMT;

          *a = e.attr;
          a->mode = type | (e.attr.mode & SHMFS_MODE_BITS);
          follow_type_locked (fs, node, &e);
        }
    }
  else if (node != NULL && err == -ENOENT)
    {
      /* Removed elsewhere: what the kernel holds is an unlinked node. */
      follow_removal_locked (fs, node);
      err = 0;
    }
  g_mutex_unlock (&fs->tree_lock);
  shm_remote_entry_clear (&e);
  return err;
}

static void
clear_entry (gpointer data)
{
  shm_remote_entry_clear (data);
}

static int
remote_list (Shmfs *fs, fuse_ino_t ino)
{
  g_autoptr (GArray) entries = g_array_new (FALSE, TRUE, sizeof (ShmRemoteEntry));
  g_autoptr (GHashTable) listed = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr (GPtrArray) gone = g_ptr_array_new ();
  const guint batch = 512;
  gboolean is_dir = FALSE;
  guint64 dir_id = id_of (fs, ino, &is_dir), after = 0;
  ShmNode *dir;
  int err;

  if (dir_id == 0 || !is_dir)
    return 0;
  reattach (fs, dir_id, 0);
  g_array_set_clear_func (entries, clear_entry);
  for (;;)
    {
      guint before = entries->len;

      if ((err = shm_remote_list (fs->remote, dir_id, after, batch, entries)) < 0 &&
          store_was_reset (fs, dir_id, err))
        err = shm_remote_list (fs->remote, dir_id, after, batch, entries);
      if (err < 0)
        return err == -ENOTDIR ? -ENOENT : err;
      if (entries->len - before < batch)
        break;
      after = g_array_index (entries, ShmRemoteEntry, entries->len - 1).oid;
    }

  g_mutex_lock (&fs->tree_lock);
  if ((dir = shm_tree_find_id (fs->tree, dir_id)) != NULL)
    {
      for (guint i = 0; i < entries->len; i++)
        {
          ShmRemoteEntry *e = &g_array_index (entries, ShmRemoteEntry, i);

          g_hash_table_add (listed, &e->oid);
          follow_entry_locked (fs, dir, e, NULL);
        }
      /* What the tree still has that the store no longer lists. */
      shm_tree_foreach_child (dir, 0, collect_child, gone);
    }
  for (guint i = 0; i < gone->len; i++)
    {
      guint64 id = shm_node_get_id (gone->pdata[i]);

      if (!g_hash_table_contains (listed, &id))
        follow_removal_locked (fs, gone->pdata[i]);
    }
  g_mutex_unlock (&fs->tree_lock);
  return 0;
}

static int
remote_create (Shmfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name, gboolean is_dir,
               mode_t mode, ShmNode **out)
{
  const struct fuse_ctx *ctx = fuse_req_ctx (req);
  ShmRemoteEntry e = { 0 };
  ShmNode *dir, *node = NULL;
  guint64 dir_id;
  gid_t gid;
  int err;

  reattach (fs, id_of (fs, parent, NULL), 0);
  g_mutex_lock (&fs->tree_lock);
  err = shmfs_check_create_locked (fs, parent, name, is_dir, &dir, &mode, &gid, ctx);
  dir_id = err == 0 ? shm_node_get_id (dir) : 0;
  if (err == 0 && detached (dir))
    err = -ENOENT;   /* removed (or somewhere this tree cannot follow) */
  g_mutex_unlock (&fs->tree_lock);
  if (err < 0)
    return err;
  err = shm_remote_create (fs->remote, dir_id, name, is_dir, mode, ctx->uid, gid, &e);
  if (err < 0 && store_was_reset (fs, dir_id, err))
    err = shm_remote_create (fs->remote, dir_id, name, is_dir, mode, ctx->uid, gid, &e);
  if (err < 0)
    return err == -ENOTDIR ? -ENOENT : err;
  g_mutex_lock (&fs->tree_lock);
  if ((dir = shm_tree_find_id (fs->tree, dir_id)) == NULL)
    err = -ENOENT;   /* removed here meanwhile */
  else if ((err = follow_entry_locked (fs, dir, &e, &node)) == 0)
    *out = shm_node_ref (node);
  g_mutex_unlock (&fs->tree_lock);
  shm_remote_entry_clear (&e);
  return err;
}

static int
remote_remove (Shmfs *fs, fuse_ino_t parent, const char *name, gboolean is_dir, fuse_ino_t *raw_ino)
{
  ShmNode *dir, *node;
  guint64 dir_id, oid = 0;
  int err;

  *raw_ino = 0;
  g_mutex_lock (&fs->tree_lock);
  err = shmfs_check_remove_locked (fs, parent, name, is_dir, &dir);
  dir_id = err == 0 ? shm_node_get_id (dir) : 0;
  g_mutex_unlock (&fs->tree_lock);
  if (err < 0)
    return err;
  if ((err = shm_remote_remove (fs->remote, dir_id, name, is_dir, &oid)) < 0)
    return err;
  g_mutex_lock (&fs->tree_lock);
  if ((node = shm_tree_find_id (fs->tree, oid)) != NULL)
    {
      if (shmfs_kernel_holds_locked (node, TRUE))
        *raw_ino = shmfs_ino (node, TRUE);
      follow_removal_locked (fs, node);
    }
  g_mutex_unlock (&fs->tree_lock);
  return 0;
}

/* Moves node (if the tree has it) to name in dir, as the store did. */
static void
follow_move_locked (Shmfs *fs, guint64 dir_id, const char *name, guint64 id)
{
  ShmNode *dir = shm_tree_find_id (fs->tree, dir_id), *node = shm_tree_find_id (fs->tree, id);
  ShmNode *old = dir != NULL ? shm_tree_lookup (dir, name) : NULL;
  ShmRemoteEntry e = { 0 };

  if (old != NULL && old != node)
    follow_removal_locked (fs, old);
  if (node == NULL || dir == NULL)
    return;
  e.oid = id;
  e.name = (char *) name;
  e.is_dir = shm_node_is_dir (node);
  e.attr = *shm_node_get_attr (node);
  follow_entry_locked (fs, dir, &e, NULL);
}

static int
remote_rename (Shmfs *fs, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
               const char *newname, guint flags)
{
  ShmNode *olddir, *newdir, *node;
  guint64 old_id, new_id, moved = 0, replaced = 0;
  int err;

  g_mutex_lock (&fs->tree_lock);
  err = shmfs_check_rename_locked (fs, parent, name, newparent, newname, &olddir, &newdir);
  old_id = err == 0 ? shm_node_get_id (olddir) : 0;
  new_id = err == 0 ? shm_node_get_id (newdir) : 0;
  g_mutex_unlock (&fs->tree_lock);
  if (err < 0)
    return err;
  err = shm_remote_rename (fs->remote, old_id, name, new_id, newname, flags, &moved, &replaced);
  if (err < 0)
    return err;
  g_mutex_lock (&fs->tree_lock);
  if ((flags & RENAME_EXCHANGE) == 0 && replaced != 0 &&
      (node = shm_tree_find_id (fs->tree, replaced)) != NULL)
    follow_removal_locked (fs, node);
  follow_move_locked (fs, new_id, newname, moved);
  if (flags & RENAME_EXCHANGE)
    follow_move_locked (fs, old_id, name, replaced);
  else if ((olddir = shm_tree_find_id (fs->tree, old_id)) != NULL &&
           (node = shm_tree_lookup (olddir, name)) != NULL && shm_node_get_id (node) == moved)
    follow_removal_locked (fs, node);
  g_mutex_unlock (&fs->tree_lock);
  return 0;
}

static int
remote_set_attr (Shmfs *fs, ShmNode *node, const struct stat *attr, int to_set)
{
  ShmRemoteEntry e = { 0 };
  ShmAttr a, before;
  guint64 id;
  guint mask = 0;
  int err;

  g_mutex_lock (&fs->tree_lock);
  before = *shm_node_get_attr (node);
  id = shm_node_get_id (node);
  g_mutex_unlock (&fs->tree_lock);
  /* From the store's attributes, not this tree's: another host may have
   * changed them since the kernel last asked (an fchmod on a file opened
   * before). */
  if ((to_set & ~FUSE_SET_ATTR_SIZE) != 0 && (err = shm_remote_getattr (fs->remote, id, &e)) == 0)
    {
      before.mode = (before.mode & S_IFMT) | (e.attr.mode & SHMFS_MODE_BITS);
      before.uid = e.attr.uid;
      before.gid = e.attr.gid;
    }
  shm_remote_entry_clear (&e);
  a = before;
  g_mutex_lock (&fs->tree_lock);
  shmfs_authority_apply_attr (fs->tree, &a, shm_node_is_dir (node), attr, to_set);
  g_mutex_unlock (&fs->tree_lock);
  /* What changed, and ctime with it; a truncation alone (O_TRUNC) changes
   * nothing the store keeps. */
  if ((to_set & FUSE_SET_ATTR_MODE) || a.mode != before.mode)
    mask |= SHM_REMOTE_ATTR_MODE;
  if (to_set & FUSE_SET_ATTR_UID)
    mask |= SHM_REMOTE_ATTR_UID;
  if (to_set & FUSE_SET_ATTR_GID)
    mask |= SHM_REMOTE_ATTR_GID;
  if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW))
    mask |= SHM_REMOTE_ATTR_ATIME;
  if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))
    mask |= SHM_REMOTE_ATTR_MTIME;
  if (mask == 0)
    return 0;
  mask |= SHM_REMOTE_ATTR_CTIME;
  if ((err = shm_remote_set_attr (fs->remote, id, &a, mask)) < 0)
    return err;
  g_mutex_lock (&fs->tree_lock);
  *shm_node_get_attr (node) = a;
  g_mutex_unlock (&fs->tree_lock);
  return 0;
}

static int
remote_set_type (Shmfs *fs, ShmNode *node, const ShmType *type)
{
  guint64 id;
  int err;

  g_mutex_lock (&fs->tree_lock);
  id = shm_node_get_id (node);
  err = shm_object_is_typed (shm_node_get_object (node)) ? -EPERM : 0;
  g_mutex_unlock (&fs->tree_lock);
  if (err < 0)
    return err;
  if ((err = shm_remote_set_type (fs->remote, id, type, NULL)) < 0)
    {
      /* Typed by another host first: take its type (a text write then
       * goes on with it, as locally). */
      if (err == -EPERM)
        {
          ShmRemoteEntry e = { 0 };

          if (shm_remote_getattr (fs->remote, id, &e) == 0)
            {
              g_mutex_lock (&fs->tree_lock);
              follow_type_locked (fs, node, &e);
              g_mutex_unlock (&fs->tree_lock);
            }
          shm_remote_entry_clear (&e);
        }
      return err;
    }
  g_mutex_lock (&fs->tree_lock);
  err = shmfs_set_type_locked (fs, node, type);
  g_mutex_unlock (&fs->tree_lock);
  return err == -ENOENT ? 0 : err;   /* unlinked here and closed: typed all the same */
}

/* ---- lifetimes -------------------------------------------------------------- */

static int
remote_usage (Shmfs *fs, guint64 *capacity, guint64 *used)
{
  return shm_remote_usage (fs->remote, used, capacity);
}

static int
remote_bind (Shmfs *fs, ShmNode *node, pid_t tgid)
{
  return shm_remote_bind (fs->remote, shm_node_get_id (node), tgid);
}

/* Objects the store removed for their lifetimes: gone here too, and from
 * the kernel's entries; pid: the process that exited, or 0 (a binding no
 * host renewed). */
static void
follow_expired (Shmfs *fs, GArray *removed, pid_t pid)
{
  for (guint i = 0; i < removed->len; i++)
    {
      ShmRemoteRemoved *x = &g_array_index (removed, ShmRemoteRemoved, i);
      g_autofree char *path = NULL;
      fuse_ino_t parent_ino = 0, child_ino = 0, raw_ino = 0;
      ShmNode *node, *dir;

      g_mutex_lock (&fs->tree_lock);
      node = shm_tree_find_id (fs->tree, x->oid);
      dir = shm_tree_find_id (fs->tree, x->dir);
      if (node != NULL && dir != NULL && shm_node_get_parent (node) == dir)
        {
          path = shm_node_dup_path (node);
          parent_ino = shmfs_ino (dir, FALSE);
          child_ino = shmfs_ino (node, FALSE);
          if (shmfs_kernel_holds_locked (node, TRUE))
            raw_ino = shmfs_ino (node, TRUE);
          follow_removal_locked (fs, node);
        }
      g_mutex_unlock (&fs->tree_lock);
      if (path != NULL && x->name != NULL)
        shmfs_expired (fs, parent_ino, child_ino, x->name, raw_ino, path, pid);
    }
}

static void
remote_expire (Shmfs *fs, guint64 node_id, pid_t pid)
{
  g_autoptr (GArray) removed = g_array_new (FALSE, TRUE, sizeof (ShmRemoteRemoved));
  ShmNode *node;
  gboolean bound;

  g_array_set_clear_func (removed, shm_remote_removed_clear);
  g_mutex_lock (&fs->tree_lock);
  node = shm_tree_find_id (fs->tree, node_id);
  bound = node != NULL && shmfs_node_state (node)->bound_pid == pid;
  g_mutex_unlock (&fs->tree_lock);
  /* Not reached: the binding is not renewed any more, and the sweep
   * removes it within the lease. */
  if (bound && shm_remote_expire (fs->remote, node_id, pid, removed) == 0)
    follow_expired (fs, removed, pid);
}

typedef struct {
  GArray *bound;                  /* oids bound here: renewed */
  GArray *kept;                   /* oids unlinked and open here: kept */
} Held;

static void
collect_held (ShmNode *node, gpointer user_data)
{
  Held *held = user_data;
  ShmfsNode *state = shmfs_node_state (node);
  guint64 oid = shm_node_get_id (node);

  if (state == NULL || shm_node_is_dir (node))
    return;
  if (state->bound_pid > 0 && shm_node_get_parent (node) != NULL)
    g_array_append_val (held->bound, oid);
  else if (shm_node_get_parent (node) == NULL && state->handles > 0 &&
           shm_object_is_typed (shm_node_get_object (node)))
    g_array_append_val (held->kept, oid);
}

/* The lifetimes' share of the lease tick: bindings of this host renewed,
 * values of unlinked objects open here kept, bindings nobody renewed
 * swept. */
static void
tend_lifetimes (Shmfs *fs)
{
  g_autoptr (GArray) removed = g_array_new (FALSE, TRUE, sizeof (ShmRemoteRemoved));
  Held held = { g_array_new (FALSE, FALSE, sizeof (guint64)),
                g_array_new (FALSE, FALSE, sizeof (guint64)) };

  g_mutex_lock (&fs->tree_lock);
  shm_tree_foreach_node (fs->tree, collect_held, &held);
  g_mutex_unlock (&fs->tree_lock);
  if (held.bound->len > 0)
    shm_remote_renew (fs->remote, (guint64 *) held.bound->data, held.bound->len);
  for (guint i = 0; i < held.kept->len; i++)
    shm_remote_keep (fs->remote, g_array_index (held.kept, guint64, i));
  g_array_set_clear_func (removed, shm_remote_removed_clear);
  if (shm_remote_sweep (fs->remote, removed) == 0)
    follow_expired (fs, removed, 0);
  g_array_unref (held.bound);
  g_array_unref (held.kept);
}

/* ---- lock leases ---------------------------------------------------------- */

/* The leases this daemon holds, renewed every third of their time, and
 * the objects whose pollers wait for a change. */
typedef struct {
  GMutex      lock;
  GHashTable *leases;             /* "oid:owner" -> Lease* */
  guint       renew_ms;
  GHashTable *watches;            /* &oid -> Watch* */
} RemoteState;

/* How often the versions of polled objects are read besides: a wake-up
 * comes from the change's message (shm_remote_watch); this is the net
 * under it. */
#define WATCH_MS 1000

typedef struct {
  guint64  oid;
  ShmNode *node;                  /* referenced */
  guint64  version;               /* the poller saw this one */
} Watch;

typedef struct {
  guint64  oid;
  guint64  owner;
  pid_t    pid;
  gboolean write;
  gboolean lost;                  /* a renewal failed (logged once) */
} Lease;

static char *
lease_key (guint64 oid, guint64 owner)
{
  return g_strdup_printf ("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, oid, owner);
}

static int
lease_take (gpointer data, guint64 owner, pid_t pid, gboolean write)
{
  ShmNode *node = data;
  Shmfs *fs = shmfs_node_state (node)->fs;
  RemoteState *st = fs->authority_data;
  guint64 oid = shm_node_get_id (node);
  int err = shm_remote_lock (fs->remote, oid, owner, pid, write);

  if (err == 0)
    {
      Lease *l = g_new0 (Lease, 1);

      *l = (Lease) { oid, owner, pid, write, FALSE };
      g_mutex_lock (&st->lock);
      g_hash_table_replace (st->leases, lease_key (oid, owner), l);
      g_mutex_unlock (&st->lock);
    }
  return err;
}

static void
lease_drop (gpointer data, guint64 owner)
{
  ShmNode *node = data;
  Shmfs *fs = shmfs_node_state (node)->fs;
  RemoteState *st = fs->authority_data;
  guint64 oid = shm_node_get_id (node);
  g_autofree char *key = lease_key (oid, owner);
  int err;

  g_mutex_lock (&st->lock);
  g_hash_table_remove (st->leases, key);
  g_mutex_unlock (&st->lock);
  /* Not given back: it ends by itself within the lease time. */
  if ((err = shm_remote_unlock (fs->remote, oid, owner)) < 0)
    g_message ("remote: the lock of object %" G_GUINT64_FORMAT " stays leased until its "
               "lease ends: %s", oid, g_strerror (-err));
}

static void
lease_every (gpointer data, guint ms, GSourceFunc fn, gpointer fn_data, GDestroyNotify destroy)
{
  ShmNode *node = data;

  shmfs_timers_add (shmfs_node_state (node)->fs->timers, ms, fn, fn_data, destroy);
}

static const ShmfsLease remote_lease = {
  .take = lease_take,
  .drop = lease_drop,
  .every = lease_every,
};

static gboolean
renew_leases (gpointer data)
{
  Shmfs *fs = data;
  gboolean reset;
  RemoteState *st = fs->authority_data;
  g_autoptr (GArray) leases = g_array_new (FALSE, FALSE, sizeof (Lease));
  GHashTableIter iter;
  gpointer value;

  g_mutex_lock (&st->lock);
  g_hash_table_iter_init (&iter, st->leases);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_array_append_val (leases, *(Lease *) value);
  g_mutex_unlock (&st->lock);
  for (guint i = 0; i < leases->len; i++)
    {
      Lease *l = &g_array_index (leases, Lease, i);
      int err = shm_remote_renew_lock (fs->remote, l->oid, l->owner, l->pid);
      g_autofree char *key = NULL;
      Lease *held;

      if (err == 0)
        continue;
      /* POSIX has no way to take a lock back: the holder is not told. */
      key = lease_key (l->oid, l->owner);
      g_mutex_lock (&st->lock);
      held = g_hash_table_lookup (st->leases, key);
      if (held != NULL && !held->lost)
        {
          held->lost = TRUE;
          g_message ("remote: lock lease of object %" G_GUINT64_FORMAT " lost: %s", l->oid,
                     g_strerror (-err));
        }
      g_mutex_unlock (&st->lock);
    }
  /* Then, the leases renewed first, the tick of the store's own checks:
   * its clock, whether it is the one the tree follows, lifetimes. */
  shm_remote_sync_clock (fs->remote);
  if (shm_remote_check_store (fs->remote, &reset) == 0 && reset)
    follow_reset (fs);
  tend_lifetimes (fs);
  return G_SOURCE_CONTINUE;
}

/* ---- changes made elsewhere ------------------------------------------------ */

static void
remote_watch (Shmfs *fs, ShmNode *node, guint64 version)
{
  RemoteState *st = fs->authority_data;
  guint64 oid = shm_node_get_id (node);
  Watch *w;

  g_mutex_lock (&st->lock);
  if ((w = g_hash_table_lookup (st->watches, &oid)) != NULL)
    {
      w->version = version;
      g_mutex_unlock (&st->lock);
      return;
    }
  g_mutex_unlock (&st->lock);
  w = g_new0 (Watch, 1);
  w->oid = oid;
  w->version = version;
  g_mutex_lock (&fs->tree_lock);
  w->node = shm_node_ref (node);
  g_mutex_unlock (&fs->tree_lock);
  g_mutex_lock (&st->lock);
  if (g_hash_table_contains (st->watches, &oid))
    {
      /* Armed by another poller meanwhile. */
      g_mutex_unlock (&st->lock);
      shmfs_unref_node (fs, w->node);
      return g_free (w);
    }
  g_hash_table_insert (st->watches, &w->oid, w);
  /* Under the lock, as its end in fire_watch: the subscription follows
   * the table (the subscriber's lock is a leaf). */
  shm_remote_watch (fs->remote, oid, TRUE);
  g_mutex_unlock (&st->lock);
}

/* The watch of oid fired: its pollers are woken, and it is gone (the next
 * poll arms another).  only_from: fire only if it was armed at that
 * version (G_MAXUINT64: whatever it was). */
static void
fire_watch (Shmfs *fs, guint64 oid, guint64 only_from)
{
  RemoteState *st = fs->authority_data;
  Watch *w;

  g_mutex_lock (&st->lock);
  w = g_hash_table_lookup (st->watches, &oid);
  if (w != NULL && (only_from == G_MAXUINT64 || w->version == only_from))
    {
      g_hash_table_steal (st->watches, &oid);
      shm_remote_watch (fs->remote, oid, FALSE);
    }
  else
    w = NULL;
  g_mutex_unlock (&st->lock);
  if (w == NULL)
    return;
  shmfs_node_changed (fs, w->node);
  shmfs_unref_node (fs, w->node);
  g_free (w);
}

static gboolean
check_watches (gpointer data)
{
  Shmfs *fs = data;
  RemoteState *st = fs->authority_data;
  g_autoptr (GArray) watched = g_array_new (FALSE, FALSE, sizeof (Watch));
  GHashTableIter iter;
  gpointer value;

  g_mutex_lock (&st->lock);
  g_hash_table_iter_init (&iter, st->watches);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_array_append_val (watched, *(Watch *) value);
  g_mutex_unlock (&st->lock);
  for (guint i = 0; i < watched->len; i++)
    {
      Watch *seen = &g_array_index (watched, Watch, i);
      guint64 version = 0;
      int err = shm_remote_version (fs->remote, seen->oid, &version);

      if (err == 0 && version == seen->version)
        continue;
      if (err < 0 && err != -ENOENT)
        continue;   /* the store is away: the next round sees */
      /* Unless armed again at a newer version meanwhile. */
      fire_watch (fs, seen->oid, seen->version);
    }
  return G_SOURCE_CONTINUE;
}

/* A change's message, from the subscriber's thread (oid 0: it was away,
 * so every watch is checked). */
static void
heard_change (guint64 oid, gpointer user_data)
{
  Shmfs *fs = user_data;

  if (oid == 0)
    check_watches (fs);
  else
    fire_watch (fs, oid, G_MAXUINT64);
}

static void
remote_start (Shmfs *fs)
{
  RemoteState *st = g_new0 (RemoteState, 1);

  g_mutex_init (&st->lock);
  st->leases = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  st->watches = g_hash_table_new (g_int64_hash, g_int64_equal);
  st->renew_ms = MAX (shm_remote_get_lease_ms (fs->remote) / 3, 1);
  fs->authority_data = st;
  fs->timers = shmfs_timers_new ();
  shmfs_timers_add (fs->timers, st->renew_ms, renew_leases, fs, NULL);
  shmfs_timers_add (fs->timers, WATCH_MS, check_watches, fs, NULL);
  shm_remote_watch_start (fs->remote, heard_change, fs);
}

static void
remote_stop (Shmfs *fs)
{
  RemoteState *st = fs->authority_data;
  GHashTableIter iter;
  gpointer value;

  if (st == NULL)
    return;
  /* Waiting requests are answered (EINTR); then the leases still held
   * are given back at once rather than when they end. */
  g_clear_pointer (&fs->timers, shmfs_timers_free);
  shm_remote_watch_stop (fs->remote);
  g_hash_table_iter_init (&iter, st->leases);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    shm_remote_unlock (fs->remote, ((Lease *) value)->oid, ((Lease *) value)->owner);
  g_hash_table_unref (st->leases);
  g_hash_table_iter_init (&iter, st->watches);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      shmfs_unref_node (fs, ((Watch *) value)->node);
      g_free (value);
    }
  g_hash_table_unref (st->watches);
  g_mutex_clear (&st->lock);
  g_free (st);
  fs->authority_data = NULL;
}

const ShmfsAuthority shmfs_authority_remote = {
  .start = remote_start,
  .stop = remote_stop,
  .lookup = remote_lookup,
  .refresh = remote_refresh,
  .list = remote_list,
  .create = remote_create,
  .remove = remote_remove,
  .rename = remote_rename,
  .set_attr = remote_set_attr,
  .set_type = remote_set_type,
  .lease = &remote_lease,
  .usage = remote_usage,
  .bind = remote_bind,
  .expire = remote_expire,
  .watch = remote_watch,
};
