/* shm-type.c — type specs of shared objects.
 *
 * Built into libshmfs too, which needs no glib at run time: glib's types
 * and macros only, no glib function (strings are malloc'ed: free() or
 * g_free() them). */
#include "shm-type.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static gboolean
is_blank (char c)
{
  return c == ' ' || c == '\t';
}

/* Parses the bracket groups at s ("[3][4]", "[3, 4]") into nums; a comma
 * inside a group starts the next number, as if it were "][". */
static int
parse_groups (const char *s, gsize len, guint64 *nums, guint max, guint *n)
{
  gsize i = 0;

  *n = 0;
  while (i < len)
    {
      if (s[i++] != '[')
        return -EINVAL;
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
  return 0;
}

int
shm_type_parse (const char *spec, gsize len, ShmType *out)
{
  guint64 nums[SHM_TYPE_MAX_DIMS + 1];
  guint64 nbytes;
  gsize name_len;
  guint n, first = 0;
  ShmType t = { 0 };

  while (len > 0 && is_space (spec[len - 1]))
    len--;
  while (len > 0 && is_space (spec[0]))
    {
      spec++;
      len--;
    }
  if (len == 0 || len > SHM_TYPE_MAX_SPEC)
    return -EINVAL;

  for (name_len = 0; name_len < len && spec[name_len] != '['; name_len++)
    ;
  if (lookup_elem (spec, name_len, &t.elem) < 0)
    return -EINVAL;
  if (parse_groups (spec + name_len, len - name_len, nums,
                    G_N_ELEMENTS (nums), &n) < 0)
    return -EINVAL;

  if (t.elem == SHM_ELEM_CHAR)
    {
      /* "c" alone is one byte; "char" always names its capacity. */
      if (n == 0 && !name_is (spec, name_len, "c"))
        return -EINVAL;
      if (n > 0 && nums[0] > G_MAXUINT32)
        return -EINVAL;
      t.char_len = n == 0 ? 1 : (guint32) nums[first++];
    }
  if (n - first > SHM_TYPE_MAX_DIMS)
    return -EINVAL;

  nbytes = shm_type_elem_size (&t);
  for (guint i = first; i < n; i++)
    {
      if (nbytes > SHM_TYPE_MAX_NBYTES / nums[i])
        return -EINVAL;
      nbytes *= nums[i];
      t.dims[t.ndim++] = nums[i];
    }
  if (nbytes > SHM_TYPE_MAX_NBYTES)
    return -EINVAL;

  *out = t;
  return 0;
}

/* Longest text of a type: an element name, char's [N], and its dimensions. */
#define TYPE_TEXT_MAX (8 + 12 + SHM_TYPE_MAX_DIMS * 24)

char *
shm_type_to_string (const ShmType *t)
{
  char buf[TYPE_TEXT_MAX];
  size_t n = (size_t) snprintf (buf, sizeof buf, "%s", elem_names[t->elem]);

  if (t->elem == SHM_ELEM_CHAR)
    n += (size_t) snprintf (buf + n, sizeof buf - n, "[%u]", t->char_len);
  for (guint i = 0; i < t->ndim; i++)
    n += (size_t) snprintf (buf + n, sizeof buf - n, "[%" PRIu64 "]", t->dims[i]);
  return strdup (buf);
}

gboolean
shm_type_equal (const ShmType *a, const ShmType *b)
{
  if (a->elem != b->elem || a->char_len != b->char_len || a->ndim != b->ndim)
    return FALSE;
  for (guint i = 0; i < a->ndim; i++)
    if (a->dims[i] != b->dims[i])
      return FALSE;
  return TRUE;
}

gsize
shm_type_elem_size (const ShmType *t)
{
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

char *
shm_type_numpy_dtype (const ShmType *t)
{
  char order = G_BYTE_ORDER == G_LITTLE_ENDIAN ? '<' : '>';

  char buf[16];

  if (t->elem == SHM_ELEM_CHAR)
    snprintf (buf, sizeof buf, "|S%u", t->char_len);
  else
    snprintf (buf, sizeof buf, "%c%s", elem_sizes[t->elem] == 1 ? '|' : order,
              elem_dtypes[t->elem]);
  return strdup (buf);
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
