/* pagecache.c — cached-mode coherence between the memfds and the kernel's
 * page cache of the binary views.  See pagecache.h for the scheme.
 *
 * Locks, outermost first: an object's store lock, its data lock (sync.h),
 * then pc->lock.  Reading cached pages back is retrieve.c's.
 */
#include "config.h"

#include "pagecache.h"

#include "retrieve.h"
#include "shm-pages.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define STORE_CHUNK (1024 * 1024)
#define RESYNC_TRIES 8

struct _ShmfsPageCache {
  GMutex      lock;
  struct fuse_session *se;        /* NULL when stopped; lock */
  size_t      max_chunk;          /* longest retrieve */
  GThreadPool *resync_pool;
  ShmfsRetrieve *retrieve;
};

/* An object's cached-mode state; its sync's data lock. */
typedef struct {
  ShmPages   *pages;              /* maybe cached, stored since their last
                                     writeback, write generations; made
                                     once the object has bytes */
  guint       writers;            /* open raw handles that can write */
  gboolean    memfd_behind;       /* the memfd may lag the pages */
  gboolean    resync_queued;      /* a resync job waits */
} PageState;

static gsize page_size;

static void resync_job (gpointer data, gpointer user_data);
static void resync (ShmfsPageCache *pc, ShmfsSync *sync);
static void schedule_resync (ShmfsPageCache *pc, ShmfsSync *sync);
static gboolean repair_range (ShmfsPageCache *pc, ShmfsSync *sync, guint64 off, guint64 len);

ShmfsPageCache *
shmfs_pagecache_new (void)
{
  ShmfsPageCache *pc = g_new0 (ShmfsPageCache, 1);

  page_size = (gsize) sysconf (_SC_PAGESIZE);
  g_mutex_init (&pc->lock);
  pc->retrieve = shmfs_retrieve_new ();
  pc->max_chunk = 128 * 1024;
  return pc;
}

void
shmfs_pagecache_start (ShmfsPageCache *pc, struct fuse_session *se, size_t max_write)
{
  /* The thread starts here, in the daemon that serves (fuse_daemonize
   * forks before init). */
  if (pc->resync_pool == NULL)
    pc->resync_pool = g_thread_pool_new_full (resync_job, pc, (GDestroyNotify) shmfs_sync_unref,
                                              1, FALSE, NULL);
  g_mutex_lock (&pc->lock);
  pc->se = se;
  if (max_write >= page_size)
    pc->max_chunk = max_write - max_write % page_size;
  g_mutex_unlock (&pc->lock);
  shmfs_retrieve_start (pc->retrieve, se);
}

void
shmfs_pagecache_stop (ShmfsPageCache *pc)
{
  g_mutex_lock (&pc->lock);
  pc->se = NULL;
  g_mutex_unlock (&pc->lock);
  shmfs_retrieve_stop (pc->retrieve);
}

void
shmfs_pagecache_free (ShmfsPageCache *pc)
{
  if (pc == NULL)
    return;
  shmfs_pagecache_stop (pc);
  /* Jobs still queued run and, the session gone, only drop their object
   * (as inval.c's): a pool freed at once may free them after exit. */
  if (pc->resync_pool != NULL)
    g_thread_pool_free (pc->resync_pool, FALSE, TRUE);
  shmfs_retrieve_free (pc->retrieve);
  g_mutex_clear (&pc->lock);
  g_free (pc);
}

/* The session to notify on, or NULL when stopped.  The session outlives
 * every caller: it is destroyed after the loop and the resync pool end. */
static struct fuse_session *
session (ShmfsPageCache *pc)
{
  struct fuse_session *se;

  g_mutex_lock (&pc->lock);
  se = pc->se;
  g_mutex_unlock (&pc->lock);
  return se;
}

static gpointer
page_state_new (void)
{
  return g_new0 (PageState, 1);
}

static void
page_state_free (gpointer data)
{
  PageState *s = data;

  shm_pages_free (s->pages);
  g_free (s);
}

/* The object's cached-mode state; data lock held. */
static PageState *
state_locked (ShmfsSync *sync)
{
  return shmfs_sync_state_locked (sync, page_state_new, page_state_free);
}

/* The object's pages, NULL until it has bytes; data lock held. */
static ShmPages *
pages_locked (ShmfsSync *sync)
{
  PageState *s = state_locked (sync);
  guint64 nbytes = shm_object_get_nbytes (shmfs_sync_get_object (sync));

  if (s->pages == NULL && nbytes > 0)
    s->pages = shm_pages_new (nbytes, page_size);
  return s->pages;
}

/* The pages to mark or count in: none once an unlinked object's bytes are
 * freed (shmfs_sync_drop_bytes).  data lock held. */
static ShmPages *
live_pages_locked (ShmfsSync *sync)
{
  return shm_object_get_nbytes (shmfs_sync_get_object (sync)) > 0 ? pages_locked (sync) : NULL;
}

/* Pages of the raw view maybe in the page cache.  Marks are cleared only
 * when the kernel drops the inode: a superset is harmless. */
static void
mark_cached_locked (ShmfsSync *sync, guint64 off, guint64 len)
{
  ShmPages *pages = live_pages_locked (sync);

  if (pages != NULL)
    shm_pages_mark_cached (pages, off, len);
}

/* Pages a daemon store reached since their last writeback. */
static void
mark_stored_locked (ShmfsSync *sync, guint64 off, guint64 len)
{
  ShmPages *pages = live_pages_locked (sync);

  if (pages != NULL)
    shm_pages_mark_stored (pages, off, len);
}

/* Bumps the write generation of the pages of [off, off+len), on every
 * write into the memfd. */
static void
bump_gens_locked (ShmfsSync *sync, guint64 off, guint64 len)
{
  ShmPages *pages = live_pages_locked (sync);

  if (pages != NULL)
    shm_pages_bump (pages, off, len);
}

/* A sum that changes whenever a page of [off, off+len) is written (the
 * generations only grow). */
static guint64
gens_sum_locked (ShmfsSync *sync, guint64 off, guint64 len)
{
  ShmPages *pages = live_pages_locked (sync);

  return pages != NULL ? shm_pages_generation (pages, off, len) : 0;
}

void
shmfs_pagecache_writer_open (ShmfsSync *sync)
{
  shmfs_sync_lock (sync);
  state_locked (sync)->writers++;
  shmfs_sync_unlock (sync);
}

void
shmfs_pagecache_writer_close (ShmfsSync *sync)
{
  PageState *s;

  shmfs_sync_lock (sync);
  s = state_locked (sync);
  g_warn_if_fail (s->writers > 0);
  s->writers--;
  shmfs_sync_unlock (sync);
}

void
shmfs_pagecache_forget (ShmfsSync *sync)
{
  ShmPages *pages;

  shmfs_sync_lock (sync);
  if ((pages = state_locked (sync)->pages) != NULL)
    shm_pages_forget_cache (pages);   /* no writeback outlives the inode */
  shmfs_sync_unlock (sync);
}

void
shmfs_pagecache_reply_read (ShmfsSync *sync, fuse_req_t req, guint64 off, guint64 len)
{
  g_autofree guint8 *buf = g_malloc (len);

  /* The kernel fills the page from the reply and only then marks it up to
   * date, and a retrieve copies a page up to date or not: answer before a
   * retrieve may ask for this page. */
  shmfs_sync_lock (sync);
  shmfs_sync_read_locked (sync, off, buf, len);
  mark_cached_locked (sync, off, len);
  fuse_reply_buf (req, (const char *) buf, len);
  shmfs_sync_unlock (sync);
}

void
shmfs_pagecache_client_write (ShmfsPageCache *pc, ShmfsSync *sync, guint64 off,
                              const void *data, guint64 len, gboolean writeback)
{
  guint64 stale_off = 0, stale_len = 0;
  ShmPages *pages;
  gboolean stale;

  shmfs_sync_lock (sync);
  shmfs_sync_write_locked (sync, off, data, len);
  bump_gens_locked (sync, off, len);
  mark_cached_locked (sync, off, len);
  /* A writeback's bytes were copied from the pages before this handler
   * ran: a daemon store that reached them since is undone here, in the
   * memfd only.  The pages hold the truth, and stay in the page cache
   * until this writeback is answered: copy them back now. */
  pages = pages_locked (sync);
  stale = writeback && pages != NULL &&
          shm_pages_take_stored (pages, off, len, &stale_off, &stale_len);
  shmfs_sync_unlock (sync);
  shm_object_bump_version (shmfs_sync_get_object (sync));

  if (stale && !repair_range (pc, sync, stale_off, stale_len))
    schedule_resync (pc, sync);
}

void
shmfs_pagecache_retrieve_reply (ShmfsPageCache *pc, void *cookie, off_t offset,
                                struct fuse_bufvec *bufv)
{
  shmfs_retrieve_reply (pc->retrieve, cookie, offset, bufv);
}

/* Lays every cached page of [off, off+len) of the raw view over buf, which
 * holds the memfd's bytes of that range: retrieves for every run of
 * maybe-cached pages, at most max_chunk long.  Returns FALSE if a request
 * failed or its reply never came. */
static gboolean
overlay_cached_pages (ShmfsPageCache *pc, ShmfsSync *sync, guint8 *buf, guint64 off,
                      guint64 len)
{
  g_autoptr (GArray) runs = g_array_new (FALSE, FALSE, sizeof (guint64));
  guint64 from, to, end = off + len;
  ShmPages *pages;

  shmfs_sync_lock (sync);
  pages = pages_locked (sync);
  for (guint64 at = off;
       pages != NULL && shm_pages_next_cached_run (pages, at, end, pc->max_chunk, &from, &to);
       at = to)
    {
      g_array_append_val (runs, from);
      g_array_append_val (runs, to);
    }
  shmfs_sync_unlock (sync);
  return shmfs_retrieve_overlay (pc->retrieve, sync, buf, off, len, runs);
}

/* Copies [off, off+len) of the memfd into buf, then the cached pages over
 * it if they may hold bytes the memfd lacks.  Caller holds the store lock. */
static void
snapshot_locked (ShmfsPageCache *pc, ShmfsSync *sync, guint8 *buf, guint64 off, guint64 len)
{
  ShmPages *pages;
  PageState *s;
  gboolean overlay;

  shmfs_sync_lock (sync);
  shmfs_sync_read_locked (sync, off, buf, len);
  /* Dirty pages need a writable mapping, which needs a writable open
   * handle; the last one's munmap writes them back before release. */
  s = state_locked (sync);
  pages = pages_locked (sync);
  overlay = (s->writers > 0 || s->memfd_behind) && pages != NULL &&
            shm_pages_any_cached (pages);
  shmfs_sync_unlock (sync);

  if (overlay)
    overlay_cached_pages (pc, sync, buf, off, len);
}

void
shmfs_pagecache_snapshot (ShmfsPageCache *pc, ShmfsSync *sync, void *buf, guint64 off,
                          guint64 len)
{
  shmfs_sync_lock_store (sync);
  snapshot_locked (pc, sync, buf, off, len);
  shmfs_sync_unlock_store (sync);
}

/* Pushes data, the bytes of [off, off+len), into the pages that may be
 * cached.  The kernel copies into each page under its page lock, so a
 * client write(2) to that page is all before or all after.  Caller holds
 * the store lock. */
static void
push_to_page_cache_locked (ShmfsPageCache *pc, ShmfsSync *sync, guint64 off, guint64 len,
                           const guint8 *data)
{
  struct fuse_session *se = session (pc);
  fuse_ino_t ino = shmfs_sync_get_raw_ino (sync);
  guint64 start = off, end = off + len;

  while (se != NULL && off < end)
    {
      guint64 run_end;
      struct fuse_bufvec bufv;
      ShmPages *pages;
      gboolean cached;
      int res;

      shmfs_sync_lock (sync);
      pages = pages_locked (sync);
      if (pages != NULL)
        run_end = shm_pages_run_end (pages, off, end, STORE_CHUNK, &cached);
      shmfs_sync_unlock (sync);
      if (pages == NULL)
        return;   /* no bytes, so no page */

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
repair_range (ShmfsPageCache *pc, ShmfsSync *sync, guint64 off, guint64 len)
{
  g_autofree guint8 *buf = g_malloc (len);

  for (int tries = 0; tries < RESYNC_TRIES && session (pc) != NULL; tries++)
    {
      guint64 gens;
      gboolean applied = FALSE;

      shmfs_sync_lock (sync);
      shmfs_sync_read_locked (sync, off, buf, len);
      gens = gens_sum_locked (sync, off, len);
      shmfs_sync_unlock (sync);
      if (!overlay_cached_pages (pc, sync, buf, off, len))
        return FALSE;
      shmfs_sync_lock (sync);
      if (gens_sum_locked (sync, off, len) == gens)
        {
          shmfs_sync_write_locked (sync, off, buf, len);
          bump_gens_locked (sync, off, len);
          applied = TRUE;
        }
      shmfs_sync_unlock (sync);
      if (applied)
        return TRUE;
    }
  return session (pc) == NULL;
}

/* Stores data at [off, off+len): memfd, then page cache.  Caller holds the
 * store lock. */
static void
store_locked (ShmfsPageCache *pc, ShmfsSync *sync, guint64 off, const guint8 *data,
              guint64 len)
{
  guint64 gens;
  gboolean raced;

  shmfs_sync_lock (sync);
  shmfs_sync_write_locked (sync, off, data, len);
  bump_gens_locked (sync, off, len);
  mark_stored_locked (sync, off, len);
  gens = gens_sum_locked (sync, off, len);
  shmfs_sync_unlock (sync);
  push_to_page_cache_locked (pc, sync, off, len, data);

  shmfs_sync_lock (sync);
  /* A writeback handled from now on copied pages that hold this store;
   * one handled before may not have: keep its pages marked either way. */
  mark_stored_locked (sync, off, len);
  /* A writeback, or its repair, may have put older bytes in the memfd
   * after this store did: the pages hold the truth now. */
  raced = gens_sum_locked (sync, off, len) != gens;
  shmfs_sync_unlock (sync);
  if (raced && !repair_range (pc, sync, off, len))
    schedule_resync (pc, sync);
}

gboolean
shmfs_pagecache_modify (ShmfsPageCache *pc, ShmfsSync *sync, guint64 off, guint64 len,
                        gboolean (*modify) (guint8 *bytes, gpointer user_data),
                        gpointer user_data)
{
  g_autofree guint8 *buf = g_malloc (len);
  gboolean changed;

  shmfs_sync_lock_store (sync);
  snapshot_locked (pc, sync, buf, off, len);
  changed = modify (buf, user_data);
  if (changed)
    store_locked (pc, sync, off, buf, len);
  shmfs_sync_unlock_store (sync);
  if (changed)
    shm_object_bump_version (shmfs_sync_get_object (sync));
  return changed;
}

void
shmfs_pagecache_store (ShmfsPageCache *pc, ShmfsSync *sync, guint64 off,
                       const void *data, guint64 len)
{
  shmfs_sync_lock_store (sync);
  store_locked (pc, sync, off, data, len);
  shm_object_bump_version (shmfs_sync_get_object (sync));
  shmfs_sync_unlock_store (sync);
}

/* Makes the memfd equal to the page cache again. */
void
shmfs_pagecache_pull (ShmfsPageCache *pc, ShmfsSync *sync)
{
  if (shm_object_is_typed (shmfs_sync_get_object (sync)))
    resync (pc, sync);
}

/* The fallback when the pages could not be read back at once: retries
 * off the request path. */
static void
schedule_resync (ShmfsPageCache *pc, ShmfsSync *sync)
{
  PageState *s;
  gboolean push;

  shmfs_sync_lock (sync);
  s = state_locked (sync);
  push = !s->resync_queued;
  s->resync_queued = s->memfd_behind = TRUE;
  shmfs_sync_unlock (sync);
  if (push)
    g_thread_pool_push (pc->resync_pool, shmfs_sync_ref (sync), NULL);
}

static void
resync_job (gpointer data, gpointer user_data)
{
  ShmfsSync *sync = data;

  shmfs_sync_lock (sync);
  state_locked (sync)->resync_queued = FALSE;   /* a later need queues another */
  shmfs_sync_unlock (sync);
  if (session (user_data) != NULL)
    resync (user_data, sync);
  shmfs_sync_unref (sync);
}

static void
resync (ShmfsPageCache *pc, ShmfsSync *sync)
{
  gboolean repaired;

  shmfs_sync_lock_store (sync);
  repaired = repair_range (pc, sync, 0, shm_object_get_nbytes (shmfs_sync_get_object (sync)));
  shmfs_sync_lock (sync);
  /* Behind still, if not repaired: reads keep laying the pages over. */
  state_locked (sync)->memfd_behind = !repaired;
  shmfs_sync_unlock (sync);
  shmfs_sync_unlock_store (sync);
  if (!repaired)
    g_warning ("inode %" G_GUINT64_FORMAT ": the page cache could not be read "
               "back; it stays authoritative while it lasts",
               (guint64) shmfs_sync_get_raw_ino (sync));
}
