/* inval.c — entry invalidations, queued and sent off the request path. */
#include "config.h"

#include "inval.h"

#include <string.h>

struct _ShmfsInval {
  GMutex       lock;
  struct fuse_session *se;        /* NULL when stopped; lock */
  GThreadPool *pool;              /* EntryJob*, one at a time */
};

typedef struct {
  fuse_ino_t parent;
  char       name[];
} EntryJob;

ShmfsInval *
shmfs_inval_new (void)
{
  ShmfsInval *inv = g_new0 (ShmfsInval, 1);

  g_mutex_init (&inv->lock);
  return inv;
}

/* Takes the parent's inode lock: so never inside a request handler, where
 * the kernel may hold it, or another lock ordered against it. */
static void
entry_job (gpointer data, gpointer user_data)
{
  ShmfsInval *inv = user_data;
  EntryJob *job = data;
  struct fuse_session *se;

  /* NULL once stopped, which is before the session is destroyed. */
  g_mutex_lock (&inv->lock);
  se = inv->se;
  g_mutex_unlock (&inv->lock);
  if (se != NULL)
    fuse_lowlevel_notify_inval_entry (se, job->parent, job->name, strlen (job->name));
  g_free (job);
}

void
shmfs_inval_start (ShmfsInval *inv, struct fuse_session *se)
{
  /* The thread starts here, in the daemon that serves (fuse_daemonize
   * forks before init). */
  if (inv->pool == NULL)
    inv->pool = g_thread_pool_new_full (entry_job, inv, g_free, 1, FALSE, NULL);
  g_mutex_lock (&inv->lock);
  inv->se = se;
  g_mutex_unlock (&inv->lock);
}

void
shmfs_inval_stop (ShmfsInval *inv)
{
  g_mutex_lock (&inv->lock);
  inv->se = NULL;
  g_mutex_unlock (&inv->lock);
}

void
shmfs_inval_free (ShmfsInval *inv)
{
  if (inv == NULL)
    return;
  shmfs_inval_stop (inv);
  /* Jobs still queued run, and only free themselves (the session is gone):
   * a pool freed at once could leave them unfreed. */
  if (inv->pool != NULL)
    g_thread_pool_free (inv->pool, FALSE, TRUE);
  g_mutex_clear (&inv->lock);
  g_free (inv);
}

void
shmfs_inval_forget_entry (ShmfsInval *inv, fuse_ino_t parent, const char *name)
{
  gsize len = strlen (name);
  EntryJob *job = g_malloc (sizeof *job + len + 1);

  job->parent = parent;
  memcpy (job->name, name, len + 1);
  g_thread_pool_push (inv->pool, job, NULL);
}
