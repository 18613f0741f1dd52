/* ops-sync.c — synchronization: poll, the atomic-operation ioctl,
 * flock and fcntl locks.
 */
#include "config.h"

#include "ops.h"
#include "attr.h"
#include "authority.h"
#include "coherence.h"
#include "handles.h"
#include "locks.h"
#include "log.h"
#include "rawclient.h"
#include "shmfs/ioctl.h"
#include "shm-atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/file.h>

void
shmfs_poll (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h = shmfs_handle_of (fi);
  ShmfsNode *state = shmfs_node_state (h->node);
  guint64 version, now;
  unsigned revents = POLLIN | POLLRDNORM | (h->raw ? POLLOUT | POLLWRNORM : POLLOUT);

  /* Like sysfs_notify: POLLPRI|POLLERR once the value changed after the
   * last read at offset 0 of this open file (or when it cannot be read). */
  shmfs_coherence_settle (fs->coherence, state->sync);
  if (shmfs_coherence_version (fs->coherence, state->sync, FALSE, &version) < 0)
    revents |= POLLERR;
  else if (!h->raw && version != h->seen_version)
    revents |= POLLPRI | POLLERR;
  if (ph != NULL)
    {
      struct fuse_pollhandle *old;

      /* The kernel registers an open file again at each poll(2) call, and
       * one notify wakes all its waiters: keep the latest only. */
      g_mutex_lock (&fs->poll_lock);
      old = h->ph;
      h->ph = ph;
      if (old == NULL)
        {
          if (state->pollers == NULL)
            state->pollers = g_ptr_array_new ();
          g_ptr_array_add (state->pollers, h);
        }
      g_mutex_unlock (&fs->poll_lock);
      if (old != NULL)
        fuse_pollhandle_destroy (old);
      /* A change between the version read and the registration. */
      if (shmfs_coherence_version (fs->coherence, state->sync, FALSE, &now) < 0 || now != version)
        shmfs_node_wake_pollers (fs, h->node);
      else if (fs->authority->watch != NULL)
        fs->authority->watch (fs, h->node, now);   /* changes made elsewhere */
    }
  fuse_reply_poll (req, revents);
}

/* How often an atomic operation that a lock on another host keeps out
 * tries again (that host says nothing here when it lets go). */
#define REMOTE_RETRY_MS 10

typedef struct {
  Shmfs         *fs;
  fuse_req_t     req;
  pid_t          pid;             /* the caller's process */
  ShmfsHandle   *h;               /* the ioctl's open file: lives till answered */
  guint64        owner;           /* of the object's lock, held while it runs */
  ShmType        elem;            /* the scalar it applies to */
  guint64        offset;          /* and where it is in the value */
  ShmAtomic      a;
  struct shmfs_atomic io;
} AtomicOp;

/* Answers op, done (changed tells), and lets the object's lock go; with
 * woken, the change has woken the pollers already. */
static void
atomic_op_finish (AtomicOp *op, gboolean changed, gboolean woken)
{
  shmfs_locks_release (shmfs_node_state (op->h->node)->locks, op->owner);
  if (changed && woken)
    shmfs_node_times_changed (op->fs, op->h->node);
  else if (changed)
    shmfs_node_changed (op->fs, op->h->node);
  op->io.result.u = op->a.old.u;
  op->io.swapped = op->a.swapped;
  fuse_reply_ioctl (op->req, 0, &op->io, sizeof op->io);
  g_free (op);
}

/* Answers op with err, letting the object's lock go. */
static void
atomic_op_fail (AtomicOp *op, int err)
{
  shmfs_locks_release (shmfs_node_state (op->h->node)->locks, op->owner);
  fuse_reply_err (op->req, -err);
  g_free (op);
}

/* Runs op on the daemon's copy, or in the store: TRUE when answered,
 * FALSE while a process on another host holds the lock. */
static gboolean
atomic_op_try (AtomicOp *op)
{
  gboolean changed;
  int err;

  if (fuse_req_interrupted (op->req))
    err = -EINTR;
  else
    err = shmfs_coherence_atomic (op->fs->coherence, shmfs_node_state (op->h->node)->sync,
                                  &op->elem, op->offset, &op->a, op->pid, &changed);
  if (err == -EAGAIN)
    return FALSE;
  if (err < 0)
    atomic_op_fail (op, err);
  else
    atomic_op_finish (op, changed, FALSE);
  return TRUE;
}

/* An operation tried again later; op is NULL once answered. */
typedef struct {
  AtomicOp *op;
} Retry;

static gboolean
atomic_op_retry (gpointer data)
{
  Retry *retry = data;

  if (!atomic_op_try (retry->op))
    return G_SOURCE_CONTINUE;
  retry->op = NULL;
  return G_SOURCE_REMOVE;
}

/* A retried operation's timer is gone: answered, or the daemon stops. */
static void
atomic_op_retry_end (gpointer data)
{
  Retry *retry = data;

  if (retry->op != NULL)
    atomic_op_fail (retry->op, -EINTR);
  g_free (retry);
}

/* Runs op on the daemon's copy: the memfd, which passthrough clients map,
 * or in cached mode the memfd and the pages (pagecache.c); or in the store
 * of a remote mount, where it waits for a lock another host holds. */
static void
atomic_op_on_memfd (AtomicOp *op)
{
  Retry *retry;

  if (atomic_op_try (op))
    return;
  retry = g_new0 (Retry, 1);
  retry->op = op;
  shmfs_timers_add (op->fs->timers, REMOTE_RETRY_MS, atomic_op_retry, retry, atomic_op_retry_end);
}

/* The end of a cached-mode operation run on the page cache (rawclient.c). */
static void
atomic_op_done (int err, const ShmAtomic *a, gboolean changed, gpointer user_data)
{
  AtomicOp *op = user_data;

  if (err == -ESHUTDOWN)
    {
      shmfs_locks_release (shmfs_node_state (op->h->node)->locks, op->owner);
      fuse_reply_err (op->req, EINTR);
      return g_free (op);
    }
  /* No name left, or none the daemon's user may open: the daemon's copy,
   * where a store racing the operation can be undone (docs/semantics.md). */
  if (err < 0)
    return atomic_op_on_memfd (op);
  /* Its writeback, a client write, has bumped the version and woken the
   * pollers already: once is what a watcher prints. */
  op->a = *a;
  atomic_op_finish (op, changed, TRUE);
}

/* Runs op inside the object's lock (owner) and answers its ioctl. */
static void
atomic_op_held (guint64 owner, gpointer user_data)
{
  AtomicOp *op = user_data;
  Shmfs *fs = op->fs;
  g_autofree char *rel = NULL;
  fuse_ino_t ino;

  if (owner == 0)
    {
      fuse_reply_err (op->req, EINTR);
      return g_free (op);
    }
  op->owner = owner;
  /* In cached mode a change is a CPU atomic on the page the clients share,
   * as in passthrough mode; a load reads what is there. */
  if (fs->mode == SHMFS_MODE_CACHED && fs->raw_client != NULL && op->a.op != SHM_ATOMIC_LOAD)
    {
      g_mutex_lock (&fs->tree_lock);
      if (shm_node_get_parent (op->h->node) != NULL)
        rel = shm_node_dup_path (op->h->node);
      ino = shmfs_ino (op->h->node, TRUE);
      g_mutex_unlock (&fs->tree_lock);
      if (rel != NULL)
        return shmfs_raw_client_atomic (fs->raw_client, rel, ino, &op->elem, op->offset,
                                        &op->a, atomic_op_done, op);
    }
  atomic_op_on_memfd (op);
}

/* Checks an atomic operation and queues it for the object's lock; answers
 * req itself, or returns -errno for the caller to. */
static int
atomic_op (Shmfs *fs, fuse_req_t req, ShmfsHandle *h, const struct shmfs_atomic *io)
{
  AtomicOp *op;
  const ShmType *type;
  ShmAtomic a = { 0 };
  ShmType elem;
  guint64 offset = 0;
  int err;

  g_mutex_lock (&fs->tree_lock);
  type = shm_object_get_type (shm_node_get_object (h->node));
  g_mutex_unlock (&fs->tree_lock);
  if (type == NULL)
    return -ENODATA;
  a.op = (ShmAtomicOp) io->op;
  a.is_float = (io->flags & SHMFS_ATOMIC_FLOAT) != 0;
  a.index = io->index;
  a.operand.u = io->operand.u;
  a.expected.u = io->expected.u;
  a.has_field = (io->flags & SHMFS_ATOMIC_FIELD) != 0;
  a.field = io->field;
  if (io->op > SHMFS_ATOMIC_CAS || (io->flags & ~(SHMFS_ATOMIC_FLOAT | SHMFS_ATOMIC_FIELD)) != 0
      || (!a.has_field && io->field != 0))
    err = -EINVAL;
  else if (io->op != SHMFS_ATOMIC_LOAD && !h->writer)
    err = -EBADF;   /* as write(2) on a read-only open: a change needs write access */
  else
    err = shm_atomic_target (type, &a, &elem, &offset);
  if (err < 0)
    {
      shmfs_log_rejected (fs, h->node, err, "atomic operation %u on element %" G_GUINT64_FORMAT,
                          io->op, io->index);
      return err;
    }

  op = g_new0 (AtomicOp, 1);
  op->fs = fs;
  op->req = req;
  op->h = h;
  op->elem = elem;
  op->offset = offset;
  op->a = a;
  op->io = *io;
  op->pid = shmfs_thread_group_of (fuse_req_ctx (req)->pid);
  /* Inside the object's lock, as a lock-based read-modify-write would be;
   * waiting for it holds no worker thread. */
  shmfs_locks_hold (shmfs_node_state (h->node)->locks, op->pid, req,
                    atomic_op_held, op);
  return 0;
}

void
shmfs_ioctl (fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
             struct fuse_file_info *fi, unsigned flags, const void *in_buf,
             size_t in_bufsz, size_t out_bufsz)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h = shmfs_handle_of (fi);
  struct shmfs_atomic io;
  int err;

  if (flags & FUSE_IOCTL_COMPAT)
    return (void) fuse_reply_err (req, ENOSYS);
  switch (cmd)
    {
    case SHMFS_IOC_ATOMIC:
      if (in_bufsz < sizeof io || out_bufsz < sizeof io)
        return (void) fuse_reply_err (req, EINVAL);
      memcpy (&io, in_buf, sizeof io);
      if ((err = atomic_op (fs, req, h, &io)) < 0)
        fuse_reply_err (req, -err);
      return;
    case SHMFS_IOC_NOTIFY:
      {
        guint64 version;

        err = shmfs_coherence_version (fs->coherence, shmfs_node_state (h->node)->sync, TRUE,
                                       &version);
        if (err < 0)
          return (void) fuse_reply_err (req, -err);
      }
      shmfs_node_changed (fs, h->node);
      fuse_reply_ioctl (req, 0, NULL, 0);
      return;
    default:
      fuse_reply_err (req, ENOTTY);
    }
}

/* ---- locks ------------------------------------------------------------- */

void
shmfs_flock (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
  ShmfsHandle *h = shmfs_handle_of (fi);
  int type = (op & LOCK_SH) ? F_RDLCK : (op & LOCK_EX) ? F_WRLCK : F_UNLCK;

  shmfs_locks_set (shmfs_node_state (h->node)->locks, req, fi->lock_owner,
                   fuse_req_ctx (req)->pid, type, !(op & LOCK_NB));
}

void
shmfs_getlk (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock)
{
  ShmfsHandle *h = shmfs_handle_of (fi);

  shmfs_locks_test (shmfs_node_state (h->node)->locks, fi->lock_owner, lock->l_type, lock);
  fuse_reply_lock (req, lock);
}

void
shmfs_setlk (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
             struct flock *lock, int sleep)
{
  ShmfsHandle *h = shmfs_handle_of (fi);

  shmfs_locks_set (shmfs_node_state (h->node)->locks, req, fi->lock_owner,
                   lock->l_pid > 0 ? lock->l_pid : fuse_req_ctx (req)->pid,
                   lock->l_type, sleep);
}
