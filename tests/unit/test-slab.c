/* Unit tests of core/shm-slab: slots for small objects. */
#include "config.h"

#include <string.h>

#include "shm-slab.h"

static void
test_alloc_zeroed_aligned (void)
{
  ShmSlab *slab = shm_slab_new ();

  for (gsize size = 1; size <= SHM_SLAB_MAX; size = size * 3 + 1)
    {
      guint8 *slot = shm_slab_alloc (slab, size);
      g_assert_nonnull (slot);
      g_assert_cmpuint ((guintptr) slot % SHM_SLAB_ALIGN, ==, 0);
      for (gsize i = 0; i < size; i++)
        g_assert_cmpuint (slot[i], ==, 0);
      memset (slot, 0xab, size);
    }
  g_assert_null (shm_slab_alloc (slab, SHM_SLAB_MAX + 1));
  shm_slab_unref (slab);
}

static void
test_reuse_is_zeroed (void)
{
  ShmSlab *slab = shm_slab_new ();
  guint8 *a = shm_slab_alloc (slab, 8), *b;

  memset (a, 0xff, 8);
  shm_slab_release (slab, a, 8);
  b = shm_slab_alloc (slab, 8);
  g_assert_true (a == b);
  for (int i = 0; i < 8; i++)
    g_assert_cmpuint (b[i], ==, 0);
  shm_slab_unref (slab);
}

static void
test_many_distinct (void)
{
  ShmSlab *slab = shm_slab_new ();
  const guint n = 100000;
  guint64 **slots = g_new (guint64 *, n);

  for (guint i = 0; i < n; i++)
    {
      slots[i] = shm_slab_alloc (slab, sizeof (guint64));
      *slots[i] = i;
    }
  for (guint i = 0; i < n; i++)
    g_assert_cmpuint (*slots[i], ==, i);
  /* 64-byte slots in 4 MiB chunks: a few chunks, not one mapping each. */
  g_assert_cmpuint (shm_slab_get_mapped_bytes (slab), <=, (guint64) n * 64 + 4 * 1024 * 1024);
  for (guint i = 0; i < n; i++)
    shm_slab_release (slab, slots[i], sizeof (guint64));
  g_free (slots);
  shm_slab_unref (slab);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/slab/alloc-zeroed-aligned", test_alloc_zeroed_aligned);
  g_test_add_func ("/slab/reuse-is-zeroed", test_reuse_is_zeroed);
  g_test_add_func ("/slab/many-distinct", test_many_distinct);
  return g_test_run ();
}
