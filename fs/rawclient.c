/* rawclient.c — helper processes that use the daemon's own mount as any
 * client does.
 *
 * In cached mode an object's value lives in the kernel's page cache of its
 * binary view as much as in the daemon's memfd: clients' mmap stores sit
 * in those pages until writeback.  An atomic operation done on the memfd
 * and stored into the pages afterwards undoes any store that lands on the
 * page between the two, from write(2) or from a mapping, to its element or
 * to any other in the page (the page is written back whole).  So cached
 * mode does what passthrough mode does: a CPU atomic on the very memory
 * the clients share, here the page the kernel caches.  A helper process
 * opens MOUNT/.raw/PATH, maps the element's page, applies the operation,
 * and writes the page back (sync_file_range) before the answer, so that
 * the memfd, which text reads start from, holds it too.
 *
 * Not a thread of the daemon: a thread faulting on its own mount would wait
 * for a worker to answer the read while holding its address space's locks,
 * which that worker may need (a mmap of a memfd takes them for writing).
 * The helpers are forked before any thread exists and keep nothing of the
 * daemon but their socket; each is driven by one thread of the daemon,
 * never by a FUSE worker, so no worker ever waits for a helper.
 */
#include "config.h"

#include "rawclient.h"
#include "shmfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
  guint64   ino;
  guint64   off;
  ShmType   type;
  ShmAtomic a;
  char      path[PATH_MAX];
} Request;

typedef struct {
  gint32    err;
  gboolean  changed;
  ShmAtomic a;
} Reply;

typedef struct {
  ShmfsRawClient *rc;
  pid_t     pid;
  int       sock;
  GThread  *thread;
} Helper;

typedef struct {
  Request  rq;
  ShmfsRawClientDone done;
  gpointer user_data;
} Job;

struct _ShmfsRawClient {
  char        *mountpoint;
  GAsyncQueue *jobs;              /* Job*, then one stop_mark per helper */
  GMutex       lock;              /* stopped: no job is queued after it */
  gboolean     stopped;
  gint         warned;            /* a helper died: said once */
  Helper      *helpers;
  guint        n;
};

static Job stop_mark;

/* ---- the helper process ---------------------------------------------- */

static sigjmp_buf fault_env;

static void
on_fault (int sig)
{
  siglongjmp (fault_env, 1);
}

/* Opens rq's object, checks it is the one meant (the name may have moved
 * on to another since the daemon took it), and applies the operation on
 * its page. */
static int
helper_apply (const char *mountpoint, dev_t *dev, Request *rq, Reply *rp)
{
  long page = sysconf (_SC_PAGESIZE);
  guint64 start = rq->off - rq->off % (guint64) page;
  gsize len = rq->off + shm_type_elem_size (&rq->type) - start;
  struct stat st;
  guint8 *map;
  int fd, err = 0;

  len = (len + (gsize) page - 1) / (gsize) page * (gsize) page;
  if (*dev == 0)
    {
      if (stat (mountpoint, &st) < 0)
        return -errno;
      *dev = st.st_dev;
    }
  fd = open (rq->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
  if (fd < 0)
    return -errno;
  if (fstat (fd, &st) < 0 || st.st_dev != *dev || st.st_ino != rq->ino || !S_ISREG (st.st_mode))
    {
      close (fd);
      return -ENOENT;
    }
  map = mmap (NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t) start);
  if (map == MAP_FAILED)
    err = -errno;
  else
    {
      /* A page the daemon cannot fill (an I/O error) is SIGBUS: no change. */
      if (sigsetjmp (fault_env, 1) == 0)
        rp->changed = shm_atomic_apply_elem (&rq->type, map + (rq->off - start), &rp->a);
      else
        err = -EIO;
      munmap (map, len);
      /* Should this fail, the page stays dirty and its writeback, later,
       * carries the change: nothing is lost. */
      if (err == 0 && rp->changed)
        sync_file_range (fd, (off_t) start, (off_t) len, SYNC_FILE_RANGE_WAIT_BEFORE |
                         SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    }
  close (fd);
  return err;
}

static void G_GNUC_NORETURN
helper_main (const char *mountpoint, int sock)
{
  struct sigaction sa = { .sa_handler = on_fault };
  dev_t dev = 0;
  Request rq;
  Reply rp;

  /* The daemon's handlers are for the daemon: a TERM ends a helper. */
  signal (SIGTERM, SIG_DFL);
  signal (SIGINT, SIG_DFL);
  signal (SIGHUP, SIG_DFL);
  signal (SIGPIPE, SIG_IGN);
  sigaction (SIGBUS, &sa, NULL);
  prctl (PR_SET_NAME, "shmfs-helper");
  for (;;)
    {
      ssize_t n = recv (sock, &rq, sizeof rq, 0);

      if (n < 0 && errno == EINTR)
        continue;
      if (n != sizeof rq)
        _exit (0);   /* the daemon is going */
      rq.path[sizeof rq.path - 1] = '\0';
      memset (&rp, 0, sizeof rp);
      rp.a = rq.a;
      rp.err = helper_apply (mountpoint, &dev, &rq, &rp);
      if (send (sock, &rp, sizeof rp, MSG_NOSIGNAL) != sizeof rp)
        _exit (0);
    }
}

/* In the child: nothing of the daemon stays open but sock. */
static void
keep_only (int sock)
{
  if (sock > 3)
    close_range (3, (unsigned) sock - 1, 0);
  close_range ((unsigned) sock + 1, ~0U, 0);
}

static gboolean
spawn (ShmfsRawClient *rc, Helper *h, GError **error)
{
  pid_t parent = getpid ();
  int sv[2];

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   "helper socket: %s", g_strerror (errno));
      return FALSE;
    }
  h->pid = fork ();
  if (h->pid < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   "helper: fork: %s", g_strerror (errno));
      close (sv[0]);
      close (sv[1]);
      return FALSE;
    }
  if (h->pid == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      if (getppid () != parent)
        _exit (0);
      keep_only (sv[1]);
      helper_main (rc->mountpoint, sv[1]);
    }
  close (sv[1]);
  h->sock = sv[0];
  h->rc = rc;
  return TRUE;
}

/* ---- the daemon's side ------------------------------------------------ */

static int
exchange (Helper *h, Job *job, Reply *rp)
{
  ssize_t n;

  do
    n = send (h->sock, &job->rq, sizeof job->rq, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != sizeof job->rq)
    return -EPIPE;
  do
    n = recv (h->sock, rp, sizeof *rp, 0);
  while (n < 0 && errno == EINTR);
  if (n != sizeof *rp)
    return -EPIPE;
  return rp->err;
}

static gpointer
helper_thread (gpointer data)
{
  Helper *h = data;
  ShmfsRawClient *rc = h->rc;
  gboolean dead = FALSE;
  Job *job;

  while ((job = g_async_queue_pop (rc->jobs)) != &stop_mark)
    {
      Reply rp = { 0 };
      int err;

      g_mutex_lock (&rc->lock);
      err = rc->stopped ? -ESHUTDOWN : dead ? -EPIPE : 0;
      g_mutex_unlock (&rc->lock);
      if (err == 0 && (err = exchange (h, job, &rp)) == -EPIPE)
        {
          gboolean stopped;

          g_mutex_lock (&rc->lock);
          dead = TRUE;
          stopped = rc->stopped;
          g_mutex_unlock (&rc->lock);
          if (stopped)
            err = -ESHUTDOWN;
          else if (g_atomic_int_compare_and_exchange (&rc->warned, 0, 1))
            g_warning ("helper %d is gone; cached-mode atomic operations it would have run "
                       "go through the daemon's copy", (int) h->pid);
        }
      job->done (err, &rp.a, err == 0 && rp.changed, job->user_data);
      g_free (job);
    }
  return NULL;
}

ShmfsRawClient *
shmfs_raw_client_new (const char *mountpoint, guint n, GError **error)
{
  ShmfsRawClient *rc = g_new0 (ShmfsRawClient, 1);

  rc->mountpoint = g_strdup (mountpoint);
  rc->helpers = g_new0 (Helper, n);
  g_mutex_init (&rc->lock);
  rc->jobs = g_async_queue_new ();
  for (; rc->n < n; rc->n++)
    if (!spawn (rc, &rc->helpers[rc->n], error))
      break;
  if (rc->n == 0)
    {
      shmfs_raw_client_free (rc);
      return NULL;
    }
  g_clear_error (error);
  for (guint i = 0; i < rc->n; i++)
    rc->helpers[i].thread = g_thread_new ("shmfs-raw-client", helper_thread, &rc->helpers[i]);
  return rc;
}

void
shmfs_raw_client_atomic (ShmfsRawClient *rc, const char *rel, guint64 ino,
                         const ShmType *t, guint64 off, const ShmAtomic *a,
                         ShmfsRawClientDone done, gpointer user_data)
{
  Job *job = g_new0 (Job, 1);
  int len;

  len = g_snprintf (job->rq.path, sizeof job->rq.path, "%s/" SHMFS_RAW_DIR_NAME "/%s",
                    rc->mountpoint, rel);
  job->rq.ino = ino;
  job->rq.off = off;
  job->rq.type = *t;
  job->rq.a = *a;
  job->done = done;
  job->user_data = user_data;
  g_mutex_lock (&rc->lock);
  if (!rc->stopped && len < (int) sizeof job->rq.path)
    {
      g_async_queue_push (rc->jobs, job);
      job = NULL;
    }
  g_mutex_unlock (&rc->lock);
  if (job != NULL)
    {
      done (len < (int) sizeof job->rq.path ? -ESHUTDOWN : -ENAMETOOLONG, a, FALSE, user_data);
      g_free (job);
    }
}

void
shmfs_raw_client_stop (ShmfsRawClient *rc)
{
  g_mutex_lock (&rc->lock);
  if (rc->stopped)
    {
      g_mutex_unlock (&rc->lock);
      return;
    }
  rc->stopped = TRUE;
  g_mutex_unlock (&rc->lock);
  for (guint i = 0; i < rc->n; i++)
    {
      /* An exchange under way ends now, whatever the helper waits for. */
      shutdown (rc->helpers[i].sock, SHUT_RDWR);
      kill (rc->helpers[i].pid, SIGKILL);
    }
  for (guint i = 0; i < rc->n; i++)
    if (rc->helpers[i].thread != NULL)
      g_async_queue_push (rc->jobs, &stop_mark);
  for (guint i = 0; i < rc->n; i++)
    if (rc->helpers[i].thread != NULL)
      g_clear_pointer (&rc->helpers[i].thread, g_thread_join);
}

void
shmfs_raw_client_free (ShmfsRawClient *rc)
{
  if (rc == NULL)
    return;
  shmfs_raw_client_stop (rc);
  for (guint i = 0; i < rc->n; i++)
    {
      /* Dead, or dies as soon as the kernel ends what it waits for. */
      while (waitpid (rc->helpers[i].pid, NULL, 0) < 0 && errno == EINTR)
        ;
      close (rc->helpers[i].sock);
    }
  g_async_queue_unref (rc->jobs);
  g_mutex_clear (&rc->lock);
  g_free (rc->helpers);
  g_free (rc->mountpoint);
  g_free (rc);
}
