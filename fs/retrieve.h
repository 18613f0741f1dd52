/* retrieve.h — reading the kernel's cached pages of a binary view back
 * (cached mode: notify_retrieve, and the retrieve_reply operation).
 *
 * A retrieve is a request the daemon makes to the kernel; its reply comes
 * later as a request of its own, on another worker thread.  The waits are
 * bounded and end at unmount.
 */
#pragma once

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>
#include <glib.h>

#include "sync.h"

typedef struct _ShmfsRetrieve ShmfsRetrieve;

ShmfsRetrieve *shmfs_retrieve_new (void);
/* Starts sending retrieves through se (at init). */
void shmfs_retrieve_start (ShmfsRetrieve *r, struct fuse_session *se);
/* Stops sending and wakes every waiter (at unmount). */
void shmfs_retrieve_stop (ShmfsRetrieve *r);
void shmfs_retrieve_free (ShmfsRetrieve *r);

/* Hands a retrieve reply to its waiter (the retrieve_reply operation). */
void shmfs_retrieve_reply (ShmfsRetrieve *r, void *cookie, off_t offset,
                           struct fuse_bufvec *bufv);

/* Lays the kernel's pages of [off, off+len) of sync's raw view over buf,
 * which holds the memfd's bytes of that range: runs (pairs of byte offsets
 * within the range) are where pages may be cached.  Returns FALSE if a
 * request failed or its reply never came (buf then keeps what came). */
gboolean shmfs_retrieve_overlay (ShmfsRetrieve *r, ShmfsSync *sync, guint8 *buf, guint64 off,
                                 guint64 len, GArray *runs);
