/* lifetime.c — a pidfd watcher for objects bound to processes. */
#include "config.h"

#include "lifetime.h"
#include "locks.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

struct _ShmfsLifetimes {
  ShmfsExpire expire;
  gpointer    user_data;
  int         epoll_fd;
  int         wake_fd;         /* eventfd: stop */
  GThread    *thread;
  GMutex      lock;
  GHashTable *watches;         /* tgid -> Watch*; lock */
  GHashTable *bound;           /* node id (guint64*) -> tgid; lock */
};

typedef struct {
  int         pidfd;
  GHashTable *node_ids;        /* set of guint64* */
} Watch;

static void
watch_free (gpointer data)
{
  Watch *w = data;

  close (w->pidfd);
  g_hash_table_unref (w->node_ids);
  g_free (w);
}

/* Forgets node_id's binding, and the watch of its process if it was the
 * last; lock held. */
static void
unbind_locked (ShmfsLifetimes *l, guint64 node_id)
{
  gpointer tgid;
  Watch *w;

  if (!g_hash_table_lookup_extended (l->bound, &node_id, NULL, &tgid))
    return;
  w = g_hash_table_lookup (l->watches, tgid);
  g_hash_table_remove (w->node_ids, &node_id);
  g_hash_table_remove (l->bound, &node_id);   /* frees the key both share */
  if (g_hash_table_size (w->node_ids) == 0)
    {
      epoll_ctl (l->epoll_fd, EPOLL_CTL_DEL, w->pidfd, NULL);
      g_hash_table_remove (l->watches, tgid);
    }
}

static gpointer
watcher_thread (gpointer data)
{
  ShmfsLifetimes *l = data;
  struct epoll_event events[16];

  for (;;)
    {
      int n = epoll_wait (l->epoll_fd, events, G_N_ELEMENTS (events), -1);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          g_warning ("lifetime watcher: epoll_wait: %s", g_strerror (errno));
          return NULL;
        }
      for (int i = 0; i < n; i++)
        {
          pid_t tgid = (pid_t) events[i].data.u64;
          g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (guint64));
          GHashTableIter iter;
          gpointer id;
          Watch *w;

          if (events[i].data.u64 == 0)
            return NULL;   /* the wake eventfd: stop */
          g_mutex_lock (&l->lock);
          w = g_hash_table_lookup (l->watches, GINT_TO_POINTER (tgid));
          if (w != NULL)
            {
              g_hash_table_iter_init (&iter, w->node_ids);
              while (g_hash_table_iter_next (&iter, &id, NULL))
                g_array_append_val (ids, *(guint64 *) id);
              for (guint j = 0; j < ids->len; j++)
                unbind_locked (l, g_array_index (ids, guint64, j));   /* the last frees w */
            }
          g_mutex_unlock (&l->lock);
          for (guint j = 0; j < ids->len; j++)
            l->expire (l->user_data, g_array_index (ids, guint64, j), tgid);
        }
    }
}

ShmfsLifetimes *
shmfs_lifetimes_new (ShmfsExpire expire, gpointer user_data, GError **error)
{
  ShmfsLifetimes *l = g_new0 (ShmfsLifetimes, 1);
  struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };

  l->expire = expire;
  l->user_data = user_data;
  g_mutex_init (&l->lock);
  l->watches = g_hash_table_new_full (NULL, NULL, NULL, watch_free);
  l->bound = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  l->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
  l->wake_fd = eventfd (0, EFD_CLOEXEC);
  if (l->epoll_fd < 0 || l->wake_fd < 0 ||
      epoll_ctl (l->epoll_fd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   "lifetime watcher: %s", g_strerror (errno));
      if (l->epoll_fd >= 0)
        close (l->epoll_fd);
      if (l->wake_fd >= 0)
        close (l->wake_fd);
      g_hash_table_unref (l->watches);
      g_hash_table_unref (l->bound);
      g_free (l);
      return NULL;
    }
  return l;
}

void
shmfs_lifetimes_start (ShmfsLifetimes *l)
{
  l->thread = g_thread_new ("shmfs-lifetime", watcher_thread, l);
}

void
shmfs_lifetimes_free (ShmfsLifetimes *l)
{
  guint64 one = 1;

  if (l == NULL)
    return;
  if (l->thread != NULL)
    {
      if (write (l->wake_fd, &one, sizeof one) != sizeof one)
        g_warning ("lifetime watcher: cannot wake: %s", g_strerror (errno));
      g_thread_join (l->thread);
    }
  g_hash_table_unref (l->bound);
  g_hash_table_unref (l->watches);
  close (l->epoll_fd);
  close (l->wake_fd);
  g_mutex_clear (&l->lock);
  g_free (l);
}

int
shmfs_lifetimes_bind (ShmfsLifetimes *l, guint64 node_id, pid_t pid, pid_t *tgid)
{
  Watch *w;
  int err = 0;

  if (pid <= 0)
    return -ESRCH;
  *tgid = shmfs_thread_group_of (pid);

  g_mutex_lock (&l->lock);
  if (g_hash_table_lookup (l->bound, &node_id) == GINT_TO_POINTER (*tgid))
    {
      g_mutex_unlock (&l->lock);
      return 0;   /* bound to it already */
    }
  w = g_hash_table_lookup (l->watches, GINT_TO_POINTER (*tgid));
  if (w == NULL)
    {
      int pidfd = (int) syscall (SYS_pidfd_open, *tgid, 0);
      struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (guint64) *tgid };

      if (pidfd < 0)
        err = -errno;
      else if (epoll_ctl (l->epoll_fd, EPOLL_CTL_ADD, pidfd, &ev) < 0)
        {
          err = -errno;
          close (pidfd);
        }
      else
        {
          w = g_new0 (Watch, 1);
          w->pidfd = pidfd;
          w->node_ids = g_hash_table_new (g_int64_hash, g_int64_equal);
          g_hash_table_insert (l->watches, GINT_TO_POINTER (*tgid), w);
        }
    }
  if (w != NULL)
    {
      guint64 *key;

      unbind_locked (l, node_id);   /* from another process: w stays */
      key = g_memdup2 (&node_id, sizeof node_id);
      g_hash_table_add (w->node_ids, key);
      g_hash_table_insert (l->bound, key, GINT_TO_POINTER (*tgid));
    }
  g_mutex_unlock (&l->lock);
  return err;
}

void
shmfs_lifetimes_unbind (ShmfsLifetimes *l, guint64 node_id)
{
  g_mutex_lock (&l->lock);
  unbind_locked (l, node_id);
  g_mutex_unlock (&l->lock);
}
