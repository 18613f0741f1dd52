/* Unit tests of core/shm-object: typing and backing regions. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm-object.h"

static ShmType
parse (const char *spec)
{
  ShmType t;
  g_assert_cmpint (shm_type_parse (spec, strlen (spec), &t), ==, 0);
  return t;
}

static void
test_untyped (void)
{
  ShmObject *obj = shm_object_new ();

  g_assert_false (shm_object_is_typed (obj));
  g_assert_null (shm_object_get_type (obj));
  g_assert_cmpuint (shm_object_get_nbytes (obj), ==, 0);
  g_assert_cmpint (shm_object_get_fd (obj), ==, -1);
  g_assert_null (shm_object_get_data (obj));
  shm_object_unref (obj);
}

static void
test_type_once (void)
{
  ShmObject *obj = shm_object_new ();
  ShmType f64x3 = parse ("f64[3]"), i8 = parse ("i8");
  guint64 v0 = shm_object_get_version (obj);
  struct stat st;

  g_assert_cmpint (shm_object_set_type (obj, &f64x3, shm_backing_memfd (), NULL, "x"), ==, 0);
  g_assert_true (shm_object_is_typed (obj));
  g_assert_cmpuint (shm_object_get_nbytes (obj), ==, 24);
  g_assert_cmpuint (shm_object_get_version (obj), >, v0);
  g_assert_cmpint (fstat (shm_object_get_fd (obj), &st), ==, 0);
  g_assert_cmpint (st.st_size, ==, 24);
  for (int i = 0; i < 24; i++)
    g_assert_cmpint (shm_object_get_data (obj)[i], ==, 0);

  /* The type is fixed once set. */
  g_assert_cmpint (shm_object_set_type (obj, &i8, shm_backing_memfd (), NULL, "x"), ==, -EPERM);
  g_assert_cmpuint (shm_object_get_nbytes (obj), ==, 24);
  shm_object_unref (obj);
}

static void
test_memfd_sealed (void)
{
  ShmObject *obj = shm_object_new ();
  ShmType t = parse ("u8[4096]");
  int fd;

  g_assert_cmpint (shm_object_set_type (obj, &t, shm_backing_memfd (), NULL, "x"), ==, 0);
  fd = shm_object_get_fd (obj);
  g_assert_cmpint (fcntl (fd, F_GET_SEALS) & (F_SEAL_GROW | F_SEAL_SHRINK),
                   ==, F_SEAL_GROW | F_SEAL_SHRINK);
  g_assert_cmpint (ftruncate (fd, 8192), ==, -1);
  g_assert_cmpint (errno, ==, EPERM);
  g_assert_cmpint (pwrite (fd, "x", 1, 4096), ==, -1);
  g_assert_cmpint (errno, ==, EPERM);

  /* The fd and the daemon's mapping are the same bytes. */
  g_assert_cmpint (pwrite (fd, "abc", 3, 100), ==, 3);
  g_assert_cmpmem (shm_object_get_data (obj) + 100, 3, "abc", 3);
  shm_object_unref (obj);
}

static int
failing_create (gpointer user_data, const char *path, const ShmType *type)
{
  (*(int *) user_data)++;
  return -ENOSPC;
}

static void
test_backing_error (void)
{
  int calls = 0;
  ShmBacking failing = { failing_create, &calls };
  ShmObject *obj = shm_object_new ();
  ShmType t = parse ("i32");

  g_assert_cmpint (shm_object_set_type (obj, &t, &failing, NULL, "x"), ==, -ENOSPC);
  g_assert_cmpint (calls, ==, 1);
  g_assert_false (shm_object_is_typed (obj));
  /* A later attempt may still succeed. */
  g_assert_cmpint (shm_object_set_type (obj, &t, shm_backing_memfd (), NULL, "x"), ==, 0);
  shm_object_unref (obj);
}

static void
test_refcount (void)
{
  ShmObject *obj = shm_object_new ();
  ShmType t = parse ("u64");

  g_assert_cmpint (shm_object_set_type (obj, &t, shm_backing_memfd (), NULL, "x"), ==, 0);
  shm_object_ref (obj);
  shm_object_unref (obj);
  g_assert_cmpint (fcntl (shm_object_get_fd (obj), F_GETFD), >=, 0);
  shm_object_get_data (obj)[0] = 1;
  shm_object_unref (obj);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/object/untyped", test_untyped);
  g_test_add_func ("/object/type-once", test_type_once);
  g_test_add_func ("/object/memfd-sealed", test_memfd_sealed);
  g_test_add_func ("/object/backing-error", test_backing_error);
  g_test_add_func ("/object/refcount", test_refcount);
  return g_test_run ();
}
