/* session.c — node states and inode numbers: the FUSE layer's state of
 * each node, the kernel's lookup counts, the raw twin numbers of moved
 * directories, and when an unlinked node's bytes go.  Locking and numbering:
 * see the design block in ops.c.
 */
#include "config.h"

#include "session.h"
#include "authority.h"

#include <errno.h>

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
  g_free (state->bound_elsewhere);
  g_free (state);
}

void
shmfs_attach_state (Shmfs *fs, ShmNode *node)
{
  ShmfsNode *state = g_new0 (ShmfsNode, 1);

  state->fs = fs;
  state->raw_id = shm_node_get_id (node);
  state->locks = shmfs_locks_new ();
  if (fs->authority->lease != NULL && !shm_node_is_dir (node))
    shmfs_locks_set_lease (state->locks, fs->authority->lease, node);
  if (!shm_node_is_dir (node))
    state->sync = shmfs_sync_new (shm_node_get_object (node), 2 * state->raw_id + 1, node);
  shm_node_set_data (node, state, node_state_free);
}

static gboolean
attach_one (ShmNode *child, gpointer user_data)
{
  shmfs_attach_state (user_data, child);
  if (shm_node_is_dir (child))
    shm_tree_foreach_child (child, 0, attach_one, user_data);
  return TRUE;
}

void
shmfs_attach_states (Shmfs *fs)
{
  ShmNode *root = shm_tree_get_root (fs->tree);

  shmfs_attach_state (fs, root);
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
    shmfs_coherence_forget_cache (fs->coherence, state->sync);
  if (nlookup > 0 && state->nlookup[0] + state->nlookup[1] == 0)
    shm_node_unref (node);
}

gboolean
shmfs_kernel_holds_locked (ShmNode *node, gboolean raw)
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

const char *
shmfs_mode_name (Shmfs *fs)
{
  return fs->mode == SHMFS_MODE_PASSTHROUGH ? "passthrough"
       : fs->mode == SHMFS_MODE_REMOTE ? "remote" : "cached";
}
