/* shm-textwrite.c — a value's text written in pieces: when it is complete. */
#include "config.h"

#include "shm-textwrite.h"
#include "shm-codec.h"

#include <errno.h>
#include <string.h>

struct _ShmTextWrite {
  GString     *text;          /* written since the last write at offset 0 */
  ShmCodecScan scan;          /* of text, for a typed value */
  gboolean     dirty;         /* text holds bytes not yet committed */
  gboolean     refused;       /* the text was refused: no more of it */
  gboolean     committed;     /* text was committed as a value */
  gboolean     line_wise;     /* text comes a line (element or row) at a time */
};

ShmTextWrite *
shm_textwrite_new (void)
{
  ShmTextWrite *tw = g_new0 (ShmTextWrite, 1);

  tw->text = g_string_new (NULL);
  return tw;
}

void
shm_textwrite_free (ShmTextWrite *tw)
{
  if (tw == NULL)
    return;
  g_string_free (tw->text, TRUE);
  g_free (tw);
}

static void
restart (ShmTextWrite *tw)
{
  g_string_truncate (tw->text, 0);
  memset (&tw->scan, 0, sizeof tw->scan);
  tw->dirty = FALSE;
  tw->refused = FALSE;
  tw->committed = FALSE;
  tw->line_wise = FALSE;
}

static int
refuse (ShmTextWrite *tw, ShmTextWriteStep why, ShmTextWriteStep *step)
{
  if (why != SHM_TEXTWRITE_HOLE)
    tw->refused = TRUE;
  *step = why;
  return -EINVAL;
}

/* The longest text a value of type t (NULL: untyped, one element) may have. */
static guint64
text_limit (const ShmType *t)
{
  if (t != NULL)
    return shm_codec_max_text (t);
  return SHM_TEXTWRITE_BYTES_PER_ELEMENT + SHM_TEXTWRITE_SLACK;
}

int
shm_textwrite_write (ShmTextWrite *tw, const ShmType *t, guint64 off,
                     const char *buf, gsize size, ShmTextWriteStep *step)
{
  ShmCodecScan prev;
  guint64 count;

  *step = SHM_TEXTWRITE_KEEP;
  if (off == 0)
    restart (tw);
  else if (off != tw->text->len)
    return refuse (tw, SHM_TEXTWRITE_HOLE, step);
  if (tw->refused)
    return refuse (tw, SHM_TEXTWRITE_REFUSED, step);
  if (tw->text->len + size > text_limit (t))
    return refuse (tw, SHM_TEXTWRITE_TOO_LONG, step);
  g_string_append_len (tw->text, buf, (gssize) size);
  tw->dirty = TRUE;

  /* An untyped object infers its type from the whole text at once. */
  if (t == NULL)
    {
      *step = SHM_TEXTWRITE_COMMIT;
      return 0;
    }

  count = shm_type_count (t);
  prev = tw->scan;
  shm_codec_scan (t, &tw->scan, tw->text->str, tw->text->len);
  if (tw->committed && prev.elements == tw->scan.elements && !prev.in_token)
    tw->dirty = FALSE;   /* only separators after a committed value */
  else if (tw->scan.elements > count)
    return refuse (tw, SHM_TEXTWRITE_TOO_MANY, step);
  /* The last element is whole once a separator follows it, or when the
   * text came in one write; otherwise it may go on, and close commits.  A
   * record's text is whole only once its objects and brackets close: one
   * that arrives in pieces (cat's 128 KiB writes) waits for the rest. */
  else if (tw->scan.elements == count
           && (!tw->scan.in_token || (off == 0 && t->elem != SHM_ELEM_RECORD)))
    *step = SHM_TEXTWRITE_COMMIT;
  /* A newline ends a line: a line alone in the first write is the whole
   * text (echo's), unless it holds one element or one row, which starts a
   * text written a line at a time (bash writes each line on its own). */
  else if (size > 0 && buf[size - 1] == '\n')
    {
      /* A row is a line; a record is a line of its own. */
      guint64 row = t->ndim >= 2 && t->elem != SHM_ELEM_RECORD ? t->dims[t->ndim - 1] : 1;
      gboolean one_line = off == 0 && memchr (buf, '\n', size) == buf + size - 1;

      if (one_line && tw->scan.elements == row)
        tw->line_wise = TRUE;
      if ((one_line && !tw->line_wise) || (tw->line_wise && tw->scan.elements % row != 0))
        return refuse (tw, SHM_TEXTWRITE_TOO_FEW, step);
    }
  return 0;
}

gboolean
shm_textwrite_needs_commit (const ShmTextWrite *tw)
{
  return tw->dirty && !tw->refused;
}

void
shm_textwrite_committed (ShmTextWrite *tw, int err)
{
  tw->dirty = FALSE;
  tw->committed = err == 0;
  if (err < 0)
    tw->refused = TRUE;
}

const char *
shm_textwrite_get_text (const ShmTextWrite *tw, gsize *len)
{
  if (len != NULL)
    *len = tw->text->len;
  return tw->text->str;
}

guint64
shm_textwrite_get_elements (const ShmTextWrite *tw)
{
  return tw->scan.elements;
}
