/* shm-pages.c — per-page bits and write generations of an object. */
#include "config.h"

#include "shm-pages.h"

struct _ShmPages {
  guint64  nbytes;
  gsize    page_size;
  guint64  n_pages;
  guint64 *cached;               /* one bit a page, or NULL: none marked */
  guint64 *stored;               /* one bit a page, or NULL: none marked */
  guint32 *gens;                 /* one count a page, or NULL: none bumped */
};

#define BIT(p) (G_GUINT64_CONSTANT (1) << ((p) % 64))

ShmPages *
shm_pages_new (guint64 nbytes, gsize page_size)
{
  ShmPages *pages;

  g_return_val_if_fail (page_size > 0, NULL);
  pages = g_new0 (ShmPages, 1);
  pages->nbytes = nbytes;
  pages->page_size = page_size;
  pages->n_pages = nbytes / page_size + (nbytes % page_size != 0);
  return pages;
}

void
shm_pages_free (ShmPages *pages)
{
  if (pages == NULL)
    return;
  g_free (pages->cached);
  g_free (pages->stored);
  g_free (pages->gens);
  g_free (pages);
}

guint64
shm_pages_count (const ShmPages *pages)
{
  return pages->n_pages;
}

/* The pages [*first, *last] of [off, off+len) within the object; FALSE
 * when the range holds no byte of it. */
static gboolean
page_span (const ShmPages *pages, guint64 off, guint64 len, guint64 *first, guint64 *last)
{
  if (len == 0 || off >= pages->nbytes)
    return FALSE;
  *first = off / pages->page_size;
  *last = (len - 1 >= pages->nbytes - off ? pages->nbytes - 1 : off + len - 1) / pages->page_size;
  return TRUE;
}

static void
set_bits (const ShmPages *pages, guint64 **bits, guint64 off, guint64 len)
{
  guint64 first, last;

  if (!page_span (pages, off, len, &first, &last))
    return;
  if (*bits == NULL)
    *bits = g_new0 (guint64, (pages->n_pages + 63) / 64);
  for (guint64 p = first; p <= last; p++)
    (*bits)[p / 64] |= BIT (p);
}

static gboolean
bit (const ShmPages *pages, const guint64 *bits, guint64 page)
{
  return bits != NULL && page < pages->n_pages && (bits[page / 64] & BIT (page)) != 0;
}

void
shm_pages_mark_cached (ShmPages *pages, guint64 off, guint64 len)
{
  set_bits (pages, &pages->cached, off, len);
}

gboolean
shm_pages_is_cached (const ShmPages *pages, guint64 page)
{
  return bit (pages, pages->cached, page);
}

gboolean
shm_pages_any_cached (const ShmPages *pages)
{
  return pages->cached != NULL;
}

void
shm_pages_forget_cache (ShmPages *pages)
{
  g_clear_pointer (&pages->cached, g_free);
  g_clear_pointer (&pages->stored, g_free);
}

gboolean
shm_pages_next_cached_run (const ShmPages *pages, guint64 off, guint64 end, guint64 max_len,
                           guint64 *run_off, guint64 *run_end)
{
  gsize ps = pages->page_size;

  if (off >= end)
    return FALSE;
  for (guint64 p = off / ps; p < pages->n_pages && p * ps < end; p++)
    {
      guint64 start = p;

      if (!shm_pages_is_cached (pages, p))
        continue;
      while (p + 1 < pages->n_pages && (p + 1) * ps < end &&
             shm_pages_is_cached (pages, p + 1) && (p + 1 - start) * ps < max_len)
        p++;
      *run_off = MAX (start * ps, off);
      *run_end = MIN ((p + 1) * ps, end);
      return TRUE;
    }
  return FALSE;
}

guint64
shm_pages_run_end (const ShmPages *pages, guint64 off, guint64 end, guint64 max_len,
                   gboolean *cached)
{
  gsize ps = pages->page_size;
  guint64 run_end = off;

  *cached = shm_pages_is_cached (pages, off / ps);
  while (run_end < end && run_end - off < max_len &&
         shm_pages_is_cached (pages, run_end / ps) == *cached)
    run_end = MIN ((run_end / ps + 1) * ps, end);
  return run_end;
}

void
shm_pages_mark_stored (ShmPages *pages, guint64 off, guint64 len)
{
  set_bits (pages, &pages->stored, off, len);
}

gboolean
shm_pages_take_stored (ShmPages *pages, guint64 off, guint64 len,
                       guint64 *span_off, guint64 *span_len)
{
  gsize ps = pages->page_size;
  guint64 first = G_MAXUINT64, last = 0, end = off + len;

  if (pages->stored == NULL || len == 0)
    return FALSE;
  for (guint64 p = off / ps; p < pages->n_pages && p * ps < end; p++)
    if (bit (pages, pages->stored, p))
      {
        pages->stored[p / 64] &= ~BIT (p);
        first = MIN (first, p);
        last = p;
      }
  if (first == G_MAXUINT64)
    return FALSE;
  *span_off = MAX (first * ps, off);
  *span_len = MIN ((last + 1) * ps, end) - *span_off;
  return TRUE;
}

void
shm_pages_bump (ShmPages *pages, guint64 off, guint64 len)
{
  guint64 first, last;

  if (!page_span (pages, off, len, &first, &last))
    return;
  if (pages->gens == NULL)
    pages->gens = g_new0 (guint32, pages->n_pages);
  for (guint64 p = first; p <= last; p++)
    pages->gens[p]++;
}

guint64
shm_pages_generation (const ShmPages *pages, guint64 off, guint64 len)
{
  guint64 first, last, sum = 0;

  if (pages->gens == NULL || !page_span (pages, off, len, &first, &last))
    return 0;
  for (guint64 p = first; p <= last; p++)
    sum += pages->gens[p];
  return sum;
}
