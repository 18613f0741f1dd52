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
};

typedef struct {
  int     pidfd;
  GArray *node_ids;            /* guint64 */
} Watch;

static void
watch_free (gpointer data)
{
  Watch *w = data;

  close (w->pidfd);
  g_array_unref (w->node_ids);
  g_free (w);
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
          Watch *w;

          if (events[i].data.u64 == 0)
            return NULL;   /* the wake eventfd: stop */
          g_mutex_lock (&l->lock);
          w = g_hash_table_lookup (l->watches, GINT_TO_POINTER (tgid));
          if (w != NULL)
            g_hash_table_steal (l->watches, GINT_TO_POINTER (tgid));
          g_mutex_unlock (&l->lock);
          if (w == NULL)
            continue;
          epoll_ctl (l->epoll_fd, EPOLL_CTL_DEL, w->pidfd, NULL);
          for (guint j = 0; j < w->node_ids->len; j++)
            l->expire (l->user_data, g_array_index (w->node_ids, guint64, j), tgid);
          watch_free (w);
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
      g_free (l);
      return NULL;
    }
  l->thread = g_thread_new ("shmfs-lifetime", watcher_thread, l);
  return l;
}

void
shmfs_lifetimes_free (ShmfsLifetimes *l)
{
  guint64 one = 1;

  if (l == NULL)
    return;
  if (write (l->wake_fd, &one, sizeof one) != sizeof one)
    g_warning ("lifetime watcher: cannot wake: %s", g_strerror (errno));
  g_thread_join (l->thread);
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
          w->node_ids = g_array_new (FALSE, FALSE, sizeof (guint64));
          g_hash_table_insert (l->watches, GINT_TO_POINTER (*tgid), w);
        }
    }
  if (w != NULL)
    g_array_append_val (w->node_ids, node_id);
  g_mutex_unlock (&l->lock);
  return err;
}
