/* shm-tree.h — the namespace: directories and objects, their attributes,
 * and node ids.
 *
 * Not thread-safe: the caller serializes every call on one tree (and its
 * nodes).  Nodes are reference counted; a linked node is referenced by its
 * parent, and stays alive after unlink while others hold references.
 */
#pragma once

#include <glib.h>
#include <sys/stat.h>
#include <time.h>
#include "shm-object.h"
#include "shm-type.h"

G_BEGIN_DECLS

typedef struct _ShmTree ShmTree;
typedef struct _ShmNode ShmNode;

/* Writes the current time to *now. */
typedef void (*ShmClock) (gpointer user_data, struct timespec *now);

typedef struct {
  mode_t   root_mode;      /* permission bits of the root directory */
  uid_t    root_uid;
  gid_t    root_gid;
  const ShmBacking *backing;  /* NULL: shm_backing_memfd (), small objects in a slab */
  guint64  capacity;       /* bytes of typed objects at most; 0: unlimited */
  ShmClock clock;          /* NULL: CLOCK_REALTIME */
  gpointer clock_data;
  gboolean no_bytes;       /* objects are typed without bytes here: they
                              live elsewhere (a remote store) */
  guint64  first_local_id; /* nonzero: ids the tree makes itself start
                              there, below are the ids of shm_tree_adopt */
} ShmTreeConfig;

typedef struct {
  mode_t   mode;           /* file type and permission bits */
  uid_t    uid;
  gid_t    gid;
  struct timespec atime, mtime, ctime;
} ShmAttr;

#define SHM_TREE_ROOT_ID 1
#define SHM_TREE_NAME_MAX 255

/* Checks a name for a new entry: 0, -EINVAL ("", ".", "..", a '/') or
 * -ENAMETOOLONG (longer than SHM_TREE_NAME_MAX). */
int shm_tree_check_name (const char *name);

ShmTree *shm_tree_new (const ShmTreeConfig *config);
/* Frees the tree and every node, still referenced or not. */
void shm_tree_free (ShmTree *tree);

ShmNode *shm_tree_get_root (ShmTree *tree);
/* A new id that no node has or will have (for the layer above's own
 * numbering). */
guint64 shm_tree_alloc_id (ShmTree *tree);
/* Returns the live node with that id (linked or not), or NULL. */
ShmNode *shm_tree_find_id (ShmTree *tree, guint64 id);
/* Returns the child of dir called name, or NULL. */
ShmNode *shm_tree_lookup (ShmNode *dir, const char *name);

/* Creates a directory or an untyped object called name in dir, with the
 * permission bits of mode; *out (optional) gets the node, not referenced.
 * Returns 0, -EEXIST, -ENOTDIR, -EINVAL or -ENAMETOOLONG. */
int shm_tree_create (ShmTree *tree, ShmNode *dir, const char *name, gboolean is_dir,
                     mode_t mode, uid_t uid, gid_t gid, ShmNode **out);

/* Unlinks name from dir.  is_dir says whether rmdir (TRUE) or unlink was
 * asked.  Returns 0, -ENOENT, -EISDIR, -ENOTDIR or -ENOTEMPTY. */
int shm_tree_remove (ShmTree *tree, ShmNode *dir, const char *name, gboolean is_dir);

/* rename(2) with flags 0, RENAME_NOREPLACE or RENAME_EXCHANGE.  *replaced
 * (optional) gets a node the rename unlinked, referenced, or NULL.  Returns
 * 0 or -ENOENT, -EEXIST, -EINVAL, -EISDIR, -ENOTDIR, -ENOTEMPTY. */
int shm_tree_rename (ShmTree *tree, ShmNode *olddir, const char *oldname,
                     ShmNode *newdir, const char *newname, guint flags,
                     ShmNode **replaced);

/* Types the object node, counting its bytes against the capacity.  Returns
 * 0, -EPERM (typed already, or a directory), -ENOSPC, or a backing -errno. */
int shm_tree_set_type (ShmTree *tree, ShmNode *node, const ShmType *type);

/* Makes the tree agree with a namespace kept elsewhere: the node id,
 * a directory or an object, is name in dir, with attr.  The node with that
 * id is moved there if it is elsewhere (or unlinked), or made; a node of
 * another id that had the name is unlinked.  *out (optional) gets the node,
 * not referenced; *moved whether an existing node changed place.  Returns
 * 0, -ENOTDIR (dir), -EINVAL (a name or an id of the other kind). */
int shm_tree_adopt (ShmTree *tree, ShmNode *dir, const char *name, guint64 id,
                    gboolean is_dir, const ShmAttr *attr, ShmNode **out, gboolean *moved);
/* Unlinks node from its parent, whatever it holds (the namespace kept
 * elsewhere says it is gone). */
void shm_tree_detach (ShmTree *tree, ShmNode *node);

/* Frees the bytes of an unlinked object no one has open any more, before
 * the last reference to its node goes (the kernel forgets it later), and
 * gives them back to the capacity (with no_bytes: nothing, they go as
 * the place they live in says). */
void shm_tree_release_bytes (ShmTree *tree, ShmNode *node);

/* Calls fn on the children of dir with ids greater than after_id, in id
 * order, until fn returns FALSE.  Ids are stable, so they serve as readdir
 * offsets that survive concurrent changes. */
void shm_tree_foreach_child (ShmNode *dir, guint64 after_id,
                             gboolean (*fn) (ShmNode *child, gpointer user_data),
                             gpointer user_data);

/* Calls fn on every node, linked or not, in no order. */
void shm_tree_foreach_node (ShmTree *tree, void (*fn) (ShmNode *node, gpointer user_data),
                            gpointer user_data);

/* Bytes held by typed objects (unlinked ones until freed) and live nodes. */
guint64 shm_tree_get_used_bytes (ShmTree *tree);
guint64 shm_tree_get_capacity (ShmTree *tree);
guint64 shm_tree_get_node_count (ShmTree *tree);

/* The current time of the tree's clock. */
void shm_tree_now (ShmTree *tree, struct timespec *now);

ShmNode *shm_node_ref (ShmNode *node);
void shm_node_unref (ShmNode *node);

guint64 shm_node_get_id (const ShmNode *node);
gboolean shm_node_is_dir (const ShmNode *node);
/* The name in its parent; NULL once unlinked (and for the root). */
const char *shm_node_get_name (const ShmNode *node);
/* The path from the root ("a/b"; "" for the root and unlinked nodes);
 * g_free() it. */
char *shm_node_dup_path (const ShmNode *node);
/* The parent directory; NULL once unlinked (and for the root). */
ShmNode *shm_node_get_parent (const ShmNode *node);
/* The object of a non-directory node; NULL for directories. */
ShmObject *shm_node_get_object (const ShmNode *node);
/* Mutable attributes (under the caller's serialization). */
ShmAttr *shm_node_get_attr (ShmNode *node);
/* 2 + subdirectories for a directory; 1 for a linked object; 0 once unlinked. */
guint shm_node_get_nlink (const ShmNode *node);
guint shm_node_get_child_count (const ShmNode *node);

/* Sets atime/mtime/ctime (any of them) to now. */
void shm_node_touch (ShmTree *tree, ShmNode *node, gboolean atime, gboolean mtime, gboolean ctime);

/* A pointer for the layer above, freed with destroy when the node goes. */
void shm_node_set_data (ShmNode *node, gpointer data, GDestroyNotify destroy);
gpointer shm_node_get_data (const ShmNode *node);

G_END_DECLS
