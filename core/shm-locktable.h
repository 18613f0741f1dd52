/* shm-locktable.h — the lock of one object: owners, modes and waiters.
 *
 * An owner (a kernel lock owner, or a hold's token) holds the object for
 * reading (shared) or writing (exclusive); a new request of an owner
 * replaces its lock (upgrade, downgrade).  A request that conflicts with
 * another owner's lock waits in a queue; whenever locks change, queued
 * requests that no longer conflict are granted, oldest first.  A hold
 * waits until no other process holds the object in any mode, then holds
 * it exclusively under a token of its own, for an atomic operation.
 *
 * Waiters are opaque pointers (the daemon's requests); each is answered
 * exactly once through its function, outside the table's mutex: granted
 * (err 0 and the owner that now holds) or refused (-EINTR, owner 0).
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef enum {
  SHM_LOCK_READ,      /* shared */
  SHM_LOCK_WRITE,     /* exclusive */
} ShmLockMode;

typedef struct _ShmLockTable ShmLockTable;

/* Answers a waiter: err 0 with the owner that now holds, or -EINTR and 0. */
typedef void (*ShmLockTableFunc) (gpointer user_data, int err, guint64 owner);
/* Whether waiter was withdrawn (interrupted) already; NULL: never. */
typedef gboolean (*ShmLockTableWithdrawnFunc) (gconstpointer waiter);

/* A table with no locks; withdrawn is asked under its mutex before a
 * waiter is queued, so that a withdrawal racing the queuing is not lost. */
ShmLockTable *shm_locktable_new (ShmLockTableWithdrawnFunc withdrawn);
/* Refuses every queued waiter (-EINTR): before the daemon goes. */
void shm_locktable_abort (ShmLockTable *t);
/* Frees t (NULL is ignored); waiters still queued are refused as by abort. */
void shm_locktable_free (ShmLockTable *t);

/* Locks mode for owner (of process pid).  Without a conflicting owner it
 * is granted at once: func runs before any waiter the change lets in, and
 * 0 is returned.  Otherwise: -EAGAIN without wait (func never runs), or
 * waiter is queued until granted or refused, and 0 is returned. */
int shm_locktable_lock (ShmLockTable *t, gconstpointer waiter, guint64 owner, pid_t pid,
                        ShmLockMode mode, gboolean wait, ShmLockTableFunc func,
                        gpointer user_data);

/* Queues a hold of process pid: granted, with a fresh owner token, once no
 * other process holds the object (pid's own locks do not count).  func
 * runs in this thread or in the one that lets go of the lock; it must pass
 * the token to shm_locktable_release().  Holds granted while func runs are
 * run after it returns, never nested. */
void shm_locktable_hold (ShmLockTable *t, gconstpointer waiter, pid_t pid,
                         ShmLockTableFunc func, gpointer user_data);

/* Withdraws a queued waiter and refuses it; FALSE when it is not queued. */
gboolean shm_locktable_cancel (ShmLockTable *t, gconstpointer waiter);

/* Drops whatever owner holds, granting the waiters it lets in. */
void shm_locktable_release (ShmLockTable *t, guint64 owner);

/* Whether another owner's lock conflicts with owner taking mode; if so its
 * mode and process go to *held_mode and *held_pid (either may be NULL). */
gboolean shm_locktable_test (ShmLockTable *t, guint64 owner, ShmLockMode mode,
                             ShmLockMode *held_mode, pid_t *held_pid);

G_END_DECLS
