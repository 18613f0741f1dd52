/* lifetime.h — objects bound to a process, removed when it exits.
 *
 * Each bound process is watched through a pidfd (no polling of /proc); one
 * thread waits on all of them and calls back when a process exits.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

typedef struct _ShmfsLifetimes ShmfsLifetimes;

/* Called on the watcher thread for each object id bound to pid, once pid
 * has exited. */
typedef void (*ShmfsExpire) (gpointer user_data, guint64 node_id, pid_t pid);

/* Starts the watcher thread; NULL and *error when it cannot. */
ShmfsLifetimes *shmfs_lifetimes_new (ShmfsExpire expire, gpointer user_data, GError **error);
/* Stops the watcher thread and frees everything. */
void shmfs_lifetimes_free (ShmfsLifetimes *l);

/* Watches process pid (a thread id is taken to its process) for the object
 * node_id.  Returns 0 and *tgid, or -ESRCH (no such process) or -errno. */
int shmfs_lifetimes_bind (ShmfsLifetimes *l, guint64 node_id, pid_t pid, pid_t *tgid);
