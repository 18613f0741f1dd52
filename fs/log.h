/* log.h — under -f/-d, one line for each input the daemon rejects (log.c). */
#pragma once

#include "shmfs.h"

G_BEGIN_DECLS

/* One line about rejected input when verbose. */
void shmfs_log_rejected (Shmfs *fs, ShmNode *node, int err, const char *fmt, ...) G_GNUC_PRINTF (4, 5);
/* Says why an object could not get the file descriptor it needs. */
void shmfs_log_fd_shortage (Shmfs *fs, ShmNode *node, int err);
/* The node's path from the mount root, for messages; g_free() it. */
char *shmfs_node_path (Shmfs *fs, ShmNode *node);

G_END_DECLS
