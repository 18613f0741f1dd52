/* locks.h — one lock per object, whichever view was locked.
 *
 * flock(2) and fcntl(2) locks are kept by the daemon in one table per
 * object, so a shell's `flock MNT/x` excludes a program locking .raw/x.
 * Record locks cover the whole object (a value is one record).  A blocking
 * request waits in a queue and is answered when granted or interrupted,
 * never holding a worker thread.
 */
#pragma once

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>
#include <glib.h>
#include <sys/types.h>

typedef struct _ShmfsLocks ShmfsLocks;

typedef void (*ShmfsLocksHeldFunc) (guint64 owner, gpointer user_data);

/* A lock shared with other hosts (a remote mount): once the table grants
 * an owner, it must also get the lease of the object's lock from the
 * store before the request is answered. */
typedef struct {
  /* Takes, changes or renews owner's lease for process pid (write:
   * exclusive): 0, -EAGAIN while another host's holder conflicts, or
   * -errno. */
  int (*take) (gpointer data, guint64 owner, pid_t pid, gboolean write);
  /* Gives owner's lease back. */
  void (*drop) (gpointer data, guint64 owner);
  /* Calls fn (fn_data) every ms on another thread until it returns
   * G_SOURCE_REMOVE, then destroy (fn_data) (timers.h). */
  void (*every) (gpointer data, guint ms, GSourceFunc fn, gpointer fn_data,
                 GDestroyNotify destroy);
} ShmfsLease;

ShmfsLocks *shmfs_locks_new (void);
/* Shares the lock with other hosts through lease (data: its first argument). */
void shmfs_locks_set_lease (ShmfsLocks *locks, const ShmfsLease *lease, gpointer data);
/* Answers every queued waiter EINTR (a hold's function gets owner 0):
 * before the session goes. */
void shmfs_locks_abort (ShmfsLocks *locks);
/* Frees the table; waiters still queued are answered as by abort. */
void shmfs_locks_free (ShmfsLocks *locks);

/* Takes (F_RDLCK, F_WRLCK) or drops (F_UNLCK) owner's lock and replies to
 * req: at once, or, when wait is TRUE and another owner conflicts, once
 * granted (or EINTR when interrupted).  Without wait a conflict is EAGAIN
 * (EWOULDBLOCK for flock).  pid is the process, for getlk and atomics. */
void shmfs_locks_set (ShmfsLocks *locks, fuse_req_t req, guint64 owner, pid_t pid,
                      int type, gboolean wait);

/* Fills *lock with a lock of another owner that conflicts with type, or
 * sets l_type to F_UNLCK when none does. */
void shmfs_locks_test (ShmfsLocks *locks, guint64 owner, int type, struct flock *lock);

/* Drops whatever owner holds (at close), granting waiters. */
void shmfs_locks_release (ShmfsLocks *locks, guint64 owner);

/* Takes the object's lock exclusively for process tgid (a thread group
 * id: shmfs_thread_group_of) once no other process holds it (in any
 * mode), so that an atomic operation runs inside the lock like any
 * lock-based read-modify-write; the caller's own locks
 * do not count.  Then calls held (owner, user_data), at once in this
 * thread or later in the one that lets go of the lock; held must pass
 * owner to shmfs_locks_release().  Waiting holds no thread.  If req is
 * interrupted, or the table aborted, held gets owner 0 and must answer
 * req (EINTR). */
void shmfs_locks_hold (ShmfsLocks *locks, pid_t tgid, fuse_req_t req,
                       ShmfsLocksHeldFunc held, gpointer user_data);

/* The process a thread id belongs to. */
pid_t shmfs_thread_group_of (pid_t tid);
