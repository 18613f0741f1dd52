/* passthrough.c — backing ids and inotify of memfd writes (passthrough
 * mode).  See passthrough.h.
 *
 * Locks: an object's data lock (sync.h), then pt->lock, which protects the
 * table of watches.  pt->inotify_lock makes one drain at a time.
 */
#include "config.h"

#include "passthrough.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <string.h>
#include <unistd.h>

struct _ShmfsPassthrough {
  GMutex      lock;
  int         inotify_fd;         /* writes to open memfds, or -1 */
  int         inotify_wake;       /* eventfd: stop the inotify thread */
  GThread    *inotify_thread;
  GMutex      inotify_lock;       /* one drain at a time, events in order */
  GHashTable *watches;            /* wd -> ShmfsSync* (referenced); lock */
  void      (*changed) (gpointer user_data, gpointer owner);
  gpointer    changed_data;
};

/* An object's passthrough state; its sync's data lock. */
typedef struct {
  int         backing_id;         /* the registered memfd */
  guint       backing_opens;
  int         wd;                 /* inotify watch of the memfd, or -1 */
} Backing;

static gpointer
backing_new (void)
{
  Backing *b = g_new0 (Backing, 1);

  b->wd = -1;
  return b;
}

/* The object's state; data lock held. */
static Backing *
backing_locked (ShmfsSync *sync)
{
  return shmfs_sync_state_locked (sync, backing_new, g_free);
}

ShmfsPassthrough *
shmfs_passthrough_new (void)
{
  ShmfsPassthrough *pt = g_new0 (ShmfsPassthrough, 1);

  g_mutex_init (&pt->lock);
  g_mutex_init (&pt->inotify_lock);
  pt->watches = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) shmfs_sync_unref);
  pt->inotify_fd = -1;
  pt->inotify_wake = -1;
  return pt;
}

/* Handles the inotify events queued so far.  The kernel queues them inside
 * write(2), so after a drain every write that has returned is accounted.
 * Watches are one-shot (an event on each write costs a writer more than
 * its write): the first write after the watch was set ends it, until a
 * reader or a poller sets it again (shmfs_passthrough_settle). */
static void
drain_inotify (ShmfsPassthrough *pt)
{
  char buf[4096] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
  ssize_t n;

  g_mutex_lock (&pt->inotify_lock);
  while ((n = read (pt->inotify_fd, buf, sizeof buf)) > 0)
    for (char *p = buf; p < buf + n;)
      {
        struct inotify_event *ev = (struct inotify_event *) p;
        ShmfsSync *sync;
        Backing *b;

        p += sizeof *ev + ev->len;
        /* IN_IGNORED of a removed watch may name a number reused since. */
        if (!(ev->mask & IN_MODIFY))
          continue;
        g_mutex_lock (&pt->lock);
        sync = g_hash_table_lookup (pt->watches, GINT_TO_POINTER (ev->wd));
        if (sync != NULL)
          shmfs_sync_ref (sync);
        g_hash_table_remove (pt->watches, GINT_TO_POINTER (ev->wd));   /* fired */
        g_mutex_unlock (&pt->lock);
        if (sync == NULL)
          continue;   /* unwatched meanwhile */
        shmfs_sync_lock (sync);
        b = backing_locked (sync);
        if (b->wd == ev->wd)
          b->wd = -1;
        shmfs_sync_unlock (sync);
        shm_object_bump_version (shmfs_sync_get_object (sync));
        pt->changed (pt->changed_data, shmfs_sync_get_owner (sync));
        shmfs_sync_unref (sync);
      }
  g_mutex_unlock (&pt->inotify_lock);
}

/* In passthrough mode the kernel writes memfds without the daemon; inotify
 * tells it, so that pollers wake (mapped stores make no event). */
static gpointer
inotify_thread (gpointer data)
{
  ShmfsPassthrough *pt = data;
  struct pollfd fds[2] = { { pt->inotify_fd, POLLIN, 0 }, { pt->inotify_wake, POLLIN, 0 } };

  for (;;)
    {
      if (poll (fds, 2, -1) < 0 && errno != EINTR)
        return NULL;
      if (fds[1].revents != 0)
        return NULL;   /* stopping */
      drain_inotify (pt);
    }
}

void
shmfs_passthrough_start (ShmfsPassthrough *pt,
                         void (*changed) (gpointer user_data, gpointer owner), gpointer user_data)
{
  /* The thread starts here, in the daemon that serves (fuse_daemonize
   * forks before init). */
  g_mutex_lock (&pt->lock);
  pt->changed = changed;
  pt->changed_data = user_data;
  if (pt->inotify_fd < 0 &&
      (pt->inotify_fd = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK)) >= 0 &&
      (pt->inotify_wake = eventfd (0, EFD_CLOEXEC)) >= 0)
    pt->inotify_thread = g_thread_new ("shmfs-inotify", inotify_thread, pt);
  g_mutex_unlock (&pt->lock);
}

void
shmfs_passthrough_stop (ShmfsPassthrough *pt)
{
  /* Its callbacks use the session: it ends before the session does.  No
   * request runs any more (the loop has ended), so none drains meanwhile. */
  if (pt->inotify_thread != NULL)
    {
      guint64 one = 1;
      if (write (pt->inotify_wake, &one, sizeof one) == sizeof one)
        g_thread_join (pt->inotify_thread);
      pt->inotify_thread = NULL;
    }
}

void
shmfs_passthrough_free (ShmfsPassthrough *pt)
{
  if (pt == NULL)
    return;
  shmfs_passthrough_stop (pt);
  if (pt->inotify_fd >= 0)
    close (pt->inotify_fd);
  if (pt->inotify_wake >= 0)
    close (pt->inotify_wake);
  g_hash_table_unref (pt->watches);
  g_mutex_clear (&pt->lock);
  g_mutex_clear (&pt->inotify_lock);
  g_free (pt);
}

/* data lock held. */
static void
watch_memfd (ShmfsPassthrough *pt, ShmfsSync *sync, int fd)
{
  g_autofree char *path = g_strdup_printf ("/proc/self/fd/%d", fd);
  Backing *b = backing_locked (sync);

  if (pt->inotify_fd < 0)
    return;
  b->wd = inotify_add_watch (pt->inotify_fd, path, IN_MODIFY | IN_ONESHOT);
  if (b->wd < 0)
    return;   /* out of watches: such writes wake no poller (docs/semantics.md) */
  g_mutex_lock (&pt->lock);
  g_hash_table_insert (pt->watches, GINT_TO_POINTER (b->wd), shmfs_sync_ref (sync));
  g_mutex_unlock (&pt->lock);
}

/* Sets the watch again if it fired and the memfd is open for passthrough;
 * data lock held. */
static void
watch_locked (ShmfsPassthrough *pt, ShmfsSync *sync)
{
  Backing *b = backing_locked (sync);
  int fd = shm_object_get_fd (shmfs_sync_get_object (sync));

  if (b->backing_opens > 0 && b->wd < 0 && fd >= 0)
    watch_memfd (pt, sync, fd);
}

/* data lock held. */
static void
unwatch_memfd (ShmfsPassthrough *pt, ShmfsSync *sync)
{
  Backing *b = backing_locked (sync);

  if (b->wd < 0)
    return;
  /* Before the watch goes, so that its number is not anybody else's yet.
   * The table's reference is never the last: the caller holds one. */
  g_mutex_lock (&pt->lock);
  g_hash_table_remove (pt->watches, GINT_TO_POINTER (b->wd));
  g_mutex_unlock (&pt->lock);
  inotify_rm_watch (pt->inotify_fd, b->wd);   /* EINVAL if it fired */
  b->wd = -1;
}

void
shmfs_passthrough_settle (ShmfsPassthrough *pt, ShmfsSync *sync)
{
  if (pt->inotify_thread == NULL)
    return;
  /* Drained first: a watch that fired is only known to be gone once its
   * event is read. */
  drain_inotify (pt);
  if (sync != NULL)
    {
      shmfs_sync_lock (sync);
      watch_locked (pt, sync);
      shmfs_sync_unlock (sync);
    }
}

int
shmfs_passthrough_backing_open (ShmfsPassthrough *pt, ShmfsSync *sync, fuse_req_t req)
{
  ShmObject *obj = shmfs_sync_get_object (sync);
  int id = 0, fd = 0;
  Backing *b;

  shmfs_sync_lock (sync);
  b = backing_locked (sync);
  /* Small objects live in slab slots: passthrough needs a file of their own. */
  if (shm_object_get_fd (obj) < 0)
    fd = shm_object_own_region (obj, shm_backing_memfd (), NULL);
  if (fd >= 0 && b->backing_opens == 0)
    {
      /* The fd was closed at the last release: open the memfd again. */
      if ((fd = shm_object_reopen_fd (obj)) >= 0)
        {
          errno = EIO;
          if ((b->backing_id = fuse_passthrough_open (req, fd)) > 0)
            watch_memfd (pt, sync, fd);
          else
            fd = -errno;
        }
    }
  if (fd >= 0)
    {
      id = b->backing_id;
      b->backing_opens++;
    }
  shmfs_sync_unlock (sync);
  return fd < 0 ? fd : id;
}

void
shmfs_passthrough_backing_release (ShmfsPassthrough *pt, ShmfsSync *sync, fuse_req_t req)
{
  Backing *b;

  /* The writes made through this file are queued; account them while
   * their watch still stands. */
  shmfs_passthrough_settle (pt, NULL);
  shmfs_sync_lock (sync);
  b = backing_locked (sync);
  g_warn_if_fail (b->backing_opens > 0);
  /* The kernel's open files keep their own reference to the backing. */
  if (--b->backing_opens == 0)
    {
      fuse_passthrough_close (req, b->backing_id);
      b->backing_id = 0;
      unwatch_memfd (pt, sync);
      /* Mappings may outlive every open (a passthrough mapping holds the
       * memfd itself), so the bytes stay where they are; only the fd goes. */
      shm_object_close_fd (shmfs_sync_get_object (sync));
    }
  shmfs_sync_unlock (sync);
}

void
shmfs_passthrough_reply_read (ShmfsSync *sync, fuse_req_t req, guint64 off, guint64 len)
{
  g_autofree guint8 *buf = g_malloc (len);

  shmfs_sync_lock (sync);
  shmfs_sync_read_locked (sync, off, buf, len);
  fuse_reply_buf (req, (const char *) buf, len);
  shmfs_sync_unlock (sync);
}

void
shmfs_passthrough_client_write (ShmfsSync *sync, guint64 off, const void *data, guint64 len)
{
  shmfs_sync_lock (sync);
  shmfs_sync_write_locked (sync, off, data, len);
  shmfs_sync_unlock (sync);
  shm_object_bump_version (shmfs_sync_get_object (sync));
}

void
shmfs_passthrough_snapshot (ShmfsSync *sync, void *buf, guint64 off, guint64 len)
{
  shmfs_sync_lock_store (sync);
  shmfs_sync_lock (sync);
  shmfs_sync_read_locked (sync, off, buf, len);
  shmfs_sync_unlock (sync);
  shmfs_sync_unlock_store (sync);
}

void
shmfs_passthrough_store (ShmfsSync *sync, guint64 off, const void *data, guint64 len)
{
  ShmObject *obj = shmfs_sync_get_object (sync);

  shmfs_sync_lock_store (sync);
  shmfs_sync_lock (sync);
  if (shmfs_sync_has_bytes_locked (sync, off, len))
    memcpy (shm_object_get_data (obj) + off, data, len);   /* no inotify event */
  shmfs_sync_unlock (sync);
  shm_object_bump_version (obj);
  shmfs_sync_unlock_store (sync);
}

gboolean
shmfs_passthrough_modify (ShmfsSync *sync, guint64 off, guint64 len,
                          gboolean (*modify) (guint8 *bytes, gpointer user_data),
                          gpointer user_data)
{
  ShmObject *obj = shmfs_sync_get_object (sync);
  gboolean changed;

  /* The memfd is what clients map: modify it in place (the data lock only
   * keeps a small object from moving to its own memfd meanwhile). */
  shmfs_sync_lock (sync);
  changed = shmfs_sync_has_bytes_locked (sync, off, len) &&
            modify (shm_object_get_data (obj) + off, user_data);
  shmfs_sync_unlock (sync);
  if (changed)
    shm_object_bump_version (obj);
  return changed;
}
