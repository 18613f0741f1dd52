/* rawclient.h — helper processes that use the daemon's own mount as any
 * client does: cached mode's atomic operations (see rawclient.c).
 */
#pragma once

#include <glib.h>
#include "shm-atomic.h"

G_BEGIN_DECLS

typedef struct _ShmfsRawClient ShmfsRawClient;

/* The end of an operation: err is 0 (a->old, a->swapped and changed are
 * the operation's), or -errno when it did not run: the object could not be
 * opened (-ENOENT: no such name, or the name is now another object's;
 * -EACCES: the daemon's user may not), a helper failed (-EPIPE, -EIO), or
 * the client was stopped (-ESHUTDOWN). */
typedef void (*ShmfsRawClientDone) (int err, const ShmAtomic *a, gboolean changed,
                                    gpointer user_data);

/* Forks n helpers for the mount at mountpoint (absolute), then the threads
 * that talk to them.  Call it before the daemon starts any thread: a fork
 * keeps only the calling one.  A helper keeps no descriptor but its socket
 * (none on the FUSE device: a daemon that dies still ends its connection)
 * and dies with the daemon.  NULL, with error set, if none could start. */
ShmfsRawClient *shmfs_raw_client_new (const char *mountpoint, guint n, GError **error);

/* Queues a, checked against t, for the element at byte off of the object
 * whose binary view is MOUNTPOINT/.raw/rel with inode number ino.  A helper
 * maps the kernel's page of it, applies a with a CPU atomic, and waits
 * until that page is written back to the daemon; done then runs on a
 * thread of this client (or at once, in the caller, once stopped).  The
 * helper's requests are answered by FUSE workers, so nothing here waits
 * on one. */
void shmfs_raw_client_atomic (ShmfsRawClient *rc, const char *rel, guint64 ino,
                              const ShmType *t, guint64 off, const ShmAtomic *a,
                              ShmfsRawClientDone done, gpointer user_data);

/* Kills the helpers and ends every operation queued or under way with
 * -ESHUTDOWN; returns when their done functions have run.  While the
 * session lasts (they may answer requests). */
void shmfs_raw_client_stop (ShmfsRawClient *rc);

/* Stops the client (if not yet), reaps the helpers and frees it. */
void shmfs_raw_client_free (ShmfsRawClient *rc);

G_END_DECLS
