/* shm-tree.c — the namespace of directories and objects. */
#include "config.h"

#include "shm-tree.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct _ShmTree {
  ShmTreeConfig config;
  GHashTable   *nodes;        /* id -> ShmNode*, every live node */
  guint64       next_id;
  guint64       used_bytes;
  ShmNode      *root;
  ShmSlab      *slab;         /* small objects, with the default backing */
};

struct _ShmNode {
  ShmTree    *tree;
  guint       ref_count;
  guint64     id;
  gboolean    is_dir;
  char       *name;           /* NULL when unlinked */
  ShmNode    *parent;         /* NULL when unlinked */
  ShmAttr     attr;
  ShmObject  *object;         /* objects only */
  GHashTable *children;       /* dirs only: name -> ShmNode* (parent's ref) */
  GTree      *children_by_id; /* dirs only: &id -> ShmNode* */
  guint       subdirs;
  gpointer    data;
  GDestroyNotify data_destroy;
};

static void
realtime_clock (gpointer user_data, struct timespec *now)
{
  clock_gettime (CLOCK_REALTIME, now);
}

static gint
compare_ids (gconstpointer a, gconstpointer b, gpointer user_data)
{
  guint64 x = *(const guint64 *) a, y = *(const guint64 *) b;
  return x < y ? -1 : x > y;
}

void
shm_tree_now (ShmTree *tree, struct timespec *now)
{
  tree->config.clock (tree->config.clock_data, now);
}

static ShmNode *
node_new (ShmTree *tree, gboolean is_dir, mode_t mode, uid_t uid, gid_t gid)
{
  ShmNode *node = g_new0 (ShmNode, 1);
  struct timespec now;

  node->tree = tree;
  node->ref_count = 1;
  node->id = tree->next_id++;
  node->is_dir = is_dir;
  node->attr.mode = (is_dir ? S_IFDIR : S_IFREG) | (mode & 07777);
  node->attr.uid = uid;
  node->attr.gid = gid;
  shm_tree_now (tree, &now);
  node->attr.atime = node->attr.mtime = node->attr.ctime = now;
  if (is_dir)
    {
      node->children = g_hash_table_new (g_str_hash, g_str_equal);
      node->children_by_id = g_tree_new_full (compare_ids, NULL, NULL, NULL);
    }
  else
    node->object = shm_object_new ();
  g_hash_table_insert (tree->nodes, &node->id, node);
  return node;
}

ShmTree *
shm_tree_new (const ShmTreeConfig *config)
{
  ShmTree *tree = g_new0 (ShmTree, 1);

  tree->config = *config;
  if (tree->config.backing == NULL && !tree->config.no_bytes)
    {
      tree->config.backing = shm_backing_memfd ();
      tree->slab = shm_slab_new ();
    }
  if (tree->config.clock == NULL)
    tree->config.clock = realtime_clock;
  tree->nodes = g_hash_table_new (g_int64_hash, g_int64_equal);
  tree->next_id = SHM_TREE_ROOT_ID;
  tree->root = node_new (tree, TRUE, config->root_mode, config->root_uid, config->root_gid);
  if (config->first_local_id > tree->next_id)
    tree->next_id = config->first_local_id;
  return tree;
}

static void unlink_child (ShmNode *dir, ShmNode *child);
static void node_free (ShmNode *node);

static void
clear_dir (ShmNode *dir)
{
  GHashTableIter iter;
  gpointer value;

  while (g_hash_table_size (dir->children) > 0)
    {
      g_hash_table_iter_init (&iter, dir->children);
      g_hash_table_iter_next (&iter, NULL, &value);
      if (((ShmNode *) value)->is_dir)
        clear_dir (value);
      unlink_child (dir, value);
    }
}

void
shm_tree_free (ShmTree *tree)
{
  GHashTableIter iter;
  gpointer value;

  if (tree == NULL)
    return;
  clear_dir (tree->root);
  /* Whatever references remain (an unmount does not forget) go too. */
  while (g_hash_table_size (tree->nodes) > 0)
    {
      g_hash_table_iter_init (&iter, tree->nodes);
      g_hash_table_iter_next (&iter, NULL, &value);
      node_free (value);
    }
  g_hash_table_unref (tree->nodes);
  shm_slab_unref (tree->slab);
  g_free (tree);
}

void
shm_tree_foreach_node (ShmTree *tree, void (*fn) (ShmNode *node, gpointer user_data),
                       gpointer user_data)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, tree->nodes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    fn (value, user_data);
}

ShmNode *
shm_tree_get_root (ShmTree *tree)
{
  return tree->root;
}

guint64
shm_tree_alloc_id (ShmTree *tree)
{
  return tree->next_id++;
}

ShmNode *
shm_tree_find_id (ShmTree *tree, guint64 id)
{
  return g_hash_table_lookup (tree->nodes, &id);
}

ShmNode *
shm_tree_lookup (ShmNode *dir, const char *name)
{
  if (!dir->is_dir)
    return NULL;
  return g_hash_table_lookup (dir->children, name);
}

int
shm_tree_check_name (const char *name)
{
  if (name[0] == '\0' || strcmp (name, ".") == 0 || strcmp (name, "..") == 0 ||
      strchr (name, '/') != NULL)
    return -EINVAL;
  if (strlen (name) > SHM_TREE_NAME_MAX)
    return -ENAMETOOLONG;
  return 0;
}

static void
link_child (ShmNode *dir, ShmNode *child, const char *name)
{
  child->name = g_strdup (name);
  child->parent = dir;
  g_hash_table_insert (dir->children, child->name, child);
  g_tree_insert (dir->children_by_id, &child->id, child);
  if (child->is_dir)
    dir->subdirs++;
}

/* Detaches child from dir without dropping the parent's reference. */
static void
detach_child (ShmNode *dir, ShmNode *child)
{
  g_hash_table_remove (dir->children, child->name);
  g_tree_remove (dir->children_by_id, &child->id);
  if (child->is_dir)
    dir->subdirs--;
  g_clear_pointer (&child->name, g_free);
  child->parent = NULL;
}

static void
unlink_child (ShmNode *dir, ShmNode *child)
{
  detach_child (dir, child);
  shm_node_unref (child);
}

static void
touch_dir (ShmTree *tree, ShmNode *dir)
{
  shm_node_touch (tree, dir, FALSE, TRUE, TRUE);
}

int
shm_tree_create (ShmTree *tree, ShmNode *dir, const char *name, gboolean is_dir,
                 mode_t mode, uid_t uid, gid_t gid, ShmNode **out)
{
  ShmNode *node;
  int err;

  if (!dir->is_dir)
    return -ENOTDIR;
  if ((err = shm_tree_check_name (name)) < 0)
    return err;
  if (g_hash_table_contains (dir->children, name))
    return -EEXIST;

  node = node_new (tree, is_dir, mode, uid, gid);
  link_child (dir, node, name);
  touch_dir (tree, dir);
  if (out != NULL)
    *out = node;
  return 0;
}

int
shm_tree_remove (ShmTree *tree, ShmNode *dir, const char *name, gboolean is_dir)
{
  ShmNode *child = shm_tree_lookup (dir, name);

  if (child == NULL)
    return -ENOENT;
  if (is_dir && !child->is_dir)
    return -ENOTDIR;
  if (!is_dir && child->is_dir)
    return -EISDIR;
  if (child->is_dir && g_hash_table_size (child->children) > 0)
    return -ENOTEMPTY;

  shm_node_touch (tree, child, FALSE, FALSE, TRUE);
  unlink_child (dir, child);
  touch_dir (tree, dir);
  return 0;
}

static gboolean
is_ancestor (const ShmNode *maybe_ancestor, const ShmNode *node)
{
  for (; node != NULL; node = node->parent)
    if (node == maybe_ancestor)
      return TRUE;
  return FALSE;
}

int
shm_tree_rename (ShmTree *tree, ShmNode *olddir, const char *oldname,
                 ShmNode *newdir, const char *newname, guint flags,
                 ShmNode **replaced)
{
  const guint noreplace = 1, exchange = 2;  /* RENAME_NOREPLACE, RENAME_EXCHANGE */
  ShmNode *src, *dst;
  int err;

  if (replaced != NULL)
    *replaced = NULL;
  if ((flags & ~(noreplace | exchange)) != 0 || flags == (noreplace | exchange))
    return -EINVAL;
  if (!olddir->is_dir || !newdir->is_dir)
    return -ENOTDIR;
  if ((src = shm_tree_lookup (olddir, oldname)) == NULL)
    return -ENOENT;
  if ((err = shm_tree_check_name (newname)) < 0)
    return err;
  dst = shm_tree_lookup (newdir, newname);

  if (flags & exchange)
    {
      if (dst == NULL)
        return -ENOENT;
      if (src == dst)
        return 0;
      if ((src->is_dir && is_ancestor (src, newdir)) ||
          (dst->is_dir && is_ancestor (dst, olddir)))
        return -EINVAL;
      detach_child (olddir, src);
      detach_child (newdir, dst);
      link_child (newdir, src, newname);
      link_child (olddir, dst, oldname);
      shm_node_touch (tree, src, FALSE, FALSE, TRUE);
      shm_node_touch (tree, dst, FALSE, FALSE, TRUE);
      touch_dir (tree, olddir);
      touch_dir (tree, newdir);
      return 0;
    }

  if (src->is_dir && is_ancestor (src, newdir))
    return -EINVAL;
  if (dst != NULL)
    {
      if (flags & noreplace)
        return -EEXIST;
      if (src == dst)
        return 0;
      if (src->is_dir && !dst->is_dir)
        return -ENOTDIR;
      if (!src->is_dir && dst->is_dir)
        return -EISDIR;
      if (dst->is_dir && g_hash_table_size (dst->children) > 0)
        return -ENOTEMPTY;
      shm_node_touch (tree, dst, FALSE, FALSE, TRUE);
      detach_child (newdir, dst);
      if (replaced != NULL)
        *replaced = dst;
      else
        shm_node_unref (dst);
    }

  detach_child (olddir, src);
  link_child (newdir, src, newname);
  shm_node_touch (tree, src, FALSE, FALSE, TRUE);
  touch_dir (tree, olddir);
  touch_dir (tree, newdir);
  return 0;
}

int
shm_tree_set_type (ShmTree *tree, ShmNode *node, const ShmType *type)
{
  guint64 nbytes = shm_type_nbytes (type);
  g_autofree char *path = NULL;
  int err;

  if (node->is_dir || shm_object_is_typed (node->object))
    return -EPERM;
  if (tree->config.capacity > 0 &&
      (nbytes > tree->config.capacity || tree->used_bytes > tree->config.capacity - nbytes))
    return -ENOSPC;
  path = shm_node_dup_path (node);
  err = shm_object_set_type (node->object, type, tree->config.backing, tree->slab, path);
  if (err < 0)
    return err;
  if (!tree->config.no_bytes)
    tree->used_bytes += nbytes;
  shm_node_touch (tree, node, FALSE, TRUE, TRUE);
  return 0;
}

static void
adopt_attr (ShmNode *node, const ShmAttr *attr)
{
  node->attr = *attr;
  node->attr.mode = (node->is_dir ? S_IFDIR : S_IFREG) | (attr->mode & 07777);
}

int
shm_tree_adopt (ShmTree *tree, ShmNode *dir, const char *name, guint64 id,
                gboolean is_dir, const ShmAttr *attr, ShmNode **out, gboolean *moved)
{
  ShmNode *node = shm_tree_find_id (tree, id), *occupant;
  int err;

  if (moved != NULL)
    *moved = FALSE;
  if (!dir->is_dir)
    return -ENOTDIR;
  if ((err = shm_tree_check_name (name)) < 0)
    return err;
  if (id == SHM_TREE_ROOT_ID || (node != NULL && node->is_dir != is_dir) ||
      (is_dir && node != NULL && is_ancestor (node, dir)))
    return -EINVAL;
  occupant = shm_tree_lookup (dir, name);
  if (occupant != NULL && occupant != node)
    shm_tree_detach (tree, occupant);
  if (node == NULL)
    {
      guint64 next = tree->next_id;

      tree->next_id = id;
      node = node_new (tree, is_dir, attr->mode, attr->uid, attr->gid);
      tree->next_id = MAX (next, id + 1);
      link_child (dir, node, name);
    }
  else if (node->parent != dir || strcmp (node->name, name) != 0)
    {
      if (node->parent != NULL)
        detach_child (node->parent, node);
      else
        shm_node_ref (node);   /* the parent's reference, again */
      link_child (dir, node, name);
      if (moved != NULL)
        *moved = TRUE;
    }
  adopt_attr (node, attr);
  if (out != NULL)
    *out = node;
  return 0;
}

void
shm_tree_detach (ShmTree *tree, ShmNode *node)
{
  if (node->parent != NULL)
    unlink_child (node->parent, node);
}

void
shm_tree_foreach_child (ShmNode *dir, guint64 after_id,
                        gboolean (*fn) (ShmNode *child, gpointer user_data),
                        gpointer user_data)
{
  guint64 start = after_id + 1;
  GTreeNode *it;

  if (!dir->is_dir)
    return;
  for (it = g_tree_lower_bound (dir->children_by_id, &start); it != NULL;
       it = g_tree_node_next (it))
    if (!fn (g_tree_node_value (it), user_data))
      break;
}

void
shm_tree_release_bytes (ShmTree *tree, ShmNode *node)
{
  /* Bytes kept elsewhere go as that place says. */
  if (node->object != NULL && !tree->config.no_bytes)
    tree->used_bytes -= shm_object_drop_bytes (node->object);
}

guint64
shm_tree_get_used_bytes (ShmTree *tree)
{
  return tree->used_bytes;
}

guint64
shm_tree_get_capacity (ShmTree *tree)
{
  return tree->config.capacity;
}

guint64
shm_tree_get_node_count (ShmTree *tree)
{
  return g_hash_table_size (tree->nodes);
}

ShmNode *
shm_node_ref (ShmNode *node)
{
  node->ref_count++;
  return node;
}

static void
node_free (ShmNode *node)
{
  ShmTree *tree = node->tree;

  g_hash_table_remove (tree->nodes, &node->id);
  if (node->data_destroy != NULL)
    node->data_destroy (node->data);
  if (node->object != NULL)
    {
      shm_tree_release_bytes (tree, node);
      shm_object_unref (node->object);
    }
  if (node->is_dir)
    {
      g_hash_table_unref (node->children);
      g_tree_unref (node->children_by_id);
    }
  g_free (node->name);
  g_free (node);
}

void
shm_node_unref (ShmNode *node)
{
  if (node == NULL || --node->ref_count > 0)
    return;
  g_assert (node->parent == NULL);
  node_free (node);
}

char *
shm_node_dup_path (const ShmNode *node)
{
  GPtrArray *parts = g_ptr_array_new ();
  GString *path = g_string_new (NULL);

  for (const ShmNode *n = node; n->parent != NULL; n = n->parent)
    g_ptr_array_add (parts, n->name);
  for (guint i = parts->len; i > 0; i--)
    {
      if (path->len > 0)
        g_string_append_c (path, '/');
      g_string_append (path, parts->pdata[i - 1]);
    }
  g_ptr_array_unref (parts);
  return g_string_free (path, FALSE);
}

guint64
shm_node_get_id (const ShmNode *node)
{
  return node->id;
}

gboolean
shm_node_is_dir (const ShmNode *node)
{
  return node->is_dir;
}

const char *
shm_node_get_name (const ShmNode *node)
{
  return node->name;
}

ShmNode *
shm_node_get_parent (const ShmNode *node)
{
  return node->parent;
}

ShmObject *
shm_node_get_object (const ShmNode *node)
{
  return node->object;
}

ShmAttr *
shm_node_get_attr (ShmNode *node)
{
  return &node->attr;
}

guint
shm_node_get_nlink (const ShmNode *node)
{
  if (node->is_dir)
    return (node->parent != NULL || node == node->tree->root) ? 2 + node->subdirs : 0;
  return node->parent != NULL ? 1 : 0;
}

guint
shm_node_get_child_count (const ShmNode *node)
{
  return node->is_dir ? g_hash_table_size (node->children) : 0;
}

void
shm_node_touch (ShmTree *tree, ShmNode *node, gboolean atime, gboolean mtime, gboolean ctime)
{
  struct timespec now;

  shm_tree_now (tree, &now);
  if (atime)
    node->attr.atime = now;
  if (mtime)
    node->attr.mtime = now;
  if (ctime)
    node->attr.ctime = now;
}

void
shm_node_set_data (ShmNode *node, gpointer data, GDestroyNotify destroy)
{
  if (node->data_destroy != NULL)
    node->data_destroy (node->data);
  node->data = data;
  node->data_destroy = destroy;
}

gpointer
shm_node_get_data (const ShmNode *node)
{
  return node->data;
}
