/* timers.h — functions run later, on a thread of their own (timers.c):
 * retries of requests that wait on another host, lease renewals.
 */
#pragma once

#include <glib.h>

typedef struct _ShmfsTimers ShmfsTimers;

ShmfsTimers *shmfs_timers_new (void);
/* Stops the thread; the destroy function of each timer still there runs. */
void shmfs_timers_free (ShmfsTimers *t);
/* Calls fn (data) on the timers' thread every ms, until it returns
 * G_SOURCE_REMOVE; then, or when t is freed first, destroy (data).  With
 * t NULL (the daemon stops), destroy (data) at once. */
void shmfs_timers_add (ShmfsTimers *t, guint ms, GSourceFunc fn, gpointer data,
                       GDestroyNotify destroy);
