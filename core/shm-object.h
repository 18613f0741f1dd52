/* shm-object.h — a shared object: its type and the backing region holding
 * its bytes.  An object starts untyped (no bytes); its type is set once.
 */
#pragma once

#include <glib.h>
#include "shm-slab.h"
#include "shm-type.h"

G_BEGIN_DECLS

typedef struct _ShmObject ShmObject;

/* Where the bytes of objects live.  create() returns a file descriptor of a
 * region exactly shm_type_nbytes (type) long, zero-filled when new, or
 * -errno; the object owns it.  path names the object from the root ("a/b").
 * Injectable so tests and stores can choose the backing. */
typedef struct {
  int (*create) (gpointer user_data, const char *path, const ShmType *type);
  gpointer user_data;
} ShmBacking;

/* The default backing: a memfd, its pages allocated, sealed
 * (F_SEAL_GROW|F_SEAL_SHRINK|F_SEAL_SEAL). */
const ShmBacking *shm_backing_memfd (void);

/* Returns a new untyped object with one reference. */
ShmObject *shm_object_new (void);
ShmObject *shm_object_ref (ShmObject *obj);
void shm_object_unref (ShmObject *obj);

/* Types the object and gives it zero-filled bytes: a slot of slab when
 * slab is given and the value fits one, else a region from backing; with
 * neither, no bytes (they live elsewhere: shm_object_get_data is NULL).
 * Returns 0, -EPERM (already typed), -ENOMEM or the backing's -errno.  Not
 * thread-safe: the caller serializes typing with every other use. */
int shm_object_set_type (ShmObject *obj, const ShmType *type, const ShmBacking *backing,
                         ShmSlab *slab, const char *path);

/* Moves the bytes of an object kept in a slab slot into a region of its
 * own from backing (which then has an fd).  Returns 0 or -errno.  The data
 * pointer changes: the caller excludes every other use meanwhile. */
int shm_object_own_region (ShmObject *obj, const ShmBacking *backing, const char *path);

/* Closes the fd of an object with a region of its own; the daemon's
 * mapping keeps the region.  Many objects may then be kept without an fd
 * each. */
void shm_object_close_fd (ShmObject *obj);
/* Opens the region's fd again (through /proc/self/map_files, which needs
 * CAP_SYS_ADMIN) if it was closed; returns it or -errno. */
int shm_object_reopen_fd (ShmObject *obj);

/* Frees the bytes of an object no one can reach any more (unlinked and
 * closed); it is left untyped, with 0 bytes.  Returns how many it had. */
guint64 shm_object_drop_bytes (ShmObject *obj);

gboolean shm_object_is_typed (const ShmObject *obj);
/* The type; NULL when untyped. */
const ShmType *shm_object_get_type (const ShmObject *obj);
/* Bytes of the value; 0 when untyped. */
guint64 shm_object_get_nbytes (const ShmObject *obj);
/* The backing fd, or -1 when untyped or kept in a slab slot. */
int shm_object_get_fd (const ShmObject *obj);
/* The daemon's shared mapping of the bytes; NULL when untyped. */
guint8 *shm_object_get_data (const ShmObject *obj);

/* A counter bumped by shm_object_bump_version() whenever the value changes. */
guint64 shm_object_get_version (const ShmObject *obj);
guint64 shm_object_bump_version (ShmObject *obj);

G_END_DECLS
