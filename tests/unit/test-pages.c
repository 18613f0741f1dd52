/* Unit tests of core/shm-pages: the page bookkeeping of cached mode. */
#include "config.h"

#include "shm-pages.h"

#define PS 4096

/* The pages marked cached, as a string of 0/1 (one a page). */
static char *
cached_map (ShmPages *pages)
{
  GString *s = g_string_new (NULL);

  for (guint64 p = 0; p < shm_pages_count (pages); p++)
    g_string_append_c (s, shm_pages_is_cached (pages, p) ? '1' : '0');
  return g_string_free (s, FALSE);
}

static void
assert_cached (ShmPages *pages, const char *expected)
{
  g_autofree char *map = cached_map (pages);

  g_assert_cmpstr (map, ==, expected);
}

static void
test_count (void)
{
  struct { guint64 nbytes, pages; } cases[] = {
    { 0, 0 }, { 1, 1 }, { PS - 1, 1 }, { PS, 1 }, { PS + 1, 2 },
    { 64 * PS, 64 }, { 64 * PS + 1, 65 }, { G_GUINT64_CONSTANT (1) << 40, 1 << 28 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      ShmPages *pages = shm_pages_new (cases[i].nbytes, PS);
      g_assert_cmpuint (shm_pages_count (pages), ==, cases[i].pages);
      shm_pages_free (pages);
    }
}

static void
test_mark_boundaries (void)
{
  ShmPages *pages = shm_pages_new (4 * PS, PS);

  g_assert_false (shm_pages_any_cached (pages));
  shm_pages_mark_cached (pages, PS - 1, 1);          /* the last byte of page 0 */
  assert_cached (pages, "1000");
  shm_pages_mark_cached (pages, 2 * PS - 1, 2);      /* straddles pages 1 and 2 */
  assert_cached (pages, "1110");
  shm_pages_mark_cached (pages, 3 * PS, 1);          /* the first byte of page 3 */
  assert_cached (pages, "1111");
  g_assert_true (shm_pages_any_cached (pages));
  g_assert_false (shm_pages_is_cached (pages, 4));   /* past the last page */
  g_assert_false (shm_pages_is_cached (pages, G_MAXUINT64));
  shm_pages_free (pages);
}

static void
test_mark_exact_pages (void)
{
  ShmPages *pages = shm_pages_new (4 * PS, PS);

  shm_pages_mark_cached (pages, PS, PS);              /* page 1, no more */
  assert_cached (pages, "0100");
  shm_pages_mark_cached (pages, 3 * PS, PS);
  assert_cached (pages, "0101");
  shm_pages_free (pages);
}

static void
test_mark_empty_and_outside (void)
{
  ShmPages *pages = shm_pages_new (4 * PS, PS);

  shm_pages_mark_cached (pages, PS, 0);               /* empty */
  shm_pages_mark_cached (pages, 4 * PS, PS);          /* past the end */
  shm_pages_mark_cached (pages, G_MAXUINT64, 1);
  g_assert_false (shm_pages_any_cached (pages));
  assert_cached (pages, "0000");
  shm_pages_free (pages);

  pages = shm_pages_new (0, PS);                      /* no bytes at all */
  shm_pages_mark_cached (pages, 0, 100);
  shm_pages_mark_stored (pages, 0, 100);
  shm_pages_bump (pages, 0, 100);
  g_assert_false (shm_pages_any_cached (pages));
  g_assert_cmpuint (shm_pages_generation (pages, 0, 100), ==, 0);
  shm_pages_free (pages);
}

static void
test_last_partial_page (void)
{
  ShmPages *pages = shm_pages_new (2 * PS + 10, PS);

  g_assert_cmpuint (shm_pages_count (pages), ==, 3);
  /* A range running past the end is clipped to the last, partial page. */
  shm_pages_mark_cached (pages, 2 * PS + 5, G_MAXUINT64 / 2);
  assert_cached (pages, "001");
  shm_pages_bump (pages, 2 * PS + 9, 1000);
  g_assert_cmpuint (shm_pages_generation (pages, 2 * PS, 10), ==, 1);
  g_assert_cmpuint (shm_pages_generation (pages, 0, 2 * PS), ==, 0);
  shm_pages_free (pages);
}

static void
test_ranges_spanning_words (void)
{
  /* 200 pages: bits in four words. */
  ShmPages *pages = shm_pages_new (200 * PS, PS);

  shm_pages_mark_cached (pages, 60 * PS + 1, 10 * PS);   /* pages 60..70 */
  shm_pages_mark_cached (pages, 127 * PS, 2 * PS);       /* pages 127, 128 */
  for (guint64 p = 0; p < 200; p++)
    g_assert_cmpint (shm_pages_is_cached (pages, p), ==,
                     (p >= 60 && p <= 70) || p == 127 || p == 128);
  shm_pages_free (pages);
}

static void
test_forget (void)
{
  ShmPages *pages = shm_pages_new (4 * PS, PS);
  guint64 off, len;

  shm_pages_mark_cached (pages, 0, 4 * PS);
  shm_pages_mark_stored (pages, 0, 4 * PS);
  shm_pages_bump (pages, 0, PS);
  shm_pages_forget_cache (pages);
  g_assert_false (shm_pages_any_cached (pages));
  assert_cached (pages, "0000");
  g_assert_false (shm_pages_take_stored (pages, 0, 4 * PS, &off, &len));
  /* Generations outlive the cache: they only ever grow. */
  g_assert_cmpuint (shm_pages_generation (pages, 0, PS), ==, 1);
  shm_pages_free (pages);
}

static void
test_take_stored (void)
{
  ShmPages *pages = shm_pages_new (8 * PS + 100, PS);
  guint64 off = 0, len = 0;

  g_assert_false (shm_pages_take_stored (pages, 0, 8 * PS, &off, &len));
  shm_pages_mark_stored (pages, 2 * PS + 10, 10);      /* page 2 */
  shm_pages_mark_stored (pages, 5 * PS, 1);            /* page 5 */
  /* An empty range takes nothing. */
  g_assert_false (shm_pages_take_stored (pages, 2 * PS, 0, &off, &len));
  /* The span is clipped to the range asked about. */
  g_assert_true (shm_pages_take_stored (pages, 2 * PS + 100, 3 * PS + 50, &off, &len));
  g_assert_cmpuint (off, ==, 2 * PS + 100);
  g_assert_cmpuint (len, ==, 3 * PS + 50);
  /* Taken: cleared. */
  g_assert_false (shm_pages_take_stored (pages, 0, 8 * PS + 100, &off, &len));

  /* The span runs from the start of the first page taken to the end of
   * the last one (the last page of the object is partial). */
  shm_pages_mark_stored (pages, 5 * PS, 1);
  shm_pages_mark_stored (pages, 8 * PS, 100);          /* the last, partial page */
  g_assert_true (shm_pages_take_stored (pages, 0, 9 * PS, &off, &len));
  g_assert_cmpuint (off, ==, 5 * PS);
  g_assert_cmpuint (len, ==, 4 * PS);                  /* to the range's end */
  shm_pages_free (pages);
}

static void
test_take_stored_keeps_others (void)
{
  ShmPages *pages = shm_pages_new (130 * PS, PS);
  guint64 off, len;

  shm_pages_mark_stored (pages, 0, 130 * PS);
  g_assert_true (shm_pages_take_stored (pages, 63 * PS, 2 * PS, &off, &len));
  g_assert_cmpuint (off, ==, 63 * PS);
  g_assert_cmpuint (len, ==, 2 * PS);
  g_assert_true (shm_pages_take_stored (pages, 62 * PS, 4 * PS, &off, &len));
  /* Pages 62 and 65 were left; 63 and 64 were taken before. */
  g_assert_cmpuint (off, ==, 62 * PS);
  g_assert_cmpuint (len, ==, 4 * PS);
  g_assert_false (shm_pages_take_stored (pages, 63 * PS, 2 * PS, &off, &len));
  g_assert_true (shm_pages_take_stored (pages, 129 * PS, PS, &off, &len));
  shm_pages_free (pages);
}

static void
test_generations (void)
{
  ShmPages *pages = shm_pages_new (10 * PS, PS);
  guint64 before;

  g_assert_cmpuint (shm_pages_generation (pages, 0, 10 * PS), ==, 0);
  shm_pages_bump (pages, PS - 1, 2);                   /* pages 0 and 1 */
  g_assert_cmpuint (shm_pages_generation (pages, 0, PS), ==, 1);
  g_assert_cmpuint (shm_pages_generation (pages, 0, 10 * PS), ==, 2);
  g_assert_cmpuint (shm_pages_generation (pages, 2 * PS, 8 * PS), ==, 0);
  before = shm_pages_generation (pages, 3 * PS, 2 * PS);
  shm_pages_bump (pages, 5 * PS, PS);                  /* outside [3, 5) */
  g_assert_cmpuint (shm_pages_generation (pages, 3 * PS, 2 * PS), ==, before);
  shm_pages_bump (pages, 4 * PS + PS - 1, 1);          /* the last byte inside */
  g_assert_cmpuint (shm_pages_generation (pages, 3 * PS, 2 * PS), ==, before + 1);
  shm_pages_bump (pages, 0, 0);
  g_assert_cmpuint (shm_pages_generation (pages, 0, 0), ==, 0);
  g_assert_cmpuint (shm_pages_generation (pages, 0, 10 * PS), ==, 4);
  shm_pages_free (pages);
}

/* The runs next_cached_run gives for [off, end), as "first-last," in
 * bytes. */
static char *
runs (ShmPages *pages, guint64 off, guint64 end, guint64 max_len)
{
  GString *s = g_string_new (NULL);
  guint64 from, to;

  for (guint64 at = off; shm_pages_next_cached_run (pages, at, end, max_len, &from, &to); at = to)
    {
      g_assert_cmpuint (from, <, to);
      g_assert_cmpuint (from, >=, at);
      g_string_append_printf (s, "%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT ",", from, to);
    }
  return g_string_free (s, FALSE);
}

static void
test_cached_runs (void)
{
  ShmPages *pages = shm_pages_new (10 * PS + 1, PS);   /* 11 pages */
  char *r;

  r = runs (pages, 0, 10 * PS + 1, 4 * PS);
  g_assert_cmpstr (r, ==, "");
  g_free (r);

  shm_pages_mark_cached (pages, PS, 3 * PS);           /* pages 1..3 */
  shm_pages_mark_cached (pages, 5 * PS, 6 * PS);       /* pages 5..10 (clipped) */
  r = runs (pages, 0, 10 * PS + 1, 100 * PS);
  g_assert_cmpstr (r, ==, "4096-16384,20480-40961,");
  g_free (r);

  /* Clipped to the range, which may start and end inside pages. */
  r = runs (pages, PS + 7, 6 * PS + 3, 100 * PS);
  g_assert_cmpstr (r, ==, "4103-16384,20480-24579,");
  g_free (r);

  /* At most max_len bytes of pages a run: pages 5..10 in runs of two. */
  r = runs (pages, 5 * PS, 10 * PS + 1, 2 * PS);
  g_assert_cmpstr (r, ==, "20480-28672,28672-36864,36864-40961,");
  g_free (r);

  /* A run is at least a page, even when max_len is shorter. */
  r = runs (pages, PS, 3 * PS, 1);
  g_assert_cmpstr (r, ==, "4096-8192,8192-12288,");
  g_free (r);

  /* Empty range, and a range past the end. */
  r = runs (pages, 2 * PS, 2 * PS, 100 * PS);
  g_assert_cmpstr (r, ==, "");
  g_free (r);
  r = runs (pages, 11 * PS, 20 * PS, 100 * PS);
  g_assert_cmpstr (r, ==, "");
  g_free (r);
  shm_pages_free (pages);
}

static void
test_run_end (void)
{
  ShmPages *pages = shm_pages_new (8 * PS, PS);
  gboolean cached;

  shm_pages_mark_cached (pages, 2 * PS, 2 * PS);       /* pages 2, 3 */
  g_assert_cmpuint (shm_pages_run_end (pages, 10, 8 * PS, 100 * PS, &cached), ==, 2 * PS);
  g_assert_false (cached);
  g_assert_cmpuint (shm_pages_run_end (pages, 2 * PS + 5, 8 * PS, 100 * PS, &cached), ==, 4 * PS);
  g_assert_true (cached);
  /* Stops at end, inside a page. */
  g_assert_cmpuint (shm_pages_run_end (pages, 2 * PS, 3 * PS + 1, 100 * PS, &cached), ==,
                    3 * PS + 1);
  g_assert_true (cached);
  /* Grows a page at a time while shorter than max_len. */
  g_assert_cmpuint (shm_pages_run_end (pages, 4 * PS, 8 * PS, PS, &cached), ==, 5 * PS);
  g_assert_false (cached);
  g_assert_cmpuint (shm_pages_run_end (pages, 4 * PS + 1, 8 * PS, PS, &cached), ==, 6 * PS);
  g_assert_cmpuint (shm_pages_run_end (pages, 4 * PS, 8 * PS, 0, &cached), ==, 4 * PS);
  shm_pages_free (pages);
}

static void
test_large_object (void)
{
  /* 64 GiB: offsets past 32 bits, 16 Mi pages (a 2 MiB bitmap). */
  guint64 nbytes = G_GUINT64_CONSTANT (64) << 30, far = G_GUINT64_CONSTANT (5) << 32;
  ShmPages *pages = shm_pages_new (nbytes, PS);
  guint64 from, to, off, len;

  g_assert_cmpuint (shm_pages_count (pages), ==, nbytes / PS);
  shm_pages_mark_cached (pages, far + 1, 1);
  g_assert_true (shm_pages_is_cached (pages, far / PS));
  g_assert_false (shm_pages_is_cached (pages, far / PS - 1));
  g_assert_false (shm_pages_is_cached (pages, (far & G_MAXUINT32) / PS));   /* no truncation */
  g_assert_true (shm_pages_next_cached_run (pages, far - 100 * PS, nbytes, 1 << 20, &from, &to));
  g_assert_cmpuint (from, ==, far);
  g_assert_cmpuint (to, ==, far + PS);
  shm_pages_mark_cached (pages, nbytes - 1, 1);
  g_assert_true (shm_pages_is_cached (pages, nbytes / PS - 1));
  shm_pages_mark_stored (pages, nbytes - PS, PS);
  g_assert_true (shm_pages_take_stored (pages, nbytes - 2 * PS, 2 * PS, &off, &len));
  g_assert_cmpuint (off, ==, nbytes - PS);
  g_assert_cmpuint (len, ==, PS);
  shm_pages_free (pages);
}

static void
test_small_pages (void)
{
  /* Another page size: nothing assumes 4096. */
  ShmPages *pages = shm_pages_new (100, 16);

  g_assert_cmpuint (shm_pages_count (pages), ==, 7);
  shm_pages_mark_cached (pages, 15, 2);
  shm_pages_mark_cached (pages, 99, 50);
  assert_cached (pages, "1100001");
  shm_pages_free (pages);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/pages/count", test_count);
  g_test_add_func ("/pages/mark/boundaries", test_mark_boundaries);
  g_test_add_func ("/pages/mark/exact-pages", test_mark_exact_pages);
  g_test_add_func ("/pages/mark/empty-and-outside", test_mark_empty_and_outside);
  g_test_add_func ("/pages/mark/last-partial-page", test_last_partial_page);
  g_test_add_func ("/pages/mark/spanning-words", test_ranges_spanning_words);
  g_test_add_func ("/pages/forget", test_forget);
  g_test_add_func ("/pages/stored/take", test_take_stored);
  g_test_add_func ("/pages/stored/take-keeps-others", test_take_stored_keeps_others);
  g_test_add_func ("/pages/generations", test_generations);
  g_test_add_func ("/pages/runs/cached", test_cached_runs);
  g_test_add_func ("/pages/runs/end", test_run_end);
  g_test_add_func ("/pages/large-object", test_large_object);
  g_test_add_func ("/pages/small-pages", test_small_pages);
  return g_test_run ();
}
