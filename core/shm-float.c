/* shm-float.c — floats as the shortest text that reads back to them. */
#include "shm-float.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
shm_float_u64_digits (guint64 v, char *end)
{
  do
    *--end = (char) ('0' + v % 10);
  while ((v /= 10) != 0);
  return end;
}

locale_t
shm_float_c_locale (void)
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
  char *p = shm_float_u64_digits (v, buf + sizeof buf);

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
      float y = strtof_l (buf, NULL, shm_float_c_locale ()), fx = (float) x;

      return memcmp (&y, &fx, sizeof y) == 0;
    }
  else
    {
      double y = strtod_l (buf, NULL, shm_float_c_locale ());

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
      char *p = shm_float_u64_digits ((guint64) ABS (e), buf + sizeof buf);

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

void
shm_float_append (GString *out, double x, gboolean single)
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

