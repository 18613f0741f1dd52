/* ops.h — the low-level operations, by the file that answers them; ops.c
 * puts them in the table. */
#pragma once

#include "shmfs.h"

G_BEGIN_DECLS

/* ops.c */
extern const struct fuse_lowlevel_ops shmfs_ops;
/* Writes a setting of the backing device dev in /sys/class/bdi. */
void shmfs_set_bdi (const char *dev, const char *name, const char *value);

/* ops-namespace.c */
void shmfs_lookup (fuse_req_t req, fuse_ino_t parent, const char *name);
void shmfs_forget (fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void shmfs_forget_multi (fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void shmfs_getattr (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void shmfs_setattr (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                    struct fuse_file_info *fi);
void shmfs_mkdir (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void shmfs_mknod (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void shmfs_symlink (fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void shmfs_link (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void shmfs_unlink (fuse_req_t req, fuse_ino_t parent, const char *name);
void shmfs_rmdir (fuse_req_t req, fuse_ino_t parent, const char *name);
void shmfs_rename (fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                   const char *newname, unsigned int flags);

/* ops-dir.c */
void shmfs_readdir (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi);
void shmfs_readdirplus (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi);

/* ops-file.c */
void shmfs_open (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void shmfs_create (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                   struct fuse_file_info *fi);
void shmfs_read (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                 struct fuse_file_info *fi);
void shmfs_write (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                  struct fuse_file_info *fi);
void shmfs_flush (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void shmfs_release (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void shmfs_fsync (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* ops-sync.c */
void shmfs_poll (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                 struct fuse_pollhandle *ph);
void shmfs_ioctl (fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
                  struct fuse_file_info *fi, unsigned flags, const void *in_buf,
                  size_t in_bufsz, size_t out_bufsz);
void shmfs_flock (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op);
void shmfs_getlk (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                  struct flock *lock);
void shmfs_setlk (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock,
                  int sleep);

/* ops-xattr.c */
/* Removes an object whose process exited (a ShmfsExpire). */
void shmfs_expire (gpointer user_data, guint64 node_id, pid_t pid);
void shmfs_getxattr (fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void shmfs_listxattr (fuse_req_t req, fuse_ino_t ino, size_t size);
void shmfs_setxattr (fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                     size_t size, int flags);
void shmfs_removexattr (fuse_req_t req, fuse_ino_t ino, const char *name);

G_END_DECLS
