/* shm-type.c — type specs of shared objects.
 *
 * Built into libshmfs too, which needs no glib at run time: glib's types
 * and macros only, no glib function (strings are malloc'ed: free() or
 * g_free() them). */
#include "shm-type.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _ShmRecord {
  int      refs;        /* atomic */
  guint    n_fields;
  guint    align;
  guint64  size;        /* trailing padding included */
  ShmField fields[];
};

static gboolean
is_digit (char c)
{
  return c >= '0' && c <= '9';
}

static gboolean
is_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Indexed by ShmElem. */
static const char *const elem_names[] = {
  "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64",
  "f32", "f64", "bool", "char",
};
static const guint8 elem_sizes[] = { 1, 1, 2, 2, 4, 4, 8, 8, 4, 8, 1, 0 };
/* numpy kind and size, without the byte-order prefix. */
static const char *const elem_dtypes[] = {
  "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8", "b1", "S",
};

#if GLIB_SIZEOF_LONG == 8
#define ELEM_LONG  SHM_ELEM_I64
#define ELEM_ULONG SHM_ELEM_U64
#else
#define ELEM_LONG  SHM_ELEM_I32
#define ELEM_ULONG SHM_ELEM_U32
#endif

static const struct {
  const char *name;
  ShmElem elem;
} elem_aliases[] = {
  { "b", SHM_ELEM_I8 }, { "B", SHM_ELEM_U8 },
  { "h", SHM_ELEM_I16 }, { "H", SHM_ELEM_U16 },
  { "i", SHM_ELEM_I32 }, { "I", SHM_ELEM_U32 },
  { "l", ELEM_LONG }, { "L", ELEM_ULONG },
  { "q", SHM_ELEM_I64 }, { "Q", SHM_ELEM_U64 },
  { "f", SHM_ELEM_F32 }, { "d", SHM_ELEM_F64 },
  { "?", SHM_ELEM_BOOL }, { "c", SHM_ELEM_CHAR },
};

static gboolean
name_is (const char *s, gsize len, const char *name)
{
  return strlen (name) == len && memcmp (s, name, len) == 0;
}

static int
lookup_elem (const char *s, gsize len, ShmElem *elem)
{
  for (guint i = 0; i < G_N_ELEMENTS (elem_names); i++)
    if (name_is (s, len, elem_names[i]))
      {
        *elem = i;
        return 0;
      }
  for (guint i = 0; i < G_N_ELEMENTS (elem_aliases); i++)
    if (name_is (s, len, elem_aliases[i].name))
      {
        *elem = elem_aliases[i].elem;
        return 0;
      }
  return -EINVAL;
}

/* A spec being parsed: s[i, len). */
typedef struct {
  const char *s;
  gsize       len;
  gsize       i;
  guint       depth;    /* records open */
} Cursor;

static gboolean
is_blank (char c)
{
  return c == ' ' || c == '\t';
}

static gboolean
at (const Cursor *c, char ch)
{
  return c->i < c->len && c->s[c->i] == ch;
}

static void
skip_space (Cursor *c)
{
  while (c->i < c->len && is_space (c->s[c->i]))
    c->i++;
}

/* Parses the bracket groups at the cursor ("[3][4]", "[3, 4]") into nums;
 * a comma inside a group starts the next number, as if it were "][". */
static int
parse_groups (Cursor *c, guint64 *nums, guint max, guint *n)
{
  const char *s = c->s;
  gsize i = c->i, len = c->len;

  *n = 0;
  while (i < len && s[i] == '[')
    {
      i++;
      for (;;)
        {
          guint64 v = 0;
          gsize start;

          while (i < len && is_blank (s[i]))
            i++;
          for (start = i; i < len && is_digit (s[i]); i++)
            {
              v = v * 10 + (guint64) (s[i] - '0');
              if (v > SHM_TYPE_MAX_NBYTES)
                return -EINVAL;
            }
          if (i == start || v == 0 || *n == max)
            return -EINVAL;
          nums[(*n)++] = v;
          while (i < len && is_blank (s[i]))
            i++;
          if (i == len)
            return -EINVAL;
          if (s[i] == ']')
            break;
          if (s[i++] != ',')
            return -EINVAL;
        }
      i++;
    }
  c->i = i;
  return 0;
}

static guint64
align_up (guint64 v, guint64 align)
{
  return (v + align - 1) / align * align;
}

static gboolean
is_name_start (char ch)
{
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static void
record_unref (ShmRecord *r)
{
  if (r == NULL || __atomic_sub_fetch (&r->refs, 1, __ATOMIC_ACQ_REL) != 0)
    return;
  for (guint i = 0; i < r->n_fields; i++)
    {
      free ((char *) r->fields[i].name);
      shm_type_clear (&r->fields[i].type);
    }
  free (r);
}

static int parse_type (Cursor *c, gboolean field, ShmType *out);

/* Parses {NAME:TYPE, ...} at the cursor (at its '{') into a new record with
 * its layout. */
static int
parse_record (Cursor *c, ShmRecord **out)
{
  ShmRecord *r = NULL;
  guint cap = 0;
  guint64 size = 0, align = 1;
  int err = -EINVAL;

  if (++c->depth > SHM_TYPE_MAX_DEPTH)
    return -EINVAL;
  c->i++;   /* '{' */
  for (;;)
    {
      ShmField *f;
      gsize start;
      guint64 falign, fsize;

      skip_space (c);
      if (r != NULL && r->n_fields == cap)
        {
          ShmRecord *grown = realloc (r, sizeof *r + 2 * cap * sizeof (ShmField));

          if (grown == NULL)
            goto fail;
          r = grown;
          cap *= 2;
        }
      else if (r == NULL)
        {
          cap = 4;
          if ((r = calloc (1, sizeof *r + cap * sizeof (ShmField))) == NULL)
            goto fail;
          r->refs = 1;
        }

      start = c->i;
      if (c->i == c->len || !is_name_start (c->s[c->i]))
        goto fail;
      while (c->i < c->len && (is_name_start (c->s[c->i]) || is_digit (c->s[c->i])))
        c->i++;
      if (shm_record_lookup (r, c->s + start, c->i - start) != NULL)
        goto fail;
      f = &r->fields[r->n_fields];
      memset (f, 0, sizeof *f);
      if ((f->name = strndup (c->s + start, c->i - start)) == NULL)
        goto fail;
      r->n_fields++;
      skip_space (c);
      if (!at (c, ':'))
        goto fail;
      c->i++;
      skip_space (c);
      if (parse_type (c, TRUE, &f->type) < 0)
        goto fail;

      falign = shm_type_elem_align (&f->type);
      fsize = shm_type_nbytes (&f->type);
      f->offset = align_up (size, falign);
      size = f->offset + fsize;
      if (size > SHM_TYPE_MAX_NBYTES)
        goto fail;
      align = MAX (align, falign);

      skip_space (c);
      if (at (c, '}'))
        break;
      if (!at (c, ','))
        goto fail;
      c->i++;
    }
  c->i++;   /* '}' */
  c->depth--;
  r->align = (guint) align;
  r->size = align_up (size, align);
  if (r->size > SHM_TYPE_MAX_RECORD)
    goto fail;
  *out = r;
  return 0;

fail:
  record_unref (r);
  return err;
}

/* Parses ELEM[dims] or a record (with dims unless it is a field's type: a
 * field is not an array of records) at the cursor.  A field's type ends at
 * a blank, a comma or a brace; the whole spec's at its end. */
static int
parse_type (Cursor *c, gboolean field, ShmType *out)
{
  guint64 nums[SHM_TYPE_MAX_DIMS + 1];
  guint64 nbytes;
  gsize name_start = c->i, name_len;
  guint n, first = 0;
  ShmType t = { 0 };

  if (at (c, '{'))
    {
      int err = parse_record (c, &t.record);

      if (err < 0)
        return err;
      t.elem = SHM_ELEM_RECORD;
      name_len = 0;
    }
  else
    {
      while (c->i < c->len && c->s[c->i] != '['
             && !(field && (is_space (c->s[c->i]) || c->s[c->i] == ','
                            || c->s[c->i] == '}')))
        c->i++;
      name_len = c->i - name_start;
      if (lookup_elem (c->s + name_start, name_len, &t.elem) < 0)
        return -EINVAL;
    }
  if (parse_groups (c, nums, G_N_ELEMENTS (nums), &n) < 0
      || (field && t.elem == SHM_ELEM_RECORD && n > 0))
    goto fail;

  if (t.elem == SHM_ELEM_CHAR)
    {
      /* "c" alone is one byte; "char" always names its capacity. */
      if (n == 0 && !name_is (c->s + name_start, name_len, "c"))
        goto fail;
      if (n > 0 && nums[0] > G_MAXUINT32)
        goto fail;
      t.char_len = n == 0 ? 1 : (guint32) nums[first++];
    }
  if (n - first > SHM_TYPE_MAX_DIMS)
    goto fail;

  nbytes = shm_type_elem_size (&t);
  for (guint i = first; i < n; i++)
    {
      if (nbytes > SHM_TYPE_MAX_NBYTES / nums[i])
        goto fail;
      nbytes *= nums[i];
      t.dims[t.ndim++] = nums[i];
    }
  if (nbytes > SHM_TYPE_MAX_NBYTES)
    goto fail;

  *out = t;
  return 0;

fail:
  shm_type_clear (&t);
  return -EINVAL;
}

int
shm_type_parse (const char *spec, gsize len, ShmType *out)
{
  Cursor c = { 0 };
  ShmType t;

  while (len > 0 && is_space (spec[len - 1]))
    len--;
  while (len > 0 && is_space (spec[0]))
    {
      spec++;
      len--;
    }
  if (len == 0 || len > SHM_TYPE_MAX_SPEC)
    return -EINVAL;

  c.s = spec;
  c.len = len;
  if (parse_type (&c, FALSE, &t) < 0)
    return -EINVAL;
  if (c.i != len)
    {
      shm_type_clear (&t);
      return -EINVAL;
    }
  /* The canonical form is what user.shmfs.type gives back: it must parse
   * too (aliases and ", " make a record's longer than what was written). */
  if (t.elem == SHM_ELEM_RECORD)
    {
      char *canonical = shm_type_to_string (&t);
      gboolean fits = canonical != NULL && strlen (canonical) <= SHM_TYPE_MAX_SPEC;

      free (canonical);
      if (!fits)
        {
          shm_type_clear (&t);
          return -EINVAL;
        }
    }
  *out = t;
  return 0;
}

void
shm_type_clear (ShmType *t)
{
  if (t->elem == SHM_ELEM_RECORD)
    record_unref (t->record);
  t->record = NULL;
}

void
shm_type_copy (ShmType *dst, const ShmType *src)
{
  *dst = *src;
  if (src->elem == SHM_ELEM_RECORD)
    __atomic_add_fetch (&src->record->refs, 1, __ATOMIC_RELAXED);
}

guint
shm_record_n_fields (const ShmRecord *r)
{
  return r->n_fields;
}

const ShmField *
shm_record_field (const ShmRecord *r, guint i)
{
  return &r->fields[i];
}

const ShmField *
shm_record_lookup (const ShmRecord *r, const char *name, gsize len)
{
  for (guint i = 0; i < r->n_fields; i++)
    if (name_is (name, len, r->fields[i].name))
      return &r->fields[i];
  return NULL;
}

/* Bytes from one index of dimension d of t to the next. */
static guint64
stride_of (const ShmType *t, guint d)
{
  guint64 stride = shm_type_elem_size (t);

  for (guint i = d + 1; i < t->ndim; i++)
    stride *= t->dims[i];
  return stride;
}

int
shm_type_resolve_field (const ShmType *t, const char *path, gsize len,
                        guint64 *offset, ShmType *leaf)
{
  ShmType cur = *t;
  guint64 off = 0;
  guint used = 0;   /* dimensions of cur indexed so far */
  gsize i = 0;

  cur.ndim = 0;   /* a field of the element */
  while (i < len)
    {
      const ShmField *f;
      gsize start;

      if (i > 0)
        {
          if (path[i] == '[')
            {
              guint64 v = 0;
              gsize digits = ++i;

              while (i < len && is_digit (path[i]) && v <= SHM_TYPE_MAX_NBYTES)
                v = v * 10 + (guint64) (path[i++] - '0');
              if (i == digits || i == len || path[i] != ']' || used == cur.ndim
                  || v >= cur.dims[used])
                return -EINVAL;
              off += v * stride_of (&cur, used++);
              i++;
              continue;
            }
          if (path[i++] != '.')
            return -EINVAL;
        }
      if (cur.elem != SHM_ELEM_RECORD || used != cur.ndim)
        return -EINVAL;
      for (start = i; i < len && path[i] != '.' && path[i] != '['; i++)
        ;
      if ((f = shm_record_lookup (cur.record, path + start, i - start)) == NULL)
        return -EINVAL;
      off += f->offset;
      cur = f->type;
      used = 0;
    }
  if (i == 0)
    return -EINVAL;
  shm_type_copy (leaf, &cur);
  leaf->ndim = cur.ndim - used;
  memmove (leaf->dims, cur.dims + used, leaf->ndim * sizeof leaf->dims[0]);
  *offset = off;
  return 0;
}

int
shm_type_scalar_at (const ShmType *t, guint64 offset, ShmType *leaf)
{
  const ShmRecord *r;

  if (t->elem != SHM_ELEM_RECORD)
    return -EINVAL;
  r = t->record;
  for (guint i = 0; i < r->n_fields; i++)
    {
      const ShmField *f = &r->fields[i];
      guint64 size = shm_type_elem_size (&f->type);

      if (offset < f->offset || offset >= f->offset + shm_type_nbytes (&f->type))
        continue;
      if (f->type.elem == SHM_ELEM_RECORD)
        return shm_type_scalar_at (&f->type, offset - f->offset, leaf);
      if (f->type.elem == SHM_ELEM_CHAR || (offset - f->offset) % size != 0)
        return -EINVAL;
      *leaf = f->type;
      leaf->ndim = 0;
      return 0;
    }
  return -EINVAL;
}

gsize
shm_type_elem_align (const ShmType *t)
{
  if (t->elem == SHM_ELEM_RECORD)
    return t->record->align;
  return t->elem == SHM_ELEM_CHAR ? 1 : elem_sizes[t->elem];
}

/* Longest text of a shape: SHM_TYPE_MAX_DIMS numbers. */
#define TYPE_TEXT_MAX (8 + 12 + SHM_TYPE_MAX_DIMS * 24)

/* A malloc'ed string being built; NULL once out of memory. */
typedef struct {
  char  *str;
  size_t len, cap;
} Text;

static void G_GNUC_PRINTF (2, 3)
text_printf (Text *t, const char *fmt, ...)
{
  va_list ap;
  int n;

  if (t->str == NULL)
    return;
  va_start (ap, fmt);
  n = vsnprintf (t->str + t->len, t->cap - t->len, fmt, ap);
  va_end (ap);
  if (n >= 0 && (size_t) n >= t->cap - t->len)
    {
      size_t cap = MAX (t->cap * 2, t->len + (size_t) n + 1);
      char *grown = realloc (t->str, cap);

      if (grown == NULL)
        {
          free (t->str);
          t->str = NULL;
          return;
        }
      t->str = grown;
      t->cap = cap;
      va_start (ap, fmt);
      n = vsnprintf (t->str + t->len, t->cap - t->len, fmt, ap);
      va_end (ap);
    }
  if (n > 0)
    t->len += (size_t) n;
}

static Text
text_new (void)
{
  Text t = { malloc (64), 0, 64 };

  if (t.str != NULL)
    t.str[0] = '\0';
  return t;
}

static void
append_spec (Text *out, const ShmType *t)
{
  if (t->elem == SHM_ELEM_RECORD)
    {
      text_printf (out, "{");
      for (guint i = 0; i < t->record->n_fields; i++)
        {
          text_printf (out, "%s%s:", i > 0 ? ", " : "", t->record->fields[i].name);
          append_spec (out, &t->record->fields[i].type);
        }
      text_printf (out, "}");
    }
  else
    text_printf (out, "%s", elem_names[t->elem]);
  if (t->elem == SHM_ELEM_CHAR)
    text_printf (out, "[%u]", t->char_len);
  for (guint i = 0; i < t->ndim; i++)
    text_printf (out, "[%" PRIu64 "]", t->dims[i]);
}

char *
shm_type_to_string (const ShmType *t)
{
  Text out = text_new ();

  append_spec (&out, t);
  return out.str;
}

gboolean
shm_type_equal (const ShmType *a, const ShmType *b)
{
  if (a->elem != b->elem || a->char_len != b->char_len || a->ndim != b->ndim)
    return FALSE;
  for (guint i = 0; i < a->ndim; i++)
    if (a->dims[i] != b->dims[i])
      return FALSE;
  if (a->elem == SHM_ELEM_RECORD && a->record != b->record)
    {
      const ShmRecord *ra = a->record, *rb = b->record;

      if (ra->n_fields != rb->n_fields || ra->size != rb->size)
        return FALSE;
      for (guint i = 0; i < ra->n_fields; i++)
        if (strcmp (ra->fields[i].name, rb->fields[i].name) != 0
            || ra->fields[i].offset != rb->fields[i].offset
            || !shm_type_equal (&ra->fields[i].type, &rb->fields[i].type))
          return FALSE;
    }
  return TRUE;
}

gsize
shm_type_elem_size (const ShmType *t)
{
  if (t->elem == SHM_ELEM_RECORD)
    return t->record->size;
  return t->elem == SHM_ELEM_CHAR ? t->char_len : elem_sizes[t->elem];
}

guint64
shm_type_count (const ShmType *t)
{
  guint64 count = 1;

  for (guint i = 0; i < t->ndim; i++)
    count *= t->dims[i];
  return count;
}

guint64
shm_type_nbytes (const ShmType *t)
{
  return shm_type_elem_size (t) * shm_type_count (t);
}

gboolean
shm_type_is_float (const ShmType *t)
{
  return t->elem == SHM_ELEM_F32 || t->elem == SHM_ELEM_F64;
}

gboolean
shm_elem_int_range (ShmElem elem, gint64 *min, guint64 *max)
{
  static const struct {
    gint64 min;
    guint64 max;
  } limits[] = {
    [SHM_ELEM_I8]  = { G_MININT8,  G_MAXINT8 },
    [SHM_ELEM_U8]  = { 0,          G_MAXUINT8 },
    [SHM_ELEM_I16] = { G_MININT16, G_MAXINT16 },
    [SHM_ELEM_U16] = { 0,          G_MAXUINT16 },
    [SHM_ELEM_I32] = { G_MININT32, G_MAXINT32 },
    [SHM_ELEM_U32] = { 0,          G_MAXUINT32 },
    [SHM_ELEM_I64] = { G_MININT64, G_MAXINT64 },
    [SHM_ELEM_U64] = { 0,          G_MAXUINT64 },
  };

  if ((gsize) elem >= G_N_ELEMENTS (limits) || limits[elem].max == 0)
    return FALSE;
  *min = limits[elem].min;
  *max = limits[elem].max;
  return TRUE;
}

/* The numpy dtype of one element of t (its dimensions left out). */
static void
append_dtype (Text *out, const ShmType *t)
{
  char order = G_BYTE_ORDER == G_LITTLE_ENDIAN ? '<' : '>';
  const ShmRecord *r = t->record;

  switch (t->elem)
    {
    case SHM_ELEM_CHAR:
      text_printf (out, "|S%u", t->char_len);
      break;
    case SHM_ELEM_RECORD:
      text_printf (out, "{\"names\": [");
      for (guint i = 0; i < r->n_fields; i++)
        text_printf (out, "%s\"%s\"", i > 0 ? ", " : "", r->fields[i].name);
      text_printf (out, "], \"formats\": [");
      for (guint i = 0; i < r->n_fields; i++)
        {
          const ShmType *ft = &r->fields[i].type;

          text_printf (out, "%s", i > 0 ? ", " : "");
          if (ft->elem != SHM_ELEM_RECORD)
            text_printf (out, "\"");
          if (ft->ndim > 0)
            {
              text_printf (out, "(");
              for (guint d = 0; d < ft->ndim; d++)
                text_printf (out, "%" PRIu64 ",", ft->dims[d]);
              text_printf (out, ")");
            }
          append_dtype (out, ft);
          if (ft->elem != SHM_ELEM_RECORD)
            text_printf (out, "\"");
        }
      text_printf (out, "], \"offsets\": [");
      for (guint i = 0; i < r->n_fields; i++)
        text_printf (out, "%s%" PRIu64, i > 0 ? ", " : "", r->fields[i].offset);
      text_printf (out, "], \"itemsize\": %" PRIu64 "}", r->size);
      break;
    default:
      text_printf (out, "%c%s", elem_sizes[t->elem] == 1 ? '|' : order,
                   elem_dtypes[t->elem]);
      break;
    }
}

char *
shm_type_numpy_dtype (const ShmType *t)
{
  Text out = text_new ();

  append_dtype (&out, t);
  return out.str;
}

char *
shm_type_shape_string (const ShmType *t)
{
  char buf[TYPE_TEXT_MAX];
  size_t n = (size_t) snprintf (buf, sizeof buf, "(");

  for (guint i = 0; i < t->ndim; i++)
    n += (size_t) snprintf (buf + n, sizeof buf - n, "%s%" PRIu64, i > 0 ? ", " : "",
                            t->dims[i]);
  snprintf (buf + n, sizeof buf - n, "%s", t->ndim == 1 ? ",)" : ")");
  return strdup (buf);
}
