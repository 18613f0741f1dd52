/* log.c — under -f/-d, one line for each input the daemon rejects. */
#include "config.h"

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

char *
shmfs_node_path (Shmfs *fs, ShmNode *node)
{
  g_autofree char *path = NULL;
  gboolean unlinked;

  g_mutex_lock (&fs->tree_lock);
  path = shm_node_dup_path (node);
  unlinked = *path == '\0' && shm_node_get_id (node) != SHM_TREE_ROOT_ID;
  g_mutex_unlock (&fs->tree_lock);
  return unlinked ? g_strdup ("(unlinked)") : g_strconcat ("/", path, NULL);
}

void
shmfs_log_rejected (Shmfs *fs, ShmNode *node, int err, const char *fmt, ...)
{
  g_autofree char *path = NULL;
  g_autofree char *why = NULL;
  va_list args;

  if (!fs->verbose)
    return;
  va_start (args, fmt);
  why = g_strdup_vprintf (fmt, args);
  va_end (args);
  path = node != NULL ? shmfs_node_path (fs, node) : g_strdup ("-");
  fprintf (stderr, "shmfs: rejected %s: %s (%s)\n", path, why, g_strerror (-err));
}

void
shmfs_log_fd_shortage (Shmfs *fs, ShmNode *node, int err)
{
  if (err == -EMFILE || err == -ENFILE)
    shmfs_log_rejected (fs, node, err, "no file descriptor left for another object "
                        "(each typed or passed-through one holds one; raise RLIMIT_NOFILE)");
}
