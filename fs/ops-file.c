/* ops-file.c — open files: open, create, read, write, flush, release,
 * fsync, for the text view (textview.c) and the binary view (coherence.h).
 */
#include "config.h"

#include "ops.h"
#include "attr.h"
#include "authority.h"
#include "coherence.h"
#include "handles.h"
#include "locks.h"
#include "log.h"
#include "namespace.h"
#include "session.h"
#include "store-mirror.h"
#include "textview.h"

#include <errno.h>

/* Sets up how the kernel serves an open; returns 0 or -errno. */
static int
set_open_flags (Shmfs *fs, fuse_req_t req, ShmfsHandle *h, struct fuse_file_info *fi)
{
  fi->fh = (uint64_t) (uintptr_t) h;
  if (h->raw)
    return shmfs_coherence_open_raw (fs->coherence, shmfs_node_state (h->node)->sync, req,
                                     h->empty, h->writer, fi, &h->backing, &h->counted_writer);
  fi->direct_io = 1;    /* text is rendered per read, never cached */
  fi->keep_cache = 0;
  return 0;
}

void
shmfs_open (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h;
  ShmNode *node;
  gboolean raw;
  int err;

  g_mutex_lock (&fs->tree_lock);
  node = shmfs_resolve_locked (fs, ino, &raw);
  if (node == NULL || shm_node_is_dir (node))
    {
      g_mutex_unlock (&fs->tree_lock);
      return (void) fuse_reply_err (req, node == NULL ? ESTALE : EISDIR);
    }
  if (shm_node_get_parent (node) == NULL && shmfs_node_state (node)->handles == 0)
    {
      /* Unlinked and closed, so its bytes are gone: this open lost a race
       * with the unlink, and fails as if it had come after it. */
      g_mutex_unlock (&fs->tree_lock);
      return (void) fuse_reply_err (req, ENOENT);
    }
  h = shmfs_handle_new_locked (fs, node, raw, fi->flags);
  /* The untyped view stays empty: typing gives the raw view another inode
   * (see the design comment in ops.c). */
  h->empty = raw && (!shm_object_is_typed (shm_node_get_object (node)) || ino != shmfs_ino (node, TRUE));
  g_mutex_unlock (&fs->tree_lock);
  if ((err = set_open_flags (fs, req, h, fi)) < 0)
    {
      shmfs_log_fd_shortage (fs, node, err);
      shmfs_handle_free (fs, req, h);
      return (void) fuse_reply_err (req, -err);
    }
  if (fuse_reply_open (req, fi) != 0)
    shmfs_handle_free (fs, req, h);
}

void
shmfs_create (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
              struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  struct fuse_entry_param e;
  ShmfsHandle *h;
  ShmNode *node;
  int err;

  if ((err = fs->authority->create (fs, req, parent, name, FALSE, mode, &node)) < 0)
    return (void) fuse_reply_err (req, -err);
  g_mutex_lock (&fs->tree_lock);
  shmfs_fill_entry_locked (fs, node, FALSE, 0, FALSE, &e);
  h = shmfs_handle_new_locked (fs, node, FALSE, fi->flags);
  shm_node_unref (node);
  g_mutex_unlock (&fs->tree_lock);
  set_open_flags (fs, req, h, fi);   /* a text view: cannot fail */
  if (fuse_reply_create (req, &e, fi) != 0)
    {
      shmfs_handle_free (fs, req, h);
      g_mutex_lock (&fs->tree_lock);
      shmfs_forget_locked (fs, e.ino, 1);
      g_mutex_unlock (&fs->tree_lock);
    }
}

void
shmfs_read (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h = shmfs_handle_of (fi);
  ShmObject *obj = shm_node_get_object (h->node);
  guint64 nbytes;

  if (!h->raw)
    return shmfs_textview_reply_read (fs, req, h, off, size);

  nbytes = h->empty ? 0 : shm_object_get_nbytes (obj);
  if (off < 0 || (guint64) off >= nbytes)
    return (void) fuse_reply_buf (req, NULL, 0);
  size = MIN (size, nbytes - (guint64) off);
  shmfs_coherence_reply_read (fs->coherence, shmfs_node_state (h->node)->sync, req, off, size);
}

/* A write by anyone but root, to either view, clears setuid (killpriv v2;
 * libfuse does not pass the kernel's CAP_FSETID verdict, so uid 0 stands
 * for it). */
static void
kill_suid_of_writer (Shmfs *fs, fuse_req_t req, fuse_ino_t ino, ShmfsHandle *h)
{
  gboolean killed;

  if (fuse_req_ctx (req)->uid == 0)
    return;
  g_mutex_lock (&fs->tree_lock);
  killed = shmfs_kill_suid_locked (shm_node_get_attr (h->node));
  if (killed)
    shmfs_store_set_attr_locked (fs, h->node);
  g_mutex_unlock (&fs->tree_lock);
  if (killed)
    {
      shmfs_inval_attr (fs, ino);
      shmfs_inval_twin (fs, h->node, h->raw);
    }
}

void
shmfs_write (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
             struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h = shmfs_handle_of (fi);
  ShmObject *obj = shm_node_get_object (h->node);
  guint64 nbytes;
  int res;

  if (!h->raw)
    {
      res = shmfs_textview_write (fs, h, off, buf, size);
      if (res < 0)
        return (void) fuse_reply_err (req, -res);
      kill_suid_of_writer (fs, req, ino, h);
      return (void) fuse_reply_write (req, (size_t) res);
    }

  nbytes = h->empty ? 0 : shm_object_get_nbytes (obj);
  if (off < 0 || (guint64) off >= nbytes)
    {
      shmfs_log_rejected (fs, h->node, -EFBIG, "write at %" G_GINT64_FORMAT " past the end (%"
                          G_GUINT64_FORMAT " bytes)", (gint64) off, nbytes);
      return (void) fuse_reply_err (req, EFBIG);
    }
  /* Like a write at RLIMIT_FSIZE: what fits is written, the rest refused. */
  size = MIN (size, nbytes - (guint64) off);
  res = shmfs_coherence_client_write (fs->coherence, shmfs_node_state (h->node)->sync,
                                      off, buf, size, fi->writepage);
  if (res < 0)
    return (void) fuse_reply_err (req, -res);
  g_mutex_lock (&fs->tree_lock);
  shm_node_touch (fs->tree, h->node, FALSE, TRUE, TRUE);
  g_mutex_unlock (&fs->tree_lock);
  if (!fi->writepage)
    kill_suid_of_writer (fs, req, ino, h);
  /* Before the reply: after it the kernel may release h. */
  shmfs_node_wake_pollers (fs, h->node);
  fuse_reply_write (req, size);
}

void
shmfs_flush (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h = shmfs_handle_of (fi);

  /* A close drops the closing process's record locks (POSIX). */
  shmfs_locks_release (shmfs_node_state (h->node)->locks, fi->lock_owner);
  fuse_reply_err (req, h->raw ? 0 : -shmfs_textview_flush (fs, h));
}

void
shmfs_release (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  if (fi->flock_release)
    shmfs_locks_release (shmfs_node_state (shmfs_handle_of (fi)->node)->locks, fi->lock_owner);
  shmfs_handle_free (shmfs_from_req (req), req, shmfs_handle_of (fi));
  fuse_reply_err (req, 0);
}

void
shmfs_fsync (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmfsHandle *h = shmfs_handle_of (fi);
  ShmObject *obj = shm_node_get_object (h->node);
  guint64 version;
  int err;

  /* fsync is how a process that stored through a mapping says so: in
   * passthrough mode nothing else reaches the daemon. */
  if ((err = shmfs_coherence_version (fs->coherence, shmfs_node_state (h->node)->sync, TRUE,
                                      &version)) < 0)
    return (void) fuse_reply_err (req, -err);
  shmfs_node_wake_pollers (fs, h->node);
  if (fs->store != NULL)
    {
      /* The raw view's dirty pages were written back before this request;
       * the text view's fsync takes mapped stores along too. */
      if (!h->raw)
        shmfs_coherence_pull (fs->coherence, shmfs_node_state (h->node)->sync);
      err = shm_store_sync_object (fs->store, obj);
    }
  fuse_reply_err (req, -err);
}
