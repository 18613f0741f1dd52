/* locks.c — the daemon's lock table of an object. */
#include "config.h"

#include "locks.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

struct _ShmfsLocks {
  GMutex  lock;
  GArray *held;      /* Holder; lock */
  GQueue  waiters;   /* Waiter*, oldest first; lock */
};

typedef struct {
  guint64 owner;
  pid_t   pid;
  int     type;      /* F_RDLCK or F_WRLCK */
} Holder;

typedef struct {
  fuse_req_t  req;
  Holder      want;
  ShmfsLocksHeldFunc held;        /* a hold (shmfs_locks_hold), or NULL */
  gpointer    held_data;
} Waiter;

static guint64 next_token;

pid_t
shmfs_thread_group_of (pid_t tid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) tid);
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents (path, &status, NULL, NULL) ||
      (line = strstr (status, "\nTgid:")) == NULL)
    return tid;
  return (pid_t) g_ascii_strtoll (line + 6, NULL, 10);
}

ShmfsLocks *
shmfs_locks_new (void)
{
  ShmfsLocks *locks = g_new0 (ShmfsLocks, 1);

  g_mutex_init (&locks->lock);
  locks->held = g_array_new (FALSE, FALSE, sizeof (Holder));
  g_queue_init (&locks->waiters);
  return locks;
}

/* Answers a waiter that will not be granted. */
static void
refuse (Waiter *w)
{
  if (w->held != NULL)
    w->held (0, w->held_data);
  else
    fuse_reply_err (w->req, EINTR);
  g_free (w);
}

void
shmfs_locks_abort (ShmfsLocks *locks)
{
  GQueue waiters;

  g_mutex_lock (&locks->lock);
  waiters = locks->waiters;
  g_queue_init (&locks->waiters);
  g_mutex_unlock (&locks->lock);
  for (GList *l = waiters.head; l != NULL; l = l->next)
    refuse (l->data);
  g_queue_clear (&waiters);
}

void
shmfs_locks_free (ShmfsLocks *locks)
{
  if (locks == NULL)
    return;
  shmfs_locks_abort (locks);
  g_array_unref (locks->held);
  g_mutex_clear (&locks->lock);
  g_free (locks);
}

/* Another owner's lock that conflicts with owner taking type; lock held. */
static Holder *
conflict_locked (ShmfsLocks *locks, guint64 owner, int type)
{
  for (guint i = 0; i < locks->held->len; i++)
    {
      Holder *h = &g_array_index (locks->held, Holder, i);
      if (h->owner != owner && (type == F_WRLCK || h->type == F_WRLCK))
        return h;
    }
  return NULL;
}

static void
drop_locked (ShmfsLocks *locks, guint64 owner)
{
  for (guint i = 0; i < locks->held->len; i++)
    if (g_array_index (locks->held, Holder, i).owner == owner)
      {
        g_array_remove_index_fast (locks->held, i);
        return;
      }
}

static void
grant_locked (ShmfsLocks *locks, const Holder *want)
{
  drop_locked (locks, want->owner);   /* a conversion replaces the old lock */
  g_array_append_val (locks->held, *want);
}

static gboolean
held_by_other_locked (ShmfsLocks *locks, pid_t pid)
{
  for (guint i = 0; i < locks->held->len; i++)
    if (g_array_index (locks->held, Holder, i).pid != pid)
      return TRUE;
  return FALSE;
}

/* Grants queued requests that no longer conflict, oldest first; returns
 * them for answering outside the lock. */
static GSList *
wake_waiters_locked (ShmfsLocks *locks)
{
  GSList *granted = NULL;

  for (GList *l = locks->waiters.head; l != NULL;)
    {
      Waiter *w = l->data;
      GList *next = l->next;
      gboolean grantable;

      if (w->held != NULL)
        grantable = !held_by_other_locked (locks, w->want.pid);
      else
        grantable = conflict_locked (locks, w->want.owner, w->want.type) == NULL;
      if (grantable)
        {
          /* A hold's owner: tokens count down from the top, where no
           * kernel lock owner is. */
          if (w->held != NULL)
            w->want.owner = G_MAXUINT64 - __atomic_fetch_add (&next_token, 1, __ATOMIC_RELAXED);
          grant_locked (locks, &w->want);
          g_queue_delete_link (&locks->waiters, l);
          granted = g_slist_prepend (granted, w);
        }
      l = next;
    }
  return g_slist_reverse (granted);
}

/* Answers granted waiters.  A hold's function runs here and lets go of the
 * lock, which grants the next waiters: those are run by this loop, not
 * from inside the function, so that a queue of holds never nests. */
static void
reply_granted (GSList *granted)
{
  static __thread GQueue *pending;
  GQueue queue = G_QUEUE_INIT;
  Waiter *w;

  for (GSList *l = granted; l != NULL; l = l->next)
    {
      w = l->data;
      if (w->held == NULL)
        {
          fuse_reply_err (w->req, 0);
          g_free (w);
        }
      else
        g_queue_push_tail (pending != NULL ? pending : &queue, w);
    }
  g_slist_free (granted);
  if (pending != NULL)
    return;   /* an outer call runs them */
  pending = &queue;
  while ((w = g_queue_pop_head (&queue)) != NULL)
    {
      w->held (w->want.owner, w->held_data);
      g_free (w);
    }
  pending = NULL;
}

static void
interrupted (fuse_req_t req, void *data)
{
  ShmfsLocks *locks = data;
  Waiter *found = NULL;

  g_mutex_lock (&locks->lock);
  for (GList *l = locks->waiters.head; l != NULL; l = l->next)
    if (((Waiter *) l->data)->req == req)
      {
        found = l->data;
        g_queue_delete_link (&locks->waiters, l);
        break;
      }
  g_mutex_unlock (&locks->lock);
  if (found)
    refuse (found);
}

/* Queues w until it is granted or interrupted, answering it at once if
 * it already is either.  Called without the lock. */
static void
wait_for (ShmfsLocks *locks, Waiter *w)
{
  GSList *granted;

  /* Set before w is queued: an interrupt from now on either finds w in
   * the queue or leaves the flag tested below. */
  fuse_req_interrupt_func (w->req, interrupted, locks);
  g_mutex_lock (&locks->lock);
  if (fuse_req_interrupted (w->req))
    {
      g_mutex_unlock (&locks->lock);
      return refuse (w);
    }
  g_queue_push_tail (&locks->waiters, w);
  granted = wake_waiters_locked (locks);   /* free by now, perhaps */
  g_mutex_unlock (&locks->lock);
  reply_granted (granted);
}

void
shmfs_locks_set (ShmfsLocks *locks, fuse_req_t req, guint64 owner, pid_t pid,
                 int type, gboolean wait)
{
  Holder want = { owner, 0, type };
  GSList *granted = NULL;
  Waiter *w;

  if (type == F_UNLCK)
    {
      shmfs_locks_release (locks, owner);
      return (void) fuse_reply_err (req, 0);
    }
  want.pid = shmfs_thread_group_of (pid);
  g_mutex_lock (&locks->lock);
  if (conflict_locked (locks, owner, type) == NULL)
    {
      grant_locked (locks, &want);
      /* A downgrade may let readers in. */
      granted = wake_waiters_locked (locks);
      g_mutex_unlock (&locks->lock);
      fuse_reply_err (req, 0);
      return reply_granted (granted);
    }
  g_mutex_unlock (&locks->lock);
  if (!wait)
    return (void) fuse_reply_err (req, EAGAIN);
  w = g_new0 (Waiter, 1);
  w->req = req;
  w->want = want;
  wait_for (locks, w);
}

void
shmfs_locks_test (ShmfsLocks *locks, guint64 owner, int type, struct flock *lock)
{
  Holder *h;

  g_mutex_lock (&locks->lock);
  h = conflict_locked (locks, owner, type);
  if (h == NULL)
    lock->l_type = F_UNLCK;
  else
    {
      lock->l_type = (short) h->type;
      lock->l_whence = SEEK_SET;
      lock->l_start = 0;
      lock->l_len = 0;
      lock->l_pid = h->pid;
    }
  g_mutex_unlock (&locks->lock);
}

void
shmfs_locks_release (ShmfsLocks *locks, guint64 owner)
{
  GSList *granted;

  g_mutex_lock (&locks->lock);
  drop_locked (locks, owner);
  granted = wake_waiters_locked (locks);
  g_mutex_unlock (&locks->lock);
  reply_granted (granted);
}

void
shmfs_locks_hold (ShmfsLocks *locks, pid_t pid, fuse_req_t req,
                  ShmfsLocksHeldFunc held, gpointer user_data)
{
  Waiter *w = g_new0 (Waiter, 1);

  w->req = req;
  w->want.pid = shmfs_thread_group_of (pid);
  w->want.type = F_WRLCK;
  w->held = held;
  w->held_data = user_data;
  wait_for (locks, w);
}
