/* shm-remote.h — a shmfs namespace and its values kept in Redis, shared by
 * every daemon that mounts the same URL and prefix (docs/design/remote.md).
 *
 * Every change is one script on one slot, so it is atomic and
 * linearizable across hosts; every read sees every change that returned.
 * Errnos are the namespace's own (as core/shm-tree.h gives them) or those
 * of shm-redis.h (-EIO: not applied, -ETIMEDOUT: may have been applied,
 * -ENOSPC: maxmemory).  Nothing is cached here.  Thread-safe.
 *
 * Objects are numbered by oids, global to the store: the root is 1.
 */
#pragma once

#include <glib.h>
#include <sys/stat.h>

#include "shm-atomic.h"
#include "shm-tree.h"
#include "shm-type.h"

G_BEGIN_DECLS

typedef struct _ShmRemote ShmRemote;

typedef struct {
  double   timeout;        /* seconds: connect and every reply */
  mode_t   root_mode;      /* the root, if this mount is the first */
  uid_t    root_uid;
  gid_t    root_gid;
  double   lease;          /* seconds an unlinked object stays readable for
                              hosts that have it open (0: 15) */
} ShmRemoteConfig;

/* A node as the store has it. */
typedef struct {
  guint64  oid;
  guint64  parent;         /* 0 for the root and unlinked nodes */
  char    *name;           /* in parent; NULL for the root */
  gboolean is_dir;
  ShmAttr  attr;           /* mode (with S_IFDIR/S_IFREG), owner, times */
  guint    nlink;          /* 2 + subdirectories; 1 for an object */
  char    *type;           /* canonical spec; NULL while untyped */
  guint64  nbytes;         /* of the value; 0 while untyped */
  guint64  version;        /* of the value */
  char    *bound;          /* "host:pid" it is bound to, or NULL */
} ShmRemoteEntry;

void shm_remote_entry_clear (ShmRemoteEntry *e);

/* Connects (shm_redis_open), checks the store's format and byte order and
 * makes the root if there is none.  NULL and a one-line message otherwise. */
ShmRemote *shm_remote_open (const char *url, const char *prefix, const ShmRemoteConfig *config,
                            GError **error);
void shm_remote_free (ShmRemote *r);
/* The connection (for statfs, tests): owned by r. */
struct _ShmRedis *shm_remote_get_redis (ShmRemote *r);
/* The store's epoch (random, made with it): another one means the store
 * was wiped and made again. */
const char *shm_remote_get_epoch (ShmRemote *r);

/* ---- namespace ----------------------------------------------------------- */

/* name in dir: 0 and *out, -ENOENT, -ENOTDIR (dir is an object or gone). */
int shm_remote_lookup (ShmRemote *r, guint64 dir, const char *name, ShmRemoteEntry *out);
/* The node oid: 0 and *out, or -ENOENT once it is gone. */
int shm_remote_getattr (ShmRemote *r, guint64 oid, ShmRemoteEntry *out);
/* Up to max children of dir with oids above after, in oid order, appended
 * to entries (an array of ShmRemoteEntry; clear each).  0, -ENOENT, -ENOTDIR. */
int shm_remote_list (ShmRemote *r, guint64 dir, guint64 after, guint max, GArray *entries);

/* Creates name in dir with the permission bits of mode, owned by uid and
 * gid (a setgid dir gives its group, and its setgid bit to directories).
 * 0 and *out, or -EEXIST, -ENOENT/-ENOTDIR (dir), -ENOSPC. */
int shm_remote_create (ShmRemote *r, guint64 dir, const char *name, gboolean is_dir,
                       mode_t mode, uid_t uid, gid_t gid, ShmRemoteEntry *out);
/* unlink (is_dir FALSE) or rmdir of name in dir; *oid gets the removed
 * node.  0, -ENOENT, -EISDIR, -ENOTDIR, -ENOTEMPTY. */
int shm_remote_remove (ShmRemote *r, guint64 dir, const char *name, gboolean is_dir, guint64 *oid);
/* rename(2) with flags 0, RENAME_NOREPLACE or RENAME_EXCHANGE, with
 * shm_tree_rename's errnos.  *moved gets the node renamed, *replaced
 * (0: none) the node it unlinked, or the other node of an exchange. */
int shm_remote_rename (ShmRemote *r, guint64 olddir, const char *oldname,
                       guint64 newdir, const char *newname, guint flags,
                       guint64 *moved, guint64 *replaced);

enum {
  SHM_REMOTE_ATTR_MODE  = 1 << 0,   /* permission bits */
  SHM_REMOTE_ATTR_UID   = 1 << 1,
  SHM_REMOTE_ATTR_GID   = 1 << 2,
  SHM_REMOTE_ATTR_ATIME = 1 << 3,
  SHM_REMOTE_ATTR_MTIME = 1 << 4,
  SHM_REMOTE_ATTR_CTIME = 1 << 5,
};
/* Sets the attributes mask names from attr.  0 or -ENOENT. */
int shm_remote_set_attr (ShmRemote *r, guint64 oid, const ShmAttr *attr, guint mask);

/* Types the object oid with its value zero-filled, or initial (nbytes of
 * type) when given, at version 1.  0, -EPERM (typed already, or a
 * directory), -ENOENT, -EFBIG (over 512 MiB), -ENOSPC. */
int shm_remote_set_type (ShmRemote *r, guint64 oid, const ShmType *type, const void *initial);

/* Bytes of typed objects, and the capacity: the store's own if one was
 * set, else the server's maxmemory, else its memory. */
int shm_remote_usage (ShmRemote *r, guint64 *used, guint64 *capacity);

/* ---- values -------------------------------------------------------------- */

/* [off, off+len) of the value of oid, which has nbytes bytes (off+len <=
 * nbytes), into buf, and the version it is at (optional): one consistent
 * snapshot.  0, -ENOENT (gone), -ESTALE (not nbytes long). */
int shm_remote_read (ShmRemote *r, guint64 oid, guint64 nbytes, guint64 off, guint64 len,
                     void *buf, guint64 *version);

typedef struct {
  guint64      off;
  guint64      len;
  const void  *data;
} ShmRemoteRange;

/* Stores the ranges into the value of oid (nbytes long) at once, bumps its
 * version (into *version, optional) and its mtime.  0, -ENOENT, -ESTALE. */
int shm_remote_write (ShmRemote *r, guint64 oid, guint64 nbytes, const ShmRemoteRange *ranges,
                      guint n, guint64 *version);

/* Applies a checked atomic a to the scalar elem at byte offset off of the
 * value of oid (nbytes long), server-side, exactly as shm_atomic_apply_elem
 * does: fills a->old and a->swapped.  The version is bumped when the value
 * may have changed.  It runs inside the object's lock, for process pid of
 * this host: -EAGAIN (nothing done) while another process, here or on
 * another host, holds a lease of it (shm_remote_lock).  0, -ENOENT,
 * -ESTALE, -EAGAIN. */
int shm_remote_atomic (ShmRemote *r, guint64 oid, guint64 nbytes, const ShmType *elem,
                       guint64 off, ShmAtomic *a, pid_t pid, guint64 *version);

/* The version of the value of oid.  0, -ENOENT. */
int shm_remote_version (ShmRemote *r, guint64 oid, guint64 *version);
/* Bumps the version of oid (fsync, SHMFS_IOC_NOTIFY).  0, -ENOENT. */
int shm_remote_bump (ShmRemote *r, guint64 oid, guint64 *version);

/* ---- lifetimes -------------------------------------------------------------- */

/* Binds the object oid to process pid of this host (pid 0: unbinds).  It
 * is removed when this host says the process exited (shm_remote_expire),
 * or when no renewal (shm_remote_renew) came for the lease: a host that
 * died leaves nothing behind.  0 or -ENOENT (gone, unlinked, a directory). */
int shm_remote_bind (ShmRemote *r, guint64 oid, pid_t pid);
/* Renews the bindings of n objects bound on this host for another lease. */
int shm_remote_renew (ShmRemote *r, const guint64 *oids, guint n);

/* An object a lifetime removed: its oid, and the name it had (dir, name). */
typedef struct {
  guint64  oid;
  guint64  dir;
  char    *name;
} ShmRemoteRemoved;
void shm_remote_removed_clear (gpointer data);

/* Removes the object oid, bound to process pid of this host, which exited
 * (appended to removed, an array of ShmRemoteRemoved; optional).  0, or
 * -ENOENT when it is not bound so (any more). */
int shm_remote_expire (ShmRemote *r, guint64 oid, pid_t pid, GArray *removed);
/* Removes up to 100 objects whose bindings were not renewed in time,
 * appending them to removed (optional).  0 or -errno. */
int shm_remote_sweep (ShmRemote *r, GArray *removed);
/* Keeps the value of an unlinked object that is open here for another
 * lease (it goes at most a lease after the last host closed it). */
int shm_remote_keep (ShmRemote *r, guint64 oid);

/* ---- changes made anywhere ----------------------------------------------------- */

/* The value of oid changed (or its lock was let go), on any host; oid 0:
 * the subscription was (re)made, so changes may have gone unheard.  Called
 * on the subscriber's thread. */
typedef void (*ShmRemoteChangedFunc) (guint64 oid, gpointer user_data);

/* Starts hearing of changes (a subscriber thread: call after any fork). */
void shm_remote_watch_start (ShmRemote *r, ShmRemoteChangedFunc func, gpointer user_data);
/* Stops it: func is not called any more once this returns. */
void shm_remote_watch_stop (ShmRemote *r);
/* Hears of oid's changes, or stops (counted: as many offs as ons). */
void shm_remote_watch (ShmRemote *r, guint64 oid, gboolean on);

/* ---- the server's clock ------------------------------------------------------ */

/* Every change carries a deadline in the server's time, after which the
 * server refuses to apply it: a request that timed out here never takes
 * effect later (-ETIMEDOUT then means it did not happen, unless the server
 * began it just before the deadline).  The offset to the server's clock is
 * measured at open; call this now and then (at each lease renewal) to
 * follow its drift.  0 or -errno. */
int shm_remote_sync_clock (ShmRemote *r);

/* Checks that the store is the one opened: when it was wiped (a server
 * restarted without persistence, FLUSHALL), makes its root again and sets
 * *reset (in one caller only); every object of before is gone.  Not
 * thread-safe with shm_remote_get_epoch.  0 or -errno. */
int shm_remote_check_store (ShmRemote *r, gboolean *reset);

/* ---- locks ----------------------------------------------------------------- */

/* How long a lock lease lasts unless renewed (ShmRemoteConfig.lease). */
guint64 shm_remote_get_lease_ms (ShmRemote *r);
/* Takes, changes or renews the lease of lock owner (of process pid, on this
 * host) on the object oid's lock, shared or (write) exclusive, for the
 * lease time; typed or not.  0, or -EAGAIN while another owner's live
 * lease conflicts (on this host or another). */
int shm_remote_lock (ShmRemote *r, guint64 oid, guint64 owner, pid_t pid, gboolean write);
/* Gives owner's lease back.  0 or -errno. */
int shm_remote_unlock (ShmRemote *r, guint64 oid, guint64 owner);
/* Extends the lease owner holds, in the mode it holds: a renewal never
 * changes a mode, nor brings back a lease given back meanwhile.  0, or
 * -ENOENT when owner holds no live lease (it ended: lost). */
int shm_remote_renew_lock (ShmRemote *r, guint64 oid, guint64 owner, pid_t pid);

G_END_DECLS
