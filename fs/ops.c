/* ops.c — the low-level operations table of shmfs, init and destroy.
 *
 * Inode ownership model
 * ---------------------
 * Every ShmNode (directory or object) has two inode numbers: 2*id for its
 * main view and 2*id+1 for its raw twin under /.raw; the root's main view
 * is FUSE_ROOT_ID and its twin is the /.raw directory itself.  Node ids are
 * never reused, so inode numbers need no generation.
 *
 * A node holds one tree reference while either view has a kernel lookup
 * count (ShmfsNode.nlookup, both counts under tree_lock), and each open file
 * holds one more; an unlinked node lives on until FORGET and RELEASE have
 * dropped them all, which is what keeps an unlinked object's memfd alive
 * for the processes that still have it open or mapped.
 *
 * A directory has one dentry at a time, so when a directory moves in the
 * main tree its raw twin would be found under the new name while the
 * kernel still has it under the old one, and a lookup that races any
 * rename then fails with ESTALE (the kernel cannot move the old alias
 * without the rename lock).  So the raw twins of a directory that moves,
 * and of the directories below it, get new numbers (ShmfsNode.raw_id,
 * fresh ids from the tree's counter): the new names are new inodes, and
 * the old numbers live on in Shmfs.twin_ids, with their lookup counts,
 * until the kernel forgets them.
 *
 * An object's raw twin gets a new number the same way when it is typed
 * while the kernel holds it, so that no raw inode ever changes size: the
 * kernel cannot be told reliably that an inode grew.  While a truncate or
 * a write past the size it holds is in flight on an inode it drops the
 * attributes of GETATTR and LOOKUP replies (FUSE_I_SIZE_UNSTABLE), yet
 * hands their size to stat; it takes the size of a SETATTR reply as it is,
 * however stale by the time the caller applies it; a write past its size
 * grows it to where that write ended.  So the untyped view's size of 0
 * outlived the typing, and a process mapped the N bytes fstat gave and
 * faulted past that 0 (SIGBUS), or read short.  With a number of its own,
 * the typed view has size N from its first lookup on, and the old number
 * stays the untyped view, empty (size 0, reads at end of file, writes
 * EFBIG; ShmfsHandle.empty), for what was opened on it, until forgotten.
 *
 * Atomic operations in cached mode are CPU atomics on the kernel's page of
 * the element, as in passthrough mode they are on the memfd: a helper
 * process maps it through the mount (rawclient.c).  Done on the memfd and
 * stored into the page afterwards, they undid any store that came between.
 *
 * Caching: main-tree entries are cached (the kernel keeps its own dcache
 * right for the changes made through it); entries under /.raw get no cache
 * time, so a rename or unlink in the main tree shows there at once.  The
 * text view is direct I/O with no attribute cache (its size follows the
 * value).  The raw view keeps its page cache (see pagecache.h) and long
 * attributes, which the daemon invalidates when it changes them.
 *
 * Locking: tree_lock guards the namespace, attributes and lookup counts and
 * is never held while replying or notifying.  Object bytes are guarded by
 * the per-object locks of sync.h; text handles by their own lock.
 */
#include "config.h"

#include "ops.h"
#include "authority.h"
#include "attr.h"
#include "coherence.h"
#include "inval.h"
#include "locks.h"
#include "rawclient.h"
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

/* ---- namespace --------------------------------------------------------- */

void
shmfs_set_bdi (const char *dev, const char *name, const char *value)
{
  g_autofree char *path = g_strdup_printf ("/sys/class/bdi/%s/%s", dev, name);

  /* Only root may; failing changes nothing. */
  g_file_set_contents_full (path, value, -1, G_FILE_SET_CONTENTS_NONE, 0644, NULL);
}

/* A client wrote a passthrough object with write(2). */
static void
memfd_written (gpointer user_data, gpointer owner)
{
  shmfs_node_changed (user_data, owner);
}

static void
shmfs_init (void *userdata, struct fuse_conn_info *conn)
{
  Shmfs *fs = userdata;

  /* Cached mode (DESIGN.md §6): one page cache per raw view, kept by the
   * kernel as long as it likes, write-through, never dropped on its own. */
  fuse_unset_feature_flag (conn, FUSE_CAP_WRITEBACK_CACHE);
  fuse_unset_feature_flag (conn, FUSE_CAP_AUTO_INVAL_DATA);
  fuse_unset_feature_flag (conn, FUSE_CAP_ATOMIC_O_TRUNC);
  fuse_set_feature_flag (conn, FUSE_CAP_EXPLICIT_INVAL_DATA);
  fuse_unset_feature_flag (conn, FUSE_CAP_DIRECT_IO_ALLOW_MMAP);
  fuse_set_feature_flag (conn, FUSE_CAP_PARALLEL_DIROPS);
  /* Directories have no ioctls (nor a handle): the kernel says ENOTTY. */
  fuse_unset_feature_flag (conn, FUSE_CAP_IOCTL_DIR);
  /* No object is ever setuid or setgid (setattr strips the bits), so there
   * is nothing for a write to clear: spare the kernel asking for
   * security.capability at every write. */
  fuse_set_feature_flag (conn, FUSE_CAP_HANDLE_KILLPRIV_V2);

  if (fs->mode == SHMFS_MODE_AUTO || fs->mode == SHMFS_MODE_PASSTHROUGH)
    {
      if (fuse_set_feature_flag (conn, FUSE_CAP_PASSTHROUGH))
        {
          /* memfds live on shmem, a filesystem that stacks on nothing. */
          conn->max_backing_stack_depth = 1;
          fs->mode = SHMFS_MODE_PASSTHROUGH;
        }
      else if (fs->mode == SHMFS_MODE_PASSTHROUGH)
        {
          fprintf (stderr, "shmfs: mode=passthrough: the kernel does not offer FUSE passthrough "
                   "(it needs Linux 6.9 or later)\n");
          fs->init_failed = TRUE;
          fuse_session_exit (fs->se);
        }
      else
        fs->mode = SHMFS_MODE_CACHED;
    }
  if (fs->mode != SHMFS_MODE_CACHED)
    g_clear_pointer (&fs->raw_client, shmfs_raw_client_free);
  if (fs->mode == SHMFS_MODE_CACHED && fs->bdi != NULL)
    {
      /* Page faults in cached mode fill 1 MiB per request, not 128 KiB. */
      shmfs_set_bdi (fs->bdi, "read_ahead_kb", "1024");
      conn->max_readahead = 1024 * 1024;
    }
  if (fs->verbose && !fs->init_failed)
    fprintf (stderr, "shmfs: mounted, mode %s\n", shmfs_mode_name (fs));
  shmfs_coherence_start (fs->coherence, fs->se, conn->max_write,
                         fs->mode == SHMFS_MODE_PASSTHROUGH, memfd_written, fs);
  shmfs_inval_start (fs->inval, fs->se);
}

static void
collect_locks (ShmNode *node, gpointer user_data)
{
  ShmfsNode *state = shmfs_node_state (node);

  if (state != NULL)
    g_ptr_array_add (user_data, state->locks);
}

static void
shmfs_destroy (void *userdata)
{
  Shmfs *fs = userdata;
  g_autoptr (GPtrArray) locks = g_ptr_array_new ();

  shmfs_coherence_stop (fs->coherence);
  shmfs_inval_stop (fs->inval);
  /* Atomic operations under way end (EINTR) and let their locks go. */
  if (fs->raw_client != NULL)
    shmfs_raw_client_stop (fs->raw_client);
  /* Requests still waiting for a lock are answered while the session
   * lasts.  No request runs any more, so the tables stay. */
  g_mutex_lock (&fs->tree_lock);
  shm_tree_foreach_node (fs->tree, collect_locks, locks);
  g_mutex_unlock (&fs->tree_lock);
  for (guint i = 0; i < locks->len; i++)
    shmfs_locks_abort (locks->pdata[i]);
}

static void
shmfs_statfs (fuse_req_t req, fuse_ino_t ino)
{
  Shmfs *fs = shmfs_from_req (req);
  struct statvfs sv;
  guint64 capacity, used, nodes;

  int err;

  g_mutex_lock (&fs->tree_lock);
  capacity = shm_tree_get_capacity (fs->tree);
  used = shm_tree_get_used_bytes (fs->tree);
  nodes = shm_tree_get_node_count (fs->tree);
  g_mutex_unlock (&fs->tree_lock);
  if (fs->authority->usage != NULL && (err = fs->authority->usage (fs, &capacity, &used)) < 0)
    return (void) fuse_reply_err (req, -err);

  memset (&sv, 0, sizeof sv);
  sv.f_bsize = sv.f_frsize = 4096;
  sv.f_blocks = capacity / 4096;
  sv.f_bfree = sv.f_bavail = used >= capacity ? 0 : (capacity - used) / 4096;
  sv.f_files = MAX (nodes, sv.f_blocks);
  sv.f_ffree = sv.f_favail = sv.f_files - nodes;
  sv.f_namemax = SHM_TREE_NAME_MAX;
  fuse_reply_statfs (req, &sv);
}

static void
shmfs_retrieve_reply (fuse_req_t req, void *cookie, fuse_ino_t ino, off_t offset,
                      struct fuse_bufvec *bufv)
{
  shmfs_coherence_retrieve_reply (shmfs_from_req (req)->coherence, cookie, offset, bufv);
  fuse_reply_none (req);
}

const struct fuse_lowlevel_ops shmfs_ops = {
  .init           = shmfs_init,
  .destroy        = shmfs_destroy,
  .lookup         = shmfs_lookup,
  .forget         = shmfs_forget,
  .forget_multi   = shmfs_forget_multi,
  .getattr        = shmfs_getattr,
  .setattr        = shmfs_setattr,
  .mknod          = shmfs_mknod,
  .mkdir          = shmfs_mkdir,
  .unlink         = shmfs_unlink,
  .rmdir          = shmfs_rmdir,
  .symlink        = shmfs_symlink,
  .link           = shmfs_link,
  .rename         = shmfs_rename,
  .open           = shmfs_open,
  .create         = shmfs_create,
  .read           = shmfs_read,
  .write          = shmfs_write,
  .flush          = shmfs_flush,
  .release        = shmfs_release,
  .fsync          = shmfs_fsync,
  .readdir        = shmfs_readdir,
  .readdirplus    = shmfs_readdirplus,
  .statfs         = shmfs_statfs,
  .setxattr       = shmfs_setxattr,
  .getxattr       = shmfs_getxattr,
  .listxattr      = shmfs_listxattr,
  .removexattr    = shmfs_removexattr,
  .retrieve_reply = shmfs_retrieve_reply,
  .flock          = shmfs_flock,
  .ioctl          = shmfs_ioctl,
  .poll           = shmfs_poll,
  .getlk          = shmfs_getlk,
  .setlk          = shmfs_setlk,
};
