/* shm-codec.c — the text view of typed values.
 *
 * Numbers are read and written in the C locale whatever the process locale:
 * strtod_l() for reading, uselocale() around snprintf() for writing (glibc
 * has no snprintf_l).
 */
#include "shm-codec.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static locale_t
c_locale (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      /* glibc returns its static C locale; this cannot fail. */
      locale_t loc = newlocale (LC_ALL_MASK, "C", (locale_t) 0);

      if (loc == (locale_t) 0)
        g_error ("newlocale (\"C\"): %s", g_strerror (errno));
      g_once_init_leave (&once, (gsize) loc);
    }
  return (locale_t) once;
}

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

/* Writes v's decimal digits to end at end; returns where they start. */
static char *
u64_digits (guint64 v, char *end)
{
  do
    *--end = (char) ('0' + v % 10);
  while ((v /= 10) != 0);
  return end;
}

static void
append_u64 (GString *out, guint64 v, gboolean negative)
{
  char buf[24];
  char *p = u64_digits (v, buf + sizeof buf);

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

/* The text of a float is "%.*g" at the least precision that reads back to
 * the same bits.  Searching that precision with snprintf and strtod costs
 * some ten conversions per number, too slow for big arrays, so:
 *
 * - x's first digits, a few more than ever needed (19 for f64, 12 for
 *   f32), are computed to within ERR units of the last one: by one
 *   128-bit multiplication with a table of powers of ten, or by snprintf
 *   where the compiler has no 128-bit integers;
 * - a normal x has at most one decimal of DIG digits or fewer (15 for f64,
 *   6 for f32) that reads back to it, as half its gap to its neighbours is
 *   under half a DIG-digit step; so rounding the digits to DIG tells
 *   whether the answer is that short, and that rounding's trailing zeros
 *   how short;
 * - the precisions from DIG + 1 to 17 (or 9) are then tried in turn;
 * - rounding our digits is rounding x unless they sit within ERR of a tie;
 *   then snprintf rounds;
 * - a rounded candidate reads back when its distance to x is under half
 *   x's gap to the neighbour on its side.  The distance is known to within
 *   ERR units, so the comparison is made in those units, and only a call
 *   too close to make goes to strtod.
 *
 * Subnormals, whose gaps are wide, take the plain search.  Either way the
 * digits are those of the least precision that reads back. */

typedef struct {
  char d[24];   /* significant digits, no point */
  int n;        /* how many */
  int exp;      /* decimal exponent of d[0] */
} Digits;

typedef struct {
  double x;               /* > 0 */
  gboolean single;        /* x is an f32 */
  Digits all;             /* x's first digits, within err units of the last */
  double err;
  double half;            /* half x's gap above, in units of all's last digit */
  gboolean narrow_below;  /* x's gap below is half its gap above */
} Target;

/* Reads snprintf's "d.ddde+XX". */
static void
digits_from_e (const char *s, Digits *dg)
{
  dg->n = 0;
  for (; *s != 'e'; s++)
    if (*s != '.')
      dg->d[dg->n++] = *s;
  dg->exp = atoi (s + 1);
}

/* x to p digits, correctly rounded. */
static void
digits_printf (double x, int p, Digits *dg)
{
  char buf[40];

  snprintf (buf, sizeof buf, "%.*e", p - 1, x);
  digits_from_e (buf, dg);
}

static void
digits_from_u64 (guint64 v, Digits *dg)
{
  char buf[24];
  char *p = u64_digits (v, buf + sizeof buf);

  dg->n = buf + sizeof buf - p;
  dg->exp = dg->n - 1;
  memcpy (dg->d, p, dg->n);
}

static void
digits_strip (Digits *dg)
{
  while (dg->n > 1 && dg->d[dg->n - 1] == '0')
    dg->n--;
}

static void
digits_round_up (Digits *dg)
{
  int i = dg->n - 1;

  while (i >= 0 && dg->d[i] == '9')
    dg->d[i--] = '0';
  if (i >= 0)
    dg->d[i]++;
  else
    {
      dg->d[0] = '1';
      dg->exp++;
    }
}

static gboolean
digits_read_back (const Digits *dg, double x, gboolean single)
{
  char buf[40];

  snprintf (buf, sizeof buf, "%c.%.*se%d", dg->d[0], dg->n - 1, dg->d + 1,
            dg->exp);
  if (single)
    {
      float y = strtof_l (buf, NULL, c_locale ()), fx = (float) x;

      return memcmp (&y, &fx, sizeof y) == 0;
    }
  else
    {
      double y = strtod_l (buf, NULL, c_locale ());

      return memcmp (&y, &x, sizeof y) == 0;
    }
}

#ifdef __SIZEOF_INT128__
typedef unsigned __int128 u128;

#define POW10_MIN (-300)
#define POW10_MAX 330

/* 10^q is about m * 2^e, m's top bit set; m is truncated at each of the at
 * most 330 steps, so it is low by a relative 2^-114 at most. */
static struct {
  u128 m;
  int e;
} pow10_table[POW10_MAX - POW10_MIN + 1];

static void
pow10_init (void)
{
  const u128 top = (u128) 1 << 127;
  u128 m = top;
  int e = -127;

  pow10_table[-POW10_MIN].m = m;
  pow10_table[-POW10_MIN].e = e;
  for (int q = 1; q <= POW10_MAX; q++)
    {
      m = (m >> 4) * 10;
      e += 4;
      if (!(m & top))
        {
          m <<= 1;
          e--;
        }
      pow10_table[q - POW10_MIN].m = m;
      pow10_table[q - POW10_MIN].e = e;
    }
  m = top;
  e = -127;
  for (int q = -1; q >= POW10_MIN; q--)
    {
      m /= 10;
      while (!(m & top))
        {
          m <<= 1;
          e--;
        }
      pow10_table[q - POW10_MIN].m = m;
      pow10_table[q - POW10_MIN].e = e;
    }
}

/* floor (log10 (2^e2)) for |e2| < 1650. */
static int
floor_log10_pow2 (int e2)
{
  return e2 >= 0 ? (e2 * 78913) >> 18 : -((-e2 * 78913) >> 18) - 1;
}

/* Writes the first n digits (n <= 19) of x = m * 2^k, m < 2^53, within 2
 * units of the last: m times 10^q from the table, truncated, is within
 * about 1 unit, and one division by ten adds at most 1.1. */
static gboolean
approx_digits (guint64 m, int k, int n, Digits *dg)
{
  static gsize once = 0;
  guint64 lo = 1, hi;
  int x10;

  if (g_once_init_enter (&once))
    {
      pow10_init ();
      g_once_init_leave (&once, 1);
    }
  for (int i = 1; i < n; i++)
    lo *= 10;
  hi = lo * 10;
  x10 = floor_log10_pow2 (k + 63 - __builtin_clzll (m));
  for (int tries = 0; tries < 2; tries++)
    {
      int q = n - 1 - x10, s;
      u128 pm, pl, d;

      if (q < POW10_MIN || q > POW10_MAX)
        return FALSE;
      pm = pow10_table[q - POW10_MIN].m;
      /* floor (m * pm / 2^64), then shifted to the units of digit n. */
      pl = (u128) m * (guint64) pm;
      d = (u128) m * (guint64) (pm >> 64) + (pl >> 64);
      s = -(k + pow10_table[q - POW10_MIN].e + 64);
      if (s <= 0 || s >= 128)
        return FALSE;
      d >>= s;
      if (d < lo)
        {
          x10--;
          continue;
        }
      if (d >= hi)
        {
          d /= 10;
          x10++;
        }
      if (d >= hi)
        return FALSE;
      digits_from_u64 ((guint64) d, dg);
      dg->exp = x10;
      return TRUE;
    }
  return FALSE;
}
#endif

/* Writes x = m * 2^k's first n digits; returns their error bound in units
 * of the last. */
static double
first_digits (double x, guint64 m, int k, int n, Digits *dg)
{
#ifdef __SIZEOF_INT128__
  if (approx_digits (m, k, n, dg))
    return 2;
#else
  (void) m;
  (void) k;
#endif
  digits_printf (x, n, dg);
  return 0.5;
}

/* Sets up tg for x > 0.  With x = m * 2^k, m the integer significand, D
 * all's digits as an integer and u their last unit, half = 2^(k-1) / u, or
 * about 2^(k-1) * D / x = D / (2m).  FALSE for a subnormal. */
static gboolean
target_init (Target *tg, double x, gboolean single)
{
  guint64 frac, e, m;
  double dint = 0;
  int k;

  if (single)
    {
      float f = (float) x;
      guint32 b;

      memcpy (&b, &f, sizeof b);
      e = b >> 23;
      frac = b & 0x7fffff;
      m = frac | G_GUINT64_CONSTANT (1) << 23;
      k = (int) e - 150;
    }
  else
    {
      guint64 b;

      memcpy (&b, &x, sizeof b);
      e = b >> 52;
      frac = b & ((G_GUINT64_CONSTANT (1) << 52) - 1);
      m = frac | G_GUINT64_CONSTANT (1) << 52;
      k = (int) e - 1075;
    }
  if (e == 0)
    return FALSE;

  tg->x = x;
  tg->single = single;
  tg->narrow_below = e > 1 && frac == 0;
  tg->err = first_digits (x, m, k, single ? 12 : 19, &tg->all);
  for (int i = 0; i < tg->all.n; i++)
    dint = dint * 10 + (tg->all.d[i] - '0');
  tg->half = dint / (2.0 * (double) m);
  return TRUE;
}

/* Rounds x to p digits into *cand; TRUE when that reads back. */
static gboolean
target_try (const Target *tg, int p, Digits *cand)
{
  double rest = 0, unit = 1, t, half = tg->half;
  gboolean below;

  for (int i = p; i < tg->all.n; i++)
    {
      rest = rest * 10 + (tg->all.d[i] - '0');
      unit *= 10;
    }
  if (ABS (2 * rest - unit) <= 2 * tg->err)
    {
      /* Near a tie: our digits may round the wrong way. */
      digits_printf (tg->x, p, cand);
      return digits_read_back (cand, tg->x, tg->single);
    }

  *cand = tg->all;
  cand->n = p;
  below = 2 * rest < unit;
  t = below ? rest : unit - rest;
  if (!below)
    digits_round_up (cand);
  /* Near x the side is unknown: assume the narrow one. */
  if (tg->narrow_below && (below || t <= tg->err))
    half /= 2;
  if (t + tg->err < half * (1 - 1e-9))
    return TRUE;
  if (t - tg->err > half * (1 + 1e-9))
    return FALSE;
  return digits_read_back (cand, tg->x, tg->single);
}

static void
search_digits (double x, gboolean single, Digits *dg)
{
  int lo = 1, hi = single ? 9 : 17;

  while (lo < hi)
    {
      int mid = (lo + hi) / 2;

      digits_printf (x, mid, dg);
      if (digits_read_back (dg, x, single))
        hi = mid;
      else
        lo = mid + 1;
    }
  digits_printf (x, lo, dg);
}

/* The digits of the least precision at which x > 0 reads back. */
static void
shortest_digits (double x, gboolean single, Digits *dg)
{
  Target tg;

  /* An integer of at most DIG digits is its own shortest text. */
  if (x < (single ? 1e6 : 1e15) && (double) (guint64) x == x)
    digits_from_u64 ((guint64) x, dg);
  else if (!target_init (&tg, x, single))
    search_digits (x, single, dg);
  else
    {
      int dig = single ? 6 : 15, full = single ? 9 : 17, p;

      for (p = dig; p <= full; p++)
        if (target_try (&tg, p, dg))
          break;
      /* Full precision always reads back; this is for safety. */
      if (p > full)
        digits_printf (x, full, dg);
    }
  digits_strip (dg);
}

/* Writes the digits as %g does at their precision, except that an integer
 * up to 1e15 is spelled out when that is no longer ("100" not "1e+02",
 * "10000" but "1e+05"). */
static void
append_digits (GString *out, const Digits *dg)
{
  int n = dg->n, e = dg->exp;

  if (e >= -4 && e < n)
    {
      if (e < 0)
        {
          g_string_append (out, "0.");
          for (int i = -1; i > e; i--)
            g_string_append_c (out, '0');
          g_string_append_len (out, dg->d, n);
        }
      else
        {
          g_string_append_len (out, dg->d, e + 1);
          if (n > e + 1)
            {
              g_string_append_c (out, '.');
              g_string_append_len (out, dg->d + e + 1, n - e - 1);
            }
        }
    }
  else if (e >= 0 && e <= 15 && e + 1 <= n + (n > 1) + 4)
    {
      g_string_append_len (out, dg->d, n);
      for (int i = n; i <= e; i++)
        g_string_append_c (out, '0');
    }
  else
    {
      char buf[8];
      char *p = u64_digits ((guint64) ABS (e), buf + sizeof buf);

      if (ABS (e) < 10)
        *--p = '0';
      *--p = e < 0 ? '-' : '+';
      *--p = 'e';
      g_string_append_c (out, dg->d[0]);
      if (n > 1)
        {
          g_string_append_c (out, '.');
          g_string_append_len (out, dg->d + 1, n - 1);
        }
      g_string_append_len (out, p, buf + sizeof buf - p);
    }
}

static void
append_float (GString *out, double x, gboolean single)
{
  Digits dg;

  if (isnan (x))
    g_string_append (out, "nan");
  else if (isinf (x))
    g_string_append (out, x < 0 ? "-inf" : "inf");
  else if (x == 0)
    g_string_append (out, signbit (x) ? "-0" : "0");
  else
    {
      if (signbit (x))
        g_string_append_c (out, '-');
      shortest_digits (signbit (x) ? -x : x, single, &dg);
      append_digits (out, &dg);
    }
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
    case SHM_ELEM_F32:  append_float (out, v.f32, TRUE); break;
    case SHM_ELEM_F64:  append_float (out, v.f64, FALSE); break;
    case SHM_ELEM_BOOL: g_string_append_c (out, v.u8 ? '1' : '0'); break;
    case SHM_ELEM_CHAR: g_assert_not_reached ();
    }
}

static void
format_chars (const ShmType *t, const guint8 *p, GString *out)
{
  guint64 count = shm_type_count (t);

  for (guint64 i = 0; i < count; i++, p += t->char_len)
    {
      const guint8 *nul = memchr (p, '\0', t->char_len);

      g_string_append_len (out, (const char *) p,
                           nul ? nul - p : (gssize) t->char_len);
      g_string_append_c (out, '\n');
    }
}

void
shm_codec_format (const ShmType *t, const void *data, GString *out)
{
  guint64 count = shm_type_count (t);
  guint64 row = t->ndim > 0 ? t->dims[t->ndim - 1] : 1;
  gsize size = shm_type_elem_size (t);
  const guint8 *p = data;
  locale_t old;

  if (t->elem == SHM_ELEM_CHAR)
    {
      format_chars (t, p, out);
      return;
    }

  old = uselocale (c_locale ());
  for (guint64 i = 0; i < count; i++, p += size)
    {
      append_elem (out, t->elem, p, size);
      g_string_append_c (out, (i + 1) % row == 0 ? '\n' : ' ');
    }
  uselocale (old);
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

/* Indexed by ShmElem; unsigned types have min 0. */
static const struct {
  gint64 min;
  guint64 max;
} int_limits[] = {
  [SHM_ELEM_I8]  = { G_MININT8,  G_MAXINT8 },
  [SHM_ELEM_U8]  = { 0,          G_MAXUINT8 },
  [SHM_ELEM_I16] = { G_MININT16, G_MAXINT16 },
  [SHM_ELEM_U16] = { 0,          G_MAXUINT16 },
  [SHM_ELEM_I32] = { G_MININT32, G_MAXINT32 },
  [SHM_ELEM_U32] = { 0,          G_MAXUINT32 },
  [SHM_ELEM_I64] = { G_MININT64, G_MAXINT64 },
  [SHM_ELEM_U64] = { 0,          G_MAXUINT64 },
};

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
  guint64 mag;
  int r = parse_integer (s, len, &negative, &mag);

  if (r < 0)
    return r;
  /* -(guint64) min is the magnitude of min, 2^63 included. */
  if (negative ? mag > -(guint64) int_limits[elem].min
               : mag > int_limits[elem].max)
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
    f = strtof_l (z, &end, c_locale ());
  else
    d = strtod_l (z, &end, c_locale ());
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
  if (t->elem == SHM_ELEM_CHAR)
    return parse_chars (t, text, len, out);
  return parse_numbers (t, text, len, out);
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
