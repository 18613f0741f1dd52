/* shm-textread.c — a value's text read in pieces (see shm-textread.h). */
#include "config.h"

#include "shm-textread.h"
#include "shm-codec.h"

struct _ShmTextRead {
  ShmType  type;          /* valid when typed */
  gboolean typed;
  guint8  *bytes;         /* the snapshot */
  guint64  next;          /* the next element to render */
  GString *text;          /* rendered, from text offset off on */
  guint64  off;
};

ShmTextRead *
shm_textread_new (void)
{
  ShmTextRead *tr = g_new0 (ShmTextRead, 1);

  tr->text = g_string_new (NULL);
  return tr;
}

static void
drop_snapshot (ShmTextRead *tr)
{
  if (tr->typed)
    shm_type_clear (&tr->type);
  tr->typed = FALSE;
  g_clear_pointer (&tr->bytes, g_free);
}

void
shm_textread_free (ShmTextRead *tr)
{
  if (tr == NULL)
    return;
  drop_snapshot (tr);
  g_string_free (tr->text, TRUE);
  g_free (tr);
}

static void
rewind (ShmTextRead *tr)
{
  tr->next = 0;
  tr->off = 0;
  g_string_truncate (tr->text, 0);
}

void
shm_textread_reset (ShmTextRead *tr, const ShmType *t, guint8 *bytes)
{
  drop_snapshot (tr);
  if (t != NULL)
    {
      shm_type_copy (&tr->type, t);
      tr->typed = TRUE;
      tr->bytes = bytes;
    }
  else
    g_free (bytes);
  rewind (tr);
}

/* Renders the elements that fit in one chunk after tr->next. */
static void
render_more (ShmTextRead *tr)
{
  gsize size = shm_type_elem_size (&tr->type);
  guint64 n = MIN (MAX (SHM_TEXTREAD_CHUNK / size, 1), shm_type_count (&tr->type) - tr->next);

  shm_codec_format_items (&tr->type, tr->bytes + tr->next * size, tr->next, n, tr->text);
  tr->next += n;
}

const char *
shm_textread_read (ShmTextRead *tr, guint64 off, gsize size, gsize *len)
{
  guint64 end = off + size, skip;

  if (off < tr->off)
    rewind (tr);
  while (tr->typed && tr->off + tr->text->len < end && tr->next < shm_type_count (&tr->type))
    render_more (tr);
  /* What lies before this read will not be asked for again (but by a read
   * that starts over): dropped once it is a chunk or half of what is kept,
   * so that small reads do not move the text down each time. */
  skip = MIN (off - MIN (off, tr->off), tr->text->len);
  if (skip >= SHM_TEXTREAD_CHUNK || 2 * skip >= tr->text->len)
    {
      g_string_erase (tr->text, 0, (gssize) skip);
      tr->off += skip;
    }
  if (off >= tr->off + tr->text->len)
    {
      *len = 0;
      return "";
    }
  *len = MIN (size, tr->off + tr->text->len - off);
  return tr->text->str + (off - tr->off);
}
