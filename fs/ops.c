/* ops.c — the low-level operations of shmfs.
 *
 * Inode ownership model
 * ---------------------
 * Every ShmNode (directory or object) has two inode numbers: 2*id for its
 * main view and 2*id+1 for its raw twin under /.raw; the root's main view
 * is FUSE_ROOT_ID and its twin is the /.raw directory itself.  Node ids are
 * never reused, so inode numbers need no generation.
 *
 * A node holds one tree reference while either view has a kernel lookup
 * count (ShmfsNode.nlookup, both counts under tree_lock), and each open file
 * holds one more; an unlinked node lives on until FORGET and RELEASE have
 * dropped them all, which is what keeps an unlinked object's memfd alive
 * for the processes that still have it open or mapped.
 *
 * A directory has one dentry at a time, so when a directory moves in the
 * main tree its raw twin would be found under the new name while the
 * kernel still has it under the old one, and a lookup that races any
 * rename then fails with ESTALE (the kernel cannot move the old alias
 * without the rename lock).  So the raw twins of a directory that moves,
 * and of the directories below it, get new numbers (ShmfsNode.raw_id,
 * fresh ids from the tree's counter): the new names are new inodes, and
 * the old numbers live on in Shmfs.twin_ids, with their lookup counts,
 * until the kernel forgets them.
 *
 * Atomic operations in cached mode are CPU atomics on the kernel's page of
 * the element, as in passthrough mode they are on the memfd: a helper
 * process maps it through the mount (rawclient.c).  Done on the memfd and
 * stored into the page afterwards, they undid any store that came between.
 *
 * Caching: main-tree entries are cached (the kernel keeps its own dcache
 * right for the changes made through it); entries under /.raw get no cache
 * time, so a rename or unlink in the main tree shows there at once.  The
 * text view is direct I/O with no attribute cache (its size follows the
 * value).  The raw view keeps its page cache (see coherence.c) and long
 * attributes, which the daemon invalidates when it changes them.
 *
 * Locking: tree_lock guards the namespace, attributes and lookup counts and
 * is never held while replying or notifying.  Object bytes are guarded by
 * the per-object locks of coherence.c; text handles by their own lock.
 */
#include "config.h"

#include "shmfs.h"
#include "shmfs-ioctl.h"
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

#define XATTR_PREFIX "user.shmfs."
/* Permission bits an object or directory may have, as on tmpfs: setuid
 * and setgid included (the mount is nosuid and nothing in it runs; a setgid
 * directory gives its group to new entries). */
#define SHMFS_MODE_BITS 07777

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
    state->sync = shmfs_sync_new (shm_node_get_object (node), shmfs_ino (node, TRUE), node);
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

/* Gives the raw twins of dir, and of every directory below it, new numbers
 * (see the design comment); tree_lock held. */
static gboolean
renumber_twins_locked (ShmNode *dir, gpointer user_data)
{
  ShmfsNode *state = shmfs_node_state (dir);
  Shmfs *fs = user_data;
  ShmfsTwinId *t;
  guint64 id;

  if (!shm_node_is_dir (dir))
    return TRUE;
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
      t->node = state->nlookup[0] > 0 ? shm_node_ref (dir) : dir;
      t->retired = TRUE;
      t->nlookup = state->nlookup[1];
      state->nlookup[1] = 0;
    }
  else if (t != NULL)
    g_hash_table_remove (fs->twin_ids, &state->raw_id);
  id = state->raw_id = shm_tree_alloc_id (fs->tree);
  t = g_new0 (ShmfsTwinId, 1);
  t->node = dir;
  g_hash_table_insert (fs->twin_ids, g_memdup2 (&id, sizeof id), t);
  shm_tree_foreach_child (dir, 0, renumber_twins_locked, fs);
  return TRUE;
}

/* Finds the node behind ino; tree_lock held.  Returns NULL for stale or
 * unknown numbers. */
static ShmNode *
resolve_locked (Shmfs *fs, fuse_ino_t ino, gboolean *raw)
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
  /* A directory whose raw twin was renumbered, the old number forgotten. */
  if (node != NULL && *raw && shm_node_is_dir (node) && shmfs_node_state (node)->raw_id != id)
    return NULL;
  return node;
}

/* Whether ino is the old number of a raw twin directory that has moved:
 * the kernel still has it at the old path, where it has no entries (a
 * lookup there must not hand out the current numbers of what is below,
 * which would give a directory two dentries).  tree_lock held. */
static gboolean
retired_twin_locked (Shmfs *fs, fuse_ino_t ino)
{
  guint64 id = ino / 2;
  ShmfsTwinId *t;

  return (ino & 1) && (t = g_hash_table_lookup (fs->twin_ids, &id)) != NULL && t->retired;
}

/* Drops a reference taken to use node outside tree_lock. */
static void
unref_node (Shmfs *fs, ShmNode *node)
{
  g_mutex_lock (&fs->tree_lock);
  shm_node_unref (node);
  g_mutex_unlock (&fs->tree_lock);
}

static void
lookup_inc_locked (ShmNode *node, gboolean raw)
{
  ShmfsNode *state = shmfs_node_state (node);

  if (state->nlookup[0] + state->nlookup[1] == 0)
    shm_node_ref (node);
  state->nlookup[raw]++;
}

static void
forget_locked (Shmfs *fs, fuse_ino_t ino, guint64 nlookup)
{
  gboolean raw;
  ShmNode *node = resolve_locked (fs, ino, &raw);
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
static void
release_if_unreachable_locked (Shmfs *fs, ShmNode *node)
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
  return err;
}

static void
inval_attr (Shmfs *fs, fuse_ino_t ino)
{
  /* A negative offset invalidates attributes only: no page lock is taken,
   * so this is safe inside a handler for another inode. */
  int res = fuse_lowlevel_notify_inval_inode (fs->se, ino, -1, 0);
  if (res < 0 && res != -ENOENT && res != -ENOTCONN && res != -EBADF)
    g_warning ("invalidating attributes of %" G_GUINT64_FORMAT ": %s",
               (guint64) ino, g_strerror (-res));
}

/* Invalidates the attributes of the node's other view, if the kernel has it. */
static void
inval_twin (Shmfs *fs, ShmNode *node, gboolean raw)
{
  gboolean held;
  fuse_ino_t ino;

  g_mutex_lock (&fs->tree_lock);
  held = kernel_holds_locked (node, !raw);
  ino = shmfs_ino (node, !raw);
  g_mutex_unlock (&fs->tree_lock);
  if (held)
    inval_attr (fs, ino);
}

void
shmfs_node_typed (Shmfs *fs, ShmNode *node)
{
  inval_twin (fs, node, FALSE);
}

/* The value changed: new times, for both views. */
static void
node_times_changed (Shmfs *fs, ShmNode *node)
{
  g_mutex_lock (&fs->tree_lock);
  shm_node_touch (fs->tree, node, FALSE, TRUE, TRUE);
  g_mutex_unlock (&fs->tree_lock);
  inval_twin (fs, node, FALSE);
}

void
shmfs_node_changed (Shmfs *fs, ShmNode *node)
{
  node_times_changed (fs, node);
  shmfs_node_wake_pollers (fs, node);
}

static guint64
view_size_locked (Shmfs *fs, ShmNode *node, gboolean raw, guint64 text_size)
{
  if (shm_node_is_dir (node))
    return 4096;
  return raw ? shm_object_get_nbytes (shm_node_get_object (node)) : text_size;
}

static void
fill_stat_locked (Shmfs *fs, ShmNode *node, gboolean raw, guint64 text_size, struct stat *st)
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

/* The text size of an object's main view, computed outside tree_lock. */
static guint64
text_size_of (Shmfs *fs, ShmNode *node, gboolean raw)
{
  if (raw || shm_node_is_dir (node))
    return 0;
  return shmfs_text_size (fs, node);
}

static double
attr_timeout (Shmfs *fs, ShmNode *node, gboolean raw)
{
  return (!raw && !shm_node_is_dir (node)) ? 0.0 : fs->timeout;
}

/* Fills e for node and counts the lookup; tree_lock held. */
static void
fill_entry_locked (Shmfs *fs, ShmNode *node, gboolean raw, guint64 text_size,
                   gboolean twin_entry, struct fuse_entry_param *e)
{
  memset (e, 0, sizeof *e);
  e->ino = shmfs_ino (node, raw);
  e->generation = 0;
  e->attr_timeout = attr_timeout (fs, node, raw);
  e->entry_timeout = twin_entry ? 0.0 : fs->timeout;
  fill_stat_locked (fs, node, raw, text_size, &e->attr);
  lookup_inc_locked (node, raw);
}

static gboolean
is_raw_dir_name (ShmNode *parent, gboolean raw, const char *name)
{
  return !raw && shm_node_get_id (parent) == SHM_TREE_ROOT_ID &&
         strcmp (name, SHMFS_RAW_DIR_NAME) == 0;
}

/* Replies with the entry of node and drops the caller's reference.  A text
 * view's attributes are never cached (attr_timeout 0): the kernel asks
 * getattr for its size when it needs it, so the entry does not render the
 * value for a size nobody reads (every open would, for the permission
 * check's lookup). */
static void
send_entry (Shmfs *fs, fuse_req_t req, const struct fuse_entry_param *e)
{
  if (fuse_reply_entry (req, e) != 0)
    {
      /* The kernel will never forget what it never got. */
      g_mutex_lock (&fs->tree_lock);
      forget_locked (fs, e->ino, 1);
      g_mutex_unlock (&fs->tree_lock);
    }
}

static void
reply_entry (Shmfs *fs, fuse_req_t req, ShmNode *node, gboolean raw, gboolean twin_entry)
{
  struct fuse_entry_param e;

  g_mutex_lock (&fs->tree_lock);
  fill_entry_locked (fs, node, raw, 0, twin_entry, &e);
  shm_node_unref (node);
  g_mutex_unlock (&fs->tree_lock);
  send_entry (fs, req, &e);
}

/* ---- the persistent store ---------------------------------------------- */

/* The store path of name in dir; tree_lock held.  g_free() it. */
static char *
child_path_locked (ShmNode *dir, const char *name)
{
  g_autofree char *dir_path = shm_node_dup_path (dir);

  return *dir_path ? g_strconcat (dir_path, "/", name, NULL) : g_strdup (name);
}

static int
store_result (Shmfs *fs, const char *what, const char *path, int err)
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
  path = child_path_locked (dir, name);
  return store_result (fs, "create", path,
                       shm_store_create (fs->store, path, shm_node_is_dir (node),
                                         shm_node_get_attr (node)));
}

static void
store_set_attr_locked (Shmfs *fs, ShmNode *node)
{
  g_autofree char *path = NULL;

  if (fs->store == NULL || shm_node_get_parent (node) == NULL)
    return;
  path = shm_node_dup_path (node);
  store_result (fs, "update", path, shm_store_set_attr (fs->store, path, shm_node_get_attr (node)));
}

/* ---- namespace --------------------------------------------------------- */

void
shmfs_set_bdi (const char *dev, const char *name, const char *value)
{
  g_autofree char *path = g_strdup_printf ("/sys/class/bdi/%s/%s", dev, name);

  /* Only root may; failing changes nothing. */
  g_file_set_contents_full (path, value, -1, G_FILE_SET_CONTENTS_NONE, 0644, NULL);
}

const char *
shmfs_mode_name (Shmfs *fs)
{
  return fs->mode == SHMFS_MODE_PASSTHROUGH ? "passthrough" : "cached";
}

/* A client wrote a passthrough object with write(2). */
static void
memfd_written (gpointer user_data, gpointer owner)
{
  shmfs_node_changed (user_data, owner);
}

static void
shmfs_init (void *userdata, struct fuse_conn_info *conn)
{
  Shmfs *fs = userdata;

  /* Cached mode (DESIGN.md §6): one page cache per raw view, kept by the
   * kernel as long as it likes, write-through, never dropped on its own. */
  fuse_unset_feature_flag (conn, FUSE_CAP_WRITEBACK_CACHE);
  fuse_unset_feature_flag (conn, FUSE_CAP_AUTO_INVAL_DATA);
  fuse_unset_feature_flag (conn, FUSE_CAP_ATOMIC_O_TRUNC);
  fuse_set_feature_flag (conn, FUSE_CAP_EXPLICIT_INVAL_DATA);
  fuse_unset_feature_flag (conn, FUSE_CAP_DIRECT_IO_ALLOW_MMAP);
  fuse_set_feature_flag (conn, FUSE_CAP_PARALLEL_DIROPS);
  /* Directories have no ioctls (nor a handle): the kernel says ENOTTY. */
  fuse_unset_feature_flag (conn, FUSE_CAP_IOCTL_DIR);
  /* No object is ever setuid or setgid (setattr strips the bits), so there
   * is nothing for a write to clear: spare the kernel asking for
   * security.capability at every write. */
  fuse_set_feature_flag (conn, FUSE_CAP_HANDLE_KILLPRIV_V2);

  if (fs->mode != SHMFS_MODE_CACHED)
    {
      if (fuse_set_feature_flag (conn, FUSE_CAP_PASSTHROUGH))
        {
          /* memfds live on shmem, a filesystem that stacks on nothing. */
          conn->max_backing_stack_depth = 1;
          fs->mode = SHMFS_MODE_PASSTHROUGH;
        }
      else if (fs->mode == SHMFS_MODE_PASSTHROUGH)
        {
          fprintf (stderr, "shmfs: mode=passthrough: the kernel does not offer FUSE passthrough "
                   "(it needs Linux 6.9 or later)\n");
          fs->init_failed = TRUE;
          fuse_session_exit (fs->se);
        }
      else
        fs->mode = SHMFS_MODE_CACHED;
    }
  if (fs->mode != SHMFS_MODE_CACHED)
    g_clear_pointer (&fs->raw_client, shmfs_raw_client_free);
  if (fs->mode == SHMFS_MODE_CACHED && fs->bdi != NULL)
    {
      /* Page faults in cached mode fill 1 MiB per request, not 128 KiB. */
      shmfs_set_bdi (fs->bdi, "read_ahead_kb", "1024");
      conn->max_readahead = 1024 * 1024;
    }
  if (fs->verbose && !fs->init_failed)
    fprintf (stderr, "shmfs: mounted, mode %s\n", shmfs_mode_name (fs));
  shmfs_coherence_start (fs->coherence, fs->se, conn->max_write,
                         fs->mode == SHMFS_MODE_PASSTHROUGH, memfd_written, fs);
}

static void
collect_locks (ShmNode *node, gpointer user_data)
{
  ShmfsNode *state = shmfs_node_state (node);

  if (state != NULL)
    g_ptr_array_add (user_data, state->locks);
}

static void
shmfs_destroy (void *userdata)
{
  Shmfs *fs = userdata;
  g_autoptr (GPtrArray) locks = g_ptr_array_new ();

  shmfs_coherence_stop (fs->coherence);
  /* Atomic operations under way end (EINTR) and let their locks go. */
  if (fs->raw_client != NULL)
    shmfs_raw_client_stop (fs->raw_client);
  /* Requests still waiting for a lock are answered while the session
   * lasts.  No request runs any more, so the tables stay. */
  g_mutex_lock (&fs->tree_lock);
  shm_tree_foreach_node (fs->tree, collect_locks, locks);
  g_mutex_unlock (&fs->tree_lock);
  for (guint i = 0; i < locks->len; i++)
    shmfs_locks_abort (locks->pdata[i]);
}

static void
shmfs_lookup (fuse_req_t req, fuse_ino_t parent, const char *name)
{
  Shmfs *fs = shmfs_from_req (req);
  struct fuse_entry_param e;
  ShmNode *dir, *child;
  gboolean raw;

  g_mutex_lock (&fs->tree_lock);
  dir = resolve_locked (fs, parent, &raw);
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
  if (retired_twin_locked (fs, parent))
    {
      g_mutex_unlock (&fs->tree_lock);
      return (void) fuse_reply_err (req, ENOENT);
    }
  child = is_raw_dir_name (dir, raw, name) ? dir : shm_tree_lookup (dir, name);
  /* Filled in the section that found it: a rename in between would
   * renumber a twin directory, and this name would get its new number. */
  if (child != NULL)
    fill_entry_locked (fs, child, raw || child == dir, 0, raw, &e);
  g_mutex_unlock (&fs->tree_lock);
  if (child == NULL)
    return (void) fuse_reply_err (req, ENOENT);
  send_entry (fs, req, &e);
}

static void
shmfs_forget (fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
  Shmfs *fs = shmfs_from_req (req);

  g_mutex_lock (&fs->tree_lock);
  forget_locked (fs, ino, nlookup);
  g_mutex_unlock (&fs->tree_lock);
  fuse_reply_none (req);
}

static void
shmfs_forget_multi (fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
  Shmfs *fs = shmfs_from_req (req);

  g_mutex_lock (&fs->tree_lock);
  for (size_t i = 0; i < count; i++)
    forget_locked (fs, forgets[i].ino, forgets[i].nlookup);
  g_mutex_unlock (&fs->tree_lock);
  fuse_reply_none (req);
}

static void
shmfs_getattr (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
  gboolean raw;
  guint64 text_size;
  struct stat st;

  g_mutex_lock (&fs->tree_lock);
  node = resolve_locked (fs, ino, &raw);
  if (node == NULL)
    {
      g_mutex_unlock (&fs->tree_lock);
      return (void) fuse_reply_err (req, ESTALE);
    }
  shm_node_ref (node);
  g_mutex_unlock (&fs->tree_lock);

  text_size = text_size_of (fs, node, raw);
  g_mutex_lock (&fs->tree_lock);
  fill_stat_locked (fs, node, raw, text_size, &st);
  shm_node_unref (node);
  g_mutex_unlock (&fs->tree_lock);
  fuse_reply_attr (req, &st, attr_timeout (fs, node, raw));
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

/* Clears setuid, and setgid where it means "run as the group" (group
 * execute set), as the kernel does for a write or a chown.  Returns whether
 * the mode changed. */
static gboolean
kill_suid_locked (ShmAttr *a)
{
  mode_t mode = a->mode & ~S_ISUID;

  if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
    mode &= ~S_ISGID;
  if (mode == a->mode)
    return FALSE;
  a->mode = mode;
  return TRUE;
}

static void
set_time (ShmTree *tree, struct timespec *t, const struct timespec *value, gboolean now)
{
  if (now)
    shm_tree_now (tree, t);
  else
    *t = *value;
}

static void
shmfs_setattr (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
               struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
  ShmAttr *a;
  gboolean raw;
  int err = 0;

  g_mutex_lock (&fs->tree_lock);
  node = resolve_locked (fs, ino, &raw);
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
          unref_node (fs, node);
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
    kill_suid_locked (a);
  if (to_set & FUSE_SET_ATTR_UID)
    a->uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID)
    a->gid = attr->st_gid;
  if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW))
    set_time (fs->tree, &a->atime, &attr->st_atim, to_set & FUSE_SET_ATTR_ATIME_NOW);
  if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))
    set_time (fs->tree, &a->mtime, &attr->st_mtim, to_set & FUSE_SET_ATTR_MTIME_NOW);
  shm_node_touch (fs->tree, node, FALSE, FALSE, TRUE);
  store_set_attr_locked (fs, node);
  shm_node_ref (node);
  g_mutex_unlock (&fs->tree_lock);

  inval_twin (fs, node, raw);
  shmfs_getattr (req, ino, fi);
  unref_node (fs, node);
}

/* Resolves the parent of a namespace change: a main-tree directory. */
static int
resolve_parent_locked (Shmfs *fs, fuse_ino_t parent, ShmNode **dir)
{
  gboolean raw;

  *dir = resolve_locked (fs, parent, &raw);
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

static int
make_node (Shmfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
           gboolean is_dir, mode_t mode, ShmNode **out)
{
  const struct fuse_ctx *ctx = fuse_req_ctx (req);
  ShmNode *dir, *node = NULL;
  int err;

  gid_t gid = ctx->gid;

  g_mutex_lock (&fs->tree_lock);
  err = resolve_parent_locked (fs, parent, &dir);
  if (err == 0 && is_raw_dir_name (dir, FALSE, name))
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

static void
shmfs_mkdir (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
  int err = make_node (fs, req, parent, name, TRUE, mode, &node);

  if (err < 0)
    return (void) fuse_reply_err (req, -err);
  reply_entry (fs, req, node, FALSE, FALSE);
}

static void
shmfs_mknod (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
  int err;

  if (!S_ISREG (mode))
    return (void) fuse_reply_err (req, EPERM);  /* objects and directories only */
  if ((err = make_node (fs, req, parent, name, FALSE, mode, &node)) < 0)
    return (void) fuse_reply_err (req, -err);
  reply_entry (fs, req, node, FALSE, FALSE);
}

static void
shmfs_symlink (fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
  fuse_reply_err (req, EPERM);
}

static void
shmfs_link (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
  fuse_reply_err (req, EPERM);
}

/* Removes name from dir: the tree, the .raw twin's dentry, the store.
 * Sets *raw_ino to the removed object's raw inode if the kernel holds it
 * (its link count is 0 now: invalidate it once unlocked).  tree_lock held. */
static int
remove_locked (Shmfs *fs, ShmNode *dir, const char *name, gboolean is_dir, fuse_ino_t *raw_ino)
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
        release_if_unreachable_locked (fs, child);
      shm_node_unref (child);
    }
  if (err < 0)
    return err;
  shmfs_coherence_forget_entry (fs->coherence, shmfs_ino (dir, TRUE), name);
  if (fs->store != NULL)
    {
      g_autofree char *path = child_path_locked (dir, name);
      store_result (fs, "remove", path, shm_store_remove (fs->store, path, is_dir));
    }
  return 0;
}

static void
remove_entry (fuse_req_t req, fuse_ino_t parent, const char *name, gboolean is_dir)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *dir;
  fuse_ino_t raw_ino = 0;
  int err;

  g_mutex_lock (&fs->tree_lock);
  err = resolve_parent_locked (fs, parent, &dir);
  if (err == 0 && is_raw_dir_name (dir, FALSE, name))
    err = is_dir ? -EBUSY : -EISDIR;   /* like a mount point: it stays */
  if (err == 0)
    err = remove_locked (fs, dir, name, is_dir, &raw_ino);
  g_mutex_unlock (&fs->tree_lock);
  if (raw_ino != 0)
    inval_attr (fs, raw_ino);
  fuse_reply_err (req, -err);
}

static void
shmfs_unlink (fuse_req_t req, fuse_ino_t parent, const char *name)
{
  remove_entry (req, parent, name, FALSE);
}

static void
shmfs_rmdir (fuse_req_t req, fuse_ino_t parent, const char *name)
{
  remove_entry (req, parent, name, TRUE);
}

static void
shmfs_rename (fuse_req_t req, fuse_ino_t parent, const char *name,
              fuse_ino_t newparent, const char *newname, unsigned int flags)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *olddir, *newdir, *replaced = NULL;
  int err;

  g_mutex_lock (&fs->tree_lock);
  err = resolve_parent_locked (fs, parent, &olddir);
  if (err == 0)
    err = resolve_parent_locked (fs, newparent, &newdir);
  if (err == 0 && is_raw_dir_name (olddir, FALSE, name))
    err = -EBUSY;   /* like a mount point: it stays */
  else if (err == 0 && is_raw_dir_name (newdir, FALSE, newname))
    err = -EEXIST;
  if (err == 0)
    err = shm_tree_rename (fs->tree, olddir, name, newdir, newname, flags, &replaced);
  if (err == 0)
    {
      /* What moved: newname now, and name too after an exchange. */
      renumber_twins_locked (shm_tree_lookup (newdir, newname), fs);
      if (flags & RENAME_EXCHANGE)
        renumber_twins_locked (shm_tree_lookup (olddir, name), fs);
    }
  if (replaced != NULL)
    {
      release_if_unreachable_locked (fs, replaced);
      shm_node_unref (replaced);
    }
  if (err == 0)
    {
      shmfs_coherence_forget_entry (fs->coherence, shmfs_ino (olddir, TRUE), name);
      shmfs_coherence_forget_entry (fs->coherence, shmfs_ino (newdir, TRUE), newname);
    }
  if (err == 0 && fs->store != NULL)
    {
      g_autofree char *from = child_path_locked (olddir, name);
      g_autofree char *to = child_path_locked (newdir, newname);
      store_result (fs, "rename", from, shm_store_rename (fs->store, from, to, flags));
    }
  g_mutex_unlock (&fs->tree_lock);
  fuse_reply_err (req, -err);
}

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
      e.attr_timeout = attr_timeout (d->fs, node, raw);
      e.entry_timeout = d->raw ? 0.0 : d->fs->timeout;
      /* A text size costs a rendering: readdirplus leaves it to getattr
       * (the text view has no attribute cache time). */
      fill_stat_locked (d->fs, node, raw, 0, &e.attr);
      /* The kernel takes no lookup for "." and "..": count = FALSE. */
      need = fuse_add_direntry_plus (d->req, d->buf + d->pos, d->size - d->pos, name, &e, next);
      if (need > d->size - d->pos)
        return FALSE;
      if (count)
        lookup_inc_locked (node, raw);
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

  g_mutex_lock (&fs->tree_lock);
  dir = resolve_locked (fs, ino, &d.raw);
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
  if (!retired_twin_locked (fs, ino))
    shm_tree_foreach_child (dir, off < 2 ? 0 : (guint64) off - 2, add_child, &d);
out:
  g_mutex_unlock (&fs->tree_lock);
  fuse_reply_buf (req, d.buf, d.pos);
  g_free (d.buf);
}

static void
shmfs_readdir (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
  read_directory (req, ino, size, off, FALSE);
}

static void
shmfs_readdirplus (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
  read_directory (req, ino, size, off, TRUE);
}

static void
shmfs_statfs (fuse_req_t req, fuse_ino_t ino)
{
  Shmfs *fs = shmfs_from_req (req);
  struct statvfs sv;
  guint64 capacity, used, nodes;

  g_mutex_lock (&fs->tree_lock);
  capacity = shm_tree_get_capacity (fs->tree);
  used = shm_tree_get_used_bytes (fs->tree);
  nodes = shm_tree_get_node_count (fs->tree);
  g_mutex_unlock (&fs->tree_lock);

  memset (&sv, 0, sizeof sv);
  sv.f_bsize = sv.f_frsize = 4096;
  sv.f_blocks = capacity / 4096;
  sv.f_bfree = sv.f_bavail = used >= capacity ? 0 : (capacity - used) / 4096;
  sv.f_files = MAX (nodes, sv.f_blocks);
  sv.f_ffree = sv.f_favail = sv.f_files - nodes;
  sv.f_namemax = SHM_TREE_NAME_MAX;
  fuse_reply_statfs (req, &sv);
}

/* ---- files ------------------------------------------------------------- */

static ShmfsHandle *
handle_new_locked (Shmfs *fs, ShmNode *node, gboolean raw, int flags)
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
  shmfs_text_snapshot_free (h->snapshot);
  if (h->pending)
    g_string_free (h->pending, TRUE);
  g_mutex_clear (&h->lock);
  g_free (h);
}

static void
handle_free (Shmfs *fs, fuse_req_t req, ShmfsHandle *h)
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
  release_if_unreachable_locked (fs, h->node);
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
static void
log_fd_shortage (Shmfs *fs, ShmNode *node, int err)
{
  if (err == -EMFILE || err == -ENFILE)
    shmfs_log_rejected (fs, node, err, "no file descriptor left for another object "
                        "(each typed or passed-through one holds one; raise RLIMIT_NOFILE)");
}

/* Sets up how the kernel serves an open; returns 0 or -errno. */
static int
set_open_flags (Shmfs *fs, fuse_req_t req, ShmfsHandle *h, struct fuse_file_info *fi)
{
  ShmfsSync *sync = h->raw ? shmfs_node_state (h->node)->sync : NULL;

  fi->fh = (uint64_t) (uintptr_t) h;
  if (h->raw && fs->mode == SHMFS_MODE_PASSTHROUGH)
    {
      if (!shm_object_is_typed (shm_node_get_object (h->node)))
        {
          fi->direct_io = 1;   /* no bytes yet: nothing to pass through to */
          return 0;
        }
      int id = shmfs_sync_backing_open (fs->coherence, sync, req);
      if (id < 0)
        return id;
      h->backing = TRUE;
      fi->backing_id = id;
      fi->keep_cache = 0;
      fi->direct_io = 0;
    }
  else if (h->raw)
    {
      fi->keep_cache = 1;   /* one page cache, shared by every open and map */
      fi->direct_io = 0;
      if (h->writer)
        {
          shmfs_sync_writer_open (sync);
          h->counted_writer = TRUE;
        }
    }
  else
    {
      fi->direct_io = 1;    /* text is rendered per read, never cached */
      fi->keep_cache = 0;
    }
  return 0;
}

static void
shmfs_open (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h;
  ShmNode *node;
  gboolean raw;
  int err;

  g_mutex_lock (&fs->tree_lock);
  node = resolve_locked (fs, ino, &raw);
  if (node == NULL || shm_node_is_dir (node))
    {
      g_mutex_unlock (&fs->tree_lock);
      return (void) fuse_reply_err (req, node == NULL ? ESTALE : EISDIR);
    }
  if (shm_node_get_parent (node) == NULL && shmfs_node_state (node)->handles == 0)
    {
      /* Unlinked and closed, so its bytes are gone: this open lost a race
       * with the unlink, and fails as if it had come after it. */
      g_mutex_unlock (&fs->tree_lock);
      return (void) fuse_reply_err (req, ENOENT);
    }
  h = handle_new_locked (fs, node, raw, fi->flags);
  g_mutex_unlock (&fs->tree_lock);
  if ((err = set_open_flags (fs, req, h, fi)) < 0)
    {
      log_fd_shortage (fs, node, err);
      handle_free (fs, req, h);
      return (void) fuse_reply_err (req, -err);
    }
  if (fuse_reply_open (req, fi) != 0)
    handle_free (fs, req, h);
}

static void
shmfs_create (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
              struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  struct fuse_entry_param e;
  ShmfsHandle *h;
  ShmNode *node;
  int err;

  if ((err = make_node (fs, req, parent, name, FALSE, mode, &node)) < 0)
    return (void) fuse_reply_err (req, -err);
  g_mutex_lock (&fs->tree_lock);
  fill_entry_locked (fs, node, FALSE, 0, FALSE, &e);
  h = handle_new_locked (fs, node, FALSE, fi->flags);
  shm_node_unref (node);
  g_mutex_unlock (&fs->tree_lock);
  set_open_flags (fs, req, h, fi);   /* a text view: cannot fail */
  if (fuse_reply_create (req, &e, fi) != 0)
    {
      handle_free (fs, req, h);
      g_mutex_lock (&fs->tree_lock);
      forget_locked (fs, e.ino, 1);
      g_mutex_unlock (&fs->tree_lock);
    }
}

static ShmfsHandle *
handle_of (struct fuse_file_info *fi)
{
  return (ShmfsHandle *) (uintptr_t) fi->fh;
}

static void
shmfs_read (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h = handle_of (fi);
  ShmObject *obj = shm_node_get_object (h->node);
  guint64 nbytes;

  if (!h->raw)
    return shmfs_text_reply_read (fs, req, h, off, size);

  nbytes = shm_object_get_nbytes (obj);
  if (off < 0 || (guint64) off >= nbytes)
    return (void) fuse_reply_buf (req, NULL, 0);
  size = MIN (size, nbytes - (guint64) off);
  shmfs_sync_reply_read (shmfs_node_state (h->node)->sync, req, off, size);
}

/* A write by anyone but root, to either view, clears setuid (killpriv v2;
 * libfuse does not pass the kernel's CAP_FSETID verdict, so uid 0 stands
 * for it). */
static void
kill_suid_of_writer (Shmfs *fs, fuse_req_t req, fuse_ino_t ino, ShmfsHandle *h)
{
  gboolean killed;

  if (fuse_req_ctx (req)->uid == 0)
    return;
  g_mutex_lock (&fs->tree_lock);
  killed = kill_suid_locked (shm_node_get_attr (h->node));
  if (killed)
    store_set_attr_locked (fs, h->node);
  g_mutex_unlock (&fs->tree_lock);
  if (killed)
    {
      inval_attr (fs, ino);
      inval_twin (fs, h->node, h->raw);
    }
}

static void
shmfs_write (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
             struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h = handle_of (fi);
  ShmObject *obj = shm_node_get_object (h->node);
  guint64 nbytes;
  int res;

  if (!h->raw)
    {
      res = shmfs_text_write (fs, h, off, buf, size);
      if (res < 0)
        return (void) fuse_reply_err (req, -res);
      kill_suid_of_writer (fs, req, ino, h);
      return (void) fuse_reply_write (req, (size_t) res);
    }

  nbytes = shm_object_get_nbytes (obj);
  if (off < 0 || (guint64) off >= nbytes)
    {
      shmfs_log_rejected (fs, h->node, -EFBIG, "write at %" G_GINT64_FORMAT " past the end (%"
                          G_GUINT64_FORMAT " bytes)", (gint64) off, nbytes);
      return (void) fuse_reply_err (req, EFBIG);
    }
  /* Like a write at RLIMIT_FSIZE: what fits is written, the rest refused. */
  size = MIN (size, nbytes - (guint64) off);
  shmfs_sync_client_write (fs->coherence, shmfs_node_state (h->node)->sync,
                           off, buf, size, fi->writepage);
  g_mutex_lock (&fs->tree_lock);
  shm_node_touch (fs->tree, h->node, FALSE, TRUE, TRUE);
  g_mutex_unlock (&fs->tree_lock);
  if (!fi->writepage)
    kill_suid_of_writer (fs, req, ino, h);
  /* Before the reply: after it the kernel may release h. */
  shmfs_node_wake_pollers (fs, h->node);
  fuse_reply_write (req, size);
}

static void
shmfs_flush (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h = handle_of (fi);

  /* A close drops the closing process's record locks (POSIX). */
  shmfs_locks_release (shmfs_node_state (h->node)->locks, fi->lock_owner);
  fuse_reply_err (req, h->raw ? 0 : -shmfs_text_flush (fs, h));
}

static void
shmfs_release (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  if (fi->flock_release)
    shmfs_locks_release (shmfs_node_state (handle_of (fi)->node)->locks, fi->lock_owner);
  handle_free (shmfs_from_req (req), req, handle_of (fi));
  fuse_reply_err (req, 0);
}

static void
shmfs_fsync (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h = handle_of (fi);
  ShmObject *obj = shm_node_get_object (h->node);
  int err = 0;

  /* fsync is how a process that stored through a mapping says so: in
   * passthrough mode nothing else reaches the daemon. */
  shm_object_bump_version (obj);
  shmfs_node_wake_pollers (fs, h->node);
  if (fs->store != NULL)
    {
      /* The raw view's dirty pages were written back before this request;
       * the text view's fsync takes mapped stores along too. */
      if (!h->raw)
        shmfs_coherence_pull (fs->coherence, shmfs_node_state (h->node)->sync);
      err = shm_store_sync_object (fs->store, obj);
    }
  fuse_reply_err (req, -err);
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

static void
shmfs_poll (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h = handle_of (fi);
  ShmfsNode *state = shmfs_node_state (h->node);
  guint64 version;
  unsigned revents = POLLIN | POLLRDNORM | (h->raw ? POLLOUT | POLLWRNORM : POLLOUT);

  /* Like sysfs_notify: POLLPRI|POLLERR once the value changed after the
   * last read at offset 0 of this open file. */
  shmfs_coherence_settle (fs->coherence, state->sync);
  version = shm_object_get_version (shm_node_get_object (h->node));
  if (!h->raw && version != h->seen_version)
    revents |= POLLPRI | POLLERR;
  if (ph != NULL)
    {
      struct fuse_pollhandle *old;

      /* The kernel registers an open file again at each poll(2) call, and
       * one notify wakes all its waiters: keep the latest only. */
      g_mutex_lock (&fs->poll_lock);
      old = h->ph;
      h->ph = ph;
      if (old == NULL)
        {
          if (state->pollers == NULL)
            state->pollers = g_ptr_array_new ();
          g_ptr_array_add (state->pollers, h);
        }
      g_mutex_unlock (&fs->poll_lock);
      if (old != NULL)
        fuse_pollhandle_destroy (old);
      /* A change between the version read and the registration. */
      if (version != shm_object_get_version (shm_node_get_object (h->node)))
        shmfs_node_wake_pollers (fs, h->node);
    }
  fuse_reply_poll (req, revents);
}

static gboolean
apply_atomic (guint8 *bytes, gpointer user_data)
{
  gpointer *args = user_data;

  return shm_atomic_apply_elem (args[0], bytes, args[1]);
}

typedef struct {
  Shmfs         *fs;
  fuse_req_t     req;
  ShmfsHandle   *h;               /* the ioctl's open file: lives till answered */
  guint64        owner;           /* of the object's lock, held while it runs */
  gboolean       on_pages;        /* run by a helper on the page cache */
  const ShmType *type;
  ShmAtomic      a;
  struct shmfs_atomic io;
} AtomicOp;

/* Answers op, done (changed tells), and lets the object's lock go. */
static void
atomic_op_finish (AtomicOp *op, gboolean changed)
{
  shmfs_locks_release (shmfs_node_state (op->h->node)->locks, op->owner);
  if (changed && op->on_pages)
    node_times_changed (op->fs, op->h->node);
  else if (changed)
    shmfs_node_changed (op->fs, op->h->node);
  op->io.result.u = op->a.old.u;
  op->io.swapped = op->a.swapped;
  fuse_reply_ioctl (op->req, 0, &op->io, sizeof op->io);
  g_free (op);
}

/* Runs op on the daemon's copy: the memfd, which passthrough clients map,
 * or in cached mode the memfd and the pages (coherence.c). */
static void
atomic_op_on_memfd (AtomicOp *op)
{
  gpointer args[2] = { (gpointer) op->type, &op->a };

  atomic_op_finish (op, shmfs_coherence_modify (op->fs->coherence,
                                                shmfs_node_state (op->h->node)->sync,
                                                shm_atomic_offset (op->type, op->a.index),
                                                shm_type_elem_size (op->type),
                                                apply_atomic, args));
}

/* The end of a cached-mode operation run on the page cache (rawclient.c). */
static void
atomic_op_done (int err, const ShmAtomic *a, gboolean changed, gpointer user_data)
{
  AtomicOp *op = user_data;

  if (err == -ESHUTDOWN)
    {
      shmfs_locks_release (shmfs_node_state (op->h->node)->locks, op->owner);
      fuse_reply_err (op->req, EINTR);
      return g_free (op);
    }
  /* No name left, or none the daemon's user may open: the daemon's copy,
   * where a store racing the operation can be undone (docs/semantics.md). */
  if (err < 0)
    return atomic_op_on_memfd (op);
  /* Its writeback, a client write, has bumped the version and woken the
   * pollers already: once is what a watcher prints. */
  op->a = *a;
  op->on_pages = TRUE;
  atomic_op_finish (op, changed);
}

/* Runs op inside the object's lock (owner) and answers its ioctl. */
static void
atomic_op_held (guint64 owner, gpointer user_data)
{
  AtomicOp *op = user_data;
  Shmfs *fs = op->fs;
  g_autofree char *rel = NULL;
  fuse_ino_t ino;

  if (owner == 0)
    {
      fuse_reply_err (op->req, EINTR);
      return g_free (op);
    }
  op->owner = owner;
  /* In cached mode a change is a CPU atomic on the page the clients share,
   * as in passthrough mode; a load reads what is there. */
  if (fs->mode == SHMFS_MODE_CACHED && fs->raw_client != NULL && op->a.op != SHM_ATOMIC_LOAD)
    {
      g_mutex_lock (&fs->tree_lock);
      if (shm_node_get_parent (op->h->node) != NULL)
        rel = shm_node_dup_path (op->h->node);
      ino = shmfs_ino (op->h->node, TRUE);
      g_mutex_unlock (&fs->tree_lock);
      if (rel != NULL)
        return shmfs_raw_client_atomic (fs->raw_client, rel, ino, op->type,
                                        shm_atomic_offset (op->type, op->a.index), &op->a,
                                        atomic_op_done, op);
    }
  atomic_op_on_memfd (op);
}

/* Checks an atomic operation and queues it for the object's lock; answers
 * req itself, or returns -errno for the caller to. */
static int
atomic_op (Shmfs *fs, fuse_req_t req, ShmfsHandle *h, const struct shmfs_atomic *io)
{
  AtomicOp *op;
  const ShmType *type;
  ShmAtomic a = { 0 };
  int err;

  g_mutex_lock (&fs->tree_lock);
  type = shm_object_get_type (shm_node_get_object (h->node));
  g_mutex_unlock (&fs->tree_lock);
  if (type == NULL)
    return -ENODATA;
  a.op = (ShmAtomicOp) io->op;
  a.is_float = (io->flags & SHMFS_ATOMIC_FLOAT) != 0;
  a.index = io->index;
  a.operand.u = io->operand.u;
  a.expected.u = io->expected.u;
  if (io->op > SHMFS_ATOMIC_CAS || (io->flags & ~SHMFS_ATOMIC_FLOAT) != 0)
    err = -EINVAL;
  else if (io->op != SHMFS_ATOMIC_LOAD && !h->writer)
    err = -EBADF;   /* as write(2) on a read-only open: a change needs write access */
  else
    err = shm_atomic_check (type, &a);
  if (err < 0)
    {
      shmfs_log_rejected (fs, h->node, err, "atomic operation %u on element %" G_GUINT64_FORMAT,
                          io->op, io->index);
      return err;
    }

  op = g_new0 (AtomicOp, 1);
  op->fs = fs;
  op->req = req;
  op->h = h;
  op->type = type;
  op->a = a;
  op->io = *io;
  /* Inside the object's lock, as a lock-based read-modify-write would be;
   * waiting for it holds no worker thread. */
  shmfs_locks_hold (shmfs_node_state (h->node)->locks, fuse_req_ctx (req)->pid, req,
                    atomic_op_held, op);
  return 0;
}

static void
shmfs_ioctl (fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
             struct fuse_file_info *fi, unsigned flags, const void *in_buf,
             size_t in_bufsz, size_t out_bufsz)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h = handle_of (fi);
  struct shmfs_atomic io;
  int err;

  if (flags & FUSE_IOCTL_COMPAT)
    return (void) fuse_reply_err (req, ENOSYS);
  switch (cmd)
    {
    case SHMFS_IOC_ATOMIC:
      if (in_bufsz < sizeof io || out_bufsz < sizeof io)
        return (void) fuse_reply_err (req, EINVAL);
      memcpy (&io, in_buf, sizeof io);
      if ((err = atomic_op (fs, req, h, &io)) < 0)
        fuse_reply_err (req, -err);
      return;
    case SHMFS_IOC_NOTIFY:
      shm_object_bump_version (shm_node_get_object (h->node));
      shmfs_node_changed (fs, h->node);
      fuse_reply_ioctl (req, 0, NULL, 0);
      return;
    default:
      fuse_reply_err (req, ENOTTY);
    }
}

/* ---- locks ------------------------------------------------------------- */

static void
shmfs_flock (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
  ShmfsHandle *h = handle_of (fi);
  int type = (op & LOCK_SH) ? F_RDLCK : (op & LOCK_EX) ? F_WRLCK : F_UNLCK;

  shmfs_locks_set (shmfs_node_state (h->node)->locks, req, fi->lock_owner,
                   fuse_req_ctx (req)->pid, type, !(op & LOCK_NB));
}

static void
shmfs_getlk (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock)
{
  ShmfsHandle *h = handle_of (fi);

  shmfs_locks_test (shmfs_node_state (h->node)->locks, fi->lock_owner, lock->l_type, lock);
  fuse_reply_lock (req, lock);
}

static void
shmfs_setlk (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
             struct flock *lock, int sleep)
{
  ShmfsHandle *h = handle_of (fi);

  shmfs_locks_set (shmfs_node_state (h->node)->locks, req, fi->lock_owner,
                   lock->l_pid > 0 ? lock->l_pid : fuse_req_ctx (req)->pid,
                   lock->l_type, sleep);
}

static void
shmfs_retrieve_reply (fuse_req_t req, void *cookie, fuse_ino_t ino, off_t offset,
                      struct fuse_bufvec *bufv)
{
  shmfs_coherence_retrieve_reply (shmfs_from_req (req)->coherence, cookie, offset, bufv);
  fuse_reply_none (req);
}

/* ---- extended attributes ----------------------------------------------- */

typedef enum {
  XA_TYPE, XA_DTYPE, XA_SHAPE, XA_NBYTES, XA_VERSION, XA_LIFETIME, XA_MODE, XA_NONE
} XattrId;

static const char *const xattr_names[] = {
  XATTR_PREFIX "type", XATTR_PREFIX "dtype", XATTR_PREFIX "shape",
  XATTR_PREFIX "nbytes", XATTR_PREFIX "version", XATTR_PREFIX "lifetime",
  XATTR_PREFIX "mode",
};

static gboolean
xattr_applies (ShmNode *node, XattrId id)
{
  if (id == XA_MODE)
    return shm_node_get_id (node) == SHM_TREE_ROOT_ID;
  return !shm_node_is_dir (node);
}

static XattrId
xattr_lookup (ShmNode *node, const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (xattr_names); i++)
    if (strcmp (name, xattr_names[i]) == 0)
      return xattr_applies (node, i) ? (XattrId) i : XA_NONE;
  return XA_NONE;
}

/* The value of an xattr; NULL when it has none (untyped). tree_lock held. */
static char *
xattr_value_locked (Shmfs *fs, ShmNode *node, XattrId id)
{
  ShmObject *obj = shm_node_get_object (node);
  const ShmType *type = obj != NULL ? shm_object_get_type (obj) : NULL;

  if (id == XA_MODE)
    return g_strdup (shmfs_mode_name (fs));
  if (id == XA_LIFETIME)
    {
      pid_t pid = shmfs_node_state (node)->bound_pid;
      return pid > 0 ? g_strdup_printf ("pid:%d", (int) pid) : NULL;
    }
  if (type == NULL)
    return NULL;
  switch (id)
    {
    case XA_TYPE:    return shm_type_to_string (type);
    case XA_DTYPE:   return shm_type_numpy_dtype (type);
    case XA_SHAPE:   return shm_type_shape_string (type);
    case XA_NBYTES:  return g_strdup_printf ("%" G_GUINT64_FORMAT, shm_type_nbytes (type));
    case XA_VERSION:
      return g_strdup_printf ("%" G_GUINT64_FORMAT, shm_object_get_version (obj));
    default:         return NULL;
    }
}

static void
reply_xattr_value (fuse_req_t req, const char *value, size_t len, size_t size)
{
  if (size == 0)
    fuse_reply_xattr (req, len);
  else if (size < len)
    fuse_reply_err (req, ERANGE);
  else
    fuse_reply_buf (req, value, len);
}

/* Whether the caller is in group gid (primary or supplementary). */
static gboolean
caller_in_group (fuse_req_t req, gid_t gid)
{
  gid_t groups[64];
  int n;

  if (fuse_req_ctx (req)->gid == gid)
    return TRUE;
  n = fuse_req_getgroups (req, G_N_ELEMENTS (groups), groups);
  for (int i = 0; i < MIN (n, (int) G_N_ELEMENTS (groups)); i++)
    if (groups[i] == gid)
      return TRUE;
  return FALSE;
}

/* Whether the caller may bind node's lifetime, or unbind it.  Binding is a
 * removal put off until a process exits, so it is authorized as unlink(2)
 * is (write and search permission on the directory; in a sticky one, only
 * the owner of the object or the directory) and, as it changes the
 * object's fate, only its owner or root may.  tree_lock held. */
static int
may_bind_locked (fuse_req_t req, ShmNode *node)
{
  const struct fuse_ctx *ctx = fuse_req_ctx (req);
  ShmNode *dir = shm_node_get_parent (node);
  ShmAttr *d;
  mode_t wx;

  if (ctx->uid == 0)
    return 0;
  if (ctx->uid != shm_node_get_attr (node)->uid)
    return -EPERM;
  if (dir == NULL)
    return -ENOENT;   /* unlinked: nothing left to remove */
  d = shm_node_get_attr (dir);
  wx = ctx->uid == d->uid ? S_IWUSR | S_IXUSR
     : caller_in_group (req, d->gid) ? S_IWGRP | S_IXGRP : S_IWOTH | S_IXOTH;
  return (d->mode & wx) == wx ? 0 : -EACCES;
}

/* Binds an object to a process: "process" (the caller) or "pid:N". */
static int
bind_lifetime (Shmfs *fs, fuse_req_t req, ShmNode *node, const char *value, size_t size)
{
  g_autofree char *text = g_strndup (value, size);
  pid_t pid, tgid;
  char *end;
  int err;

  g_strstrip (text);
  if (strcmp (text, "process") == 0)
    pid = fuse_req_ctx (req)->pid;
  else if (g_str_has_prefix (text, "pid:") && g_ascii_isdigit (text[4]))
    {
      guint64 n = g_ascii_strtoull (text + 4, &end, 10);
      if (*end != '\0' || n == 0 || n > G_MAXINT32)
        return -EINVAL;
      pid = (pid_t) n;
    }
  else
    return -EINVAL;

  /* One locked section: of two binds at once, the one the watcher keeps
   * is the one the node names, and the rights checked are those in force. */
  g_mutex_lock (&fs->tree_lock);
  err = may_bind_locked (req, node);
  if (err == 0)
    err = shmfs_lifetimes_bind (fs->lifetimes, shm_node_get_id (node), pid, &tgid);
  if (err == 0)
    shmfs_node_state (node)->bound_pid = tgid;
  g_mutex_unlock (&fs->tree_lock);
  return err;
}

void
shmfs_expire (gpointer user_data, guint64 node_id, pid_t pid)
{
  Shmfs *fs = user_data;
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
      err = remove_locked (fs, parent, name, FALSE, &raw_ino);
    }
  g_mutex_unlock (&fs->tree_lock);
  if (err < 0)
    return;
  /* The daemon removed it: the kernel must forget the name. */
  fuse_lowlevel_notify_delete (fs->se, parent_ino, child_ino, name, strlen (name));
  if (raw_ino != 0)
    inval_attr (fs, raw_ino);
  if (fs->verbose)
    fprintf (stderr, "shmfs: removed %s: process %d exited\n", path, (int) pid);
}

/* Accounts the passthrough writes to ino's object that have returned, and
 * makes the next one known (see shmfs_coherence_settle).  Takes tree_lock:
 * what it accounts touches the node. */
static void
settle_object (Shmfs *fs, fuse_ino_t ino)
{
  ShmfsSync *sync = NULL;
  ShmNode *node;
  gboolean raw;

  g_mutex_lock (&fs->tree_lock);
  node = resolve_locked (fs, ino, &raw);
  if (node != NULL && shmfs_node_state (node)->sync != NULL)
    sync = shmfs_sync_ref (shmfs_node_state (node)->sync);
  g_mutex_unlock (&fs->tree_lock);
  if (sync != NULL)
    {
      shmfs_coherence_settle (fs->coherence, sync);
      shmfs_sync_unref (sync);
    }
}

static void
shmfs_getxattr (fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
  Shmfs *fs = shmfs_from_req (req);
  g_autofree char *value = NULL;
  ShmNode *node;
  gboolean raw;

  if (strcmp (name, XATTR_PREFIX "version") == 0)
    settle_object (fs, ino);
  g_mutex_lock (&fs->tree_lock);
  node = resolve_locked (fs, ino, &raw);
  if (node != NULL)
    {
      XattrId id = xattr_lookup (node, name);
      if (id != XA_NONE)
        value = xattr_value_locked (fs, node, id);
    }
  g_mutex_unlock (&fs->tree_lock);
  if (node == NULL)
    return (void) fuse_reply_err (req, ESTALE);
  if (value == NULL)
    return (void) fuse_reply_err (req, ENODATA);
  reply_xattr_value (req, value, strlen (value), size);
}

static void
shmfs_listxattr (fuse_req_t req, fuse_ino_t ino, size_t size)
{
  Shmfs *fs = shmfs_from_req (req);
  GString *list = g_string_new (NULL);
  ShmNode *node;
  gboolean raw;

  g_mutex_lock (&fs->tree_lock);
  node = resolve_locked (fs, ino, &raw);
  if (node != NULL)
    for (guint i = 0; i < G_N_ELEMENTS (xattr_names); i++)
      {
        g_autofree char *value = NULL;
        if (!xattr_applies (node, i) || (value = xattr_value_locked (fs, node, i)) == NULL)
          continue;
        g_string_append_len (list, xattr_names[i], (gssize) strlen (xattr_names[i]) + 1);
      }
  g_mutex_unlock (&fs->tree_lock);
  if (node == NULL)
    fuse_reply_err (req, ESTALE);
  else
    reply_xattr_value (req, list->str, list->len, size);
  g_string_free (list, TRUE);
}

static void
shmfs_setxattr (fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                size_t size, int flags)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
  ShmType type;
  gboolean raw;
  XattrId id = XA_NONE;
  int err;

  g_mutex_lock (&fs->tree_lock);
  node = resolve_locked (fs, ino, &raw);
  if (node == NULL)
    err = -ESTALE;
  else if ((id = xattr_lookup (node, name)) == XA_NONE)
    err = g_str_has_prefix (name, XATTR_PREFIX) ? -EPERM : -ENOTSUP;
  else if (id == XA_LIFETIME)
    err = 1;   /* below, outside tree_lock */
  else if (id != XA_TYPE)
    err = -EPERM;   /* derived from the type, read-only */
  else if (shm_object_is_typed (shm_node_get_object (node)))
    err = -EPERM;   /* the type is fixed once set */
  else if (flags & XATTR_REPLACE)
    err = -ENODATA;
  else if ((err = shm_type_parse (value, size, &type)) == 0)
    err = shmfs_set_type_locked (fs, node, &type);
  if (node != NULL)
    shm_node_ref (node);
  g_mutex_unlock (&fs->tree_lock);

  if (err == 1)
    err = bind_lifetime (fs, req, node, value, size);
  if (node != NULL)
    {
      if (err == -EMFILE || err == -ENFILE)
        log_fd_shortage (fs, node, err);
      else if (err < 0 && err != -ENOTSUP)
        shmfs_log_rejected (fs, node, err, "setting %s to \"%.*s\"", name,
                            (int) MIN (size, 64), value);
      else if (err == 0)
        shmfs_node_typed (fs, node);
      unref_node (fs, node);
    }
  fuse_reply_err (req, -err);
}

static void
shmfs_removexattr (fuse_req_t req, fuse_ino_t ino, const char *name)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
  gboolean raw;
  int err;

  g_mutex_lock (&fs->tree_lock);
  node = resolve_locked (fs, ino, &raw);
  if (node == NULL)
    err = ESTALE;
  else if (xattr_lookup (node, name) == XA_LIFETIME)
    {
      /* Unbinding makes the object outlive its process. */
      err = -may_bind_locked (req, node);
      if (err == 0 && shmfs_node_state (node)->bound_pid == 0)
        err = ENODATA;
      if (err == 0)
        {
          shmfs_lifetimes_unbind (fs->lifetimes, shm_node_get_id (node));
          shmfs_node_state (node)->bound_pid = 0;
        }
    }
  else
    err = g_str_has_prefix (name, XATTR_PREFIX) ? EPERM : ENODATA;
  g_mutex_unlock (&fs->tree_lock);
  fuse_reply_err (req, err);
}

const struct fuse_lowlevel_ops shmfs_ops = {
  .init           = shmfs_init,
  .destroy        = shmfs_destroy,
  .lookup         = shmfs_lookup,
  .forget         = shmfs_forget,
  .forget_multi   = shmfs_forget_multi,
  .getattr        = shmfs_getattr,
  .setattr        = shmfs_setattr,
  .mknod          = shmfs_mknod,
  .mkdir          = shmfs_mkdir,
  .unlink         = shmfs_unlink,
  .rmdir          = shmfs_rmdir,
  .symlink        = shmfs_symlink,
  .link           = shmfs_link,
  .rename         = shmfs_rename,
  .open           = shmfs_open,
  .create         = shmfs_create,
  .read           = shmfs_read,
  .write          = shmfs_write,
  .flush          = shmfs_flush,
  .release        = shmfs_release,
  .fsync          = shmfs_fsync,
  .readdir        = shmfs_readdir,
  .readdirplus    = shmfs_readdirplus,
  .statfs         = shmfs_statfs,
  .setxattr       = shmfs_setxattr,
  .getxattr       = shmfs_getxattr,
  .listxattr      = shmfs_listxattr,
  .removexattr    = shmfs_removexattr,
  .retrieve_reply = shmfs_retrieve_reply,
  .flock          = shmfs_flock,
  .ioctl          = shmfs_ioctl,
  .poll           = shmfs_poll,
  .getlk          = shmfs_getlk,
  .setlk          = shmfs_setlk,
};
