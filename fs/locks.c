/* locks.c — the daemon's lock table of an object. */
#include "config.h"

#include "locks.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

struct _ShmfsLocks {
  GMutex  lock;
  GCond   changed;
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
} Waiter;

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
  g_cond_init (&locks->changed);
  locks->held = g_array_new (FALSE, FALSE, sizeof (Holder));
  g_queue_init (&locks->waiters);
  return locks;
}

void
shmfs_locks_free (ShmfsLocks *locks)
{
  Waiter *w;

  if (locks == NULL)
    return;
  while ((w = g_queue_pop_head (&locks->waiters)) != NULL)
    {
      fuse_reply_err (w->req, EINTR);
      g_free (w);
    }
  g_array_unref (locks->held);
  g_cond_clear (&locks->changed);
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

/* Grants queued requests that no longer conflict, oldest first; returns
 * them for replying outside the lock. */
static GSList *
wake_waiters_locked (ShmfsLocks *locks)
{
  GSList *granted = NULL;

  for (GList *l = locks->waiters.head; l != NULL;)
    {
      Waiter *w = l->data;
      GList *next = l->next;

      if (conflict_locked (locks, w->want.owner, w->want.type) == NULL)
        {
          grant_locked (locks, &w->want);
          g_queue_delete_link (&locks->waiters, l);
          granted = g_slist_prepend (granted, w);
        }
      l = next;
    }
  g_cond_broadcast (&locks->changed);
  return g_slist_reverse (granted);
}

static void
reply_granted (GSList *granted)
{
  for (GSList *l = granted; l != NULL; l = l->next)
    {
      Waiter *w = l->data;
      fuse_reply_err (w->req, 0);
      g_free (w);
    }
  g_slist_free (granted);
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
    {
      fuse_reply_err (req, EINTR);
      g_free (found);
    }
}

void
shmfs_locks_set (ShmfsLocks *locks, fuse_req_t req, guint64 owner, pid_t pid,
                 int type, gboolean wait)
{
  Holder want = { owner, shmfs_thread_group_of (pid), type };
  GSList *granted = NULL;
  Waiter *w;

  g_mutex_lock (&locks->lock);
  if (type == F_UNLCK)
    {
      drop_locked (locks, owner);
      granted = wake_waiters_locked (locks);
      g_mutex_unlock (&locks->lock);
      fuse_reply_err (req, 0);
      return reply_granted (granted);
    }
  if (conflict_locked (locks, owner, type) == NULL)
    {
      grant_locked (locks, &want);
      /* A downgrade may let readers in. */
      granted = wake_waiters_locked (locks);
      g_mutex_unlock (&locks->lock);
      fuse_reply_err (req, 0);
      return reply_granted (granted);
    }
  if (!wait)
    {
      g_mutex_unlock (&locks->lock);
      return (void) fuse_reply_err (req, EAGAIN);
    }
  g_mutex_unlock (&locks->lock);
  fuse_req_interrupt_func (req, interrupted, locks);
  g_mutex_lock (&locks->lock);
  if (fuse_req_interrupted (req))
    {
      g_mutex_unlock (&locks->lock);
      return (void) fuse_reply_err (req, EINTR);
    }
  if (conflict_locked (locks, owner, type) == NULL)
    {
      grant_locked (locks, &want);
      granted = wake_waiters_locked (locks);
      g_mutex_unlock (&locks->lock);
      fuse_reply_err (req, 0);
      return reply_granted (granted);
    }
  w = g_new0 (Waiter, 1);
  w->req = req;
  w->want = want;
  g_queue_push_tail (&locks->waiters, w);
  g_mutex_unlock (&locks->lock);
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

static gboolean
held_by_other_locked (ShmfsLocks *locks, pid_t pid)
{
  for (guint i = 0; i < locks->held->len; i++)
    if (g_array_index (locks->held, Holder, i).pid != pid)
      return TRUE;
  return FALSE;
}

guint64
shmfs_locks_hold (ShmfsLocks *locks, pid_t pid, fuse_req_t req, struct fuse_session *se)
{
  static guint64 next_token = 0;
  Holder me = { 0, shmfs_thread_group_of (pid), F_WRLCK };

  g_mutex_lock (&locks->lock);
  while (held_by_other_locked (locks, me.pid))
    {
      /* A holder may never let go before unmount or a signal: look again
       * now and then, so neither waits on this worker forever. */
      g_cond_wait_until (&locks->changed, &locks->lock,
                         g_get_monotonic_time () + G_USEC_PER_SEC / 10);
      if (fuse_req_interrupted (req) || fuse_session_exited (se))
        {
          g_mutex_unlock (&locks->lock);
          return 0;
        }
    }
  /* Tokens count down from the top: no kernel lock owner is that large. */
  me.owner = G_MAXUINT64 - __atomic_fetch_add (&next_token, 1, __ATOMIC_RELAXED);
  g_array_append_val (locks->held, me);
  g_mutex_unlock (&locks->lock);
  return me.owner;
}
