/* retrieve.c — notify_retrieve requests and their replies.  See
 * retrieve.h.
 *
 * Locks: an object's data lock (sync.h) is never held with r->lock, which
 * protects the table of requests in flight and every batch's counters.
 */
#include "config.h"

#include "retrieve.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define RETRIEVE_TIMEOUT_US (2 * G_USEC_PER_SEC)

struct _ShmfsRetrieve {
  GMutex      lock;
  GCond       cond;
  struct fuse_session *se;        /* NULL when stopped; lock */
  gboolean    stopped;            /* lock */
  GHashTable *requests;           /* cookie -> RetrieveRequest*; lock */
  guint64     next_cookie;        /* lock */
};

typedef struct {
  guint8     *buf;                /* bytes from base on; replies land here */
  guint64     base;
  guint       pending;            /* requests not answered yet; r->lock */
  gboolean    failed;             /* a request could not be sent */
  GPtrArray  *done;               /* answered requests; r->lock */
} RetrieveBatch;

typedef struct {
  RetrieveBatch *batch;
  guint64     cookie;
  guint64     off, len;
  guint64     got;                /* bytes the reply carried */
} RetrieveRequest;

static gsize page_size;

ShmfsRetrieve *
shmfs_retrieve_new (void)
{
  ShmfsRetrieve *r = g_new0 (ShmfsRetrieve, 1);

  page_size = (gsize) sysconf (_SC_PAGESIZE);
  g_mutex_init (&r->lock);
  g_cond_init (&r->cond);
  r->requests = g_hash_table_new (g_int64_hash, g_int64_equal);
  r->next_cookie = 1;
  return r;
}

void
shmfs_retrieve_start (ShmfsRetrieve *r, struct fuse_session *se)
{
  g_mutex_lock (&r->lock);
  r->se = se;
  g_mutex_unlock (&r->lock);
}

void
shmfs_retrieve_stop (ShmfsRetrieve *r)
{
  g_mutex_lock (&r->lock);
  r->se = NULL;
  r->stopped = TRUE;
  g_cond_broadcast (&r->cond);
  g_mutex_unlock (&r->lock);
}

void
shmfs_retrieve_free (ShmfsRetrieve *r)
{
  if (r == NULL)
    return;
  shmfs_retrieve_stop (r);
  g_hash_table_unref (r->requests);
  g_cond_clear (&r->cond);
  g_mutex_clear (&r->lock);
  g_free (r);
}

/* Sends one retrieve for [off, off+len).  Returns FALSE when the kernel does
 * not hold the inode (no pages cached) or the session is gone. */
static gboolean
send_retrieve (ShmfsRetrieve *r, ShmfsSync *sync, RetrieveBatch *batch,
               guint64 off, guint64 len)
{
  RetrieveRequest *rq = g_new0 (RetrieveRequest, 1);
  fuse_ino_t ino = shmfs_sync_get_raw_ino (sync);
  struct fuse_session *se;
  int res;

  rq->batch = batch;
  rq->off = off;
  rq->len = len;

  g_mutex_lock (&r->lock);
  se = r->se;
  if (se == NULL)
    {
      g_mutex_unlock (&r->lock);
      g_free (rq);
      return FALSE;
    }
  rq->cookie = r->next_cookie++;
  g_hash_table_insert (r->requests, &rq->cookie, rq);
  batch->pending++;
  g_mutex_unlock (&r->lock);

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
  g_mutex_lock (&r->lock);
  g_hash_table_remove (r->requests, &rq->cookie);
  batch->pending--;
  g_mutex_unlock (&r->lock);
  g_free (rq);
  return FALSE;
}

void
shmfs_retrieve_reply (ShmfsRetrieve *r, void *cookie, off_t offset, struct fuse_bufvec *bufv)
{
  guint64 key = (guint64) GPOINTER_TO_SIZE (cookie);
  RetrieveRequest *rq;

  g_mutex_lock (&r->lock);
  rq = g_hash_table_lookup (r->requests, &key);
  if (rq != NULL && (guint64) offset == rq->off)
    {
      size_t size = MIN (fuse_buf_size (bufv), rq->len);
      struct fuse_bufvec dst = FUSE_BUFVEC_INIT (size);

      dst.buf[0].mem = rq->batch->buf + (rq->off - rq->batch->base);
      rq->got = size > 0 ? (guint64) fuse_buf_copy (&dst, bufv, 0) : 0;
      g_hash_table_remove (r->requests, &key);
      rq->batch->pending--;
      g_ptr_array_add (rq->batch->done, rq);
      g_cond_broadcast (&r->cond);
    }
  g_mutex_unlock (&r->lock);
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
  shmfs_sync_lock (sync);
  for (guint i = 0; i <= covered->len && at < end; i++)
    {
      const guint64 *r = i < covered->len ? &g_array_index (covered, guint64, 2 * i) : NULL;
      guint64 upto = r != NULL ? MIN (MAX (r[0], at), end) : end;

      if (upto > at)
        shmfs_sync_read_locked (sync, at, buf + (at - off), upto - at);
      if (r != NULL)
        at = MAX (at, r[1]);
    }
  shmfs_sync_unlock (sync);
}

/* Sends a retrieve for each run (pairs of byte offsets); stops at the
 * first the kernel cannot take. */
static gboolean
send_runs (ShmfsRetrieve *r, ShmfsSync *sync, RetrieveBatch *batch, GArray *runs)
{
  gboolean held = TRUE;

  for (guint i = 0; held && i < runs->len; i += 2)
    {
      guint64 from = g_array_index (runs, guint64, i);
      guint64 to = g_array_index (runs, guint64, i + 1);

      held = send_retrieve (r, sync, batch, from, to - from);
    }
  return held;
}

/* A reply stops at the first page not cached; the rest of its range is
 * asked again from the page after that one.  Bounded in time. */
gboolean
shmfs_retrieve_overlay (ShmfsRetrieve *r, ShmfsSync *sync, guint8 *buf, guint64 off,
                        guint64 len, GArray *runs)
{
  RetrieveBatch batch = { buf, off, 0, FALSE, g_ptr_array_new_with_free_func (g_free) };
  gint64 deadline = g_get_monotonic_time () + RETRIEVE_TIMEOUT_US;
  g_autoptr (GArray) covered = g_array_new (FALSE, FALSE, sizeof (guint64) * 2);
  gboolean held = send_runs (r, sync, &batch, runs);
  gboolean complete;

  g_mutex_lock (&r->lock);
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
              g_mutex_unlock (&r->lock);
              held = send_retrieve (r, sync, &batch, next, end - next);
              g_mutex_lock (&r->lock);
            }
          g_free (rq);
          continue;
        }
      if (r->stopped || !g_cond_wait_until (&r->cond, &r->lock, deadline))
        break;
    }
  complete = batch.pending == 0 && !batch.failed;
  if (!complete)
    {
      /* Late replies must not land in buf: forget the requests. */
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, r->requests);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (((RetrieveRequest *) value)->batch == &batch)
          {
            g_hash_table_iter_remove (&iter);
            g_free (value);
          }
      if (!r->stopped)
        g_warning ("retrieve of inode %" G_GUINT64_FORMAT " timed out; "
                   "using the daemon's copy", (guint64) shmfs_sync_get_raw_ino (sync));
    }
  g_mutex_unlock (&r->lock);
  /* Every reply is in (none can land in buf any more): outside r->lock,
   * which every object's retrieves share. */
  if (complete)
    reread_uncovered (sync, buf, off, len, covered);
  g_ptr_array_unref (batch.done);
  return complete;
}

