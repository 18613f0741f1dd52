/* passthrough.h — passthrough mode: the kernel maps, reads and writes the
 * memfds themselves (DESIGN.md §6).
 *
 * One copy of the bytes, nothing to keep coherent: an open of a binary
 * view registers the object's memfd as its backing, and the daemon's own
 * stores go into the memfd.  What the daemon does not see are clients'
 * writes, which it needs to wake pollers: inotify tells it of write(2)s
 * (mapped stores make no event; fsync says so).
 */
#pragma once

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>
#include <glib.h>

#include "sync.h"

typedef struct _ShmfsPassthrough ShmfsPassthrough;

ShmfsPassthrough *shmfs_passthrough_new (void);
/* Starts watching memfd writes (at init): changed(user_data, owner) is
 * called when a client wrote an object's memfd with write(2). */
void shmfs_passthrough_start (ShmfsPassthrough *pt,
                              void (*changed) (gpointer user_data, gpointer owner),
                              gpointer user_data);
/* Stops watching (at unmount, before the session ends). */
void shmfs_passthrough_stop (ShmfsPassthrough *pt);
void shmfs_passthrough_free (ShmfsPassthrough *pt);

/* Accounts every client write that has returned; with sync, first makes
 * the object's next such write known too (see coherence.h). */
void shmfs_passthrough_settle (ShmfsPassthrough *pt, ShmfsSync *sync);

/* Registers the memfd as the backing of an open (shared by every open of
 * the object); returns the backing id or -errno. */
int shmfs_passthrough_backing_open (ShmfsPassthrough *pt, ShmfsSync *sync, fuse_req_t req);
/* Drops an open's hold on the backing; the last one unregisters it. */
void shmfs_passthrough_backing_release (ShmfsPassthrough *pt, ShmfsSync *sync,
                                        fuse_req_t req);

/* Answers a read of [off, off+len) through an open not passed through
 * (made while the object had no bytes yet). */
void shmfs_passthrough_reply_read (ShmfsSync *sync, fuse_req_t req, guint64 off, guint64 len);
/* Applies a write through such an open. */
void shmfs_passthrough_client_write (ShmfsSync *sync, guint64 off, const void *data,
                                     guint64 len);

/* Copies [off, off+len) of the memfd into buf (zeros where no bytes). */
void shmfs_passthrough_snapshot (ShmfsSync *sync, void *buf, guint64 off, guint64 len);
/* Stores data at [off, off+len) of the memfd. */
void shmfs_passthrough_store (ShmfsSync *sync, guint64 off, const void *data, guint64 len);
/* Runs modify on [off, off+len) of the memfd in place, which clients map:
 * it must use CPU atomics.  Returns what modify returned. */
gboolean shmfs_passthrough_modify (ShmfsSync *sync, guint64 off, guint64 len,
                                   gboolean (*modify) (guint8 *bytes, gpointer user_data),
                                   gpointer user_data);
