/* Unit tests of core/shm-atomic: one element's read-modify-write. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "shm-atomic.h"

static ShmType
parse (const char *spec)
{
  ShmType t;
  g_assert_cmpint (shm_type_parse (spec, strlen (spec), &t), ==, 0);
  return t;
}

static ShmAtomic
op (ShmAtomicOp o, guint64 index, gint64 operand)
{
  ShmAtomic a = { .op = o, .index = index };
  a.operand.i = operand;
  return a;
}

static void
test_int_wraps (void)
{
  ShmType u8 = parse ("u8"), i16 = parse ("i16"), u64 = parse ("u64");
  guint8 b = 250;
  gint16 h = G_MAXINT16;
  guint64 q = 0;
  ShmAtomic a = op (SHM_ATOMIC_ADD, 0, 10);

  g_assert_cmpint (shm_atomic_check (&u8, &a), ==, 0);
  g_assert_true (shm_atomic_apply (&u8, &b, &a));
  g_assert_cmpuint (a.old.u, ==, 250);
  g_assert_cmpuint (b, ==, 4);   /* 260 wraps */

  a = op (SHM_ATOMIC_ADD, 0, 1);
  shm_atomic_apply (&i16, (guint8 *) &h, &a);
  g_assert_cmpint (a.old.i, ==, G_MAXINT16);
  g_assert_cmpint (h, ==, G_MININT16);

  a = op (SHM_ATOMIC_SUB, 0, 1);
  shm_atomic_apply (&u64, (guint8 *) &q, &a);
  g_assert_cmpuint (q, ==, G_MAXUINT64);
}

static void
test_sign_extension (void)
{
  ShmType i8 = parse ("i8");
  gint8 v = -5;
  ShmAtomic a = op (SHM_ATOMIC_LOAD, 0, 0);

  g_assert_false (shm_atomic_apply (&i8, (guint8 *) &v, &a));
  g_assert_cmpint (a.old.i, ==, -5);
}

static void
test_cas_xchg_index (void)
{
  ShmType t = parse ("i32[4]");
  gint32 v[4] = { 1, 2, 3, 4 };
  ShmAtomic a = op (SHM_ATOMIC_CAS, 2, 30);

  a.expected.i = 3;
  g_assert_true (shm_atomic_apply (&t, (guint8 *) v, &a));
  g_assert_true (a.swapped);
  g_assert_cmpint (v[2], ==, 30);
  a = op (SHM_ATOMIC_CAS, 2, 99);
  a.expected.i = 3;
  g_assert_false (shm_atomic_apply (&t, (guint8 *) v, &a));
  g_assert_false (a.swapped);
  g_assert_cmpint (a.old.i, ==, 30);
  g_assert_cmpint (v[2], ==, 30);
  a = op (SHM_ATOMIC_XCHG, 3, -7);
  shm_atomic_apply (&t, (guint8 *) v, &a);
  g_assert_cmpint (a.old.i, ==, 4);
  g_assert_cmpint (v[3], ==, -7);
  g_assert_cmpint (v[0], ==, 1);
  g_assert_cmpint (v[1], ==, 2);
}

static void
test_floats (void)
{
  ShmType f64 = parse ("f64"), f32 = parse ("f32[2]");
  double d = 1.25;
  float f[2] = { 0, 2.5f };
  ShmAtomic a = { .op = SHM_ATOMIC_ADD, .is_float = TRUE };

  a.operand.f = 0.5;
  shm_atomic_apply (&f64, (guint8 *) &d, &a);
  g_assert_cmpfloat (a.old.f, ==, 1.25);
  g_assert_cmpfloat (d, ==, 1.75);

  /* An integer operand on a float element is converted. */
  a = op (SHM_ATOMIC_SUB, 1, 1);
  shm_atomic_apply (&f32, (guint8 *) f, &a);
  g_assert_cmpfloat (f[1], ==, 1.5f);
  a = (ShmAtomic) { .op = SHM_ATOMIC_CAS, .index = 1, .is_float = TRUE };
  a.expected.f = 1.5;
  a.operand.f = -1;
  g_assert_true (shm_atomic_apply (&f32, (guint8 *) f, &a));
  g_assert_cmpfloat (f[1], ==, -1.0f);
}

static void
test_check_errors (void)
{
  ShmType i64 = parse ("i64"), b = parse ("bool"), c = parse ("char[8]"), u8 = parse ("u8[2]");
  ShmAtomic a = op (SHM_ATOMIC_ADD, 0, 1);

  a.is_float = TRUE;
  g_assert_cmpint (shm_atomic_check (&i64, &a), ==, -EINVAL);
  a = op (SHM_ATOMIC_ADD, 0, 1);
  g_assert_cmpint (shm_atomic_check (&b, &a), ==, -EINVAL);
  g_assert_cmpint (shm_atomic_check (&c, &a), ==, -EINVAL);
  a = op (SHM_ATOMIC_ADD, 2, 1);
  g_assert_cmpint (shm_atomic_check (&u8, &a), ==, -EINVAL);
  a = op (SHM_ATOMIC_XCHG, 0, 300);
  g_assert_cmpint (shm_atomic_check (&u8, &a), ==, -ERANGE);
  a = op (SHM_ATOMIC_XCHG, 0, 2);
  g_assert_cmpint (shm_atomic_check (&b, &a), ==, -ERANGE);
  a = op (SHM_ATOMIC_XCHG, 0, 1);
  g_assert_cmpint (shm_atomic_check (&b, &a), ==, 0);
  a = op ((ShmAtomicOp) 9, 0, 1);
  g_assert_cmpint (shm_atomic_check (&i64, &a), ==, -EINVAL);
  /* add wraps rather than refusing a big operand */
  a = op (SHM_ATOMIC_ADD, 0, 300);
  g_assert_cmpint (shm_atomic_check (&u8, &a), ==, 0);
  /* A float past f32's range is refused as the text view refuses it;
   * non-finite values and what rounds into range are not. */
  {
    ShmType f32 = parse ("f32"), f64 = parse ("f64");
    static const double ok[] = { 3.4028234e38, -3.4028234e38, 1e-50, INFINITY, NAN };

    a = op (SHM_ATOMIC_XCHG, 0, 0);
    a.is_float = TRUE;
    a.operand.f = 1e39;
    g_assert_cmpint (shm_atomic_check (&f32, &a), ==, -ERANGE);
    g_assert_cmpint (shm_atomic_check (&f64, &a), ==, 0);
    a.op = SHM_ATOMIC_CAS;
    a.operand.f = -1e39;
    g_assert_cmpint (shm_atomic_check (&f32, &a), ==, -ERANGE);
    for (guint i = 0; i < G_N_ELEMENTS (ok); i++)
      {
        a.operand.f = ok[i];
        g_assert_cmpint (shm_atomic_check (&f32, &a), ==, 0);
      }
  }
}

static gpointer
add_many (gpointer data)
{
  ShmType t = parse ("u32");
  for (int i = 0; i < 100000; i++)
    {
      ShmAtomic a = op (SHM_ATOMIC_ADD, 0, 1);
      shm_atomic_apply (&t, data, &a);
    }
  return NULL;
}

static void
test_atomic_across_threads (void)
{
  guint32 counter = 0;
  GThread *t1 = g_thread_new ("a", add_many, &counter);
  GThread *t2 = g_thread_new ("b", add_many, &counter);

  g_thread_join (t1);
  g_thread_join (t2);
  g_assert_cmpuint (counter, ==, 200000);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/atomic/int-wraps", test_int_wraps);
  g_test_add_func ("/atomic/sign-extension", test_sign_extension);
  g_test_add_func ("/atomic/cas-xchg-index", test_cas_xchg_index);
  g_test_add_func ("/atomic/floats", test_floats);
  g_test_add_func ("/atomic/check-errors", test_check_errors);
  g_test_add_func ("/atomic/across-threads", test_atomic_across_threads);
  return g_test_run ();
}
