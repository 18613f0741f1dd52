/* text.c — the text view: rendering snapshots and committing written text. */
#include "config.h"

#include "shmfs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Text longer than this per element cannot be a value: reject it rather
 * than buffer it without end. */
#define TEXT_BYTES_PER_ELEMENT 64
#define TEXT_SLACK 4096

ShmfsNode *
shmfs_node_state (ShmNode *node)
{
  return shm_node_get_data (node);
}

char *
shmfs_node_path (Shmfs *fs, ShmNode *node)
{
  g_autofree char *path = NULL;
  gboolean unlinked;

  g_mutex_lock (&fs->tree_lock);
  path = shm_node_dup_path (node);
  unlinked = *path == '\0' && shm_node_get_id (node) != SHM_TREE_ROOT_ID;
  g_mutex_unlock (&fs->tree_lock);
  return unlinked ? g_strdup ("(unlinked)") : g_strconcat ("/", path, NULL);
}

void
shmfs_log_rejected (Shmfs *fs, ShmNode *node, int err, const char *fmt, ...)
{
  g_autofree char *path = NULL;
  g_autofree char *why = NULL;
  va_list args;

  if (!fs->verbose)
    return;
  va_start (args, fmt);
  why = g_strdup_vprintf (fmt, args);
  va_end (args);
  path = node != NULL ? shmfs_node_path (fs, node) : g_strdup ("-");
  fprintf (stderr, "shmfs: rejected %s: %s (%s)\n", path, why, g_strerror (-err));
}

/* The type of an object node, or NULL while untyped.  A type never changes
 * once set, so the pointer stays valid as long as the node. */
static const ShmType *
node_type (Shmfs *fs, ShmNode *node)
{
  const ShmType *type;

  g_mutex_lock (&fs->tree_lock);
  type = shm_object_get_type (shm_node_get_object (node));
  g_mutex_unlock (&fs->tree_lock);
  return type;
}

static void
render (Shmfs *fs, ShmNode *node, GString *out)
{
  const ShmType *type = node_type (fs, node);
  ShmfsNode *state = shmfs_node_state (node);
  g_autofree guint8 *bytes = NULL;

  g_string_truncate (out, 0);
  if (type == NULL)
    return;
  bytes = g_malloc (shm_type_nbytes (type));
  shmfs_coherence_snapshot (fs->coherence, state->sync, bytes);
  shm_codec_format (type, bytes, out);
}

guint64
shmfs_text_size (Shmfs *fs, ShmNode *node)
{
  g_autoptr (GString) text = g_string_new (NULL);

  /* Rendered afresh: in passthrough mode and through mappings the value
   * changes without the daemon hearing of it. */
  render (fs, node, text);
  return text->len;
}

void
shmfs_text_reply_read (Shmfs *fs, fuse_req_t req, ShmfsHandle *h, off_t off, size_t size)
{
  g_mutex_lock (&h->lock);
  if (off == 0 || h->snapshot == NULL)
    {
      if (h->snapshot == NULL)
        h->snapshot = g_string_new (NULL);
      shmfs_coherence_settle (fs->coherence, shmfs_node_state (h->node)->sync);
      h->seen_version = shm_object_get_version (shm_node_get_object (h->node));
      render (fs, h->node, h->snapshot);
    }
  if ((guint64) off >= h->snapshot->len)
    fuse_reply_buf (req, NULL, 0);
  else
    fuse_reply_buf (req, h->snapshot->str + off, MIN (size, h->snapshot->len - (gsize) off));
  g_mutex_unlock (&h->lock);
}

/* Types an untyped object from its first text. */
static int
infer_type (Shmfs *fs, ShmNode *node, const char *text, size_t len, const ShmType **type)
{
  ShmType inferred;
  g_autofree guint8 *bytes = NULL;
  int err;

  if ((err = shm_codec_infer (text, len, &inferred)) < 0)
    {
      shmfs_log_rejected (fs, node, err, "cannot infer a type from the text; set user.shmfs.type");
      return err;
    }
  bytes = g_malloc (shm_type_nbytes (&inferred));
  if ((err = shm_codec_parse (&inferred, text, len, bytes)) < 0)
    {
      shmfs_log_rejected (fs, node, err, "text does not parse as the inferred type");
      return err;
    }
  g_mutex_lock (&fs->tree_lock);
  if (!shm_object_is_typed (shm_node_get_object (node)))
    err = shmfs_set_type_locked (fs, node, &inferred);
  *type = shm_object_get_type (shm_node_get_object (node));
  g_mutex_unlock (&fs->tree_lock);
  if (err < 0)
    shmfs_log_rejected (fs, node, err, "typing as inferred failed");
  else
    shmfs_node_typed (fs, node);
  return err;
}

int
shmfs_text_commit (Shmfs *fs, ShmNode *node, const char *text, size_t len)
{
  const ShmType *type = node_type (fs, node);
  g_autofree guint8 *bytes = NULL;
  g_autofree char *tname = NULL;
  int err;

  if (type == NULL && (err = infer_type (fs, node, text, len, &type)) < 0)
    return err;

  bytes = g_malloc (shm_type_nbytes (type));
  if ((err = shm_codec_parse (type, text, len, bytes)) < 0)
    {
      tname = shm_type_to_string (type);
      shmfs_log_rejected (fs, node, err, "text is not a value of type %s%s", tname,
                          err == -ERANGE ? " (out of range)" : "");
      return err;
    }
  shmfs_coherence_store (fs->coherence, shmfs_node_state (node)->sync, 0,
                         bytes, shm_type_nbytes (type));
  shmfs_node_changed (fs, node);
  return 0;
}

static void
reset_pending (ShmfsHandle *h)
{
  if (h->pending == NULL)
    h->pending = g_string_new (NULL);
  g_string_truncate (h->pending, 0);
  memset (&h->scan, 0, sizeof h->scan);
  h->pending_dirty = FALSE;
  h->pending_failed = FALSE;
  h->committed = FALSE;
  h->line_wise = FALSE;
}

/* Commits the pending text; a failure poisons the rest of it. */
static int
commit_pending (Shmfs *fs, ShmfsHandle *h)
{
  int err = shmfs_text_commit (fs, h->node, h->pending->str, h->pending->len);

  h->pending_dirty = FALSE;
  h->committed = err == 0;
  if (err < 0)
    h->pending_failed = TRUE;
  return err;
}

int
shmfs_text_write (Shmfs *fs, ShmfsHandle *h, off_t off, const char *buf, size_t size)
{
  const ShmType *type;
  ShmCodecScan prev;
  guint64 count, limit;
  int err = 0;

  g_mutex_lock (&h->lock);
  if (off == 0)
    reset_pending (h);
  else if (h->pending == NULL || (guint64) off != h->pending->len)
    {
      err = -EINVAL;
      shmfs_log_rejected (fs, h->node, err, "text write at offset %" G_GINT64_FORMAT
                          " does not continue the text (%" G_GSIZE_FORMAT " bytes so far)",
                          (gint64) off, h->pending ? h->pending->len : 0);
      goto out;
    }
  if (h->pending_failed)
    {
      err = -EINVAL;
      shmfs_log_rejected (fs, h->node, err, "the text being written was rejected already");
      goto out;
    }

  type = node_type (fs, h->node);
  count = type != NULL ? shm_type_count (type) : 1;
  limit = count * (TEXT_BYTES_PER_ELEMENT + (type ? type->char_len : 0)) + TEXT_SLACK;
  if (h->pending->len + size > limit)
    {
      err = -EINVAL;
      h->pending_failed = TRUE;
      shmfs_log_rejected (fs, h->node, err, "text longer than any value of the type");
      goto out;
    }
  g_string_append_len (h->pending, buf, (gssize) size);
  h->pending_dirty = TRUE;

  /* An untyped object infers its type from the whole text at once. */
  if (type == NULL)
    {
      err = commit_pending (fs, h);
      goto out;
    }

  prev = h->scan;
  shm_codec_scan (type, &h->scan, h->pending->str, h->pending->len);
  if (h->committed && prev.elements == h->scan.elements && !prev.in_token)
    h->pending_dirty = FALSE;   /* only separators after a committed value */
  else if (h->scan.elements > count)
    {
      err = -EINVAL;
      h->pending_failed = TRUE;
      shmfs_log_rejected (fs, h->node, err, "more than %" G_GUINT64_FORMAT " elements", count);
    }
  /* The last element is whole once a separator follows it, or when the
   * text came in one write; otherwise it may go on, and close commits. */
  else if (h->scan.elements == count && (!h->scan.in_token || off == 0))
    err = commit_pending (fs, h);
  /* A newline ends a line: a line alone in the first write is the whole
   * text (echo's), unless it holds one element or one row, which starts a
   * text written a line at a time (bash writes each line on its own). */
  else if (size > 0 && buf[size - 1] == '\n')
    {
      guint64 row = type->ndim >= 2 ? type->dims[type->ndim - 1] : 1;
      gboolean one_line = off == 0 && memchr (buf, '\n', size) == buf + size - 1;

      if (one_line && h->scan.elements == row)
        h->line_wise = TRUE;
      if ((one_line && !h->line_wise) || (h->line_wise && h->scan.elements % row != 0))
        {
          err = -EINVAL;
          h->pending_failed = TRUE;
          h->pending_dirty = FALSE;
          shmfs_log_rejected (fs, h->node, err, "%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                              " elements", h->scan.elements, count);
        }
    }

out:
  g_mutex_unlock (&h->lock);
  return err < 0 ? err : (int) size;
}

int
shmfs_text_flush (Shmfs *fs, ShmfsHandle *h)
{
  int err = 0;

  g_mutex_lock (&h->lock);
  if (h->pending != NULL && h->pending_dirty && !h->pending_failed)
    err = commit_pending (fs, h);
  g_mutex_unlock (&h->lock);
  return err;
}
