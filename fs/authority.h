/* authority.h — who decides the namespace: the tree itself
 * (authority-local.c), or a store shared with other hosts, whose answers the
 * tree then follows (authority-remote.c, docs/design/remote.md).  main.c
 * chooses one at mount; the operations call it through Shmfs.authority.
 *
 * Every call is made without tree_lock (a remote authority waits for the
 * network, which must never stall the whole tree); each returns 0 or
 * -errno.  After a change returns 0, the tree has it.
 */
#pragma once

#include "shmfs.h"

G_BEGIN_DECLS

struct _ShmfsAuthority {
  /* Starts its services once the daemon serves, and stops them when it
   * ends (before the session goes); NULL: none. */
  void (*start) (Shmfs *fs);
  void (*stop) (Shmfs *fs);

  /* Bring the tree in step before it answers: name in the directory
   * parent (a lookup), the node behind ino (getattr), the children of the
   * directory ino (readdir).  NULL: the tree is always in step. */
  int (*lookup) (Shmfs *fs, fuse_ino_t parent, const char *name);
  int (*refresh) (Shmfs *fs, fuse_ino_t ino);
  int (*list) (Shmfs *fs, fuse_ino_t dir);

  /* mkdir, mknod and create as the caller of req; *out gets a reference. */
  int (*create) (Shmfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
                 gboolean is_dir, mode_t mode, ShmNode **out);
  /* unlink or rmdir; *raw_ino gets the removed object's raw inode if the
   * kernel holds it (invalidate it). */
  int (*remove) (Shmfs *fs, fuse_ino_t parent, const char *name, gboolean is_dir,
                 fuse_ino_t *raw_ino);
  int (*rename) (Shmfs *fs, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                 const char *newname, guint flags);
  /* setattr's changes (to_set, FUSE_SET_ATTR_*) of node; a size is
   * checked before. */
  int (*set_attr) (Shmfs *fs, ShmNode *node, const struct stat *attr, int to_set);
  /* Types the object node (untyped when asked). */
  int (*set_type) (Shmfs *fs, ShmNode *node, const ShmType *type);
  /* The capacity of the objects' bytes and what they use, for statfs.
   * NULL: the tree's. */
  int (*usage) (Shmfs *fs, guint64 *capacity, guint64 *used);
  /* node was bound to process tgid of this host, or unbound (0): tells
   * the other hosts.  NULL: nobody else needs to know. */
  int (*bind) (Shmfs *fs, ShmNode *node, pid_t tgid);
  /* The process pid that node_id is bound to exited: removes it, as rm. */
  void (*expire) (Shmfs *fs, guint64 node_id, pid_t pid);
  /* The objects' locks shared with other hosts (locks.h; its data is the
   * node), or NULL. */
  const ShmfsLease *lease;
  /* A poller of node saw the value at version: wake node's pollers
   * (shmfs_node_changed) once it is another, whoever changes it.  NULL:
   * every change goes through this daemon, which wakes them itself. */
  void (*watch) (Shmfs *fs, ShmNode *node, guint64 version);
};

extern const ShmfsAuthority shmfs_authority_local;
#ifdef SHMFS_HAVE_REMOTE
extern const ShmfsAuthority shmfs_authority_remote;
#endif

/* Applies setattr's changes to a: what every authority does with them. */
void shmfs_authority_apply_attr (ShmTree *tree, ShmAttr *a, gboolean is_dir,
                                 const struct stat *attr, int to_set);

G_END_DECLS
