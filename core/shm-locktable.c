/* shm-locktable.c — the lock of one object: owners, modes and waiters. */
#include "config.h"

#include "shm-locktable.h"

#include <errno.h>

struct _ShmLockTable {
  GMutex  lock;
  GArray *held;          /* Holder; lock */
  GQueue  waiters;       /* Waiter*, oldest first; lock */
  guint64 tokens;        /* hold tokens handed out; lock */
  ShmLockTableWithdrawnFunc withdrawn;
};

typedef struct {
  guint64     owner;
  pid_t       pid;
  ShmLockMode mode;
} Holder;

typedef struct {
  gconstpointer    waiter;
  Holder           want;
  gboolean         hold;   /* a hold (shm_locktable_hold) */
  ShmLockTableFunc func;
  gpointer         user_data;
} Waiter;

ShmLockTable *
shm_locktable_new (ShmLockTableWithdrawnFunc withdrawn)
{
  ShmLockTable *t = g_new0 (ShmLockTable, 1);

  g_mutex_init (&t->lock);
  t->held = g_array_new (FALSE, FALSE, sizeof (Holder));
  g_queue_init (&t->waiters);
  t->withdrawn = withdrawn;
  return t;
}

/* Answers a waiter that will not be granted. */
static void
refuse (Waiter *w)
{
  w->func (w->user_data, -EINTR, 0);
  g_free (w);
}

void
shm_locktable_abort (ShmLockTable *t)
{
  GQueue waiters;

  g_mutex_lock (&t->lock);
  waiters = t->waiters;
  g_queue_init (&t->waiters);
  g_mutex_unlock (&t->lock);
  for (GList *l = waiters.head; l != NULL; l = l->next)
    refuse (l->data);
  g_queue_clear (&waiters);
}

void
shm_locktable_free (ShmLockTable *t)
{
  if (t == NULL)
    return;
  shm_locktable_abort (t);
  g_array_unref (t->held);
  g_mutex_clear (&t->lock);
  g_free (t);
}

/* Another owner's lock that conflicts with owner taking mode; lock held. */
static Holder *
conflict_locked (ShmLockTable *t, guint64 owner, ShmLockMode mode)
{
  for (guint i = 0; i < t->held->len; i++)
    {
      Holder *h = &g_array_index (t->held, Holder, i);
      if (h->owner != owner && (mode == SHM_LOCK_WRITE || h->mode == SHM_LOCK_WRITE))
        return h;
    }
  return NULL;
}

static void
drop_locked (ShmLockTable *t, guint64 owner)
{
  for (guint i = 0; i < t->held->len; i++)
    if (g_array_index (t->held, Holder, i).owner == owner)
      {
        g_array_remove_index_fast (t->held, i);
        return;
      }
}

static void
grant_locked (ShmLockTable *t, const Holder *want)
{
  drop_locked (t, want->owner);   /* a conversion replaces the old lock */
  g_array_append_val (t->held, *want);
}

static gboolean
held_by_other_locked (ShmLockTable *t, pid_t pid)
{
  for (guint i = 0; i < t->held->len; i++)
    if (g_array_index (t->held, Holder, i).pid != pid)
      return TRUE;
  return FALSE;
}

/* Grants queued requests that no longer conflict, oldest first; returns
 * them for answering outside the lock. */
static GSList *
wake_waiters_locked (ShmLockTable *t)
{
  GSList *granted = NULL;

  for (GList *l = t->waiters.head; l != NULL;)
    {
      Waiter *w = l->data;
      GList *next = l->next;
      gboolean grantable;

      if (w->hold)
        grantable = !held_by_other_locked (t, w->want.pid);
      else
        grantable = conflict_locked (t, w->want.owner, w->want.mode) == NULL;
      if (grantable)
        {
          /* A hold's owner: tokens count down from the top, where no
           * kernel lock owner is. */
          if (w->hold)
            w->want.owner = G_MAXUINT64 - t->tokens++;
          grant_locked (t, &w->want);
          g_queue_delete_link (&t->waiters, l);
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
answer_granted (GSList *granted)
{
  static __thread GQueue *pending;
  GQueue queue = G_QUEUE_INIT;
  Waiter *w;

  for (GSList *l = granted; l != NULL; l = l->next)
    {
      w = l->data;
      if (!w->hold)
        {
          w->func (w->user_data, 0, w->want.owner);
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
      w->func (w->user_data, 0, w->want.owner);
      g_free (w);
    }
  pending = NULL;
}

/* Queues w until it is granted or refused, answering it at once if it is
 * either already.  Called without the lock. */
static void
wait_for (ShmLockTable *t, Waiter *w)
{
  GSList *granted;

  g_mutex_lock (&t->lock);
  if (t->withdrawn != NULL && t->withdrawn (w->waiter))
    {
      g_mutex_unlock (&t->lock);
      return refuse (w);
    }
  g_queue_push_tail (&t->waiters, w);
  granted = wake_waiters_locked (t);   /* free by now, perhaps */
  g_mutex_unlock (&t->lock);
  answer_granted (granted);
}

int
shm_locktable_lock (ShmLockTable *t, gconstpointer waiter, guint64 owner, pid_t pid,
                    ShmLockMode mode, gboolean wait, ShmLockTableFunc func,
                    gpointer user_data)
{
  Holder want = { owner, pid, mode };
  GSList *granted;
  Waiter *w;

  g_mutex_lock (&t->lock);
  if (conflict_locked (t, owner, mode) == NULL)
    {
      grant_locked (t, &want);
      /* A downgrade may let readers in. */
      granted = wake_waiters_locked (t);
      g_mutex_unlock (&t->lock);
      func (user_data, 0, owner);
      answer_granted (granted);
      return 0;
    }
  g_mutex_unlock (&t->lock);
  if (!wait)
    return -EAGAIN;
  w = g_new0 (Waiter, 1);
  w->waiter = waiter;
  w->want = want;
  w->func = func;
  w->user_data = user_data;
  wait_for (t, w);
  return 0;
}

void
shm_locktable_hold (ShmLockTable *t, gconstpointer waiter, pid_t pid,
                    ShmLockTableFunc func, gpointer user_data)
{
  Waiter *w = g_new0 (Waiter, 1);

  w->waiter = waiter;
  w->want.pid = pid;
  w->want.mode = SHM_LOCK_WRITE;
  w->hold = TRUE;
  w->func = func;
  w->user_data = user_data;
  wait_for (t, w);
}

gboolean
shm_locktable_cancel (ShmLockTable *t, gconstpointer waiter)
{
  Waiter *found = NULL;

  g_mutex_lock (&t->lock);
  for (GList *l = t->waiters.head; l != NULL; l = l->next)
    if (((Waiter *) l->data)->waiter == waiter)
      {
        found = l->data;
        g_queue_delete_link (&t->waiters, l);
        break;
      }
  g_mutex_unlock (&t->lock);
  if (found != NULL)
    refuse (found);
  return found != NULL;
}

void
shm_locktable_release (ShmLockTable *t, guint64 owner)
{
  GSList *granted;

  g_mutex_lock (&t->lock);
  drop_locked (t, owner);
  granted = wake_waiters_locked (t);
  g_mutex_unlock (&t->lock);
  answer_granted (granted);
}

gboolean
shm_locktable_test (ShmLockTable *t, guint64 owner, ShmLockMode mode,
                    ShmLockMode *held_mode, pid_t *held_pid)
{
  Holder *h;

  g_mutex_lock (&t->lock);
  h = conflict_locked (t, owner, mode);
  if (h != NULL && held_mode != NULL)
    *held_mode = h->mode;
  if (h != NULL && held_pid != NULL)
    *held_pid = h->pid;
  g_mutex_unlock (&t->lock);
  return h != NULL;
}
