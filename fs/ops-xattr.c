/* ops-xattr.c — extended attributes: type, dtype, shape, nbytes, version,
 * mode, and lifetimes (binding an object to a process).
 */
#include "config.h"

#include "ops.h"
#include "attr.h"
#include "authority.h"
#include "coherence.h"
#include "lifetime.h"
#include "log.h"
#include "namespace.h"
#include "session.h"
#include "sync.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

#define XATTR_PREFIX "user.shmfs."

/* ---- extended attributes ----------------------------------------------- */

typedef enum {
  XA_TYPE, XA_DTYPE, XA_SHAPE, XA_NBYTES, XA_VERSION, XA_LIFETIME, XA_MODE, XA_NONE
} XattrId;

static const char *const xattr_names[] = {
  XATTR_PREFIX "type", XATTR_PREFIX "dtype", XATTR_PREFIX "shape",
  XATTR_PREFIX "nbytes", XATTR_PREFIX "version", XATTR_PREFIX "lifetime",
  XATTR_PREFIX "mode",
};

static gboolean
xattr_applies (ShmNode *node, XattrId id)
{
  if (id == XA_MODE)
    return shm_node_get_id (node) == SHM_TREE_ROOT_ID;
  return !shm_node_is_dir (node);
}

static XattrId
xattr_lookup (ShmNode *node, const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (xattr_names); i++)
    if (strcmp (name, xattr_names[i]) == 0)
      return xattr_applies (node, i) ? (XattrId) i : XA_NONE;
  return XA_NONE;
}

/* The value of an xattr; NULL when it has none (untyped).  version: the
 * object's, read before.  tree_lock held. */
static char *
xattr_value_locked (Shmfs *fs, ShmNode *node, XattrId id, guint64 version)
{
  ShmObject *obj = shm_node_get_object (node);
  const ShmType *type = obj != NULL ? shm_object_get_type (obj) : NULL;

  if (id == XA_MODE)
    return g_strdup (shmfs_mode_name (fs));
  if (id == XA_LIFETIME)
    {
      ShmfsNode *state = shmfs_node_state (node);
      const char *colon;

      if (state->bound_pid > 0)
        return g_strdup_printf ("pid:%d", (int) state->bound_pid);
      /* Bound on another host of a remote mount: pid:N@HOST. */
      if (state->bound_elsewhere != NULL && (colon = strrchr (state->bound_elsewhere, ':')) != NULL)
        return g_strdup_printf ("pid:%s@%.*s", colon + 1, (int) (colon - state->bound_elsewhere),
                                state->bound_elsewhere);
      return NULL;
    }
  if (type == NULL)
    return NULL;
  switch (id)
    {
    case XA_TYPE:    return shm_type_to_string (type);
    case XA_DTYPE:   return shm_type_numpy_dtype (type);
    case XA_SHAPE:   return shm_type_shape_string (type);
    case XA_NBYTES:  return g_strdup_printf ("%" G_GUINT64_FORMAT, shm_type_nbytes (type));
    case XA_VERSION:
      return g_strdup_printf ("%" G_GUINT64_FORMAT, version);
    default:         return NULL;
    }
}

static void
reply_xattr_value (fuse_req_t req, const char *value, size_t len, size_t size)
{
  if (size == 0)
    fuse_reply_xattr (req, len);
  else if (size < len)
    fuse_reply_err (req, ERANGE);
  else
    fuse_reply_buf (req, value, len);
}

/* Whether the caller is in group gid (primary or supplementary). */
static gboolean
caller_in_group (fuse_req_t req, gid_t gid)
{
  gid_t groups[64];
  int n;

  if (fuse_req_ctx (req)->gid == gid)
    return TRUE;
  n = fuse_req_getgroups (req, G_N_ELEMENTS (groups), groups);
  for (int i = 0; i < MIN (n, (int) G_N_ELEMENTS (groups)); i++)
    if (groups[i] == gid)
      return TRUE;
  return FALSE;
}

/* Whether the caller may bind node's lifetime, or unbind it.  Binding is a
 * removal put off until a process exits, so it is authorized as unlink(2)
 * is (write and search permission on the directory; in a sticky one, only
 * the owner of the object or the directory) and, as it changes the
 * object's fate, only its owner or root may.  tree_lock held. */
static int
may_bind_locked (fuse_req_t req, ShmNode *node)
{
  const struct fuse_ctx *ctx = fuse_req_ctx (req);
  ShmNode *dir = shm_node_get_parent (node);
  ShmAttr *d;
  mode_t wx;

  if (ctx->uid == 0)
    return 0;
  if (ctx->uid != shm_node_get_attr (node)->uid)
    return -EPERM;
  if (dir == NULL)
    return -ENOENT;   /* unlinked: nothing left to remove */
  d = shm_node_get_attr (dir);
  wx = ctx->uid == d->uid ? S_IWUSR | S_IXUSR
     : caller_in_group (req, d->gid) ? S_IWGRP | S_IXGRP : S_IWOTH | S_IXOTH;
  return (d->mode & wx) == wx ? 0 : -EACCES;
}

/* Binds an object to a process: "process" (the caller) or "pid:N". */
static int
bind_lifetime (Shmfs *fs, fuse_req_t req, ShmNode *node, const char *value, size_t size)
{
  g_autofree char *text = g_strndup (value, size);
  pid_t pid, tgid;
  char *end;
  int err;

  g_strstrip (text);
  if (strcmp (text, "process") == 0)
    pid = fuse_req_ctx (req)->pid;
  else if (g_str_has_prefix (text, "pid:") && g_ascii_isdigit (text[4]))
    {
      guint64 n = g_ascii_strtoull (text + 4, &end, 10);
      if (*end != '\0' || n == 0 || n > G_MAXINT32)
        return -EINVAL;
      pid = (pid_t) n;
    }
  else
    return -EINVAL;

  /* The other hosts first: once the store has the binding, an exit the
   * watcher sees from then on removes the object everywhere.  (Told
   * after, an exit in between would find nothing to remove there.) */
  g_mutex_lock (&fs->tree_lock);
  err = may_bind_locked (req, node);
  g_mutex_unlock (&fs->tree_lock);
  if (err == 0 && fs->authority->bind != NULL)
    err = fs->authority->bind (fs, node, shmfs_thread_group_of (pid));
  if (err < 0)
    return err;
  /* One locked section: of two binds at once, the one the watcher keeps
   * is the one the node names, and the rights checked are those in force. */
  g_mutex_lock (&fs->tree_lock);
  err = may_bind_locked (req, node);
  if (err == 0)
    err = shmfs_lifetimes_bind (fs->lifetimes, shm_node_get_id (node), pid, &tgid);
  if (err == 0)
    shmfs_node_state (node)->bound_pid = tgid;
  g_mutex_unlock (&fs->tree_lock);
  if (err < 0 && fs->authority->bind != NULL)
    fs->authority->bind (fs, node, 0);   /* not bound after all */
  return err;
}

void
shmfs_expire (gpointer user_data, guint64 node_id, pid_t pid)
{
  Shmfs *fs = user_data;

  fs->authority->expire (fs, node_id, pid);
}

/* The version of ino's object, every passthrough write that returned
 * accounted and the next one made known (see shmfs_coherence_settle).
 * 0 (and 0 for directories and stale numbers) or -errno. */
static int
object_version (Shmfs *fs, fuse_ino_t ino, guint64 *version)
{
  ShmfsSync *sync = NULL;
  ShmNode *node;
  gboolean raw;
  int err = 0;

  *version = 0;
  g_mutex_lock (&fs->tree_lock);
  node = shmfs_resolve_locked (fs, ino, &raw);
  if (node != NULL && shmfs_node_state (node)->sync != NULL)
    sync = shmfs_sync_ref (shmfs_node_state (node)->sync);
  g_mutex_unlock (&fs->tree_lock);
  if (sync != NULL)
    {
      shmfs_coherence_settle (fs->coherence, sync);
      err = shmfs_coherence_version (fs->coherence, sync, FALSE, version);
      shmfs_sync_unref (sync);
    }
  return err;
}

void
shmfs_getxattr (fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
  Shmfs *fs = shmfs_from_req (req);
  g_autofree char *value = NULL;
  ShmNode *node;
  gboolean raw;
  guint64 version = 0;
  int err;

  if (strcmp (name, XATTR_PREFIX "version") == 0 && (err = object_version (fs, ino, &version)) < 0)
    return (void) fuse_reply_err (req, -err);
  g_mutex_lock (&fs->tree_lock);
  node = shmfs_resolve_locked (fs, ino, &raw);
  if (node != NULL)
    {
      XattrId id = xattr_lookup (node, name);
      if (id != XA_NONE)
        value = xattr_value_locked (fs, node, id, version);
    }
  g_mutex_unlock (&fs->tree_lock);
  if (node == NULL)
    return (void) fuse_reply_err (req, ESTALE);
  if (value == NULL)
    return (void) fuse_reply_err (req, ENODATA);
  reply_xattr_value (req, value, strlen (value), size);
}

void
shmfs_listxattr (fuse_req_t req, fuse_ino_t ino, size_t size)
{
  Shmfs *fs = shmfs_from_req (req);
  GString *list = g_string_new (NULL);
  ShmNode *node;
  gboolean raw;

  g_mutex_lock (&fs->tree_lock);
  node = shmfs_resolve_locked (fs, ino, &raw);
  if (node != NULL)
    for (guint i = 0; i < G_N_ELEMENTS (xattr_names); i++)
      {
        g_autofree char *value = NULL;
        if (!xattr_applies (node, i) || (value = xattr_value_locked (fs, node, i, 0)) == NULL)
          continue;
        g_string_append_len (list, xattr_names[i], (gssize) strlen (xattr_names[i]) + 1);
      }
  g_mutex_unlock (&fs->tree_lock);
  if (node == NULL)
    fuse_reply_err (req, ESTALE);
  else
    reply_xattr_value (req, list->str, list->len, size);
  g_string_free (list, TRUE);
}

void
shmfs_setxattr (fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                size_t size, int flags)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
  ShmType type;
  gboolean raw;
  XattrId id = XA_NONE;
  int err;

  g_mutex_lock (&fs->tree_lock);
  node = shmfs_resolve_locked (fs, ino, &raw);
  if (node == NULL)
    err = -ESTALE;
  else if ((id = xattr_lookup (node, name)) == XA_NONE)
    err = g_str_has_prefix (name, XATTR_PREFIX) ? -EPERM : -ENOTSUP;
  else if (id == XA_LIFETIME)
    err = 1;   /* below, outside tree_lock */
  else if (id != XA_TYPE)
    err = -EPERM;   /* derived from the type, read-only */
  else if (shm_object_is_typed (shm_node_get_object (node)))
    err = -EPERM;   /* the type is fixed once set */
  else if (flags & XATTR_REPLACE)
    err = -ENODATA;
  else if ((err = shm_type_parse (value, size, &type)) == 0)
    err = 2;   /* below, outside tree_lock */
  if (node != NULL)
    shm_node_ref (node);
  g_mutex_unlock (&fs->tree_lock);

  if (err == 1)
    err = bind_lifetime (fs, req, node, value, size);
  else if (err == 2)
    {
      err = fs->authority->set_type (fs, node, &type);
      shm_type_clear (&type);
    }
  if (node != NULL)
    {
      if (err == -EMFILE || err == -ENFILE)
        shmfs_log_fd_shortage (fs, node, err);
      else if (err < 0 && err != -ENOTSUP)
        shmfs_log_rejected (fs, node, err, "setting %s to \"%.*s\"", name,
                            (int) MIN (size, 64), value);
      else if (err == 0)
        shmfs_node_typed (fs, node);
      shmfs_unref_node (fs, node);
    }
  fuse_reply_err (req, -err);
}

void
shmfs_removexattr (fuse_req_t req, fuse_ino_t ino, const char *name)
{
  Shmfs *fs = shmfs_from_req (req);
  ShmNode *node;
  gboolean raw;
  int err;

  g_mutex_lock (&fs->tree_lock);
  node = shmfs_resolve_locked (fs, ino, &raw);
  if (node == NULL)
    err = -ESTALE;
  else if (xattr_lookup (node, name) != XA_LIFETIME)
    err = g_str_has_prefix (name, XATTR_PREFIX) ? -EPERM : -ENODATA;
  else if ((err = may_bind_locked (req, node)) == 0 && shmfs_node_state (node)->bound_pid == 0)
    err = -ENODATA;
  if (err == 0)
    shm_node_ref (node);
  g_mutex_unlock (&fs->tree_lock);
  if (err < 0)
    return (void) fuse_reply_err (req, -err);

  /* Unbinding makes the object outlive its process: the other hosts are
   * told first, and nothing changes if they cannot be. */
  if (fs->authority->bind != NULL)
    err = fs->authority->bind (fs, node, 0);
  g_mutex_lock (&fs->tree_lock);
  if (err == 0)
    {
      shmfs_lifetimes_unbind (fs->lifetimes, shm_node_get_id (node));
      shmfs_node_state (node)->bound_pid = 0;
    }
  shm_node_unref (node);
  g_mutex_unlock (&fs->tree_lock);
  fuse_reply_err (req, -err);
}
