/* lifetime.h — objects bound to a process, removed when it exits.
 *
 * Each bound process is watched through a pidfd (no polling of /proc); one
 * thread waits on all of them and calls back when a process exits.  An
 * object is bound to at most one process: binding it again moves it, and a
 * process's watch goes with its last object.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

typedef struct _ShmfsLifetimes ShmfsLifetimes;

/* Called on the watcher thread for each object id bound to pid, once pid
 * has exited. */
typedef void (*ShmfsExpire) (gpointer user_data, guint64 node_id, pid_t pid);

/* Sets up the watcher; NULL and *error when it cannot.  No thread yet. */
ShmfsLifetimes *shmfs_lifetimes_new (ShmfsExpire expire, gpointer user_data, GError **error);
/* Starts the watcher thread (after fuse_daemonize: a fork keeps no thread). */
void shmfs_lifetimes_start (ShmfsLifetimes *l);
/* Stops the watcher thread and frees everything. */
void shmfs_lifetimes_free (ShmfsLifetimes *l);

/* Binds object node_id to process pid (a thread id is taken to its
 * process), unbinding it from any other.  Returns 0 and *tgid, or -ESRCH
 * (no such process) or -errno. */
int shmfs_lifetimes_bind (ShmfsLifetimes *l, guint64 node_id, pid_t pid, pid_t *tgid);
/* Unbinds object node_id, if bound. */
void shmfs_lifetimes_unbind (ShmfsLifetimes *l, guint64 node_id);
