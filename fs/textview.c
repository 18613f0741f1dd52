/* textview.c — the text view of an object: reads render a snapshot of the
 * value as seq_file does, writes go through core's shm-textwrite, which says
 * when the text is complete, and are committed here. */
#include "config.h"

#include "textview.h"
#include "attr.h"
#include "authority.h"
#include "log.h"
#include "session.h"
#include "shm-codec.h"
#include "shm-textread.h"
#include "shm-textwrite.h"

#include <errno.h>
#include <string.h>

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

/* Takes a fresh snapshot of node's value into tr, and the version it is
 * at into *version (read first: a change after it shows as a new one);
 * -ENOMEM when its bytes cannot be had (a value larger than the memory
 * left), or the store's -errno on a remote mount. */
static int
take_snapshot (Shmfs *fs, ShmNode *node, ShmTextRead *tr, guint64 *version)
{
  const ShmType *type = node_type (fs, node);
  ShmfsSync *sync = shmfs_node_state (node)->sync;
  guint64 nbytes = type != NULL ? shm_type_nbytes (type) : 0;
  guint8 *bytes = NULL;
  int err;

  if (type != NULL && (nbytes > G_MAXSIZE || (bytes = g_try_malloc (nbytes)) == NULL))
    return -ENOMEM;
  shmfs_coherence_settle (fs->coherence, sync);
  err = type != NULL ? shmfs_coherence_snapshot_value (fs->coherence, sync, bytes, nbytes, version)
                     : shmfs_coherence_version (fs->coherence, sync, FALSE, version);
  if (err < 0)
    {
      g_free (bytes);
      return err;
    }
  shm_textread_reset (tr, type, bytes);
  return 0;
}

/* The text length of strings longer than a chunk (char[N]: each up to its
 * first NUL, then a newline), read a chunk at a time: 0 or -errno. */
static int
long_strings_text_size (Shmfs *fs, ShmfsSync *sync, const ShmType *type, guint64 *out)
{
  g_autofree guint8 *piece = g_malloc (SHM_TEXTREAD_CHUNK);
  guint64 elem = shm_type_elem_size (type), size = 0;
  int err;

  for (guint64 i = 0; i < shm_type_count (type); i++)
    {
      guint64 len = 0;

      while (len < elem)
        {
          guint64 n = MIN (SHM_TEXTREAD_CHUNK, elem - len);
          const guint8 *nul;

          if ((err = shmfs_coherence_snapshot (fs->coherence, sync, piece, i * elem + len, n)) < 0)
            return err;
          nul = memchr (piece, '\0', n);
          len += nul != NULL ? (guint64) (nul - piece) : n;
          if (nul != NULL)
            break;
        }
      size += len + 1;
    }
  *out = size;
  return 0;
}

/* The length of node's text, rendered afresh, into *out: 0 or -errno. */
static int
text_size (Shmfs *fs, ShmNode *node, guint64 *out)
{
  const ShmType *type = node_type (fs, node);
  ShmfsSync *sync = shmfs_node_state (node)->sync;
  g_autoptr (GString) text = NULL;
  g_autofree guint8 *bytes = NULL;
  guint64 count, size = 0, per_chunk;
  gsize elem;
  int err;

  *out = 0;
  if (type == NULL)
    return 0;
  /* Rendered afresh, a chunk at a time, keeping only the length: in
   * passthrough mode and through mappings the value changes without the
   * daemon hearing of it. */
  elem = shm_type_elem_size (type);
  if (type->elem == SHM_ELEM_CHAR && elem > SHM_TEXTREAD_CHUNK)
    return long_strings_text_size (fs, sync, type, out);
  count = shm_type_count (type);
  per_chunk = MAX (SHM_TEXTREAD_CHUNK / elem, 1);
  bytes = g_malloc (per_chunk * elem);
  text = g_string_sized_new (SHM_TEXTREAD_CHUNK);
  for (guint64 i = 0; i < count; i += per_chunk)
    {
      guint64 n = MIN (per_chunk, count - i);

      if ((err = shmfs_coherence_snapshot (fs->coherence, sync, bytes, i * elem, n * elem)) < 0)
        return err;
      g_string_truncate (text, 0);
      shm_codec_format_items (type, bytes, i, n, text);
      size += text->len;
    }
  *out = size;
  return 0;
}

void
shmfs_textview_reply_read (Shmfs *fs, fuse_req_t req, ShmfsHandle *h, off_t off, size_t size)
{
  gboolean first;
  const char *text;
  gsize len;
  int err = 0;

  g_mutex_lock (&h->lock);
  if ((first = h->textread == NULL))
    h->textread = shm_textread_new ();
  if (off == 0 || first)
    {
      err = take_snapshot (fs, h->node, h->textread, &h->seen_version);
    }
  if (err < 0)
    {
      g_mutex_unlock (&h->lock);
      if (err == -ENOMEM)
        shmfs_log_rejected (fs, h->node, err, "no memory for a snapshot of the value");
      return (void) fuse_reply_err (req, -err);
    }
  text = shm_textread_read (h->textread, (guint64) off, size, &len);
  fuse_reply_buf (req, len > 0 ? text : NULL, len);
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
  err = fs->authority->set_type (fs, node, &inferred);
  shm_type_clear (&inferred);
  /* Typed by another writer first: its type it is. */
  if ((*type = node_type (fs, node)) != NULL && err == -EPERM)
    err = 0;
  if (err < 0)
    shmfs_log_rejected (fs, node, err, "typing as inferred failed");
  else
    shmfs_node_typed (fs, node);
  return err;
}

/* Sets node's value from text (typing an untyped node first). */
static int
commit_text (Shmfs *fs, ShmNode *node, const char *text, size_t len)
{
  const ShmType *type = node_type (fs, node);
  ShmfsSync *sync = shmfs_node_state (node)->sync;
  g_autofree guint8 *bytes = NULL, *mask = NULL;
  g_autofree char *tname = NULL;
  g_autoptr (GArray) ranges = g_array_new (FALSE, FALSE, sizeof (ShmfsRange));
  guint64 nbytes;
  int err;

  if (type == NULL && (err = infer_type (fs, node, text, len, &type)) < 0)
    return err;

  nbytes = shm_type_nbytes (type);
  bytes = g_malloc (nbytes);
  if (type->elem == SHM_ELEM_RECORD)
    {
      /* A record's text sets the fields it names: those bytes alone are
       * stored, so the other fields keep what anyone stores meanwhile. */
      mask = g_malloc0 (nbytes);
      err = shmfs_coherence_snapshot (fs->coherence, sync, bytes, 0, nbytes);
      if (err < 0)
        return err;
      err = shm_codec_merge (type, text, len, bytes, mask);
    }
  else
    err = shm_codec_parse (type, text, len, bytes);
  if (err < 0)
    {
      tname = shm_type_to_string (type);
      shmfs_log_rejected (fs, node, err, "text is not a value of type %s%s", tname,
                          err == -ERANGE ? " (out of range)" : "");
      return err;
    }
  /* The runs of named bytes of a record, or the whole value. */
  for (guint64 off = 0; off < nbytes;)
    {
      guint64 end = nbytes;

      if (mask != NULL && !mask[off])
        {
          off++;
          continue;
        }
      if (mask != NULL)
        for (end = off; end < nbytes && mask[end]; end++)
          ;
      g_array_append_val (ranges, ((ShmfsRange) { off, end - off, bytes + off }));
      off = end;
    }
  if ((err = shmfs_coherence_store_ranges (fs->coherence, sync, (ShmfsRange *) ranges->data,
                                           ranges->len)) < 0)
    return err;
  shmfs_node_changed (fs, node);
  return 0;
}

/* Commits the text written to h, telling its write state how it went. */
static int
commit_written (Shmfs *fs, ShmfsHandle *h)
{
  gsize len;
  const char *text = shm_textwrite_get_text (h->textwrite, &len);
  int err = commit_text (fs, h->node, text, len);

  shm_textwrite_committed (h->textwrite, err);
  return err;
}

/* Logs why shm_textwrite_write refused a write at off. */
static void
log_refused (Shmfs *fs, ShmfsHandle *h, const ShmType *type, off_t off, ShmTextWriteStep step)
{
  guint64 count = type != NULL ? shm_type_count (type) : 1;
  gsize len;

  switch (step)
    {
    case SHM_TEXTWRITE_HOLE:
      shm_textwrite_get_text (h->textwrite, &len);
      shmfs_log_rejected (fs, h->node, -EINVAL, "text write at offset %" G_GINT64_FORMAT
                          " does not continue the text (%" G_GSIZE_FORMAT " bytes so far)",
                          (gint64) off, len);
      break;
    case SHM_TEXTWRITE_REFUSED:
      shmfs_log_rejected (fs, h->node, -EINVAL, "the text being written was rejected already");
      break;
    case SHM_TEXTWRITE_TOO_LONG:
      shmfs_log_rejected (fs, h->node, -EINVAL, "text longer than any value of the type");
      break;
    case SHM_TEXTWRITE_TOO_MANY:
      shmfs_log_rejected (fs, h->node, -EINVAL, "more than %" G_GUINT64_FORMAT " elements", count);
      break;
    case SHM_TEXTWRITE_TOO_FEW:
      shmfs_log_rejected (fs, h->node, -EINVAL, "%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                          " elements", shm_textwrite_get_elements (h->textwrite), count);
      break;
    case SHM_TEXTWRITE_KEEP:
    case SHM_TEXTWRITE_COMMIT:
      break;
    }
}

int
shmfs_textview_write (Shmfs *fs, ShmfsHandle *h, off_t off, const char *buf, size_t size)
{
  const ShmType *type;
  ShmTextWriteStep step;
  int err;

  g_mutex_lock (&h->lock);
  if (h->textwrite == NULL)
    h->textwrite = shm_textwrite_new ();
  type = node_type (fs, h->node);
  err = shm_textwrite_write (h->textwrite, type, (guint64) off, buf, size, &step);
  if (err < 0)
    log_refused (fs, h, type, off, step);
  else if (step == SHM_TEXTWRITE_COMMIT)
    err = commit_written (fs, h);
  g_mutex_unlock (&h->lock);
  return err < 0 ? err : (int) size;
}

int
shmfs_textview_flush (Shmfs *fs, ShmfsHandle *h)
{
  int err = 0;

  g_mutex_lock (&h->lock);
  if (h->textwrite != NULL && shm_textwrite_needs_commit (h->textwrite))
    err = commit_written (fs, h);
  g_mutex_unlock (&h->lock);
  return err;
}

int
shmfs_textview_size_of (Shmfs *fs, ShmNode *node, gboolean raw, guint64 *size)
{
  *size = 0;
  if (raw || shm_node_is_dir (node))
    return 0;
  return text_size (fs, node, size);
}
