/* Unit tests of core/shm-store: the namespace kept in a directory. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "shm-store.h"

typedef struct {
  char     *dir;
  ShmStore *store;
  ShmTree  *tree;
  GPtrArray *skipped;
} Fixture;

static ShmTree *
new_tree (ShmStore *store)
{
  ShmTreeConfig config = { .root_mode = 01777, .backing = shm_store_backing (store) };
  return shm_tree_new (&config);
}

static void
setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("shmfs-store-XXXXXX", &error);
  g_assert_no_error (error);
  f->store = shm_store_open (f->dir, &error);
  g_assert_no_error (error);
  f->tree = new_tree (f->store);
  f->skipped = g_ptr_array_new_with_free_func (g_free);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", f->dir);

  shm_tree_free (f->tree);
  shm_store_free (f->store);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (f->dir);
  g_ptr_array_unref (f->skipped);
}

static void
record_skip (gpointer user_data, const char *path, const char *why)
{
  g_ptr_array_add (user_data, g_strdup (path));
}

/* Creates name in dir, in the tree and the store, as the daemon does. */
static ShmNode *
create (Fixture *f, ShmNode *dir, const char *name, gboolean is_dir, const char *spec)
{
  g_autofree char *dir_path = shm_node_dup_path (dir);
  g_autofree char *path = *dir_path ? g_strconcat (dir_path, "/", name, NULL) : g_strdup (name);
  ShmNode *node;
  ShmType type;

  g_assert_cmpint (shm_tree_create (f->tree, dir, name, is_dir, 0640, getuid (), getgid (), &node), ==, 0);
  g_assert_cmpint (shm_store_create (f->store, path, is_dir, shm_node_get_attr (node)), ==, 0);
  if (spec != NULL)
    {
      g_assert_cmpint (shm_type_parse (spec, strlen (spec), &type), ==, 0);
      g_assert_cmpint (shm_tree_set_type (f->tree, node, &type), ==, 0);
    }
  return node;
}

static ShmTree *
reload (Fixture *f)
{
  ShmTree *tree = new_tree (f->store);
  shm_store_load (f->store, tree, record_skip, f->skipped);
  return tree;
}

static void
test_roundtrip (Fixture *f, gconstpointer data)
{
  ShmNode *root = shm_tree_get_root (f->tree);
  ShmNode *d = create (f, root, "d", TRUE, NULL);
  ShmNode *x = create (f, d, "x", FALSE, "f64[4]");
  ShmTree *again;
  ShmNode *x2;

  create (f, root, "untyped", FALSE, NULL);
  ((double *) shm_object_get_data (shm_node_get_object (x)))[3] = 2.5;
  shm_node_get_attr (x)->mode = S_IFREG | 0604;
  g_assert_cmpint (shm_store_set_attr (f->store, "d/x", shm_node_get_attr (x)), ==, 0);

  /* No sync: the bytes are the file's own pages already. */
  again = reload (f);
  g_assert_cmpuint (f->skipped->len, ==, 0);
  x2 = shm_tree_lookup (shm_tree_lookup (shm_tree_get_root (again), "d"), "x");
  g_assert_nonnull (x2);
  g_assert_cmpuint (shm_object_get_nbytes (shm_node_get_object (x2)), ==, 32);
  g_assert_cmpfloat (((double *) shm_object_get_data (shm_node_get_object (x2)))[3], ==, 2.5);
  g_assert_cmpuint (shm_node_get_attr (x2)->mode, ==, S_IFREG | 0604);
  g_assert_false (shm_object_is_typed (shm_node_get_object (
      shm_tree_lookup (shm_tree_get_root (again), "untyped"))));
  shm_tree_free (again);
}

static void
test_rename_remove (Fixture *f, gconstpointer data)
{
  ShmNode *root = shm_tree_get_root (f->tree);
  ShmTree *again;

  create (f, root, "a", FALSE, "i32");
  create (f, root, "b", FALSE, "u8");
  g_assert_cmpint (shm_store_rename (f->store, "a", "b", 1 /* NOREPLACE */), ==, -EEXIST);
  g_assert_cmpint (shm_store_rename (f->store, "a", "c", 0), ==, 0);
  g_assert_cmpint (shm_store_remove (f->store, "b", FALSE), ==, 0);
  again = reload (f);
  g_assert_nonnull (shm_tree_lookup (shm_tree_get_root (again), "c"));
  g_assert_null (shm_tree_lookup (shm_tree_get_root (again), "a"));
  g_assert_null (shm_tree_lookup (shm_tree_get_root (again), "b"));
  shm_tree_free (again);
}

static void
write_file (Fixture *f, const char *name, const char *content, const char *type)
{
  g_autofree char *path = g_build_filename (f->dir, name, NULL);
  g_assert_true (g_file_set_contents (path, content, -1, NULL));
  if (type != NULL)
    g_assert_cmpint (setxattr (path, "user.shmfs.type", type, strlen (type), 0), ==, 0);
}

static void
test_damaged_skipped (Fixture *f, gconstpointer data)
{
  g_autofree char *raw = g_build_filename (f->dir, ".raw", NULL);
  g_autofree char *link = g_build_filename (f->dir, "link", NULL);
  ShmTree *again;

  create (f, shm_tree_get_root (f->tree), "good", FALSE, "u16[2]");
  write_file (f, "foreign", "not ours", NULL);
  write_file (f, "short", "xy", "f64");
  write_file (f, "badtype", "", "complex128");
  write_file (f, "typed-empty", "", "i64");   /* a crash between type and size */
  g_assert_cmpint (g_mkdir (raw, 0700), ==, 0);
  g_assert_cmpint (symlink ("good", link), ==, 0);

  again = reload (f);
  g_assert_cmpuint (f->skipped->len, ==, 5);
  g_assert_nonnull (shm_tree_lookup (shm_tree_get_root (again), "good"));
  g_assert_cmpuint (shm_object_get_nbytes (shm_node_get_object (
      shm_tree_lookup (shm_tree_get_root (again), "typed-empty"))), ==, 8);
  g_assert_null (shm_tree_lookup (shm_tree_get_root (again), "foreign"));
  g_assert_null (shm_tree_lookup (shm_tree_get_root (again), "short"));
  shm_tree_free (again);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/store/roundtrip", Fixture, NULL, setup, test_roundtrip, teardown);
  g_test_add ("/store/rename-remove", Fixture, NULL, setup, test_rename_remove, teardown);
  g_test_add ("/store/damaged-skipped", Fixture, NULL, setup, test_damaged_skipped, teardown);
  return g_test_run ();
}
