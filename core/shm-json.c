/* shm-json.c — records to JSON and back (see shm-json.h).
 *
 * Scalars go through the scalar text view (shm_codec_format_items and
 * shm_codec_parse on a one-element type), so a field reads and writes as
 * an object of its type would; this file only adds JSON's syntax around
 * them.
 */
#include "shm-json.h"
#include "shm-codec.h"

#include <errno.h>
#include <string.h>

/* ---- Text out ---- */

static void
append_scalar (GString *out, const ShmType *leaf, const guint8 *p)
{
  gsize start = out->len;

  if (leaf->elem == SHM_ELEM_BOOL)
    {
      g_string_append (out, *p ? "true" : "false");
      return;
    }
  shm_codec_format_items (leaf, p, 0, 1, out);
  g_string_truncate (out, out->len - 1);   /* its '\n' */
  if (!shm_type_is_float (leaf))
    return;
  /* JSON has no inf or nan; Python's json writes these.  Only the text
   * just appended is rewritten. */
  if (strcmp (out->str + start, "nan") == 0)
    {
      g_string_truncate (out, start);
      g_string_append (out, "NaN");
    }
  else if (strcmp (out->str + start, "inf") == 0 || strcmp (out->str + start, "-inf") == 0)
    {
      g_string_truncate (out, out->len - 3);
      g_string_append (out, "Infinity");
    }
}

/* The length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static gsize
utf8_sequence (const guint8 *p, gsize n)
{
  guint32 cp;
  gsize len;

  if (p[0] < 0x80)
    return 1;
  if (p[0] >= 0xc2 && p[0] <= 0xdf)
    len = 2, cp = p[0] & 0x1f;
  else if (p[0] >= 0xe0 && p[0] <= 0xef)
    len = 3, cp = p[0] & 0x0f;
  else if (p[0] >= 0xf0 && p[0] <= 0xf4)
    len = 4, cp = p[0] & 0x07;
  else
    return 0;
  if (len > n)
    return 0;
  for (gsize i = 1; i < len; i++)
    {
      if ((p[i] & 0xc0) != 0x80)
        return 0;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
  /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff
      || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

static void
append_string (GString *out, const guint8 *p, gsize cap)
{
  const guint8 *nul = memchr (p, '\0', cap);
  gsize n = nul != NULL ? (gsize) (nul - p) : cap;

  g_string_append_c (out, '"');
  for (gsize i = 0; i < n;)
    {
      guint8 c = p[i];
      gsize seq = utf8_sequence (p + i, n - i);

      if (seq == 0)
        g_string_append_printf (out, "\\udc%02x", c);
      else if (c == '"' || c == '\\')
        g_string_append_printf (out, "\\%c", c);
      else if (c == '\n')
        g_string_append (out, "\\n");
      else if (c == '\t')
        g_string_append (out, "\\t");
      else if (c < 0x20 || c == 0x7f)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_len (out, (const char *) p + i, (gssize) seq);
      i += seq != 0 ? seq : 1;
    }
  g_string_append_c (out, '"');
}

static void append_value (GString *out, const ShmType *t, guint dim, const guint8 *p);

static void
append_record (GString *out, const ShmRecord *r, const guint8 *p)
{
  g_string_append_c (out, '{');
  for (guint i = 0; i < shm_record_n_fields (r); i++)
    {
      const ShmField *f = shm_record_field (r, i);

      g_string_append_printf (out, "%s\"%s\": ", i > 0 ? ", " : "", f->name);
      append_value (out, &f->type, 0, p + f->offset);
    }
  g_string_append_c (out, '}');
}

/* Appends the value at p of t from dimension dim on. */
static void
append_value (GString *out, const ShmType *t, guint dim, const guint8 *p)
{
  if (dim < t->ndim)
    {
      guint64 stride = shm_type_elem_size (t);

      for (guint d = dim + 1; d < t->ndim; d++)
        stride *= t->dims[d];
      g_string_append_c (out, '[');
      for (guint64 i = 0; i < t->dims[dim]; i++)
        {
          if (i > 0)
            g_string_append (out, ", ");
          append_value (out, t, dim + 1, p + i * stride);
        }
      g_string_append_c (out, ']');
    }
  else if (t->elem == SHM_ELEM_RECORD)
    append_record (out, t->record, p);
  else if (t->elem == SHM_ELEM_CHAR)
    append_string (out, p, t->char_len);
  else
    {
      ShmType leaf = { .elem = t->elem };

      append_scalar (out, &leaf, p);
    }
}

void
shm_json_format_items (const ShmType *t, const void *data, guint64 first, guint64 n,
                       GString *out)
{
  gsize size = shm_type_elem_size (t);
  const guint8 *p = data;

  for (guint64 i = 0; i < n; i++, p += size)
    {
      append_record (out, t->record, p);
      g_string_append_c (out, '\n');
    }
}

/* ---- Text in ---- */

/* Brackets around the objects of an array of records: one per dimension
 * (at most 8), with room to spare. */
#define JSON_MAX_GROUPS 64

typedef struct {
  const char *s, *end;
  guint8     *value;
  guint8     *mask;
  guint       depth;      /* objects open */
  guint       groups;     /* brackets open around the objects */
} Reader;

static void
skip_ws (Reader *r)
{
  while (r->s < r->end && (*r->s == ' ' || *r->s == '\t' || *r->s == '\n' || *r->s == '\r'))
    r->s++;
}

static gboolean
take (Reader *r, char c)
{
  skip_ws (r);
  if (r->s < r->end && *r->s == c)
    {
      r->s++;
      return TRUE;
    }
  return FALSE;
}

static void
mark (Reader *r, guint64 off, guint64 len)
{
  if (r->mask != NULL)
    memset (r->mask + off, 1, len);
}

static int
hex4 (const char *s, const char *end, guint32 *v)
{
  *v = 0;
  if (end - s < 4)
    return -EINVAL;
  for (int i = 0; i < 4; i++)
    {
      int d = g_ascii_xdigit_value (s[i]);

      if (d < 0)
        return -EINVAL;
      *v = (*v << 4) | (guint32) d;
    }
  return 0;
}

static gsize
put_utf8 (guint8 *out, guint32 cp)
{
  if (cp < 0x80)
    return out[0] = (guint8) cp, 1;
  if (cp < 0x800)
    {
      out[0] = (guint8) (0xc0 | (cp >> 6));
      out[1] = (guint8) (0x80 | (cp & 0x3f));
      return 2;
    }
  if (cp < 0x10000)
    {
      out[0] = (guint8) (0xe0 | (cp >> 12));
      out[1] = (guint8) (0x80 | ((cp >> 6) & 0x3f));
      out[2] = (guint8) (0x80 | (cp & 0x3f));
      return 3;
    }
  out[0] = (guint8) (0xf0 | (cp >> 18));
  out[1] = (guint8) (0x80 | ((cp >> 12) & 0x3f));
  out[2] = (guint8) (0x80 | ((cp >> 6) & 0x3f));
  out[3] = (guint8) (0x80 | (cp & 0x3f));
  return 4;
}

/* Reads a JSON string into buf (cap bytes; NULL to check only); *n gets
 * its length in bytes.  A string longer than cap is -EINVAL. */
static int
read_string (Reader *r, guint8 *buf, gsize cap, gsize *n)
{
  *n = 0;
  if (!take (r, '"'))
    return -EINVAL;
  while (r->s < r->end && *r->s != '"')
    {
      guint8 bytes[4];
      gsize len = 1;
      guint8 c = (guint8) *r->s++;

      if (c < 0x20)
        return -EINVAL;
      bytes[0] = c;
      if (c == '\\')
        {
          guint32 cp, lo;

          if (r->s == r->end)
            return -EINVAL;
          switch (*r->s++)
            {
            case '"': bytes[0] = '"'; break;
            case '\\': bytes[0] = '\\'; break;
            case '/': bytes[0] = '/'; break;
            case 'b': bytes[0] = '\b'; break;
            case 'f': bytes[0] = '\f'; break;
            case 'n': bytes[0] = '\n'; break;
            case 'r': bytes[0] = '\r'; break;
            case 't': bytes[0] = '\t'; break;
            case 'u':
              if (hex4 (r->s, r->end, &cp) < 0)
                return -EINVAL;
              r->s += 4;
              if (cp >= 0xdc80 && cp <= 0xdcff)
                bytes[0] = (guint8) (cp - 0xdc00);   /* a byte, escaped */
              else if (cp >= 0xd800 && cp <= 0xdbff)
                {
                  if (r->end - r->s < 6 || r->s[0] != '\\' || r->s[1] != 'u'
                      || hex4 (r->s + 2, r->end, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                    return -EINVAL;
                  r->s += 6;
                  len = put_utf8 (bytes, 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00));
                }
              else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0)
                return -EINVAL;
              else
                len = put_utf8 (bytes, cp);
              break;
            default:
              return -EINVAL;
            }
        }
      if (*n + len > cap)
        return -EINVAL;
      if (buf != NULL)
        memcpy (buf + *n, bytes, len);
      *n += len;
    }
  if (r->s == r->end)
    return -EINVAL;
  r->s++;
  return 0;
}

/* The extent of a JSON number (or NaN, Infinity, -Infinity) at the reader;
 * *integer tells whether it has neither fraction nor exponent. */
static int
number_token (Reader *r, const char **tok, gsize *len, gboolean *integer)
{
  static const char *const words[] = { "NaN", "Infinity", "-Infinity" };
  const char *p;

  skip_ws (r);
  p = *tok = r->s;
  *integer = FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (words); i++)
    {
      gsize n = strlen (words[i]);

      if ((gsize) (r->end - p) >= n && memcmp (p, words[i], n) == 0)
        {
          r->s = p + n;
          *len = n;
          return 0;
        }
    }
  if (p < r->end && *p == '-')
    p++;
  if (p == r->end || !g_ascii_isdigit (*p))
    return -EINVAL;
  if (*p == '0')
    p++;
  else
    while (p < r->end && g_ascii_isdigit (*p))
      p++;
  *integer = TRUE;
  if (p < r->end && *p == '.')
    {
      const char *digits = ++p;

      while (p < r->end && g_ascii_isdigit (*p))
        p++;
      if (p == digits)
        return -EINVAL;
      *integer = FALSE;
    }
  if (p < r->end && (*p == 'e' || *p == 'E'))
    {
      const char *digits;

      p++;
      if (p < r->end && (*p == '+' || *p == '-'))
        p++;
      for (digits = p; p < r->end && g_ascii_isdigit (*p); p++)
        ;
      if (p == digits)
        return -EINVAL;
      *integer = FALSE;
    }
  *len = p - *tok;
  r->s = p;
  return 0;
}

static gboolean
take_word (Reader *r, const char *word)
{
  gsize n = strlen (word);

  skip_ws (r);
  if ((gsize) (r->end - r->s) >= n && memcmp (r->s, word, n) == 0)
    {
      r->s += n;
      return TRUE;
    }
  return FALSE;
}

static int
read_scalar (Reader *r, ShmElem elem, guint64 off)
{
  ShmType leaf = { .elem = elem };
  guint8 *dst = r->value + off;
  gboolean integer;
  const char *tok;
  gsize len;
  int err;

  if (elem == SHM_ELEM_BOOL && (take_word (r, "true") || take_word (r, "false")))
    {
      *dst = r->s[-4] == 't';   /* "true" or "false" just read */
      mark (r, off, 1);
      return 0;
    }
  if ((err = number_token (r, &tok, &len, &integer)) < 0)
    return err;
  /* Integers (bool: 0 or 1) take JSON integers only; floats any number. */
  if (!integer && !shm_type_is_float (&leaf))
    return -EINVAL;
  if ((err = shm_codec_parse (&leaf, tok, len, dst)) < 0)
    return err;
  mark (r, off, shm_type_elem_size (&leaf));
  return 0;
}

static int read_object (Reader *r, const ShmRecord *rec, guint64 base);

/* Reads the value of t from dimension dim on into the bytes at off. */
static int
read_value (Reader *r, const ShmType *t, guint dim, guint64 off)
{
  int err;

  if (dim < t->ndim)
    {
      guint64 stride = shm_type_elem_size (t);

      for (guint d = dim + 1; d < t->ndim; d++)
        stride *= t->dims[d];
      if (!take (r, '['))
        return -EINVAL;
      for (guint64 i = 0; i < t->dims[dim]; i++)
        {
          if (i > 0 && !take (r, ','))
            return -EINVAL;
          if ((err = read_value (r, t, dim + 1, off + i * stride)) < 0)
            return err;
        }
      return take (r, ']') ? 0 : -EINVAL;
    }
  if (t->elem == SHM_ELEM_RECORD)
    return read_object (r, t->record, off);
  if (t->elem == SHM_ELEM_CHAR)
    {
      gsize n;

      if ((err = read_string (r, r->value + off, t->char_len, &n)) < 0)
        return err;
      memset (r->value + off + n, 0, t->char_len - n);
      mark (r, off, t->char_len);
      return 0;
    }
  return read_scalar (r, t->elem, off);
}

/* Marks the bytes of the record at base that no field covers. */
static void
mark_padding (Reader *r, const ShmRecord *rec, guint64 base, guint64 size)
{
  guint64 end = 0;

  if (r->mask == NULL)
    return;
  for (guint i = 0; i < shm_record_n_fields (rec); i++)
    {
      const ShmField *f = shm_record_field (rec, i);

      mark (r, base + end, f->offset - end);
      end = f->offset + shm_type_nbytes (&f->type);
    }
  mark (r, base + end, size - end);
}

/* Merges an object into the record at base. */
static int
read_object (Reader *r, const ShmRecord *rec, guint64 base)
{
  guint n = shm_record_n_fields (rec);
  g_autofree gboolean *seen = NULL;
  ShmType whole = { .elem = SHM_ELEM_RECORD, .record = (ShmRecord *) rec };
  int err;

  if (++r->depth > SHM_TYPE_MAX_DEPTH || !take (r, '{'))
    return -EINVAL;
  seen = g_new0 (gboolean, n);
  mark_padding (r, rec, base, shm_type_elem_size (&whole));
  if (take (r, '}'))
    {
      r->depth--;
      return 0;
    }
  do
    {
      char name[SHM_TYPE_MAX_SPEC + 1];
      const ShmField *f;
      gsize len;

      if ((err = read_string (r, (guint8 *) name, sizeof name, &len)) < 0)
        return err;
      if ((f = shm_record_lookup (rec, name, len)) == NULL || seen[f - shm_record_field (rec, 0)])
        return -EINVAL;
      seen[f - shm_record_field (rec, 0)] = TRUE;
      if (!take (r, ':'))
        return -EINVAL;
      if ((err = read_value (r, &f->type, 0, base + f->offset)) < 0)
        return err;
    }
  while (take (r, ','));
  r->depth--;
  return take (r, '}') ? 0 : -EINVAL;
}

/* Reads objects, or arrays of them, until count elements are read or the
 * text ends; *next is the element the next object goes to. */
static int
read_elements (Reader *r, const ShmType *t, guint64 *next, gboolean in_array)
{
  gsize size = shm_type_elem_size (t);
  guint64 count = shm_type_count (t);
  int err;

  for (;;)
    {
      skip_ws (r);
      if (r->s == r->end || (in_array && *r->s == ']'))
        return 0;
      if (*r->s == '[')
        {
          if (++r->groups > JSON_MAX_GROUPS)
            return -EINVAL;
          r->s++;
          skip_ws (r);
          /* An empty group holds no record: malformed, not short. */
          if (r->s < r->end && *r->s == ']')
            return -EINVAL;
          if ((err = read_elements (r, t, next, TRUE)) < 0)
            return err;
          if (!take (r, ']'))
            return -EINVAL;
          r->groups--;
        }
      else
        {
          if (*next == count)
            return -EINVAL;
          if ((err = read_object (r, t->record, *next * size)) < 0)
            return err;
          (*next)++;
        }
      /* Inside an array, items are separated by commas (none after the
       * last); outside, by blanks and newlines only. */
      if (in_array && !take (r, ','))
        {
          skip_ws (r);
          if (r->s == r->end || *r->s != ']')
            return -EINVAL;
        }
      else if (in_array)
        {
          skip_ws (r);
          if (r->s == r->end || *r->s == ']')
            return -EINVAL;
        }
    }
}

int
shm_json_merge (const ShmType *t, const char *text, gsize len, guint8 *value,
                guint8 *mask)
{
  Reader r = { .s = text, .end = text + len, .value = value, .mask = mask };
  guint64 next = 0;
  int err;

  if (t->elem != SHM_ELEM_RECORD)
    return -EINVAL;
  if ((err = read_elements (&r, t, &next, FALSE)) < 0)
    return err;
  return next == shm_type_count (t) ? 0 : -EINVAL;
}

/* ---- Incremental scan ---- */

guint64
shm_json_scan (ShmJsonScan *state, const char *text, gsize from, gsize len,
               gboolean *open)
{
  guint64 started = 0;

  for (gsize i = from; i < len; i++)
    {
      char c = text[i];

      if (state->in_string)
        {
          if (state->escaped)
            state->escaped = FALSE;
          else if (c == '\\')
            state->escaped = TRUE;
          else if (c == '"')
            state->in_string = FALSE;
          continue;
        }
      /* Outside every object, anything but blanks, brackets and commas
       * is an element that is no object: counted, so the text is
       * complete (and refused) as soon as it is, not at close. */
      if (state->objects == 0 && c != '{' && c != '[' && c != ']' && c != ','
          && !g_ascii_isspace (c))
        {
          if (!state->in_junk)
            started++;
          state->in_junk = c != '"';
          state->in_string = c == '"';
          continue;
        }
      state->in_junk = FALSE;
      /* An empty array outside objects is an element too (a malformed
       * one): [] holds no record. */
      if (c == ']' && state->objects == 0 && state->empty_array)
        started++;
      if (!g_ascii_isspace (c))
        state->empty_array = c == '[' && state->objects == 0;
      switch (c)
        {
        case '"':
          state->in_string = TRUE;
          break;
        case '{':
          if (state->objects++ == 0)
            started++;
          state->depth++;
          break;
        case '[':
          state->depth++;
          break;
        case '}':
          if (state->objects > 0)
            state->objects--;
          /* fall through */
        case ']':
          if (state->depth > 0)
            state->depth--;
          break;
        default:
          break;
        }
    }
  *open = state->depth > 0 || state->in_string;
  return started;
}

/* Room per field for its name, quotes, colon and blanks. */
#define FIELD_ROOM 64
/* Room per number: the longest text of a number, and blanks. */
#define NUMBER_ROOM 48

guint64
shm_json_max_text (const ShmType *t)
{
  guint64 n = 16, count = shm_type_count (t);

  if (t->elem == SHM_ELEM_RECORD)
    for (guint i = 0; i < shm_record_n_fields (t->record); i++)
      {
        const ShmField *f = shm_record_field (t->record, i);
        ShmType one = f->type;

        one.ndim = 0;
        n += FIELD_ROOM + strlen (f->name) + shm_json_max_text (&one) * shm_type_count (&f->type);
      }
  else if (t->elem == SHM_ELEM_CHAR)
    n += 12 * (guint64) t->char_len;   /* "\udcXX" is six bytes a byte; blanks */
  else
    n += NUMBER_ROOM;
  return n * count;
}
