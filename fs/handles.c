/* handles.c — open files: their state, their release, and the poll(2)
 * registrations woken when the value changes.
 */
#include "config.h"

#include "handles.h"
#include "session.h"

#include <fcntl.h>

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
  shm_textread_free (h->textread);
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
    shmfs_coherence_backing_release (fs->coherence, sync, req);
  else if (h->counted_writer)
    shmfs_coherence_writer_close (fs->coherence, sync);
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
ShmfsHandle *
shmfs_handle_of (struct fuse_file_info *fi)
{
  return (ShmfsHandle *) (uintptr_t) fi->fh;
}
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
