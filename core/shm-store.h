/* shm-store.h — a persistent store: the namespace mirrored in a directory.
 *
 * DIR holds one directory per directory and one regular file per object,
 * at the same path.  An object's bytes are its file, mapped shared by the
 * daemon, so every store through the daemon is in the file's page cache at
 * once and survives the daemon being killed.  Metadata lives in xattrs of
 * the file: user.shmfs.type (the type spec) and user.shmfs.attr ("MODE UID
 * GID", octal mode); times are the file's own.  Every change is a single
 * syscall on DIR (mkdirat, openat, renameat2, fsetxattr, ...), so a crash
 * leaves each entry either before or after it.
 */
#pragma once

#include <glib.h>
#include "shm-object.h"
#include "shm-tree.h"

G_BEGIN_DECLS

typedef struct _ShmStore ShmStore;

/* Reports an entry of DIR that was skipped, and why. */
typedef void (*ShmStoreLog) (gpointer user_data, const char *path, const char *why);

/* Opens the store directory dir (created if missing).  NULL and *error when
 * it is unusable, e.g. on a filesystem without user xattrs. */
ShmStore *shm_store_open (const char *dir, GError **error);
void shm_store_free (ShmStore *store);

/* The backing for a tree kept in this store: each object's own file. */
const ShmBacking *shm_store_backing (ShmStore *store);

/* Fills tree (which must use shm_store_backing) from the store.  Damaged or
 * foreign entries are passed to log and skipped.  Returns the number of
 * directories and objects loaded. */
guint shm_store_load (ShmStore *store, ShmTree *tree, ShmStoreLog log, gpointer user_data);

/* Mirror namespace changes made to the tree; 0 or -errno. */
int shm_store_create (ShmStore *store, const char *path, gboolean is_dir, const ShmAttr *attr);
int shm_store_remove (ShmStore *store, const char *path, gboolean is_dir);
int shm_store_rename (ShmStore *store, const char *from, const char *to, guint flags);
int shm_store_set_attr (ShmStore *store, const char *path, const ShmAttr *attr);

/* Makes an object's bytes durable; 0 or -errno. */
int shm_store_sync_object (ShmStore *store, ShmObject *obj);
/* Makes the whole store durable; 0 or -errno. */
int shm_store_sync (ShmStore *store);

G_END_DECLS
