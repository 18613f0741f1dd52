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
};

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
  g_free (locks);
}

static void
interrupted (fuse_req_t req, void *data)
{
  ShmfsLocks *locks = data;

  shm_locktable_cancel (locks->table, req);
}

/* Answers a lock request: granted, or interrupted (-EINTR). */
static void
answer_lock (gpointer user_data, int err, guint64 owner)
{
  fuse_reply_err (user_data, -err);
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
  if (type == F_UNLCK)
    {
      shmfs_locks_release (locks, owner);
      return (void) fuse_reply_err (req, 0);
    }
  /* Set before the request can be queued: an interrupt from then on
   * either finds it in the queue or is seen by the table's withdrawn test
   * (req_interrupted), which runs before it is queued. */
  if (wait)
    fuse_req_interrupt_func (req, interrupted, locks);
  if (shm_locktable_lock (locks->table, req, owner, shmfs_thread_group_of (pid), mode_of (type),
                          wait, answer_lock, req) < 0)
    fuse_reply_err (req, EAGAIN);
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
}

void
shmfs_locks_hold (ShmfsLocks *locks, pid_t pid, fuse_req_t req,
                  ShmfsLocksHeldFunc held, gpointer user_data)
{
  Hold *hold = g_new0 (Hold, 1);

  hold->held = held;
  hold->user_data = user_data;
  fuse_req_interrupt_func (req, interrupted, locks);
  shm_locktable_hold (locks->table, req, shmfs_thread_group_of (pid), answer_hold, hold);
}
