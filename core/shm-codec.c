/* shm-codec.c — the text view of typed values.
 *
 * Numbers are read and written in the C locale whatever the process locale:
 * strtod_l() for reading, uselocale() around snprintf() for writing (glibc
 * has no snprintf_l).  Floats are written by shm-float.c.
 */
#include "shm-codec.h"
#include "shm-float.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gboolean
is_separator (char c)
{
  return g_ascii_isspace (c) || c == ',' || c == '[' || c == ']';
}

static void
trim (const char **text, gsize *len)
{
  while (*len > 0 && g_ascii_isspace ((*text)[*len - 1]))
    (*len)--;
  while (*len > 0 && g_ascii_isspace ((*text)[0]))
    {
      (*text)++;
      (*len)--;
    }
}

/* ---- Text out ---- */

static void
append_u64 (GString *out, guint64 v, gboolean negative)
{
  char buf[24];
  char *p = shm_float_u64_digits (v, buf + sizeof buf);

  if (negative)
    *--p = '-';
  g_string_append_len (out, p, buf + sizeof buf - p);
}

static void
append_i64 (GString *out, gint64 v)
{
  /* Negate in unsigned arithmetic so that G_MININT64 survives. */
  append_u64 (out, v < 0 ? -(guint64) v : (guint64) v, v < 0);
}

static void
append_elem (GString *out, ShmElem elem, const guint8 *p, gsize size)
{
  union {
    gint8 i8; guint8 u8; gint16 i16; guint16 u16; gint32 i32; guint32 u32;
    gint64 i64; guint64 u64; float f32; double f64;
  } v;

  /* The data may sit at any alignment. */
  memcpy (&v, p, size);
  switch (elem)
    {
    case SHM_ELEM_I8:   append_i64 (out, v.i8); break;
    case SHM_ELEM_U8:   append_u64 (out, v.u8, FALSE); break;
    case SHM_ELEM_I16:  append_i64 (out, v.i16); break;
    case SHM_ELEM_U16:  append_u64 (out, v.u16, FALSE); break;
    case SHM_ELEM_I32:  append_i64 (out, v.i32); break;
    case SHM_ELEM_U32:  append_u64 (out, v.u32, FALSE); break;
    case SHM_ELEM_I64:  append_i64 (out, v.i64); break;
    case SHM_ELEM_U64:  append_u64 (out, v.u64, FALSE); break;
    case SHM_ELEM_F32:  shm_float_append (out, v.f32, TRUE); break;
    case SHM_ELEM_F64:  shm_float_append (out, v.f64, FALSE); break;
    case SHM_ELEM_BOOL: g_string_append_c (out, v.u8 ? '1' : '0'); break;
    case SHM_ELEM_CHAR:
    case SHM_ELEM_RECORD: g_assert_not_reached ();
    }
}

void
shm_codec_format_items (const ShmType *t, const void *data, guint64 first, guint64 n,
                        GString *out)
{
  guint64 row = t->ndim > 0 ? t->dims[t->ndim - 1] : 1;
  gsize size = shm_type_elem_size (t);
  const guint8 *p = data;
  locale_t old;

  if (t->elem == SHM_ELEM_RECORD)
    return shm_json_format_items (t, data, first, n, out);
  if (t->elem == SHM_ELEM_CHAR)
    {
      /* Each string up to its first NUL, on a line of its own. */
      for (guint64 i = 0; i < n; i++, p += size)
        {
          const guint8 *nul = memchr (p, '\0', size);

          g_string_append_len (out, (const char *) p, nul ? nul - p : (gssize) size);
          g_string_append_c (out, '\n');
        }
      return;
    }

  old = uselocale (shm_float_c_locale ());
  for (guint64 i = first; i < first + n; i++, p += size)
    {
      append_elem (out, t->elem, p, size);
      g_string_append_c (out, (i + 1) % row == 0 ? '\n' : ' ');
    }
  uselocale (old);
}

void
shm_codec_format (const ShmType *t, const void *data, GString *out)
{
  shm_codec_format_items (t, data, 0, shm_type_count (t), out);
}

/* ---- Text in ---- */

/* Reads an integer token: optional sign, then decimal digits or 0x and hex
 * digits.  Returns 0, -EINVAL, or -ERANGE past 64 bits of magnitude. */
static int
parse_integer (const char *s, gsize len, gboolean *negative, guint64 *mag)
{
  gboolean overflow = FALSE;
  guint base = 10;
  guint64 v = 0;
  gsize i = 0;

  *negative = FALSE;
  if (i < len && (s[i] == '+' || s[i] == '-'))
    *negative = s[i++] == '-';
  if (len - i > 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X'))
    {
      base = 16;
      i += 2;
    }
  if (i == len)
    return -EINVAL;
  for (; i < len; i++)
    {
      int d = base == 16 ? g_ascii_xdigit_value (s[i])
                         : g_ascii_digit_value (s[i]);

      if (d < 0)
        return -EINVAL;
      if (v > (G_MAXUINT64 - (guint) d) / base)
        overflow = TRUE;
      else
        v = v * base + (guint) d;
    }
  if (overflow)
    return -ERANGE;
  *mag = v;
  return 0;
}

/* Stores the low size bytes of bits (a two's complement value) at dst. */
static void
store_bits (void *dst, guint64 bits, gsize size)
{
  guint8 b8 = (guint8) bits;
  guint16 b16 = (guint16) bits;
  guint32 b32 = (guint32) bits;

  switch (size)
    {
    case 1: memcpy (dst, &b8, 1); break;
    case 2: memcpy (dst, &b16, 2); break;
    case 4: memcpy (dst, &b32, 4); break;
    default: memcpy (dst, &bits, 8); break;
    }
}

static int
parse_int_elem (ShmElem elem, gsize size, const char *s, gsize len, void *dst)
{
  gboolean negative;
  guint64 mag, max;
  gint64 min;
  int r = parse_integer (s, len, &negative, &mag);

  if (r < 0)
    return r;
  shm_elem_int_range (elem, &min, &max);
  /* -(guint64) min is the magnitude of min, 2^63 included. */
  if (negative ? mag > -(guint64) min : mag > max)
    return -ERANGE;
  store_bits (dst, negative ? -mag : mag, size);
  return 0;
}

/* strtod wants a NUL-terminated string; tokens are slices of the text. */
static int
parse_float (ShmElem elem, const char *s, gsize len, void *dst)
{
  char stack[64];
  char *z = len < sizeof stack ? stack : g_malloc (len + 1);
  char *end;
  double d = 0;
  float f = 0;
  int r = 0;

  memcpy (z, s, len);
  z[len] = '\0';
  errno = 0;
  if (elem == SHM_ELEM_F32)
    f = strtof_l (z, &end, shm_float_c_locale ());
  else
    d = strtod_l (z, &end, shm_float_c_locale ());
  if (len == 0 || end != z + len)
    r = -EINVAL;
  /* ERANGE also flags underflow, which is fine; overflow is not. */
  else if (errno == ERANGE && (isinf (f) || isinf (d)))
    r = -ERANGE;
  else if (elem == SHM_ELEM_F32)
    memcpy (dst, &f, sizeof f);
  else
    memcpy (dst, &d, sizeof d);
  if (z != stack)
    g_free (z);
  return r;
}

static gboolean
word_is (const char *s, gsize len, const char *word)
{
  return strlen (word) == len && g_ascii_strncasecmp (s, word, len) == 0;
}

static int
parse_bool (const char *s, gsize len, guint8 *out)
{
  static const char *const words[] = {
    "0", "1", "false", "true", "no", "yes", "off", "on",
  };

  for (guint i = 0; i < G_N_ELEMENTS (words); i++)
    if (word_is (s, len, words[i]))
      {
        *out = i % 2;
        return 0;
      }
  return -EINVAL;
}

/* Parses one element token into dst (which may sit at any alignment). */
static int
parse_elem (const ShmType *t, const char *s, gsize len, void *dst)
{
  switch (t->elem)
    {
    case SHM_ELEM_F32:
    case SHM_ELEM_F64:
      return parse_float (t->elem, s, len, dst);
    case SHM_ELEM_BOOL:
      return parse_bool (s, len, dst);
    case SHM_ELEM_CHAR:
    case SHM_ELEM_RECORD:
      g_assert_not_reached ();
    default:
      return parse_int_elem (t->elem, shm_type_elem_size (t), s, len, dst);
    }
}

/* Splits numeric text into element tokens.  Whitespace, one comma, or
 * brackets separate elements; brackets must balance, and a comma must
 * stand between two elements or rows ("1,,2", "[,1]", "1," are malformed). */
typedef enum { TK_START, TK_VALUE, TK_COMMA, TK_OPEN, TK_CLOSE } TokenKind;

typedef struct {
  const char *p, *end;
  gsize depth;
  TokenKind last;
} Tokens;

static void
tokens_init (Tokens *tk, const char *text, gsize len)
{
  *tk = (Tokens) { .p = text, .end = text + len, .last = TK_START };
}

/* Returns 1 and the next token, 0 at a well-formed end, or -EINVAL. */
static int
tokens_next (Tokens *tk, const char **tok, gsize *tok_len)
{
  for (; tk->p < tk->end; tk->p++)
    {
      char c = *tk->p;

      if (g_ascii_isspace (c))
        continue;
      if (c == '[')
        {
          tk->depth++;
          tk->last = TK_OPEN;
        }
      else if (c == ']')
        {
          if (tk->depth == 0 || tk->last == TK_COMMA)
            return -EINVAL;
          tk->depth--;
          tk->last = TK_CLOSE;
        }
      else if (c == ',')
        {
          if (tk->last != TK_VALUE && tk->last != TK_CLOSE)
            return -EINVAL;
          tk->last = TK_COMMA;
        }
      else
        {
          *tok = tk->p;
          while (tk->p < tk->end && !is_separator (*tk->p))
            tk->p++;
          *tok_len = tk->p - *tok;
          tk->last = TK_VALUE;
          return 1;
        }
    }
  return tk->depth != 0 || tk->last == TK_COMMA ? -EINVAL : 0;
}

/* Parses count elements into scratch, then copies them out at once. */
static int
parse_numbers (const ShmType *t, const char *text, gsize len, void *out)
{
  guint64 count = shm_type_count (t), n = 0;
  gsize size = shm_type_elem_size (t);
  guint64 stack[8];
  guint8 *scratch;
  const char *tok;
  gsize tok_len;
  Tokens tk;
  int r;

  trim (&text, &len);
  /* n elements take at least 2n - 1 bytes; this also bounds scratch. */
  if (count > len / 2 + 1)
    return -EINVAL;
  scratch = count * size <= sizeof stack ? (guint8 *) stack
                                         : g_malloc (count * size);
  tokens_init (&tk, text, len);
  while ((r = tokens_next (&tk, &tok, &tok_len)) > 0)
    {
      if (n == count)
        {
          r = -EINVAL;
          break;
        }
      if ((r = parse_elem (t, tok, tok_len, scratch + n * size)) < 0)
        break;
      n++;
    }
  if (r == 0 && n != count)
    r = -EINVAL;
  if (r == 0)
    memcpy (out, scratch, count * size);
  if (scratch != (guint8 *) stack)
    g_free (scratch);
  return r;
}

/* Walks the lines of char[N] text: exactly count lines of at most N bytes.
 * Validates only when out is NULL, else stores NUL-padded elements. */
static int
walk_lines (const ShmType *t, const char *text, gsize len, guint8 *out)
{
  guint64 count = shm_type_count (t);
  const char *p = text, *end = text + len;

  for (guint64 i = 0; i < count; i++)
    {
      const char *nl = memchr (p, '\n', end - p);
      gsize n = (nl ? nl : end) - p;

      if (n > t->char_len || (nl == NULL) != (i + 1 == count))
        return -EINVAL;
      if (out)
        {
          memcpy (out, p, n);
          memset (out + n, 0, t->char_len - n);
          out += t->char_len;
        }
      p += n + 1;
    }
  return 0;
}

static int
parse_chars (const ShmType *t, const char *text, gsize len, void *out)
{
  int r;

  if (len > 0 && text[len - 1] == '\n')
    len--;
  if (len > 0 && memchr (text, '\0', len))
    return -EINVAL;
  if ((r = walk_lines (t, text, len, NULL)) < 0)
    return r;
  return walk_lines (t, text, len, out);
}

int
shm_codec_parse (const ShmType *t, const char *text, gsize len, void *out)
{
  g_autofree guint8 *scratch = NULL;
  int r;

  if (t->elem == SHM_ELEM_CHAR)
    return parse_chars (t, text, len, out);
  if (t->elem != SHM_ELEM_RECORD)
    return parse_numbers (t, text, len, out);
  if (len > shm_codec_max_text (t))
    return -EINVAL;
  scratch = g_malloc0 (shm_type_nbytes (t));
  if ((r = shm_json_merge (t, text, len, scratch, NULL)) == 0)
    memcpy (out, scratch, shm_type_nbytes (t));
  return r;
}

int
shm_codec_merge (const ShmType *t, const char *text, gsize len, guint8 *value,
                 guint8 *mask)
{
  int r;

  if (t->elem == SHM_ELEM_RECORD)
    return shm_json_merge (t, text, len, value, mask);
  if ((r = shm_codec_parse (t, text, len, value)) == 0)
    memset (mask, 1, shm_type_nbytes (t));
  return r;
}

guint64
shm_codec_max_text (const ShmType *t)
{
  if (t->elem == SHM_ELEM_RECORD)
    return shm_json_max_text (t) + SHM_CODEC_TEXT_SLACK;
  return shm_type_count (t) * (SHM_CODEC_TEXT_PER_ELEMENT + t->char_len) + SHM_CODEC_TEXT_SLACK;
}

/* ---- Inference ---- */

typedef enum { KIND_INT, KIND_FLOAT, KIND_BOOL } Kind;

static int
classify (const char *s, gsize len, Kind *kind)
{
  gboolean negative;
  guint64 mag;
  double d;

  if (parse_integer (s, len, &negative, &mag) != -EINVAL)
    *kind = KIND_INT;
  else if (word_is (s, len, "true") || word_is (s, len, "false"))
    *kind = KIND_BOOL;
  else if (parse_float (SHM_ELEM_F64, s, len, &d) != -EINVAL)
    *kind = KIND_FLOAT;
  else
    return -EINVAL;
  return 0;
}

/* Checks every token of text against elem (for -ERANGE) and counts them. */
static int
check_tokens (const char *text, gsize len, const ShmType *t, guint64 *n)
{
  guint64 scratch;
  const char *tok;
  gsize tok_len;
  Tokens tk;
  int r;

  *n = 0;
  tokens_init (&tk, text, len);
  while ((r = tokens_next (&tk, &tok, &tok_len)) > 0)
    {
      if ((r = parse_elem (t, tok, tok_len, &scratch)) < 0)
        return r;
      (*n)++;
    }
  return r;
}

int
shm_codec_infer (const char *text, gsize len, ShmType *out)
{
  gboolean list, any_float = FALSE, any_bool = FALSE;
  ShmType t = { 0 };
  const char *tok;
  gsize tok_len;
  guint64 n = 0;
  Tokens tk;
  int r;

  trim (&text, &len);
  if (len == 0)
    return -EINVAL;
  /* A list is flat: brackets, if any, enclose the whole. */
  list = text[0] == '[';
  if (list != (text[len - 1] == ']'))
    return -EINVAL;
  if (list)
    {
      text++;
      len -= 2;
    }
  if (memchr (text, '[', len) || memchr (text, ']', len))
    return -EINVAL;

  tokens_init (&tk, text, len);
  while ((r = tokens_next (&tk, &tok, &tok_len)) > 0)
    {
      Kind kind;

      if (classify (tok, tok_len, &kind) < 0)
        return -EINVAL;
      any_float |= kind == KIND_FLOAT;
      any_bool |= kind == KIND_BOOL;
      n++;
    }
  if (r < 0 || n == 0)
    return -EINVAL;
  list |= n > 1;
  if (any_bool && list)
    return -EINVAL;

  t.elem = any_bool ? SHM_ELEM_BOOL : any_float ? SHM_ELEM_F64 : SHM_ELEM_I64;
  if ((r = check_tokens (text, len, &t, &n)) < 0)
    return r;
  if (list)
    {
      t.ndim = 1;
      t.dims[0] = n;
    }
  *out = t;
  return 0;
}

/* ---- Incremental scan ---- */

void
shm_codec_scan (const ShmType *t, ShmCodecScan *scan, const char *text,
                gsize len)
{
  gboolean lines = t->elem == SHM_ELEM_CHAR;

  if (t->elem == SHM_ELEM_RECORD)
    {
      scan->elements += shm_json_scan (&scan->json, text, scan->pos, len, &scan->in_token);
      scan->pos = MAX (scan->pos, len);
      return;
    }
  for (gsize i = scan->pos; i < len; i++)
    {
      char c = text[i];

      if (lines)
        {
          /* Any byte, its newline included, belongs to a line. */
          if (!scan->in_token)
            scan->elements++;
          scan->in_token = c != '\n';
        }
      else if (is_separator (c))
        scan->in_token = FALSE;
      else if (!scan->in_token)
        {
          scan->elements++;
          scan->in_token = TRUE;
        }
    }
  scan->pos = MAX (scan->pos, len);
}
