/* Unit tests of core/shm-tree: the namespace, with an injected clock. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "shm-tree.h"

#define NOREPLACE 1
#define EXCHANGE 2

static void
fake_clock (gpointer user_data, struct timespec *now)
{
  now->tv_sec = (*(gint64 *) user_data)++;
  now->tv_nsec = 0;
}

typedef struct {
  ShmTree *tree;
  ShmNode *root;
  gint64   clock;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  ShmTreeConfig config = { .root_mode = 0755, .clock = fake_clock, .clock_data = &f->clock,
                           .capacity = GPOINTER_TO_SIZE (data) };
  f->clock = 1000;
  f->tree = shm_tree_new (&config);
  f->root = shm_tree_get_root (f->tree);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  shm_tree_free (f->tree);
}

static ShmNode *
create (Fixture *f, ShmNode *dir, const char *name, gboolean is_dir)
{
  ShmNode *node = NULL;
  g_assert_cmpint (shm_tree_create (f->tree, dir, name, is_dir, 0644, 1, 2, &node), ==, 0);
  return node;
}

static void
test_create_lookup (Fixture *f, gconstpointer data)
{
  ShmNode *d = create (f, f->root, "dir", TRUE);
  ShmNode *x = create (f, d, "x", FALSE);

  g_assert_cmpuint (shm_node_get_id (f->root), ==, SHM_TREE_ROOT_ID);
  g_assert_true (shm_tree_lookup (f->root, "dir") == d);
  g_assert_true (shm_tree_lookup (d, "x") == x);
  g_assert_null (shm_tree_lookup (d, "y"));
  g_assert_null (shm_tree_lookup (x, "y"));
  g_assert_true (shm_tree_find_id (f->tree, shm_node_get_id (x)) == x);
  g_assert_true (shm_node_get_parent (x) == d);
  g_assert_cmpstr (shm_node_get_name (x), ==, "x");
  g_assert_nonnull (shm_node_get_object (x));
  g_assert_null (shm_node_get_object (d));
  g_assert_cmpuint (shm_node_get_attr (x)->mode, ==, S_IFREG | 0644);
  g_assert_cmpuint (shm_node_get_attr (d)->mode, ==, S_IFDIR | 0644);
  g_assert_cmpuint (shm_node_get_attr (x)->uid, ==, 1);
  g_assert_cmpuint (shm_node_get_nlink (f->root), ==, 3);
  g_assert_cmpuint (shm_node_get_nlink (x), ==, 1);
  /* The directory's times moved with the injected clock. */
  g_assert_cmpint (shm_node_get_attr (d)->mtime.tv_sec, >, shm_node_get_attr (d)->atime.tv_sec);
}

static void
test_create_errors (Fixture *f, gconstpointer data)
{
  ShmNode *x = create (f, f->root, "x", FALSE);
  char longname[SHM_TREE_NAME_MAX + 2];

  memset (longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  g_assert_cmpint (shm_tree_create (f->tree, f->root, "x", FALSE, 0644, 0, 0, NULL), ==, -EEXIST);
  g_assert_cmpint (shm_tree_create (f->tree, f->root, "x", TRUE, 0644, 0, 0, NULL), ==, -EEXIST);
  g_assert_cmpint (shm_tree_create (f->tree, x, "y", FALSE, 0644, 0, 0, NULL), ==, -ENOTDIR);
  g_assert_cmpint (shm_tree_create (f->tree, f->root, "", FALSE, 0644, 0, 0, NULL), ==, -EINVAL);
  g_assert_cmpint (shm_tree_create (f->tree, f->root, ".", FALSE, 0644, 0, 0, NULL), ==, -EINVAL);
  g_assert_cmpint (shm_tree_create (f->tree, f->root, "..", TRUE, 0644, 0, 0, NULL), ==, -EINVAL);
  g_assert_cmpint (shm_tree_create (f->tree, f->root, "a/b", FALSE, 0644, 0, 0, NULL), ==, -EINVAL);
  g_assert_cmpint (shm_tree_create (f->tree, f->root, longname, FALSE, 0644, 0, 0, NULL), ==, -ENAMETOOLONG);
  longname[SHM_TREE_NAME_MAX] = '\0';
  g_assert_cmpint (shm_tree_create (f->tree, f->root, longname, FALSE, 0644, 0, 0, NULL), ==, 0);
  g_assert_cmpuint (shm_node_get_child_count (f->root), ==, 2);
}

static void
test_remove (Fixture *f, gconstpointer data)
{
  ShmNode *d = create (f, f->root, "d", TRUE);
  ShmNode *x = create (f, d, "x", FALSE);
  guint64 xid = shm_node_get_id (x);

  g_assert_cmpint (shm_tree_remove (f->tree, f->root, "d", TRUE), ==, -ENOTEMPTY);
  g_assert_cmpint (shm_tree_remove (f->tree, f->root, "d", FALSE), ==, -EISDIR);
  g_assert_cmpint (shm_tree_remove (f->tree, d, "x", TRUE), ==, -ENOTDIR);
  g_assert_cmpint (shm_tree_remove (f->tree, d, "nope", FALSE), ==, -ENOENT);

  /* A referenced node outlives its unlink, and its name is free at once. */
  shm_node_ref (x);
  g_assert_cmpint (shm_tree_remove (f->tree, d, "x", FALSE), ==, 0);
  g_assert_null (shm_tree_lookup (d, "x"));
  g_assert_true (shm_tree_find_id (f->tree, xid) == x);
  g_assert_null (shm_node_get_parent (x));
  g_assert_cmpuint (shm_node_get_nlink (x), ==, 0);
  create (f, d, "x", FALSE);
  shm_node_unref (x);
  g_assert_null (shm_tree_find_id (f->tree, xid));

  g_assert_cmpint (shm_tree_remove (f->tree, d, "x", FALSE), ==, 0);
  g_assert_cmpint (shm_tree_remove (f->tree, f->root, "d", TRUE), ==, 0);
  g_assert_cmpuint (shm_node_get_nlink (f->root), ==, 2);
}

static void
test_rename (Fixture *f, gconstpointer data)
{
  ShmNode *a = create (f, f->root, "a", FALSE);
  ShmNode *b = create (f, f->root, "b", FALSE);
  ShmNode *d = create (f, f->root, "d", TRUE);
  ShmNode *e = create (f, d, "e", TRUE);
  ShmNode *replaced = NULL;

  g_assert_cmpint (shm_tree_rename (f->tree, f->root, "a", f->root, "b", NOREPLACE, NULL), ==, -EEXIST);
  g_assert_cmpint (shm_tree_rename (f->tree, f->root, "zz", f->root, "b", 0, NULL), ==, -ENOENT);
  g_assert_cmpint (shm_tree_rename (f->tree, f->root, "a", f->root, "d", 0, NULL), ==, -EISDIR);
  g_assert_cmpint (shm_tree_rename (f->tree, f->root, "d", f->root, "a", 0, NULL), ==, -ENOTDIR);
  g_assert_cmpint (shm_tree_rename (f->tree, f->root, "d", e, "d2", 0, NULL), ==, -EINVAL);
  g_assert_cmpint (shm_tree_rename (f->tree, f->root, "a", f->root, "c", EXCHANGE, NULL), ==, -ENOENT);
  g_assert_cmpint (shm_tree_rename (f->tree, f->root, "a", f->root, "b", NOREPLACE | EXCHANGE, NULL), ==, -EINVAL);

  g_assert_cmpint (shm_tree_rename (f->tree, f->root, "a", f->root, "b", EXCHANGE, NULL), ==, 0);
  g_assert_true (shm_tree_lookup (f->root, "a") == b);
  g_assert_true (shm_tree_lookup (f->root, "b") == a);

  g_assert_cmpint (shm_tree_rename (f->tree, f->root, "b", d, "moved", 0, NULL), ==, 0);
  g_assert_true (shm_tree_lookup (d, "moved") == a);
  g_assert_null (shm_tree_lookup (f->root, "b"));

  g_assert_cmpint (shm_tree_rename (f->tree, f->root, "a", d, "moved", 0, &replaced), ==, 0);
  g_assert_true (replaced == a);
  g_assert_null (shm_node_get_parent (a));
  shm_node_unref (replaced);
  g_assert_true (shm_tree_lookup (d, "moved") == b);

  g_assert_cmpint (shm_tree_rename (f->tree, d, "e", f->root, "e", 0, NULL), ==, 0);
  g_assert_cmpuint (shm_node_get_nlink (d), ==, 2);
  g_assert_cmpuint (shm_node_get_nlink (f->root), ==, 4);
}

static gboolean
collect (ShmNode *child, gpointer user_data)
{
  g_ptr_array_add (user_data, (gpointer) shm_node_get_name (child));
  return ((GPtrArray *) user_data)->len < 2;
}

static void
test_foreach_stable (Fixture *f, gconstpointer data)
{
  GPtrArray *names = g_ptr_array_new ();
  ShmNode *a = create (f, f->root, "a", FALSE);

  create (f, f->root, "b", FALSE);
  create (f, f->root, "c", FALSE);
  shm_tree_foreach_child (f->root, 0, collect, names);
  g_assert_cmpuint (names->len, ==, 2);
  g_assert_cmpstr (names->pdata[0], ==, "a");
  g_assert_cmpstr (names->pdata[1], ==, "b");

  /* Removing an entry already returned does not shift the rest. */
  g_ptr_array_set_size (names, 0);
  g_assert_cmpint (shm_tree_remove (f->tree, f->root, "a", FALSE), ==, 0);
  (void) a;
  shm_tree_foreach_child (f->root, shm_node_get_id (shm_tree_lookup (f->root, "b")), collect, names);
  g_assert_cmpuint (names->len, ==, 1);
  g_assert_cmpstr (names->pdata[0], ==, "c");
  g_ptr_array_unref (names);
}

static void
test_capacity (Fixture *f, gconstpointer data)
{
  ShmNode *x = create (f, f->root, "x", FALSE);
  ShmNode *y = create (f, f->root, "y", FALSE);
  ShmNode *d = create (f, f->root, "d", TRUE);
  ShmType t;

  g_assert_cmpint (shm_type_parse ("u8[600]", 7, &t), ==, 0);
  g_assert_cmpint (shm_tree_set_type (f->tree, x, &t), ==, 0);
  g_assert_cmpuint (shm_tree_get_used_bytes (f->tree), ==, 600);
  g_assert_cmpint (shm_tree_set_type (f->tree, x, &t), ==, -EPERM);
  g_assert_cmpint (shm_tree_set_type (f->tree, d, &t), ==, -EPERM);
  g_assert_cmpint (shm_tree_set_type (f->tree, y, &t), ==, -ENOSPC);
  g_assert_false (shm_object_is_typed (shm_node_get_object (y)));
  /* Unlinking frees the bytes. */
  g_assert_cmpint (shm_tree_remove (f->tree, f->root, "x", FALSE), ==, 0);
  g_assert_cmpuint (shm_tree_get_used_bytes (f->tree), ==, 0);
  g_assert_cmpint (shm_tree_set_type (f->tree, y, &t), ==, 0);
}

static void
test_free_with_references (Fixture *f, gconstpointer data)
{
  ShmNode *d = create (f, f->root, "d", TRUE);
  ShmNode *x = create (f, d, "x", FALSE);

  /* The layer above may still hold references at unmount. */
  shm_node_ref (d);
  shm_node_ref (x);
  shm_node_ref (x);
}

/* A tree kept in step with a namespace elsewhere: nodes adopted by id,
 * moved, displaced and detached, typed without bytes. */
static void
test_adopt (void)
{
  ShmTreeConfig config = { .root_mode = 0755, .no_bytes = TRUE, .first_local_id = 1000 };
  ShmTree *tree = shm_tree_new (&config);
  ShmNode *root = shm_tree_get_root (tree), *d, *x, *y, *got;
  ShmAttr attr = { .mode = 0640, .uid = 7, .gid = 8 };
  ShmType type;
  gboolean moved;

  g_assert_cmpint (shm_tree_adopt (tree, root, "d", 5, TRUE, &attr, &d, &moved), ==, 0);
  g_assert_false (moved);
  g_assert_cmpuint (shm_node_get_id (d), ==, 5);
  g_assert_cmpuint (shm_node_get_attr (d)->mode, ==, S_IFDIR | 0640);
  g_assert_cmpint (shm_tree_adopt (tree, d, "x", 9, FALSE, &attr, &x, NULL), ==, 0);
  g_assert_cmpuint (shm_node_get_nlink (root), ==, 3);
  /* Ids of its own come from first_local_id on, whatever was adopted. */
  g_assert_cmpuint (shm_tree_alloc_id (tree), ==, 1000);
  g_assert_cmpint (shm_tree_adopt (tree, root, "big", 1200, FALSE, &attr, NULL, NULL), ==, 0);
  g_assert_cmpuint (shm_tree_alloc_id (tree), ==, 1201);

  /* The same again: nothing moves; new attributes are taken. */
  attr.mode = 0600;
  g_assert_cmpint (shm_tree_adopt (tree, d, "x", 9, FALSE, &attr, &got, &moved), ==, 0);
  g_assert_true (got == x);
  g_assert_false (moved);
  g_assert_cmpuint (shm_node_get_attr (x)->mode, ==, S_IFREG | 0600);

  /* Renamed elsewhere: it moves, keeping its node. */
  shm_node_ref (x);
  g_assert_cmpint (shm_tree_adopt (tree, root, "x2", 9, FALSE, &attr, &got, &moved), ==, 0);
  g_assert_true (got == x);
  g_assert_true (moved);
  g_assert_null (shm_tree_lookup (d, "x"));
  g_assert_cmpstr (shm_node_get_name (x), ==, "x2");

  /* Another node under that name now: the old one is unlinked. */
  g_assert_cmpint (shm_tree_adopt (tree, root, "x2", 11, FALSE, &attr, &y, NULL), ==, 0);
  g_assert_null (shm_node_get_parent (x));
  g_assert_cmpuint (shm_node_get_nlink (x), ==, 0);
  g_assert_true (shm_tree_lookup (root, "x2") == y);
  /* And found again under another name: linked back. */
  g_assert_cmpint (shm_tree_adopt (tree, d, "back", 9, FALSE, &attr, &got, &moved), ==, 0);
  g_assert_true (got == x && moved);
  g_assert_cmpuint (shm_node_get_nlink (x), ==, 1);
  shm_node_unref (x);

  /* Wrong kinds, a directory into itself, bad names. */
  g_assert_cmpint (shm_tree_adopt (tree, root, "d2", 9, TRUE, &attr, NULL, NULL), ==, -EINVAL);
  g_assert_cmpint (shm_tree_adopt (tree, d, "self", 5, TRUE, &attr, NULL, NULL), ==, -EINVAL);
  g_assert_cmpint (shm_tree_adopt (tree, root, "r", SHM_TREE_ROOT_ID, TRUE, &attr, NULL, NULL), ==, -EINVAL);
  g_assert_cmpint (shm_tree_adopt (tree, x, "z", 12, FALSE, &attr, NULL, NULL), ==, -ENOTDIR);
  g_assert_cmpint (shm_tree_adopt (tree, root, "a/b", 12, FALSE, &attr, NULL, NULL), ==, -EINVAL);

  /* Typed without bytes here, and not counted. */
  g_assert_cmpint (shm_type_parse ("f64[4]", 6, &type), ==, 0);
  g_assert_cmpint (shm_tree_set_type (tree, y, &type), ==, 0);
  g_assert_cmpuint (shm_object_get_nbytes (shm_node_get_object (y)), ==, 32);
  g_assert_null (shm_object_get_data (shm_node_get_object (y)));
  g_assert_cmpuint (shm_tree_get_used_bytes (tree), ==, 0);
  shm_type_clear (&type);

  shm_tree_detach (tree, d);
  g_assert_null (shm_tree_lookup (root, "d"));
  g_assert_cmpuint (shm_node_get_nlink (root), ==, 2);
  shm_tree_free (tree);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn, cap) \
  g_test_add (path, Fixture, GSIZE_TO_POINTER (cap), setup, fn, teardown)
  ADD ("/tree/create-lookup", test_create_lookup, 0);
  ADD ("/tree/create-errors", test_create_errors, 0);
  ADD ("/tree/remove", test_remove, 0);
  ADD ("/tree/rename", test_rename, 0);
  ADD ("/tree/foreach-stable", test_foreach_stable, 0);
  ADD ("/tree/capacity", test_capacity, 1000);
  ADD ("/tree/free-with-references", test_free_with_references, 0);
  g_test_add_func ("/tree/adopt", test_adopt);
  return g_test_run ();
}
