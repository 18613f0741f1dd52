/* session.c — the daemon's state: node states, inode numbers and their
 * lookup counts, raw twin numbers, invalidations, open handles, pollers,
 * the store mirror, and the namespace changes the ops share.  Locking and
 * numbering: see the design block in ops.c.
 */
#include "config.h"

#include "session.h"
#include "textview.h"
#include "shmfs/ioctl.h"
#include "shm-atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

/* ---- nodes and inode numbers ------------------------------------------ */

/* A raw twin number of a directory that moved: the current one, or one
 * the kernel still holds (retired, with its own lookup count and a node
 * reference). */
typedef struct {
  ShmNode  *node;
  gboolean  retired;
  guint64   nlookup;              /* retired: the kernel's lookups of it */
} ShmfsTwinId;

static void
node_state_free (gpointer data)
{
  ShmfsNode *state = data;

  /* A current number goes with its node; a retired one holds the node. */
  if (state->fs != NULL && state->fs->twin_ids != NULL)
    g_hash_table_remove (state->fs->twin_ids, &state->raw_id);

  /* Every handle, and with it its poll registration, went before. */
  g_warn_if_fail (state->pollers == NULL || state->pollers->len == 0);
  if (state->pollers != NULL)
    g_ptr_array_free (state->pollers, TRUE);
  shmfs_sync_unref (state->sync);
  shmfs_locks_free (state->locks);
  g_free (state);
}

static void
attach_state (Shmfs *fs, ShmNode *node)
{
  ShmfsNode *state = g_new0 (ShmfsNode, 1);

  state->fs = fs;
  state->raw_id = shm_node_get_id (node);
  state->locks = shmfs_locks_new ();
  if (!shm_node_is_dir (node))
    state->sync = shmfs_sync_new (shm_node_get_object (node), 2 * state->raw_id + 1, node);
  shm_node_set_data (node, state, node_state_free);
}

static gboolean
attach_one (ShmNode *child, gpointer user_data)
{
  attach_state (user_data, child);
  if (shm_node_is_dir (child))
    shm_tree_foreach_child (child, 0, attach_one, user_data);
  return TRUE;
}

void
shmfs_attach_states (Shmfs *fs)
{
  ShmNode *root = shm_tree_get_root (fs->tree);

  attach_state (fs, root);
  shm_tree_foreach_child (root, 0, attach_one, fs);
}

static void
twin_id_free (gpointer data)
{
  ShmfsTwinId *t = data;

  if (t->retired)
    shm_node_unref (t->node);
  g_free (t);
}

void
shmfs_twin_ids_init (Shmfs *fs)
{
  fs->twin_ids = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, twin_id_free);
}

void
shmfs_twin_ids_clear (Shmfs *fs)
{
  GHashTableIter iter;
  gpointer value;

  /* At exit, after the tree: its nodes are gone, references or not. */
  g_hash_table_iter_init (&iter, fs->twin_ids);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    ((ShmfsTwinId *) value)->retired = FALSE;
  g_clear_pointer (&fs->twin_ids, g_hash_table_unref);
}

/* Gives the raw view of node a new number; the old one lives on, with its
 * lookup count, while the kernel holds it (see the design comment in ops.c).
 * tree_lock held. */
static void
renumber_raw_locked (Shmfs *fs, ShmNode *node)
{
  ShmfsNode *state = shmfs_node_state (node);
  ShmfsTwinId *t;
  guint64 id;

  t = g_hash_table_lookup (fs->twin_ids, &state->raw_id);
  if (state->nlookup[1] > 0)
    {
      if (t == NULL)
        {
          t = g_new0 (ShmfsTwinId, 1);
          g_hash_table_insert (fs->twin_ids, g_memdup2 (&state->raw_id, sizeof (guint64)), t);
        }
      /* The node's lookup reference covers both views: the retired number
       * takes it over when the main view has none. */
      t->node = state->nlookup[0] > 0 ? shm_node_ref (node) : node;
      t->retired = TRUE;
      t->nlookup = state->nlookup[1];
      state->nlookup[1] = 0;
    }
  else if (t != NULL)
    g_hash_table_remove (fs->twin_ids, &state->raw_id);
  id = state->raw_id = shm_tree_alloc_id (fs->tree);
  t = g_new0 (ShmfsTwinId, 1);
  t->node = node;
  g_hash_table_insert (fs->twin_ids, g_memdup2 (&id, sizeof id), t);
  if (state->sync != NULL)
    shmfs_sync_set_raw_ino (state->sync, 2 * id + 1);
}

/* Gives the raw twins of dir, and of every directory below it, new numbers
 * (see the design comment); tree_lock held. */
gboolean
shmfs_renumber_twins_locked (ShmNode *dir, gpointer user_data)
{
  if (!shm_node_is_dir (dir))
    return TRUE;
  renumber_raw_locked (user_data, dir);
  shm_tree_foreach_child (dir, 0, shmfs_renumber_twins_locked, user_data);
  return TRUE;
}

/* Finds the node behind ino; tree_lock held.  Returns NULL for stale or
 * unknown numbers. */
ShmNode *
shmfs_resolve_locked (Shmfs *fs, fuse_ino_t ino, gboolean *raw)
{
  if (ino == FUSE_ROOT_ID)
    {
      *raw = FALSE;
      return shm_tree_get_root (fs->tree);
    }
  guint64 id = ino / 2;
  ShmfsTwinId *t;
  ShmNode *node;

  if (ino < SHMFS_RAW_DIR_INO)
    return NULL;
  *raw = ino & 1;
  if (*raw && (t = g_hash_table_lookup (fs->twin_ids, &id)) != NULL)
    return t->node;
  node = shm_tree_find_id (fs->tree, id);
  /* A raw twin that was renumbered, the old number forgotten. */
  if (node != NULL && *raw && shmfs_node_state (node)->raw_id != id)
    return NULL;
  return node;
}

/* Whether ino is the old number of a raw twin directory that has moved:
 * the kernel still has it at the old path, where it has no entries (a
 * lookup there must not hand out the current numbers of what is below,
 * which would give a directory two dentries).  tree_lock held. */
gboolean
shmfs_retired_twin_locked (Shmfs *fs, fuse_ino_t ino)
{
  guint64 id = ino / 2;
  ShmfsTwinId *t;

  return (ino & 1) && (t = g_hash_table_lookup (fs->twin_ids, &id)) != NULL && t->retired;
}

/* Drops a reference taken to use node outside tree_lock. */
void
shmfs_unref_node (Shmfs *fs, ShmNode *node)
{
  g_mutex_lock (&fs->tree_lock);
  shm_node_unref (node);
  g_mutex_unlock (&fs->tree_lock);
}

void
shmfs_lookup_inc_locked (ShmNode *node, gboolean raw)
{
  ShmfsNode *state = shmfs_node_state (node);

  if (state->nlookup[0] + state->nlookup[1] == 0)
    shm_node_ref (node);
  state->nlookup[raw]++;
}

void
shmfs_forget_locked (Shmfs *fs, fuse_ino_t ino, guint64 nlookup)
{
  gboolean raw;
  ShmNode *node = shmfs_resolve_locked (fs, ino, &raw);
  guint64 id = ino / 2;
  ShmfsTwinId *t;
  ShmfsNode *state;

  if (node == NULL)
    return;
  if (raw && (t = g_hash_table_lookup (fs->twin_ids, &id)) != NULL && t->retired)
    {
      t->nlookup -= MIN (nlookup, t->nlookup);
      if (t->nlookup == 0)
        {
          gpointer key;

          /* Out of the table first: the node it frees leaves the table too. */
          g_hash_table_steal_extended (fs->twin_ids, &id, &key, NULL);
          g_free (key);
          twin_id_free (t);
        }
      return;
    }
  state = shmfs_node_state (node);
  if (state->nlookup[raw] < nlookup)
    {
      g_warning ("forget of %" G_GUINT64_FORMAT " by %" G_GUINT64_FORMAT
                 " exceeds its lookup count", (guint64) ino, nlookup);
      nlookup = state->nlookup[raw];
    }
  state->nlookup[raw] -= nlookup;
  if (raw && state->nlookup[raw] == 0 && state->sync != NULL)
    shmfs_sync_forget_cache (state->sync);
  if (nlookup > 0 && state->nlookup[0] + state->nlookup[1] == 0)
    shm_node_unref (node);
}

/* Whether the kernel holds the inode; tree_lock held. */
static gboolean
kernel_holds_locked (ShmNode *node, gboolean raw)
{
  if (!raw && shm_node_get_id (node) == SHM_TREE_ROOT_ID)
    return TRUE;   /* the kernel never looks the root up, and never forgets it */
  return shmfs_node_state (node)->nlookup[raw] > 0;
}

/* Frees the bytes of a node that is unlinked and closed: the kernel's
 * lookup references alone cannot reach them.  An unlinked node still open
 * is counted until its last release, which may come a little after the
 * close(2) that caused it.  tree_lock held. */
void
shmfs_release_if_unreachable_locked (Shmfs *fs, ShmNode *node)
{
  ShmfsNode *state = shmfs_node_state (node);

  if (shm_node_get_parent (node) != NULL || shm_node_get_id (node) == SHM_TREE_ROOT_ID)
    return;
  if (state->bound_pid > 0)
    {
      /* Its name is gone: nothing is left for its process to remove. */
      shmfs_lifetimes_unbind (fs->lifetimes, shm_node_get_id (node));
      state->bound_pid = 0;
    }
  if (state->handles > 0)
    {
      if (!state->release_pending)
        fs->releases_pending++;
      state->release_pending = TRUE;
      return;
    }
  shmfs_sync_drop_bytes (state->sync, fs->tree, node);
  if (state->release_pending)
    {
      state->release_pending = FALSE;
      fs->releases_pending--;
      g_cond_broadcast (&fs->released);
    }
}

int
shmfs_set_type_locked (Shmfs *fs, ShmNode *node, const ShmType *type)
{
  gint64 deadline = g_get_monotonic_time () + G_USEC_PER_SEC;
  int err;

  /* Unlinked and closed: its bytes would have nobody to free them (they
   * go at the last close).  A setxattr whose lookup came before the unlink
   * fails as if it had come after it. */
  if (shm_node_get_parent (node) == NULL && shmfs_node_state (node)->handles == 0)
    return -ENOENT;
  /* Past the capacity while unlinked objects still await their release
   * (the kernel sends it after close returns): wait for them, briefly, as
   * tmpfs would have freed them at the close. */
  while ((err = shm_tree_set_type (fs->tree, node, type)) == -ENOSPC &&
         fs->releases_pending > 0 &&
         g_cond_wait_until (&fs->released, &fs->tree_lock, deadline))
    ;
  /* The raw inode the kernel may hold is the untyped view, of size 0 for
   * good: the typed one is another (see the design comment in ops.c). */
  if (err == 0 && shmfs_node_state (node)->nlookup[1] > 0)
    renumber_raw_locked (fs, node);
  return err;
}

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
  held = kernel_holds_locked (node, !raw);
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

/* ---- the persistent store ---------------------------------------------- */

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

/* Mirrors a new node into the store; tree_lock held. */
static int
store_create_locked (Shmfs *fs, ShmNode *dir, const char *name, ShmNode *node)
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

const char *
shmfs_mode_name (Shmfs *fs)
{
  return fs->mode == SHMFS_MODE_PASSTHROUGH ? "passthrough" : "cached";
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
shmfs_make_node (Shmfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
           gboolean is_dir, mode_t mode, ShmNode **out)
{
  const struct fuse_ctx *ctx = fuse_req_ctx (req);
  ShmNode *dir, *node = NULL;
  int err;

  gid_t gid = ctx->gid;

  g_mutex_lock (&fs->tree_lock);
  err = shmfs_resolve_parent_locked (fs, parent, &dir);
  if (err == 0 && shmfs_is_raw_dir_name (dir, FALSE, name))
    err = -EEXIST;
  if (err == 0 && (shm_node_get_attr (dir)->mode & S_ISGID))
    {
      /* A setgid directory gives its group to what is made in it, and its
       * setgid bit to directories (POSIX, tmpfs). */
      gid = shm_node_get_attr (dir)->gid;
      if (is_dir)
        mode |= S_ISGID;
    }
  if (err == 0)
    err = shm_tree_create (fs->tree, dir, name, is_dir, mode & SHMFS_MODE_BITS,
                           ctx->uid, gid, &node);
  if (err == 0 && (err = store_create_locked (fs, dir, name, node)) < 0)
    shm_tree_remove (fs->tree, dir, name, is_dir);
  if (err == 0)
    {
      attach_state (fs, node);
      *out = shm_node_ref (node);
    }
  g_mutex_unlock (&fs->tree_lock);
  return err;
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
  if (child != NULL && kernel_holds_locked (child, TRUE))
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
  shmfs_coherence_forget_entry (fs->coherence, shmfs_ino (dir, TRUE), name);
  if (fs->store != NULL)
    {
      g_autofree char *path = shmfs_child_path_locked (dir, name);
      shmfs_store_result (fs, "remove", path, shm_store_remove (fs->store, path, is_dir));
    }
  return 0;
}

/* ---- files ------------------------------------------------------------- */

ShmfsHandle *
shmfs_handle_new_locked (Shmfs *fs, ShmNode *node, gboolean raw, int flags)
{
  ShmfsHandle *h = g_new0 (ShmfsHandle, 1);

  g_hash_table_add (fs->handles, h);
  shmfs_node_state (node)->handles++;

  h->node = shm_node_ref (node);
  h->raw = raw;
  h->writer = (flags & O_ACCMODE) != O_RDONLY;
  g_mutex_init (&h->lock);
  return h;
}

/* Drops the poll registration of an open file that goes away. */
static void
forget_poll (Shmfs *fs, ShmfsHandle *h)
{
  struct fuse_pollhandle *ph;

  g_mutex_lock (&fs->poll_lock);
  ph = g_steal_pointer (&h->ph);
  if (ph != NULL)
    g_ptr_array_remove_fast (shmfs_node_state (h->node)->pollers, h);
  g_mutex_unlock (&fs->poll_lock);
  if (ph != NULL)
    fuse_pollhandle_destroy (ph);
}

static void
handle_destroy (ShmfsHandle *h)
{
  shmfs_textview_snapshot_free (h->snapshot);
  shm_textwrite_free (h->textwrite);
  g_mutex_clear (&h->lock);
  g_free (h);
}

void
shmfs_handle_free (Shmfs *fs, fuse_req_t req, ShmfsHandle *h)
{
  ShmfsSync *sync = shmfs_node_state (h->node)->sync;

  forget_poll (fs, h);
  if (h->backing)
    shmfs_sync_backing_release (fs->coherence, sync, req);
  else if (h->counted_writer)
    shmfs_sync_writer_close (sync);
  g_mutex_lock (&fs->tree_lock);
  g_hash_table_remove (fs->handles, h);
  shmfs_node_state (h->node)->handles--;
  shmfs_release_if_unreachable_locked (fs, h->node);
  shm_node_unref (h->node);
  g_mutex_unlock (&fs->tree_lock);
  handle_destroy (h);
}

void
shmfs_free_handles (Shmfs *fs)
{
  GHashTableIter iter;
  gpointer key;

  g_mutex_lock (&fs->tree_lock);
  g_hash_table_iter_init (&iter, fs->handles);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      g_hash_table_iter_remove (&iter);
      forget_poll (fs, key);
      handle_destroy (key);   /* its node reference goes with the tree */
    }
  g_mutex_unlock (&fs->tree_lock);
}

/* Says why an object could not get the file descriptor it needs. */
void
shmfs_log_fd_shortage (Shmfs *fs, ShmNode *node, int err)
{
  if (err == -EMFILE || err == -ENFILE)
    shmfs_log_rejected (fs, node, err, "no file descriptor left for another object "
                        "(each typed or passed-through one holds one; raise RLIMIT_NOFILE)");
}

ShmfsHandle *
shmfs_handle_of (struct fuse_file_info *fi)
{
  return (ShmfsHandle *) (uintptr_t) fi->fh;
}

/* ---- atomic operations and change notification ------------------------- */

/* Wakes the pollers of the node's text view (the value changed). */
void
shmfs_node_wake_pollers (Shmfs *fs, ShmNode *node)
{
  ShmfsNode *state = shmfs_node_state (node);
  GPtrArray *pollers;

  g_mutex_lock (&fs->poll_lock);
  pollers = state->pollers;
  state->pollers = NULL;
  /* Take each handle's registration: the handles may go once unlocked. */
  for (guint i = 0; pollers != NULL && i < pollers->len; i++)
    {
      ShmfsHandle *h = pollers->pdata[i];
      pollers->pdata[i] = g_steal_pointer (&h->ph);
    }
  g_mutex_unlock (&fs->poll_lock);
  if (pollers == NULL)
    return;
  for (guint i = 0; i < pollers->len; i++)
    {
      fuse_lowlevel_notify_poll (pollers->pdata[i]);
      fuse_pollhandle_destroy (pollers->pdata[i]);
    }
  g_ptr_array_unref (pollers);
}
