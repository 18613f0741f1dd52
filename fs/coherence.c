/* coherence.c — cached-mode coherence between the memfds and the kernel's
 * page cache of the binary views.  See coherence.h for the scheme.
 *
 * Locks, outermost first:
 *   sync->store_lock  serializes what the daemon itself does to an object's
 *                     bytes (stores, snapshots, resyncs).  Never taken by a
 *                     handler of a client write or writeback: a daemon store
 *                     waits on page locks that a client write(2) holds until
 *                     its FUSE_WRITE is answered, and that a write fault on a
 *                     page under writeback holds until that writeback is.
 *   sync->data_lock   protects the memfd bytes and the counters below.
 *   c->lock           protects the table of retrieve requests in flight.
 */
#include "config.h"

#include "coherence.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define RETRIEVE_TIMEOUT_US (2 * G_USEC_PER_SEC)
#define STORE_CHUNK (1024 * 1024)
#define RESYNC_TRIES 8

struct _ShmfsCoherence {
  GMutex      lock;
  GCond       cond;
  struct fuse_session *se;        /* NULL when stopped; lock */
  gboolean    stopped;            /* lock */
  GHashTable *requests;           /* cookie -> RetrieveRequest*; lock */
  guint64     next_cookie;        /* lock */
  size_t      max_chunk;
  gboolean    passthrough;        /* clients use the memfds themselves */
  int         inotify_fd;         /* passthrough: writes to open memfds */
  int         inotify_wake;       /* eventfd: stop the inotify thread */
  GThread    *inotify_thread;
  GMutex      inotify_lock;       /* one drain at a time, events in order */
  GHashTable *watches;            /* wd -> ShmfsSync* (referenced); lock */
  void      (*changed) (gpointer user_data, gpointer owner);
  gpointer    changed_data;
  GThreadPool *resync_pool;
  GThreadPool *entry_pool;        /* entry invalidations, off the request path */
};

typedef struct {
  fuse_ino_t parent;
  char       name[];
} EntryJob;

struct _ShmfsSync {
  gint        ref_count;
  ShmObject  *obj;
  fuse_ino_t  raw_ino;            /* data_lock */
  GMutex      store_lock;
  GMutex      data_lock;
  guint       writers;            /* open raw handles that can write; data_lock */
  gboolean    memfd_behind;       /* the memfd may lag the pages; data_lock */
  gboolean    resync_queued;      /* a resync job waits; data_lock */
  guint64    *maybe_cached;       /* one bit a page; data_lock */
  guint64    *stored;             /* pages a daemon store reached since their
                                     last writeback; data_lock */
  guint32    *gens;               /* per page, bumped by every write into the
                                     memfd (cached mode); data_lock */
  gsize       n_pages;
  int         backing_id;         /* passthrough: registered memfd; data_lock */
  guint       backing_opens;      /* data_lock */
  int         wd;                 /* inotify watch of the memfd, or -1; data_lock */
  gpointer    owner;              /* passed to the changed callback */
};

typedef struct {
  guint8     *buf;                /* bytes from base on; replies land here */
  guint64     base;
  guint       pending;            /* requests not answered yet; c->lock */
  gboolean    failed;             /* a request could not be sent */
  GPtrArray  *done;               /* answered requests; c->lock */
} RetrieveBatch;

typedef struct {
  RetrieveBatch *batch;
  guint64     cookie;
  guint64     off, len;
  guint64     got;                /* bytes the reply carried */
} RetrieveRequest;

static gsize page_size;

static void resync_job (gpointer data, gpointer user_data);
static void entry_job (gpointer data, gpointer user_data);
static void resync (ShmfsCoherence *c, ShmfsSync *sync);
static void schedule_resync (ShmfsCoherence *c, ShmfsSync *sync);
static gboolean repair_range (ShmfsCoherence *c, ShmfsSync *sync, guint64 off, guint64 len);

ShmfsCoherence *
shmfs_coherence_new (void)
{
  ShmfsCoherence *c = g_new0 (ShmfsCoherence, 1);

  page_size = (gsize) sysconf (_SC_PAGESIZE);
  g_mutex_init (&c->lock);
  g_mutex_init (&c->inotify_lock);
  g_cond_init (&c->cond);
  c->requests = g_hash_table_new (g_int64_hash, g_int64_equal);
  c->watches = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) shmfs_sync_unref);
  c->inotify_fd = -1;
  c->inotify_wake = -1;
  c->next_cookie = 1;
  c->max_chunk = 128 * 1024;
  return c;
}

/* Handles the inotify events queued so far.  The kernel queues them inside
 * write(2), so after a drain every write that has returned is accounted.
 * Watches are one-shot (an event on each write costs a writer more than
 * its write): the first write after the watch was set ends it, until a
 * reader or a poller sets it again (shmfs_coherence_watch). */
static void
drain_inotify (ShmfsCoherence *c)
{
  char buf[4096] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
  ssize_t n;

  g_mutex_lock (&c->inotify_lock);
  while ((n = read (c->inotify_fd, buf, sizeof buf)) > 0)
    for (char *p = buf; p < buf + n;)
      {
        struct inotify_event *ev = (struct inotify_event *) p;
        ShmfsSync *sync;

        p += sizeof *ev + ev->len;
        /* IN_IGNORED of a removed watch may name a number reused since. */
        if (!(ev->mask & IN_MODIFY))
          continue;
        g_mutex_lock (&c->lock);
        sync = g_hash_table_lookup (c->watches, GINT_TO_POINTER (ev->wd));
        if (sync != NULL)
          shmfs_sync_ref (sync);
        g_hash_table_remove (c->watches, GINT_TO_POINTER (ev->wd));   /* fired */
        g_mutex_unlock (&c->lock);
        if (sync == NULL)
          continue;   /* unwatched meanwhile */
        g_mutex_lock (&sync->data_lock);
        if (sync->wd == ev->wd)
          sync->wd = -1;
        g_mutex_unlock (&sync->data_lock);
        shm_object_bump_version (sync->obj);
        c->changed (c->changed_data, sync->owner);
        shmfs_sync_unref (sync);
      }
  g_mutex_unlock (&c->inotify_lock);
}

/* In passthrough mode the kernel writes memfds without the daemon; inotify
 * tells it, so that pollers wake (mapped stores make no event). */
static gpointer
inotify_thread (gpointer data)
{
  ShmfsCoherence *c = data;
  struct pollfd fds[2] = { { c->inotify_fd, POLLIN, 0 }, { c->inotify_wake, POLLIN, 0 } };

  for (;;)
    {
      if (poll (fds, 2, -1) < 0 && errno != EINTR)
        return NULL;
      if (fds[1].revents != 0)
        return NULL;   /* stopping */
      drain_inotify (c);
    }
}

static void watch_locked (ShmfsCoherence *c, ShmfsSync *sync);

void
shmfs_coherence_settle (ShmfsCoherence *c, ShmfsSync *sync)
{
  if (c->inotify_thread == NULL)
    return;
  /* Drained first: a watch that fired is only known to be gone once its
   * event is read. */
  drain_inotify (c);
  if (sync != NULL)
    {
      g_mutex_lock (&sync->data_lock);
      watch_locked (c, sync);
      g_mutex_unlock (&sync->data_lock);
    }
}

void
shmfs_coherence_start (ShmfsCoherence *c, struct fuse_session *se, size_t max_write,
                       gboolean passthrough,
                       void (*changed) (gpointer user_data, gpointer owner), gpointer user_data)
{
  /* Threads start here, in the daemon that serves (fuse_daemonize forks
   * before init).  Jobs still queued at exit are freed with the pools. */
  if (c->resync_pool == NULL)
    {
      c->resync_pool = g_thread_pool_new_full (resync_job, c, (GDestroyNotify) shmfs_sync_unref,
                                               1, FALSE, NULL);
      c->entry_pool = g_thread_pool_new_full (entry_job, c, g_free, 1, FALSE, NULL);
    }
  g_mutex_lock (&c->lock);
  c->se = se;
  c->passthrough = passthrough;
  c->changed = changed;
  c->changed_data = user_data;
  if (passthrough && c->inotify_fd < 0 &&
      (c->inotify_fd = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK)) >= 0 &&
      (c->inotify_wake = eventfd (0, EFD_CLOEXEC)) >= 0)
    c->inotify_thread = g_thread_new ("shmfs-inotify", inotify_thread, c);
  if (max_write >= page_size)
    c->max_chunk = max_write - max_write % page_size;
  g_mutex_unlock (&c->lock);
}

void
shmfs_coherence_stop (ShmfsCoherence *c)
{
  g_mutex_lock (&c->lock);
  c->se = NULL;
  c->stopped = TRUE;
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
  /* Its callbacks use the session: it ends before the session does.  No
   * request runs any more (the loop has ended), so none drains meanwhile. */
  if (c->inotify_thread != NULL)
    {
      guint64 one = 1;
      if (write (c->inotify_wake, &one, sizeof one) == sizeof one)
        g_thread_join (c->inotify_thread);
      c->inotify_thread = NULL;
    }
}

void
shmfs_coherence_free (ShmfsCoherence *c)
{
  if (c == NULL)
    return;
  shmfs_coherence_stop (c);
  if (c->inotify_fd >= 0)
    close (c->inotify_fd);
  if (c->inotify_wake >= 0)
    close (c->inotify_wake);
  g_hash_table_unref (c->watches);
  if (c->resync_pool != NULL)
    {
      g_thread_pool_free (c->resync_pool, TRUE, TRUE);
      g_thread_pool_free (c->entry_pool, TRUE, TRUE);
    }
  g_hash_table_unref (c->requests);
  g_cond_clear (&c->cond);
  g_mutex_clear (&c->lock);
  g_mutex_clear (&c->inotify_lock);
  g_free (c);
}

/* The session to notify on, or NULL when stopped.  The session outlives
 * every caller: it is destroyed after the loop and the resync pool end. */
static struct fuse_session *
session (ShmfsCoherence *c)
{
  struct fuse_session *se;

  g_mutex_lock (&c->lock);
  se = c->se;
  g_mutex_unlock (&c->lock);
  return se;
}

/* Takes the parent's inode lock: so never inside a request handler, where
 * the kernel may hold it, or another lock ordered against it. */
static void
entry_job (gpointer data, gpointer user_data)
{
  ShmfsCoherence *c = user_data;
  EntryJob *job = data;
  struct fuse_session *se = session (c);

  if (se != NULL)
    fuse_lowlevel_notify_inval_entry (se, job->parent, job->name, strlen (job->name));
  g_free (job);
}

void
shmfs_coherence_forget_entry (ShmfsCoherence *c, fuse_ino_t parent, const char *name)
{
  gsize len = strlen (name);
  EntryJob *job = g_malloc (sizeof *job + len + 1);

  job->parent = parent;
  memcpy (job->name, name, len + 1);
  g_thread_pool_push (c->entry_pool, job, NULL);
}

ShmfsSync *
shmfs_sync_new (ShmObject *obj, fuse_ino_t raw_ino, gpointer owner)
{
  ShmfsSync *sync = g_new0 (ShmfsSync, 1);

  sync->ref_count = 1;
  sync->owner = owner;
  sync->wd = -1;
  sync->obj = shm_object_ref (obj);
  sync->raw_ino = raw_ino;
  g_mutex_init (&sync->store_lock);
  g_mutex_init (&sync->data_lock);
  return sync;
}

void
shmfs_sync_set_raw_ino (ShmfsSync *sync, fuse_ino_t raw_ino)
{
  g_mutex_lock (&sync->data_lock);
  sync->raw_ino = raw_ino;
  g_mutex_unlock (&sync->data_lock);
}

static fuse_ino_t
raw_ino_of (ShmfsSync *sync)
{
  fuse_ino_t ino;

  g_mutex_lock (&sync->data_lock);
  ino = sync->raw_ino;
  g_mutex_unlock (&sync->data_lock);
  return ino;
}

ShmfsSync *
shmfs_sync_ref (ShmfsSync *sync)
{
  g_atomic_int_inc (&sync->ref_count);
  return sync;
}

void
shmfs_sync_unref (ShmfsSync *sync)
{
  if (sync == NULL || !g_atomic_int_dec_and_test (&sync->ref_count))
    return;
  shm_object_unref (sync->obj);
  g_free (sync->maybe_cached);
  g_free (sync->stored);
  g_free (sync->gens);
  g_mutex_clear (&sync->store_lock);
  g_mutex_clear (&sync->data_lock);
  g_free (sync);
}

void
shmfs_sync_writer_open (ShmfsSync *sync)
{
  g_mutex_lock (&sync->data_lock);
  sync->writers++;
  g_mutex_unlock (&sync->data_lock);
}

void
shmfs_sync_writer_close (ShmfsSync *sync)
{
  g_mutex_lock (&sync->data_lock);
  g_warn_if_fail (sync->writers > 0);
  sync->writers--;
  g_mutex_unlock (&sync->data_lock);
}

/* Sets the bits of the pages of [off, off+len) in *bits (one a page). */
static void
set_pages_locked (ShmfsSync *sync, guint64 **bits, guint64 off, guint64 len)
{
  guint64 nbytes = shm_object_get_nbytes (sync->obj);
  guint64 last;

  if (len == 0 || off >= nbytes)
    return;
  sync->n_pages = (nbytes + page_size - 1) / page_size;
  if (*bits == NULL)
    *bits = g_new0 (guint64, (sync->n_pages + 63) / 64);
  last = MIN (off + len - 1, nbytes - 1) / page_size;
  for (guint64 p = off / page_size; p <= last; p++)
    (*bits)[p / 64] |= G_GUINT64_CONSTANT (1) << (p % 64);
}

static gboolean
page_bit (const guint64 *bits, guint64 page)
{
  return bits != NULL && (bits[page / 64] >> (page % 64)) & 1;
}

/* Pages of the raw view maybe in the page cache.  Bits are cleared only
 * when the kernel drops the inode: a superset is harmless. */
static void
mark_cached_locked (ShmfsSync *sync, guint64 off, guint64 len)
{
  set_pages_locked (sync, &sync->maybe_cached, off, len);
}

static gboolean
page_maybe_cached_locked (ShmfsSync *sync, guint64 page)
{
  return page_bit (sync->maybe_cached, page);
}

/* Clears the stored bits of the pages of [off, off+len); returns whether
 * any was set, and the span of those pages within [off, off+len). */
static gboolean
take_stored_locked (ShmfsSync *sync, guint64 off, guint64 len,
                    guint64 *span_off, guint64 *span_len)
{
  guint64 first = G_MAXUINT64, last = 0, end = off + len;

  if (sync->stored == NULL || len == 0)
    return FALSE;
  for (guint64 p = off / page_size; p < sync->n_pages && p * page_size < end; p++)
    if (page_bit (sync->stored, p))
      {
        sync->stored[p / 64] &= ~(G_GUINT64_CONSTANT (1) << (p % 64));
        first = MIN (first, p);
        last = p;
      }
  if (first == G_MAXUINT64)
    return FALSE;
  *span_off = MAX (first * page_size, off);
  *span_len = MIN ((last + 1) * page_size, end) - *span_off;
  return TRUE;
}

/* Bumps the write generation of the pages of [off, off+len). */
static void
bump_gens_locked (ShmfsSync *sync, guint64 off, guint64 len)
{
  guint64 nbytes = shm_object_get_nbytes (sync->obj);
  guint64 last;

  if (len == 0 || off >= nbytes)
    return;
  sync->n_pages = (nbytes + page_size - 1) / page_size;
  if (sync->gens == NULL)
    sync->gens = g_new0 (guint32, sync->n_pages);
  last = MIN (off + len - 1, nbytes - 1) / page_size;
  for (guint64 p = off / page_size; p <= last; p++)
    sync->gens[p]++;
}

/* A sum that changes whenever a page of [off, off+len) is written (the
 * generations only grow). */
static guint64
gens_sum_locked (ShmfsSync *sync, guint64 off, guint64 len)
{
  guint64 nbytes = shm_object_get_nbytes (sync->obj);
  guint64 last, sum = 0;

  if (sync->gens == NULL || len == 0 || off >= nbytes)
    return 0;
  last = MIN (off + len - 1, nbytes - 1) / page_size;
  for (guint64 p = off / page_size; p <= last; p++)
    sum += sync->gens[p];
  return sum;
}

/* Copies between the memfd and buf; data_lock held.  A page or more goes
 * through the fd: the kernel copies from the memfd's pages directly, where
 * the daemon's mapping would first fault on every page it has not touched
 * yet (which made a first touch of a large mapping cost twice what it does
 * on /dev/shm). */
/* Whether [off, off+len) is inside the object's bytes: an unlinked
 * object's are freed at its last close (shmfs_sync_drop_bytes), and a
 * request already under way then finds none.  data_lock held. */
static gboolean
has_bytes_locked (ShmfsSync *sync, guint64 off, guint64 len)
{
  guint64 nbytes = shm_object_get_nbytes (sync->obj);

  return off <= nbytes && len <= nbytes - off && shm_object_get_data (sync->obj) != NULL;
}

static void
memfd_read_locked (ShmfsSync *sync, guint64 off, void *buf, guint64 len)
{
  int fd = len >= page_size ? shm_object_get_fd (sync->obj) : -1;

  if (!has_bytes_locked (sync, off, len))
    memset (buf, 0, len);
  else if (fd < 0 || pread (fd, buf, len, (off_t) off) != (ssize_t) len)
    memcpy (buf, shm_object_get_data (sync->obj) + off, len);
}

static void
memfd_write_locked (ShmfsSync *sync, guint64 off, const void *buf, guint64 len)
{
  int fd = len >= page_size ? shm_object_get_fd (sync->obj) : -1;

  if (!has_bytes_locked (sync, off, len))
    return;
  if (fd < 0 || pwrite (fd, buf, len, (off_t) off) != (ssize_t) len)
    memcpy (shm_object_get_data (sync->obj) + off, buf, len);
}

void
shmfs_sync_drop_bytes (ShmfsSync *sync, ShmTree *tree, ShmNode *node)
{
  if (sync == NULL)
    return shm_tree_release_bytes (tree, node);
  g_mutex_lock (&sync->data_lock);
  shm_tree_release_bytes (tree, node);
  g_mutex_unlock (&sync->data_lock);
}

void
shmfs_sync_forget_cache (ShmfsSync *sync)
{
  g_mutex_lock (&sync->data_lock);
  g_clear_pointer (&sync->maybe_cached, g_free);
  g_clear_pointer (&sync->stored, g_free);   /* no writeback outlives the inode */
  g_mutex_unlock (&sync->data_lock);
}

void
shmfs_sync_reply_read (ShmfsSync *sync, fuse_req_t req, guint64 off, guint64 len)
{
  g_autofree guint8 *buf = g_malloc (len);

  /* The kernel fills the page from the reply and only then marks it up to
   * date, and a retrieve copies a page up to date or not: answer before a
   * retrieve may ask for this page. */
  g_mutex_lock (&sync->data_lock);
  memfd_read_locked (sync, off, buf, len);
  mark_cached_locked (sync, off, len);
  fuse_reply_buf (req, (const char *) buf, len);
  g_mutex_unlock (&sync->data_lock);
}

void
shmfs_sync_client_write (ShmfsCoherence *c, ShmfsSync *sync, guint64 off,
                         const void *data, guint64 len, gboolean writeback)
{
  guint64 stale_off = 0, stale_len = 0;
  gboolean stale;

  g_mutex_lock (&sync->data_lock);
  memfd_write_locked (sync, off, data, len);
  bump_gens_locked (sync, off, len);
  mark_cached_locked (sync, off, len);
  /* A writeback's bytes were copied from the pages before this handler
   * ran: a daemon store that reached them since is undone here, in the
   * memfd only.  The pages hold the truth, and stay in the page cache
   * until this writeback is answered: copy them back now. */
  stale = writeback && take_stored_locked (sync, off, len, &stale_off, &stale_len);
  g_mutex_unlock (&sync->data_lock);
  shm_object_bump_version (sync->obj);

  if (stale && !repair_range (c, sync, stale_off, stale_len))
    schedule_resync (c, sync);
}

/* data_lock held. */
static void
watch_memfd (ShmfsCoherence *c, ShmfsSync *sync, int fd)
{
  g_autofree char *path = g_strdup_printf ("/proc/self/fd/%d", fd);

  if (c->inotify_fd < 0)
    return;
  sync->wd = inotify_add_watch (c->inotify_fd, path, IN_MODIFY | IN_ONESHOT);
  if (sync->wd < 0)
    return;   /* out of watches: such writes wake no poller (docs/semantics.md) */
  g_mutex_lock (&c->lock);
  g_hash_table_insert (c->watches, GINT_TO_POINTER (sync->wd), shmfs_sync_ref (sync));
  g_mutex_unlock (&c->lock);
}

/* Sets the watch again if it fired and the memfd is open for passthrough;
 * data_lock held. */
static void
watch_locked (ShmfsCoherence *c, ShmfsSync *sync)
{
  int fd = shm_object_get_fd (sync->obj);

  if (sync->backing_opens > 0 && sync->wd < 0 && fd >= 0)
    watch_memfd (c, sync, fd);
}

/* data_lock held. */
static void
unwatch_memfd (ShmfsCoherence *c, ShmfsSync *sync)
{
  if (sync->wd < 0)
    return;
  /* Before the watch goes, so that its number is not anybody else's yet.
   * The table's reference is never the last: the caller holds one. */
  g_mutex_lock (&c->lock);
  g_hash_table_remove (c->watches, GINT_TO_POINTER (sync->wd));
  g_mutex_unlock (&c->lock);
  inotify_rm_watch (c->inotify_fd, sync->wd);   /* EINVAL if it fired */
  sync->wd = -1;
}

int
shmfs_sync_backing_open (ShmfsCoherence *c, ShmfsSync *sync, fuse_req_t req)
{
  int id = 0, fd = 0;

  g_mutex_lock (&sync->data_lock);
  /* Small objects live in slab slots: passthrough needs a file of their own. */
  if (shm_object_get_fd (sync->obj) < 0)
    fd = shm_object_own_region (sync->obj, shm_backing_memfd (), NULL);
  if (fd >= 0 && sync->backing_opens == 0)
    {
      /* The fd was closed at the last release: open the memfd again. */
      if ((fd = shm_object_reopen_fd (sync->obj)) >= 0)
        {
          errno = EIO;
          if ((sync->backing_id = fuse_passthrough_open (req, fd)) > 0)
            watch_memfd (c, sync, fd);
          else
            fd = -errno;
        }
    }
  if (fd >= 0)
    {
      id = sync->backing_id;
      sync->backing_opens++;
    }
  g_mutex_unlock (&sync->data_lock);
  return fd < 0 ? fd : id;
}

void
shmfs_sync_backing_release (ShmfsCoherence *c, ShmfsSync *sync, fuse_req_t req)
{
  /* The writes made through this file are queued; account them while
   * their watch still stands. */
  shmfs_coherence_settle (c, NULL);
  g_mutex_lock (&sync->data_lock);
  g_warn_if_fail (sync->backing_opens > 0);
  /* The kernel's open files keep their own reference to the backing. */
  if (--sync->backing_opens == 0)
    {
      fuse_passthrough_close (req, sync->backing_id);
      sync->backing_id = 0;
      unwatch_memfd (c, sync);
      /* Mappings may outlive every open (a passthrough mapping holds the
       * memfd itself), so the bytes stay where they are; only the fd goes. */
      shm_object_close_fd (sync->obj);
    }
  g_mutex_unlock (&sync->data_lock);
}

/* Sends one retrieve for [off, off+len).  Returns FALSE when the kernel does
 * not hold the inode (no pages cached) or the session is gone. */
static gboolean
send_retrieve (ShmfsCoherence *c, ShmfsSync *sync, RetrieveBatch *batch,
               guint64 off, guint64 len)
{
  RetrieveRequest *rq = g_new0 (RetrieveRequest, 1);
  fuse_ino_t ino = raw_ino_of (sync);
  struct fuse_session *se;
  int res;

  rq->batch = batch;
  rq->off = off;
  rq->len = len;

  g_mutex_lock (&c->lock);
  se = c->se;
  if (se == NULL)
    {
      g_mutex_unlock (&c->lock);
      g_free (rq);
      return FALSE;
    }
  rq->cookie = c->next_cookie++;
  g_hash_table_insert (c->requests, &rq->cookie, rq);
  batch->pending++;
  g_mutex_unlock (&c->lock);

  res = fuse_lowlevel_notify_retrieve (se, ino, (size_t) len, (off_t) off,
                                       GSIZE_TO_POINTER ((gsize) rq->cookie));
  if (res == 0)
    return TRUE;

  /* -ENOENT: the kernel holds no inode, so no page; no reply will come. */
  if (res != -ENOENT)
    {
      batch->failed = TRUE;
      g_warning ("retrieve of inode %" G_GUINT64_FORMAT ": %s",
                 (guint64) ino, g_strerror (-res));
    }
  g_mutex_lock (&c->lock);
  g_hash_table_remove (c->requests, &rq->cookie);
  batch->pending--;
  g_mutex_unlock (&c->lock);
  g_free (rq);
  return FALSE;
}

void
shmfs_coherence_retrieve_reply (ShmfsCoherence *c, void *cookie, off_t offset,
                                struct fuse_bufvec *bufv)
{
  guint64 key = (guint64) GPOINTER_TO_SIZE (cookie);
  RetrieveRequest *rq;

  g_mutex_lock (&c->lock);
  rq = g_hash_table_lookup (c->requests, &key);
  if (rq != NULL && (guint64) offset == rq->off)
    {
      size_t size = MIN (fuse_buf_size (bufv), rq->len);
      struct fuse_bufvec dst = FUSE_BUFVEC_INIT (size);

      dst.buf[0].mem = rq->batch->buf + (rq->off - rq->batch->base);
      rq->got = size > 0 ? (guint64) fuse_buf_copy (&dst, bufv, 0) : 0;
      g_hash_table_remove (c->requests, &key);
      rq->batch->pending--;
      g_ptr_array_add (rq->batch->done, rq);
      g_cond_broadcast (&c->cond);
    }
  g_mutex_unlock (&c->lock);
}

static gint
compare_ranges (gconstpointer a, gconstpointer b)
{
  guint64 x = *(const guint64 *) a, y = *(const guint64 *) b;

  return x < y ? -1 : x > y;
}

/* Reads again from the memfd what no retrieve delivered in [off, off+len)
 * of buf (bytes from off on).  A page the kernel no longer had may have
 * held stores that reached the memfd (written back before it went) after
 * buf was first read from it. */
static void
reread_uncovered (ShmfsSync *sync, guint8 *buf, guint64 off, guint64 len, GArray *covered)
{
  guint64 at = off, end = off + len;

  g_array_sort (covered, compare_ranges);
  g_mutex_lock (&sync->data_lock);
  for (guint i = 0; i <= covered->len && at < end; i++)
    {
      const guint64 *r = i < covered->len ? &g_array_index (covered, guint64, 2 * i) : NULL;
      guint64 upto = r != NULL ? MIN (MAX (r[0], at), end) : end;

      if (upto > at)
        memfd_read_locked (sync, at, buf + (at - off), upto - at);
      if (r != NULL)
        at = MAX (at, r[1]);
    }
  g_mutex_unlock (&sync->data_lock);
}

/* Queues retrieves for every run of maybe-cached pages in [off, end). */
static gboolean
retrieve_cached_runs (ShmfsCoherence *c, ShmfsSync *sync, RetrieveBatch *batch,
                      guint64 off, guint64 end)
{
  GArray *runs = g_array_new (FALSE, FALSE, sizeof (guint64));
  gboolean held = TRUE;

  g_mutex_lock (&sync->data_lock);
  for (guint64 p = off / page_size; p < sync->n_pages && p * page_size < end; p++)
    {
      guint64 start = p;
      if (!page_maybe_cached_locked (sync, p))
        continue;
      while (p + 1 < sync->n_pages && (p + 1) * page_size < end &&
             page_maybe_cached_locked (sync, p + 1) &&
             (p + 1 - start) * page_size < c->max_chunk)
        p++;
      g_array_append_val (runs, start);
      g_array_append_val (runs, p);
    }
  g_mutex_unlock (&sync->data_lock);

  for (guint i = 0; held && i < runs->len; i += 2)
    {
      guint64 from = MAX (g_array_index (runs, guint64, i) * page_size, off);
      guint64 to = MIN ((g_array_index (runs, guint64, i + 1) + 1) * page_size, end);
      held = send_retrieve (c, sync, batch, from, to - from);
    }
  g_array_unref (runs);
  return held;
}

/* Lays every cached page of [off, off+len) of the raw view over buf, which
 * holds the memfd's bytes of that range.  A reply stops at the first page
 * not cached; the rest of its range is asked again from the page after
 * that one.  Bounded in time.  Returns FALSE if a request failed or its
 * reply never came. */
static gboolean
overlay_cached_pages (ShmfsCoherence *c, ShmfsSync *sync, guint8 *buf, guint64 off, guint64 len)
{
  RetrieveBatch batch = { buf, off, 0, FALSE, g_ptr_array_new_with_free_func (g_free) };
  fuse_ino_t ino = raw_ino_of (sync);
  gint64 deadline = g_get_monotonic_time () + RETRIEVE_TIMEOUT_US;
  g_autoptr (GArray) covered = g_array_new (FALSE, FALSE, sizeof (guint64) * 2);
  gboolean held = retrieve_cached_runs (c, sync, &batch, off, off + len);
  gboolean complete;

  g_mutex_lock (&c->lock);
  while (batch.pending > 0 || (held && batch.done->len > 0))
    {
      if (batch.done->len > 0)
        {
          RetrieveRequest *rq = g_ptr_array_steal_index_fast (batch.done, batch.done->len - 1);
          guint64 next = rq->off + rq->got + page_size;
          guint64 end = rq->off + rq->len;
          guint64 range[2] = { rq->off, rq->off + rq->got };

          g_array_append_val (covered, range);

          next -= next % page_size;
          if (rq->got < rq->len && next < end)
            {
              g_mutex_unlock (&c->lock);
              held = send_retrieve (c, sync, &batch, next, end - next);
              g_mutex_lock (&c->lock);
            }
          g_free (rq);
          continue;
        }
      if (c->stopped || !g_cond_wait_until (&c->cond, &c->lock, deadline))
        break;
    }
  complete = batch.pending == 0 && !batch.failed;
  if (!complete)
    {
      /* Late replies must not land in buf: forget the requests. */
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, c->requests);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (((RetrieveRequest *) value)->batch == &batch)
          {
            g_hash_table_iter_remove (&iter);
            g_free (value);
          }
      if (!c->stopped)
        g_warning ("retrieve of inode %" G_GUINT64_FORMAT " timed out; "
                   "using the daemon's copy", (guint64) ino);
    }
  g_mutex_unlock (&c->lock);
  /* Every reply is in (none can land in buf any more): outside c->lock,
   * which every object's retrieves share. */
  if (complete)
    reread_uncovered (sync, buf, off, len, covered);
  g_ptr_array_unref (batch.done);
  return complete;
}

/* Copies [off, off+len) of the memfd into buf, then the cached pages over
 * it if they may hold bytes the memfd lacks.  Caller holds store_lock. */
static void
snapshot_locked (ShmfsCoherence *c, ShmfsSync *sync, guint8 *buf, guint64 off, guint64 len)
{
  gboolean overlay;

  g_mutex_lock (&sync->data_lock);
  memfd_read_locked (sync, off, buf, len);
  /* Dirty pages need a writable mapping, which needs a writable open
   * handle; the last one's munmap writes them back before release. */
  overlay = !c->passthrough && (sync->writers > 0 || sync->memfd_behind) &&
            sync->maybe_cached != NULL;
  g_mutex_unlock (&sync->data_lock);

  if (overlay)
    overlay_cached_pages (c, sync, buf, off, len);
}

void
shmfs_coherence_snapshot (ShmfsCoherence *c, ShmfsSync *sync, void *buf, guint64 off, guint64 len)
{
  g_mutex_lock (&sync->store_lock);
  snapshot_locked (c, sync, buf, off, len);
  g_mutex_unlock (&sync->store_lock);
}

/* Pushes data, the bytes of [off, off+len), into the pages that may be
 * cached.  The kernel copies into each page under its page lock, so a
 * client write(2) to that page is all before or all after.  Caller holds
 * store_lock. */
static void
push_to_page_cache_locked (ShmfsCoherence *c, ShmfsSync *sync, guint64 off, guint64 len,
                           const guint8 *data)
{
  struct fuse_session *se = session (c);
  guint64 start = off, end = off + len;

  while (se != NULL && off < end)
    {
      guint64 page = off / page_size, run_end;
      struct fuse_bufvec bufv;
      gboolean cached;
      fuse_ino_t ino;
      int res;

      g_mutex_lock (&sync->data_lock);
      ino = sync->raw_ino;
      cached = page_maybe_cached_locked (sync, page);
      run_end = off;
      while (run_end < end && run_end - off < STORE_CHUNK &&
             page_maybe_cached_locked (sync, run_end / page_size) == cached)
        run_end = MIN ((run_end / page_size + 1) * page_size, end);
      g_mutex_unlock (&sync->data_lock);

      if (cached)
        {
          bufv = FUSE_BUFVEC_INIT (run_end - off);
          bufv.buf[0].mem = (guint8 *) data + (off - start);
          res = fuse_lowlevel_notify_store (se, ino, (off_t) off, &bufv, 0);
          if (res == -ENOENT)
            return;   /* the kernel holds no inode: nothing cached */
          if (res < 0)
            g_warning ("store into inode %" G_GUINT64_FORMAT ": %s",
                       (guint64) ino, g_strerror (-res));
        }
      off = run_end;
    }
}

/* Copies [off, off+len) from the page cache into the memfd where pages are
 * cached.  Takes the copy again while those pages of the memfd change
 * meanwhile (the change may be newer than it).  Returns FALSE when it gave
 * up. */
static gboolean
repair_range (ShmfsCoherence *c, ShmfsSync *sync, guint64 off, guint64 len)
{
  g_autofree guint8 *buf = g_malloc (len);

  for (int tries = 0; tries < RESYNC_TRIES && session (c) != NULL; tries++)
    {
      guint64 gens;
      gboolean applied = FALSE;

      g_mutex_lock (&sync->data_lock);
      memfd_read_locked (sync, off, buf, len);
      gens = gens_sum_locked (sync, off, len);
      g_mutex_unlock (&sync->data_lock);
      if (!overlay_cached_pages (c, sync, buf, off, len))
        return FALSE;
      g_mutex_lock (&sync->data_lock);
      if (gens_sum_locked (sync, off, len) == gens)
        {
          memfd_write_locked (sync, off, buf, len);
          bump_gens_locked (sync, off, len);
          applied = TRUE;
        }
      g_mutex_unlock (&sync->data_lock);
      if (applied)
        return TRUE;
    }
  return session (c) == NULL;
}

/* Stores data at [off, off+len): memfd, then page cache.  Caller holds
 * store_lock. */
static void
store_locked (ShmfsCoherence *c, ShmfsSync *sync, guint64 off, const guint8 *data, guint64 len)
{
  guint64 gens;
  gboolean raced;

  g_mutex_lock (&sync->data_lock);
  if (c->passthrough)
    {
      if (has_bytes_locked (sync, off, len))
        memcpy (shm_object_get_data (sync->obj) + off, data, len);   /* no inotify event */
    }
  else
    {
      memfd_write_locked (sync, off, data, len);
      bump_gens_locked (sync, off, len);
      set_pages_locked (sync, &sync->stored, off, len);
    }
  gens = gens_sum_locked (sync, off, len);
  g_mutex_unlock (&sync->data_lock);
  /* In passthrough mode every client maps or reads the memfd itself. */
  if (c->passthrough)
    return;
  push_to_page_cache_locked (c, sync, off, len, data);

  g_mutex_lock (&sync->data_lock);
  /* A writeback handled from now on copied pages that hold this store;
   * one handled before may not have: keep its pages marked either way. */
  set_pages_locked (sync, &sync->stored, off, len);
  /* A writeback, or its repair, may have put older bytes in the memfd
   * after this store did: the pages hold the truth now. */
  raced = gens_sum_locked (sync, off, len) != gens;
  g_mutex_unlock (&sync->data_lock);
  if (raced && !repair_range (c, sync, off, len))
    schedule_resync (c, sync);
}

gboolean
shmfs_coherence_modify (ShmfsCoherence *c, ShmfsSync *sync, guint64 off, guint64 len,
                        gboolean (*modify) (guint8 *bytes, gpointer user_data),
                        gpointer user_data)
{
  gboolean changed;

  if (c->passthrough)
    {
      /* The memfd is what clients map: modify it in place (data_lock only
       * keeps a small object from moving to its own memfd meanwhile). */
      g_mutex_lock (&sync->data_lock);
      changed = has_bytes_locked (sync, off, len) &&
                modify (shm_object_get_data (sync->obj) + off, user_data);
      g_mutex_unlock (&sync->data_lock);
    }
  else
    {
      g_autofree guint8 *buf = g_malloc (len);

      g_mutex_lock (&sync->store_lock);
      snapshot_locked (c, sync, buf, off, len);
      changed = modify (buf, user_data);
      if (changed)
        store_locked (c, sync, off, buf, len);
      g_mutex_unlock (&sync->store_lock);
    }
  if (changed)
    shm_object_bump_version (sync->obj);
  return changed;
}

void
shmfs_coherence_store (ShmfsCoherence *c, ShmfsSync *sync, guint64 off,
                       const void *data, guint64 len)
{
  g_mutex_lock (&sync->store_lock);
  store_locked (c, sync, off, data, len);
  shm_object_bump_version (sync->obj);
  g_mutex_unlock (&sync->store_lock);
}

/* Makes the memfd equal to the page cache again. */
void
shmfs_coherence_pull (ShmfsCoherence *c, ShmfsSync *sync)
{
  if (!c->passthrough && shm_object_is_typed (sync->obj))
    resync (c, sync);
}

/* The fallback when the pages could not be read back at once: retries
 * off the request path. */
static void
schedule_resync (ShmfsCoherence *c, ShmfsSync *sync)
{
  gboolean push;

  g_mutex_lock (&sync->data_lock);
  push = !sync->resync_queued;
  sync->resync_queued = sync->memfd_behind = TRUE;
  g_mutex_unlock (&sync->data_lock);
  if (push)
    g_thread_pool_push (c->resync_pool, shmfs_sync_ref (sync), NULL);
}

static void
resync_job (gpointer data, gpointer user_data)
{
  ShmfsSync *sync = data;

  g_mutex_lock (&sync->data_lock);
  sync->resync_queued = FALSE;   /* a later need queues another */
  g_mutex_unlock (&sync->data_lock);
  resync (user_data, sync);
  shmfs_sync_unref (sync);
}

static void
resync (ShmfsCoherence *c, ShmfsSync *sync)
{
  gboolean repaired;

  g_mutex_lock (&sync->store_lock);
  repaired = repair_range (c, sync, 0, shm_object_get_nbytes (sync->obj));
  g_mutex_lock (&sync->data_lock);
  /* Behind still, if not repaired: reads keep laying the pages over. */
  sync->memfd_behind = !repaired;
  g_mutex_unlock (&sync->data_lock);
  g_mutex_unlock (&sync->store_lock);
  if (!repaired)
    g_warning ("inode %" G_GUINT64_FORMAT ": the page cache could not be read "
               "back; it stays authoritative while it lasts", (guint64) raw_ino_of (sync));
}
