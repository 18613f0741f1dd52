/* locks.c — the daemon's lock table of an object: core's shm-locktable,
 * its waiters FUSE requests, answered with fuse_reply_err. */
#include "config.h"

#include "locks.h"
#include "shm-locktable.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

struct _ShmfsLocks {
  ShmLockTable *table;
  const ShmfsLease *lease;        /* a lock shared with other hosts, or NULL */
  gpointer    lease_data;
  GMutex      leased_lock;
  GHashTable *leased;             /* owners holding a lease: set of guint64 */
};

/* How often a request the store refused asks again: a holder on another
 * host says nothing here when it lets go. */
#define LEASE_RETRY_MS 10

/* A lock request on its way: granted here, then leased from the store. */
typedef struct {
  ShmfsLocks *locks;
  fuse_req_t  req;
  guint64     owner;
  pid_t       pid;
  gboolean    write;
  gboolean    wait;
  gboolean    answered;
} Request;

/* A hold's function and data, till it is answered. */
typedef struct {
  ShmfsLocksHeldFunc held;
  gpointer           user_data;
} Hold;

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

static gboolean
req_interrupted (gconstpointer waiter)
{
  return fuse_req_interrupted ((fuse_req_t) waiter);
}

ShmfsLocks *
shmfs_locks_new (void)
{
  ShmfsLocks *locks = g_new0 (ShmfsLocks, 1);

  locks->table = shm_locktable_new (req_interrupted);
  return locks;
}

void
shmfs_locks_abort (ShmfsLocks *locks)
{
  shm_locktable_abort (locks->table);
}

void
shmfs_locks_free (ShmfsLocks *locks)
{
  if (locks == NULL)
    return;
  shm_locktable_free (locks->table);
  g_clear_pointer (&locks->leased, g_hash_table_unref);
  g_mutex_clear (&locks->leased_lock);
  g_free (locks);
}

void
shmfs_locks_set_lease (ShmfsLocks *locks, const ShmfsLease *lease, gpointer data)
{
  locks->lease = lease;
  locks->lease_data = data;
  g_mutex_init (&locks->leased_lock);
  locks->leased = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
}

static void
mark_leased (ShmfsLocks *locks, guint64 owner, gboolean leased)
{
  g_mutex_lock (&locks->leased_lock);
  if (leased)
    g_hash_table_add (locks->leased, g_memdup2 (&owner, sizeof owner));
  else
    g_hash_table_remove (locks->leased, &owner);
  g_mutex_unlock (&locks->leased_lock);
}

/* Drops owner's lease, if it has one. */
static void
drop_lease (ShmfsLocks *locks, guint64 owner)
{
  gboolean had;

  if (locks->lease == NULL)
    return;
  g_mutex_lock (&locks->leased_lock);
  had = g_hash_table_remove (locks->leased, &owner);
  g_mutex_unlock (&locks->leased_lock);
  if (had)
    locks->lease->drop (locks->lease_data, owner);
}

/* Answers r once: err 0 granted, or refused (the table's grant undone). */
static void
answer_request (Request *r, int err)
{
  if (r->answered)
    return;
  r->answered = TRUE;
  if (err < 0)
    {
      shm_locktable_release (r->locks->table, r->owner);
      drop_lease (r->locks, r->owner);
    }
  fuse_reply_err (r->req, -err);
}

/* Asks the store for r's lease: TRUE when r is answered. */
static gboolean
take_lease (Request *r)
{
  int err;

  if (r->wait && fuse_req_interrupted (r->req))
    {
      answer_request (r, -EINTR);
      return TRUE;
    }
  err = r->locks->lease->take (r->locks->lease_data, r->owner, r->pid, r->write);
  if (err == 0)
    mark_leased (r->locks, r->owner, TRUE);
  else if (err == -ETIMEDOUT)
    r->locks->lease->drop (r->locks->lease_data, r->owner);   /* it may have been taken */
  if (err == -EAGAIN && r->wait)
    return FALSE;
  answer_request (r, err);
  return TRUE;
}

static gboolean
retry_lease (gpointer data)
{
  return take_lease (data) ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

/* A waiting request's timer is gone: answered already, or the daemon is
 * stopping (EINTR). */
static void
request_free (gpointer data)
{
  answer_request (data, -EINTR);
  g_free (data);
}

static void
interrupted (fuse_req_t req, void *data)
{
  ShmfsLocks *locks = data;

  shm_locktable_cancel (locks->table, req);
}

/* The table answered a lock request: granted, or interrupted (-EINTR).
 * Shared with other hosts, a grant then needs the store's lease too. */
static void
answer_lock (gpointer user_data, int err, guint64 owner)
{
  Request *r = user_data;

  if (err < 0 || r->locks->lease == NULL)
    {
      fuse_reply_err (r->req, -err);
      return g_free (r);
    }
  if (take_lease (r))
    return g_free (r);
  r->locks->lease->every (r->locks->lease_data, LEASE_RETRY_MS, retry_lease, r, request_free);
}

/* Answers a hold: its function gets the token, or 0. */
static void
answer_hold (gpointer user_data, int err, guint64 owner)
{
  Hold *hold = user_data;

  hold->held (err < 0 ? 0 : owner, hold->user_data);
  g_free (hold);
}

static ShmLockMode
mode_of (int type)
{
  return type == F_WRLCK ? SHM_LOCK_WRITE : SHM_LOCK_READ;
}

void
shmfs_locks_set (ShmfsLocks *locks, fuse_req_t req, guint64 owner, pid_t pid,
                 int type, gboolean wait)
{
  Request *r;

  if (type == F_UNLCK)
    {
      shmfs_locks_release (locks, owner);
      return (void) fuse_reply_err (req, 0);
    }
  r = g_new0 (Request, 1);
  r->locks = locks;
  r->req = req;
  r->owner = owner;
  r->pid = shmfs_thread_group_of (pid);
  r->write = type == F_WRLCK;
  r->wait = wait;
  /* Set before the request can be queued: an interrupt from then on
   * either finds it in the queue or is seen by the table's withdrawn test
   * (req_interrupted), which runs before it is queued. */
  if (wait)
    fuse_req_interrupt_func (req, interrupted, locks);
  if (shm_locktable_lock (locks->table, req, owner, r->pid, mode_of (type), wait, answer_lock,
                          r) < 0)
    {
      g_free (r);
      fuse_reply_err (req, EAGAIN);
    }
}

void
shmfs_locks_test (ShmfsLocks *locks, guint64 owner, int type, struct flock *lock)
{
  ShmLockMode mode;
  pid_t pid;

  if (!shm_locktable_test (locks->table, owner, mode_of (type), &mode, &pid))
    lock->l_type = F_UNLCK;
  else
    {
      lock->l_type = mode == SHM_LOCK_WRITE ? F_WRLCK : F_RDLCK;
      lock->l_whence = SEEK_SET;
      lock->l_start = 0;
      lock->l_len = 0;
      lock->l_pid = pid;
    }
}

void
shmfs_locks_release (ShmfsLocks *locks, guint64 owner)
{
  shm_locktable_release (locks->table, owner);
  drop_lease (locks, owner);
}

void
shmfs_locks_hold (ShmfsLocks *locks, pid_t tgid, fuse_req_t req,
                  ShmfsLocksHeldFunc held, gpointer user_data)
{
  Hold *hold = g_new0 (Hold, 1);

  hold->held = held;
  hold->user_data = user_data;
  fuse_req_interrupt_func (req, interrupted, locks);
  shm_locktable_hold (locks->table, req, tgid, answer_hold, hold);
}
