/* test-codec.c — the text view: format, parse, infer, scan. */
#include "shm-codec.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED 20240601
#define ROUNDS 100000
#define POISON 0xa5

static ShmType
type_of (const char *spec)
{
  ShmType t;

  g_assert_cmpint (shm_type_parse (spec, strlen (spec), &t), ==, 0);
  return t;
}

static char *
format (const char *spec, const void *data)
{
  ShmType t = type_of (spec);
  GString *out = g_string_new (NULL);

  shm_codec_format (&t, data, out);
  return g_string_free (out, FALSE);
}

static int
parse (const char *spec, const char *text, void *out)
{
  ShmType t = type_of (spec);

  return shm_codec_parse (&t, text, strlen (text), out);
}

static void
assert_parse_fails (const char *spec, const char *text, gsize len, int err)
{
  ShmType t = type_of (spec);
  guint8 buf[256];
  int r;

  g_assert_cmpuint (shm_type_nbytes (&t), <=, sizeof buf);
  memset (buf, POISON, sizeof buf);
  r = shm_codec_parse (&t, text, len, buf);
  if (r != err)
    g_error ("parse %s \"%s\": got %d, want %d", spec, text, r, err);
  for (guint i = 0; i < sizeof buf; i++)
    g_assert_cmphex (buf[i], ==, POISON);
}

static void
assert_format (const char *spec, const void *data, const char *want)
{
  g_autofree char *got = format (spec, data);

  g_assert_cmpstr (got, ==, want);
}

/* ---- Integers ---- */

static const struct {
  const char *spec;
  const char *min, *max, *below, *above;
  const char *hex_min, *hex_max, *hex_above;
  gint64 smin;
  guint64 umax;
} int_limits[] = {
  { "i8", "-128", "127", "-129", "128", "-0x80", "0x7f", "0x80",
    G_MININT8, G_MAXINT8 },
  { "u8", "0", "255", "-1", "256", "-0x0", "0xff", "0x100",
    0, G_MAXUINT8 },
  { "i16", "-32768", "32767", "-32769", "32768", "-0x8000", "0x7fff",
    "0x8000", G_MININT16, G_MAXINT16 },
  { "u16", "0", "65535", "-1", "65536", "-0", "0xFFFF", "0x10000",
    0, G_MAXUINT16 },
  { "i32", "-2147483648", "2147483647", "-2147483649", "2147483648",
    "-0x80000000", "0x7fffffff", "0x80000000", G_MININT32, G_MAXINT32 },
  { "u32", "0", "4294967295", "-1", "4294967296", "0x0", "0XFFFFFFFF",
    "0x100000000", 0, G_MAXUINT32 },
  { "i64", "-9223372036854775808", "9223372036854775807",
    "-9223372036854775809", "9223372036854775808",
    "-0x8000000000000000", "0x7fffffffffffffff", "0x8000000000000000",
    G_MININT64, G_MAXINT64 },
  { "u64", "0", "18446744073709551615", "-1", "18446744073709551616",
    "+0", "0xffffffffffffffff", "0x10000000000000000", 0, G_MAXUINT64 },
};

/* Reads an integer element back, sign-extended or zero-extended. */
static void
load_int (const ShmType *t, const void *p, gint64 *s, guint64 *u)
{
  union { gint8 i8; guint8 u8; gint16 i16; guint16 u16; gint32 i32;
          guint32 u32; gint64 i64; guint64 u64; } v;

  memcpy (&v, p, shm_type_elem_size (t));
  switch (t->elem)
    {
    case SHM_ELEM_I8: *s = v.i8; break;
    case SHM_ELEM_U8: *u = v.u8; break;
    case SHM_ELEM_I16: *s = v.i16; break;
    case SHM_ELEM_U16: *u = v.u16; break;
    case SHM_ELEM_I32: *s = v.i32; break;
    case SHM_ELEM_U32: *u = v.u32; break;
    case SHM_ELEM_I64: *s = v.i64; break;
    case SHM_ELEM_U64: *u = v.u64; break;
    default: g_assert_not_reached ();
    }
}

static gboolean
is_signed (const ShmType *t)
{
  return t->elem == SHM_ELEM_I8 || t->elem == SHM_ELEM_I16
         || t->elem == SHM_ELEM_I32 || t->elem == SHM_ELEM_I64;
}

static void
assert_int (const char *spec, const char *text, gint64 smin_or_0,
            guint64 umax_or_0, gboolean want_min)
{
  ShmType t = type_of (spec);
  guint8 buf[8];
  gint64 s = 0;
  guint64 u = 0;

  g_assert_cmpint (shm_codec_parse (&t, text, strlen (text), buf), ==, 0);
  load_int (&t, buf, &s, &u);
  if (is_signed (&t))
    g_assert_cmpint (s, ==, want_min ? smin_or_0 : (gint64) umax_or_0);
  else
    g_assert_cmpuint (u, ==, want_min ? 0 : umax_or_0);
}

static void
test_int_limits (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (int_limits); i++)
    {
      const char *spec = int_limits[i].spec;
      ShmType t = type_of (spec);
      guint8 buf[8];
      g_autofree char *want_min = g_strconcat (int_limits[i].min, "\n", NULL);
      g_autofree char *want_max = g_strconcat (int_limits[i].max, "\n", NULL);
      g_autofree char *got = NULL;

      assert_int (spec, int_limits[i].min, int_limits[i].smin, 0, TRUE);
      assert_int (spec, int_limits[i].max, 0, int_limits[i].umax, FALSE);
      assert_int (spec, int_limits[i].hex_min, int_limits[i].smin, 0, TRUE);
      assert_int (spec, int_limits[i].hex_max, 0, int_limits[i].umax, FALSE);

      g_assert_cmpint (parse (spec, int_limits[i].min, buf), ==, 0);
      assert_format (spec, buf, want_min);
      g_assert_cmpint (parse (spec, int_limits[i].max, buf), ==, 0);
      got = format (spec, buf);
      g_assert_cmpstr (got, ==, want_max);

      assert_parse_fails (spec, int_limits[i].below,
                          strlen (int_limits[i].below), -ERANGE);
      assert_parse_fails (spec, int_limits[i].above,
                          strlen (int_limits[i].above), -ERANGE);
      assert_parse_fails (spec, int_limits[i].hex_above,
                          strlen (int_limits[i].hex_above), -ERANGE);
      assert_parse_fails (spec, "99999999999999999999999", 23, -ERANGE);
      assert_parse_fails (spec, "-99999999999999999999999", 24, -ERANGE);
      assert_parse_fails (spec, "0x1ffffffffffffffff", 19, -ERANGE);
      g_assert_cmpuint (shm_type_elem_size (&t), <=, sizeof buf);
    }
}

static void
test_int_forms (void)
{
  static const struct {
    const char *spec, *text;
    gint64 value;
  } cases[] = {
    { "i32", "010", 10 }, { "i32", "0", 0 }, { "i32", "-0", 0 },
    { "i32", "+5", 5 }, { "i32", "0x10", 16 }, { "i32", "0X1f", 31 },
    { "i32", "-0x10", -16 }, { "i32", "+0xA", 10 }, { "i32", "0x0", 0 },
    { "i32", "00000000000000000000000000042", 42 },
    { "i32", "0x0000000000000000000000000ff", 255 },
    { "u8", "-0", 0 }, { "u8", "007", 7 }, { "i64", " 12 \n", 12 },
    { "i64", "\t-3\r\n", -3 }, { "i16", "[7]", 7 }, { "u16", "7\n", 7 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      ShmType t = type_of (cases[i].spec);
      guint8 buf[8];
      gint64 s = 0;
      guint64 u = 0;

      g_assert_cmpint (parse (cases[i].spec, cases[i].text, buf), ==, 0);
      load_int (&t, buf, &s, &u);
      g_assert_cmpint (is_signed (&t) ? s : (gint64) u, ==, cases[i].value);
    }
}

/* Malformed and out-of-range text, with the errno each must give; the
 * output buffer must stay untouched. */
static void
test_parse_errors (void)
{
  static const struct {
    const char *spec, *text;
    int err;
  } cases[] = {
    { "i32", "1.5", -EINVAL }, { "i32", "abc", -EINVAL },
    { "i32", "", -EINVAL }, { "i32", " ", -EINVAL }, { "i32", "\n", -EINVAL },
    { "i32", "1 2", -EINVAL }, { "i32", "0x", -EINVAL },
    { "i32", "-0x", -EINVAL }, { "i32", "--1", -EINVAL },
    { "i32", "+-1", -EINVAL }, { "i32", "-", -EINVAL }, { "i32", "+", -EINVAL },
    { "i32", "1e3", -EINVAL }, { "i32", "0x1g", -EINVAL },
    { "i32", "1x", -EINVAL }, { "i32", "- 1", -EINVAL },
    { "i32", "0b101", -EINVAL }, { "i32", "1_000", -EINVAL },
    { "i32", "0x-1", -EINVAL }, { "i32", "0xx1", -EINVAL },
    { "i32", "inf", -EINVAL }, { "i32", "nan", -EINVAL },
    { "i32", "true", -EINVAL }, { "i32", "１", -EINVAL },
    { "i32", "[1", -EINVAL }, { "i32", "1]", -EINVAL },
    { "i32", "[[1]", -EINVAL }, { "i32", "1,", -EINVAL },
    { "i32", ",1", -EINVAL }, { "i32", "[,1]", -EINVAL },
    { "i32", "[1,]", -EINVAL }, { "i32", "][", -EINVAL },
    { "i32", "[]", -EINVAL }, { "i32", "12345678901", -ERANGE },
    { "u8", "256", -ERANGE }, { "u8", "-1", -ERANGE },
    { "u8", "-0x1", -ERANGE }, { "i8", "-129", -ERANGE },
    { "u64", "-1", -ERANGE },
    { "i32[3]", "1 2", -EINVAL }, { "i32[3]", "1 2 3 4", -EINVAL },
    { "i32[3]", "1,,2,3", -EINVAL }, { "i32[3]", "1,2,3,", -EINVAL },
    { "i32[3]", ",1,2,3", -EINVAL }, { "i32[3]", "1, ,2,3", -EINVAL },
    { "i32[3]", "[1,2,3", -EINVAL }, { "i32[3]", "1,2,3]", -EINVAL },
    { "i32[3]", "[1,2],3]", -EINVAL }, { "i32[3]", "1 2 x", -EINVAL },
    { "i32[3]", "1 2 1.5", -EINVAL }, { "i32[3]", "1 2 3e0", -EINVAL },
    { "i32[3]", "1 2 3000000000", -ERANGE },
    { "i32[3]", "", -EINVAL },
    { "f64", "", -EINVAL }, { "f64", "abc", -EINVAL },
    { "f64", "1.5x", -EINVAL }, { "f64", "1,5", -EINVAL },
    { "f64", "1.5.5", -EINVAL }, { "f64", "0x", -EINVAL },
    { "f64", "e5", -EINVAL }, { "f64", "1e", -EINVAL },
    { "f64", "--1", -EINVAL }, { "f64", "infx", -EINVAL },
    { "f64", "true", -EINVAL }, { "f64", "1e309", -ERANGE },
    { "f64", "-1e309", -ERANGE }, { "f64", "1.8e308", -ERANGE },
    { "f64", "0x1p1024", -ERANGE },
    { "f32", "1e39", -ERANGE }, { "f32", "-3.5e38", -ERANGE },
    { "f32", "1.5x", -EINVAL },
    { "f64[2]", "1 1e999", -ERANGE }, { "f64[2]", "1 2 3", -EINVAL },
    { "bool", "2", -EINVAL }, { "bool", "tru", -EINVAL },
    { "bool", "yes please", -EINVAL }, { "bool", "", -EINVAL },
    { "bool", "-1", -EINVAL }, { "bool", "0x1", -EINVAL },
    { "bool", "truefalse", -EINVAL }, { "bool[2]", "1", -EINVAL },
    { "char[4]", "hello", -EINVAL }, { "char[4]", "abcd\n\n", -EINVAL },
    { "char[4]", "ab\ncd", -EINVAL }, { "char[4][2]", "ab", -EINVAL },
    { "char[4][2]", "ab\ncd\nef", -EINVAL },
    { "char[4][2]", "ab\nhello", -EINVAL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    assert_parse_fails (cases[i].spec, cases[i].text, strlen (cases[i].text),
                        cases[i].err);

  /* Embedded NUL bytes are never data. */
  assert_parse_fails ("i32", "1\0", 2, -EINVAL);
  assert_parse_fails ("f64", "1\0", 2, -EINVAL);
  assert_parse_fails ("bool", "1\0", 2, -EINVAL);
  assert_parse_fails ("char[8]", "ab\0cd", 5, -EINVAL);
  assert_parse_fails ("char[8][2]", "ab\ncd\0\n", 7, -EINVAL);
  /* A huge count cannot be met by a short text, nor allocate. */
  {
    ShmType t = type_of ("u8[1099511627776]");
    guint8 untouched = POISON;

    g_assert_cmpint (shm_codec_parse (&t, "1", 1, &untouched), ==, -EINVAL);
    g_assert_cmphex (untouched, ==, POISON);
  }
}

static void
test_parse_length_bound (void)
{
  guint8 v = 0;
  gint32 a[2];
  ShmType t = type_of ("u8");
  ShmType ta = type_of ("i32[2]");

  /* The text need not be NUL-terminated: len bounds it. */
  g_assert_cmpint (shm_codec_parse (&t, "12345", 2, &v), ==, 0);
  g_assert_cmpuint (v, ==, 12);
  g_assert_cmpint (shm_codec_parse (&ta, "1 2 3", 3, a), ==, 0);
  g_assert_cmpint (a[0], ==, 1);
  g_assert_cmpint (a[1], ==, 2);
}

static void
test_int_property (void)
{
  static const char *const specs[] = {
    "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64",
  };
  GRand *rand = g_rand_new_with_seed (SEED);
  GString *out = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (specs); i++)
    {
      ShmType t = type_of (specs[i]);
      gsize size = shm_type_elem_size (&t);

      for (guint n = 0; n < ROUNDS; n++)
        {
          guint32 in[2] = { g_rand_int (rand), g_rand_int (rand) };
          guint8 back[8];

          g_string_truncate (out, 0);
          shm_codec_format (&t, in, out);
          g_assert_cmpint (shm_codec_parse (&t, out->str, out->len, back),
                           ==, 0);
          g_assert_true (memcmp (in, back, size) == 0);
        }
    }
  g_string_free (out, TRUE);
  g_rand_free (rand);
}

/* ---- Floats ---- */

static char *
format_f64 (double x)
{
  return format ("f64", &x);
}

static char *
format_f32 (float x)
{
  return format ("f32", &x);
}

static void
test_f64_shortest (void)
{
  static const struct {
    double x;
    const char *text;
  } cases[] = {
    { 3.1415926, "3.1415926\n" }, { 0.1, "0.1\n" }, { -1.5, "-1.5\n" },
    { 0.1 + 0.2, "0.30000000000000004\n" }, { 1.0 / 3, "0.3333333333333333\n" },
    { 0.0, "0\n" }, { -0.0, "-0\n" }, { 1.0, "1\n" }, { 42.0, "42\n" },
    { 100.0, "100\n" }, { 10000.0, "10000\n" }, { 1e5, "1e+05\n" },
    { 123456.0, "123456\n" }, { 1.5e6, "1500000\n" }, { 1.5e7, "1.5e+07\n" },
    { 1e15, "1e+15\n" }, { 1e16, "1e+16\n" }, { 1e23, "1e+23\n" },
    { 123456789012345.0, "123456789012345\n" },
    { 1234567890123456.0, "1234567890123456\n" },
    { 9007199254740992.0, "9007199254740992\n" },
    { 9007199254740994.0, "9007199254740994\n" },
    { 0.0001, "0.0001\n" }, { 0.00012, "0.00012\n" }, { 1e-5, "1e-05\n" },
    { 1.25e-7, "1.25e-07\n" }, { 1e300, "1e+300\n" }, { 1e-300, "1e-300\n" },
    { 2.5, "2.5\n" }, { 0.5, "0.5\n" },
    { 1024.0 * 1024 * 1024, "1073741824\n" },
    { DBL_MAX, "1.7976931348623157e+308\n" },
    { DBL_MIN, "2.2250738585072014e-308\n" },
    { 4.9406564584124654e-324, "5e-324\n" },
    { 2.2250738585072009e-308, "2.225073858507201e-308\n" },
    { HUGE_VAL, "inf\n" }, { -HUGE_VAL, "-inf\n" },
  };
  double nans[] = { NAN, -NAN };
  guint64 payload = G_GUINT64_CONSTANT (0x7ff0000000000001);
  double snan;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *got = format_f64 (cases[i].x);

      g_assert_cmpstr (got, ==, cases[i].text);
    }
  memcpy (&snan, &payload, sizeof snan);
  for (guint i = 0; i < G_N_ELEMENTS (nans); i++)
    {
      g_autofree char *got = format_f64 (nans[i]);

      g_assert_cmpstr (got, ==, "nan\n");
    }
  assert_format ("f64", &snan, "nan\n");
}

static void
test_f64_text_round_trip (void)
{
  static const char *const texts[] = {
    "3.1415926", "0.1", "2.718281828459045", "1e-05", "6.02214076e+23",
    "-273.15", "1e+100", "5e-324", "123456", "0.30000000000000004",
  };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      double x;
      g_autofree char *want = g_strconcat (texts[i], "\n", NULL);

      g_assert_cmpint (parse ("f64", texts[i], &x), ==, 0);
      assert_format ("f64", &x, want);
    }
}

static void
test_f32_shortest (void)
{
  static const struct {
    float x;
    const char *text;
  } cases[] = {
    { 0.1f, "0.1\n" }, { 1.5f, "1.5\n" }, { -2.75f, "-2.75\n" },
    { 3.1415926f, "3.1415925\n" }, { 1.0f / 3, "0.33333334\n" },
    { 100.0f, "100\n" }, { 1e5f, "1e+05\n" }, { 1e10f, "1e+10\n" },
    { 16777216.0f, "16777216\n" }, { 7e-10f, "7e-10\n" },
    { FLT_MAX, "3.4028235e+38\n" }, { FLT_MIN, "1.1754944e-38\n" },
    { 1.40129846e-45f, "1e-45\n" }, { 0.0f, "0\n" }, { -0.0f, "-0\n" },
    { HUGE_VALF, "inf\n" }, { -HUGE_VALF, "-inf\n" }, { NAN, "nan\n" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *got = format_f32 (cases[i].x);

      g_assert_cmpstr (got, ==, cases[i].text);
    }
}

static void
test_float_parse (void)
{
  static const struct {
    const char *text;
    double value;
  } cases[] = {
    { "1.5", 1.5 }, { "  2.5\n", 2.5 }, { "-0.25", -0.25 }, { "+3", 3 },
    { "1e3", 1000 }, { "1E3", 1000 }, { "1e300", 1e300 }, { ".5", 0.5 },
    { "5.", 5 }, { "0x1p3", 8 }, { "0x10", 16 }, { "010", 10 },
    { "inf", HUGE_VAL }, { "-inf", -HUGE_VAL }, { "Infinity", HUGE_VAL },
    { "INF", HUGE_VAL }, { "1e-400", 0 }, { "[4.5]", 4.5 },
    { "4e-320", 4e-320 }, { "1.7976931348623157e308", DBL_MAX },
  };
  static const char *const nans[] = { "nan", "-nan", "NaN", "nan(123)" };
  double d;
  float f;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_assert_cmpint (parse ("f64", cases[i].text, &d), ==, 0);
      g_assert_cmpfloat (d, ==, cases[i].value);
    }
  for (guint i = 0; i < G_N_ELEMENTS (nans); i++)
    {
      g_assert_cmpint (parse ("f64", nans[i], &d), ==, 0);
      g_assert_true (isnan (d));
      g_assert_cmpint (parse ("f32", nans[i], &f), ==, 0);
      g_assert_true (isnan (f));
    }
  g_assert_cmpint (parse ("f64", "-0", &d), ==, 0);
  g_assert_true (d == 0 && signbit (d));

  g_assert_cmpint (parse ("f32", "3.4028235e38", &f), ==, 0);
  g_assert_cmpfloat (f, ==, FLT_MAX);
  g_assert_cmpint (parse ("f32", "1e-50", &f), ==, 0);
  g_assert_cmpfloat (f, ==, 0);
  g_assert_cmpint (parse ("f32", "inf", &f), ==, 0);
  g_assert_true (isinf (f));
  /* f32 rounds the text once, not through f64. */
  g_assert_cmpint (parse ("f32", "1.00000005960464477539062500001", &f), ==, 0);
  g_assert_cmpfloat (f, ==, 1.0f + FLT_EPSILON);
}

/* Checks that text has the same significant digits as "%.*g" at the least
 * precision that reads back to x. */
static void
assert_shortest_digits (const char *text, double x, gboolean single)
{
  char ref[320], a[320], b[320];
  int p;

  for (p = 1; p < (single ? 9 : 17); p++)
    {
      snprintf (ref, sizeof ref, "%.*g", p, x);
      if (single ? strtof (ref, NULL) == (float) x : strtod (ref, NULL) == x)
        break;
    }
  snprintf (ref, sizeof ref, "%.*g", p, x);
  for (int k = 0; k < 2; k++)
    {
      const char *s = k ? ref : text;
      char *d = k ? b : a;
      int n = 0;

      for (; *s && *s != 'e' && *s != '\n'; s++)
        if (g_ascii_isdigit (*s) && (n > 0 || *s != '0'))
          d[n++] = *s;
      while (n > 1 && d[n - 1] == '0')
        n--;
      d[n] = '\0';
    }
  if (strcmp (a, b) != 0)
    g_error ("%.17g: got %s, shortest is %s", x, text, ref);
}

static void
float_property (gboolean single)
{
  ShmType t = type_of (single ? "f32" : "f64");
  GRand *rand = g_rand_new_with_seed (SEED);
  GString *out = g_string_new (NULL);
  guint nan_count = 0;

  for (guint n = 0; n < ROUNDS; n++)
    {
      guint32 in[2] = { g_rand_int (rand), g_rand_int (rand) };
      guint8 back[8];
      double x;
      float f;

      g_string_truncate (out, 0);
      shm_codec_format (&t, in, out);
      g_assert_cmpint (shm_codec_parse (&t, out->str, out->len, back), ==, 0);
      if (single)
        {
          memcpy (&f, in, sizeof f);
          x = f;
        }
      else
        memcpy (&x, in, sizeof x);
      if (isnan (x))
        {
          g_assert_cmpstr (out->str, ==, "nan\n");
          memcpy (single ? (void *) &f : (void *) &x, back, single ? 4 : 8);
          g_assert_true (single ? isnan (f) : isnan (x));
          nan_count++;
          continue;
        }
      g_assert_true (memcmp (in, back, single ? 4 : 8) == 0);
      /* The reference search is slow; check shortness on a sample. */
      if (n % 8 == 0 && !isinf (x) && x != 0)
        assert_shortest_digits (out->str, x, single);
    }
  g_test_message ("%u NaNs", nan_count);
  g_string_free (out, TRUE);
  g_rand_free (rand);
}

static void
test_f64_property (void)
{
  float_property (FALSE);
}

static void
test_f32_property (void)
{
  float_property (TRUE);
}

/* Powers of two sit next to a narrower gap below; powers of ten are where
 * the digit count changes.  Check both, with their neighbours (one bit
 * pattern up or down is one float up or down). */
static void
test_float_edges (void)
{
  GString *out = g_string_new (NULL);
  ShmType t64 = type_of ("f64"), t32 = type_of ("f32");

  for (int e = -1074; e <= 1023; e++)
    for (int k = -2; k <= 2; k++)
      {
        guint64 bits = e >= -1022 ? (guint64) (e + 1023) << 52
                                  : G_GUINT64_CONSTANT (1) << (e + 1074);
        double x, back;

        if (k < 0 && bits < (guint64) -k)
          continue;
        bits += k;
        memcpy (&x, &bits, sizeof x);
        g_string_truncate (out, 0);
        shm_codec_format (&t64, &x, out);
        g_assert_cmpint (shm_codec_parse (&t64, out->str, out->len, &back),
                         ==, 0);
        g_assert_cmpfloat (back, ==, x);
        if (!isinf (x))
          assert_shortest_digits (out->str, x, FALSE);
      }
  for (int e = -45; e <= 38; e++)
    for (int k = -2; k <= 2; k++)
      {
        char text[16];
        float f, back;
        guint32 bits;

        snprintf (text, sizeof text, "1e%d", e);
        f = strtof (text, NULL);
        memcpy (&bits, &f, sizeof bits);
        if (k < 0 && bits < (guint32) -k)
          continue;
        bits += k;
        memcpy (&f, &bits, sizeof f);
        g_string_truncate (out, 0);
        shm_codec_format (&t32, &f, out);
        g_assert_cmpint (shm_codec_parse (&t32, out->str, out->len, &back),
                         ==, 0);
        g_assert_cmpfloat (back, ==, f);
        if (f != 0 && !isinf (f))
          assert_shortest_digits (out->str, f, TRUE);
      }
  g_string_free (out, TRUE);
}

static void
test_float_locale (void)
{
  static const char *const names[] = {
    "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "ru_RU.UTF-8",
  };
  const char *found = NULL;
  double x = 0;

  for (guint i = 0; i < G_N_ELEMENTS (names) && !found; i++)
    found = setlocale (LC_ALL, names[i]);
  if (!found)
    {
      g_test_skip ("no locale with a decimal comma is installed");
      return;
    }
  g_assert_cmpint (parse ("f64", "1.5", &x), ==, 0);
  g_assert_cmpfloat (x, ==, 1.5);
  assert_format ("f64", &x, "1.5\n");
  x = 1e-7;
  assert_format ("f64", &x, "1e-07\n");
  /* Subnormals take the snprintf path. */
  x = 2.2250738585072009e-308;
  assert_format ("f64", &x, "2.225073858507201e-308\n");
  g_assert_cmpint (parse ("f64", "2.225073858507201e-308", &x), ==, 0);
  g_assert_cmpfloat (x, ==, 2.2250738585072009e-308);
  setlocale (LC_ALL, "C");
}

static void
test_f64_speed (void)
{
  ShmType t = type_of ("f64[131072]");
  double *data = g_new (double, 131072);
  GRand *rand = g_rand_new_with_seed (SEED);
  GString *out = g_string_sized_new (4 << 20);
  gint64 start, took[2];

  for (int pass = 0; pass < 2; pass++)
    {
      for (guint i = 0; i < 131072; i++)
        data[i] = pass ? g_rand_double (rand) : i * 0.1;
      g_string_truncate (out, 0);
      start = g_get_monotonic_time ();
      shm_codec_format (&t, data, out);
      took[pass] = g_get_monotonic_time () - start;
      g_test_message ("1 MiB of f64 (%s) formats in %.1f ms",
                      pass ? "random" : "i * 0.1", took[pass] / 1000.0);
    }
  /* Timing is only meaningful in an optimised build: g_test_perf (). */
  if (g_test_perf ())
    {
      g_assert_cmpint (took[0], <, 100000);
      g_assert_cmpint (took[1], <, 100000);
    }
  g_string_free (out, TRUE);
  g_rand_free (rand);
  g_free (data);
}

/* ---- bool and char ---- */

static void
test_bool (void)
{
  static const struct {
    const char *text;
    guint8 value;
  } cases[] = {
    { "0", 0 }, { "1", 1 }, { "true", 1 }, { "false", 0 }, { "yes", 1 },
    { "no", 0 }, { "on", 1 }, { "off", 0 }, { "TRUE", 1 }, { "False", 0 },
    { "YeS", 1 }, { "nO", 0 }, { "On", 1 }, { "OFF", 0 }, { " true\n", 1 },
  };
  guint8 b, three[3] = { 1, 0, 7 };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      b = POISON;
      g_assert_cmpint (parse ("bool", cases[i].text, &b), ==, 0);
      g_assert_cmpuint (b, ==, cases[i].value);
      assert_format ("bool", &b, cases[i].value ? "1\n" : "0\n");
    }
  /* Any non-zero byte written through the binary view reads as 1. */
  assert_format ("bool[3]", three, "1 0 1\n");
  g_assert_cmpint (parse ("bool[3]", "[True, False, yes]", three), ==, 0);
  g_assert_cmpmem (three, 3, "\1\0\1", 3);
}

static void
test_char_scalar (void)
{
  char buf[8];

  g_assert_cmpint (parse ("char[8]", "hello", buf), ==, 0);
  g_assert_cmpmem (buf, 8, "hello\0\0\0", 8);
  assert_format ("char[8]", buf, "hello\n");

  memset (buf, 'x', sizeof buf);
  g_assert_cmpint (parse ("char[8]", "hello\n", buf), ==, 0);
  g_assert_cmpmem (buf, 8, "hello\0\0\0", 8);

  /* Exactly the capacity: no terminating NUL is needed. */
  g_assert_cmpint (parse ("char[8]", "12345678\n", buf), ==, 0);
  g_assert_cmpmem (buf, 8, "12345678", 8);
  assert_format ("char[8]", buf, "12345678\n");

  /* Only one trailing newline is stripped; other spaces are data. */
  g_assert_cmpint (parse ("char[8]", " hi  \t\n", buf), ==, 0);
  g_assert_cmpmem (buf, 8, " hi  \t\0\0", 8);
  assert_format ("char[8]", buf, " hi  \t\n");

  g_assert_cmpint (parse ("char[8]", "", buf), ==, 0);
  g_assert_cmpmem (buf, 8, "\0\0\0\0\0\0\0\0", 8);
  g_assert_cmpint (parse ("char[8]", "\n", buf), ==, 0);
  assert_format ("char[8]", buf, "\n");

  assert_parse_fails ("char[8]", "123456789", 9, -EINVAL);
  assert_parse_fails ("char[8]", "123456789\n", 10, -EINVAL);

  /* The text view stops at the first NUL. */
  memcpy (buf, "ab\0cdefg", 8);
  assert_format ("char[8]", buf, "ab\n");

  g_assert_cmpint (parse ("c", "x", buf), ==, 0);
  g_assert_cmpint (buf[0], ==, 'x');
  assert_format ("c", buf, "x\n");
}

static void
test_char_array (void)
{
  char buf[12];

  g_assert_cmpint (parse ("char[4][3]", "ab\ncd\nef\n", buf), ==, 0);
  g_assert_cmpmem (buf, 12, "ab\0\0cd\0\0ef\0\0", 12);
  assert_format ("char[4][3]", buf, "ab\ncd\nef\n");

  g_assert_cmpint (parse ("char[4][3]", "abcd\n\n x", buf), ==, 0);
  g_assert_cmpmem (buf, 12, "abcd\0\0\0\0 x\0\0", 12);
  assert_format ("char[4][3]", buf, "abcd\n\n x\n");

  g_assert_cmpint (parse ("char[4][3]", "\n\n\n", buf), ==, 0);
  g_assert_cmpmem (buf, 12, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);

  assert_parse_fails ("char[4][3]", "ab\ncd", 5, -EINVAL);
  assert_parse_fails ("char[4][3]", "ab\ncd\nef\ngh", 11, -EINVAL);
  assert_parse_fails ("char[4][3]", "ab\ncdefg\nef", 11, -EINVAL);
  assert_parse_fails ("char[4][3]", "", 0, -EINVAL);
}

/* ---- Arrays ---- */

static void
assert_i32s (const char *spec, const char *text, const gint32 *want, guint n)
{
  gint32 got[16];

  g_assert_cmpuint (n, <=, G_N_ELEMENTS (got));
  if (parse (spec, text, got) != 0)
    g_error ("parse %s \"%s\" failed", spec, text);
  g_assert_cmpmem (got, n * sizeof *got, want, n * sizeof *want);
}

static void
test_array_separators (void)
{
  static const char *const texts[] = {
    "1 2 3 4", "1,2,3,4", "1, 2, 3, 4", "[1, 2, 3, 4]", "1\t2\n3  4",
    "[1 2 3 4]\n", " 1 , 2 ,3,4 ", "\n1 2 3 4\n", "1 ,2 , 3,\n4",
    "[1, 2, 3, 4]\n", "1\r\n2\r\n3\r\n4\r\n", "[[1, 2, 3, 4]]",
  };
  static const gint32 want[] = { 1, 2, 3, 4 };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    assert_i32s ("i32[4]", texts[i], want, 4);
}

static void
test_array_brackets (void)
{
  static const char *const texts[] = {
    "[[1, 2], [3, 4]]", "[[1 2]\n [3 4]]", "[1, 2], [3, 4]", "[1 2] [3 4]",
    "[1,2][3,4]", "1 2\n3 4\n", "[[1, 2],\n [3, 4]]\n",
  };
  static const gint32 want[] = { 1, 2, 3, 4 };
  static const char *const bad[] = {
    "[[1, 2], [3, 4]", "[1, 2]], [[3, 4]", "]1 2 3 4[", "[[1, 2],, [3, 4]]",
    "[[1, 2], [3, 4],]", "[[1, 2] [3, 4]]]", "[1, 2], [3, 4], []x",
  };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    assert_i32s ("i32[2][2]", texts[i], want, 4);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    assert_parse_fails ("i32[2][2]", bad[i], strlen (bad[i]), -EINVAL);
}

static void
test_array_python_output (void)
{
  double f[3];
  gint64 m[2][2];
  double n[2][2];

  /* print([1.5, 2.0, 3.0]) */
  g_assert_cmpint (parse ("f64[3]", "[1.5, 2.0, 3.0]\n", f), ==, 0);
  g_assert_cmpfloat (f[2], ==, 3.0);
  /* print([[1, 2], [3, 4]]) */
  g_assert_cmpint (parse ("i64[2][2]", "[[1, 2], [3, 4]]\n", m), ==, 0);
  g_assert_cmpint (m[1][0], ==, 3);
  /* print(numpy.array([[1., 2.], [3., 4.]])) */
  g_assert_cmpint (parse ("f64[2][2]", "[[1. 2.]\n [3. 4.]]\n", n), ==, 0);
  g_assert_cmpfloat (n[1][1], ==, 4.0);
}

static void
test_array_all_or_nothing (void)
{
  gint32 a[4] = { 9, 9, 9, 9 };
  static const gint32 nines[] = { 9, 9, 9, 9 };

  /* The first elements are fine; the last is not. */
  g_assert_cmpint (parse ("i32[4]", "1 2 3 x", a), ==, -EINVAL);
  g_assert_cmpmem (a, sizeof a, nines, sizeof nines);
  g_assert_cmpint (parse ("i32[4]", "1 2 3 9999999999", a), ==, -ERANGE);
  g_assert_cmpmem (a, sizeof a, nines, sizeof nines);
  g_assert_cmpint (parse ("i32[4]", "1 2 3", a), ==, -EINVAL);
  g_assert_cmpmem (a, sizeof a, nines, sizeof nines);
  g_assert_cmpint (parse ("i32[4]", "1 2 3 4 5", a), ==, -EINVAL);
  g_assert_cmpmem (a, sizeof a, nines, sizeof nines);
}

static void
test_format_multidim (void)
{
  gint32 six[6] = { 0, 1, 2, 3, 4, -5 };
  gint8 eight[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
  double four[4] = { 0.5, -1, 1e300, NAN };
  guint16 one = 7;
  GString *out = g_string_new ("x=");
  ShmType t = type_of ("u16");

  assert_format ("i32[2][3]", six, "0 1 2\n3 4 -5\n");
  assert_format ("i32[6]", six, "0 1 2 3 4 -5\n");
  assert_format ("i32[3][2]", six, "0 1\n2 3\n4 -5\n");
  assert_format ("i32[6][1]", six, "0\n1\n2\n3\n4\n-5\n");
  assert_format ("i8[2][2][2]", eight, "0 1\n2 3\n4 5\n6 7\n");
  assert_format ("i8[2,4]", eight, "0 1 2 3\n4 5 6 7\n");
  assert_format ("f64[2][2]", four, "0.5 -1\n1e+300 nan\n");
  assert_format ("u16", &one, "7\n");
  assert_format ("u16[1]", &one, "7\n");

  /* Formatting appends. */
  shm_codec_format (&t, &one, out);
  g_assert_cmpstr (out->str, ==, "x=7\n");
  g_string_free (out, TRUE);
}

static void
test_format_unaligned (void)
{
  guint8 raw[1 + 2 * sizeof (double)];
  double x[2] = { 1.5, -2.25 };

  memcpy (raw + 1, x, sizeof x);
  assert_format ("f64[2]", raw + 1, "1.5 -2.25\n");
}

static void
test_format_parse_round_trip (void)
{
  static const char *const specs[] = {
    "i8[3][4]", "u16[2][2][2]", "i64[5]", "f32[3][3]", "f64[2][3]",
    "bool[4][2]", "u64[1]",
  };
  GRand *rand = g_rand_new_with_seed (SEED);

  for (guint i = 0; i < G_N_ELEMENTS (specs); i++)
    {
      ShmType t = type_of (specs[i]);
      guint8 in[256], back[256];
      GString *out = g_string_new (NULL);

      for (guint j = 0; j < shm_type_nbytes (&t); j++)
        in[j] = t.elem == SHM_ELEM_BOOL ? g_rand_int (rand) % 2
                                         : g_rand_int (rand);
      shm_codec_format (&t, in, out);
      g_assert_cmpint (shm_codec_parse (&t, out->str, out->len, back), ==, 0);
      if (shm_type_is_float (&t))
        {
          /* NaNs keep no payload; compare the text instead. */
          GString *again = g_string_new (NULL);

          shm_codec_format (&t, back, again);
          g_assert_cmpstr (again->str, ==, out->str);
          g_string_free (again, TRUE);
        }
      else
        g_assert_cmpmem (in, shm_type_nbytes (&t), back, shm_type_nbytes (&t));
      g_string_free (out, TRUE);
    }
  g_rand_free (rand);
}

/* ---- Inference ---- */

#define OK(text, type) { text, type, 0 }
#define FAIL(text, err) { text, NULL, err }

static void
test_infer (void)
{
  static const struct {
    const char *text, *type;
    int err;
  } cases[] = {
    OK ("42", "i64"), OK ("-7", "i64"), OK ("0x10", "i64"), OK ("010", "i64"),
    OK ("+3", "i64"), OK (" 42\n", "i64"), OK ("0", "i64"), OK ("1", "i64"),
    OK ("9223372036854775807", "i64"), OK ("-9223372036854775808", "i64"),
    OK ("3.14", "f64"), OK ("1e3", "f64"), OK ("inf", "f64"),
    OK ("-inf", "f64"),
    OK ("nan", "f64"), OK ("NaN", "f64"), OK ("0x1p3", "f64"), OK ("1.", "f64"),
    OK (".5", "f64"), OK ("1e-400", "f64"),
    OK ("true", "bool"), OK ("false", "bool"), OK ("TRUE", "bool"),
    OK ("False\n", "bool"),
    OK ("1 2 3", "i64[3]"), OK ("[1, 2, 3]", "i64[3]"),
    OK ("[1 2 3]\n", "i64[3]"),
    OK ("1,2", "i64[2]"), OK ("[5]", "i64[1]"), OK ("[1, 2.5]", "f64[2]"),
    OK ("[1, inf]", "f64[2]"), OK ("1.5 2 3", "f64[3]"),
    OK ("[0x10, 1]", "i64[2]"),
    OK ("[1.5, 99999999999999999999]", "f64[2]"),
    FAIL ("9223372036854775808", -ERANGE),
    FAIL ("-9223372036854775809", -ERANGE),
    FAIL ("[1, 9223372036854775808]", -ERANGE),
    FAIL ("1e999", -ERANGE), FAIL ("[1.5, 1e999]", -ERANGE),
    FAIL ("", -EINVAL), FAIL ("  ", -EINVAL), FAIL ("\n", -EINVAL),
    FAIL ("hello", -EINVAL), FAIL ("yes", -EINVAL),
    FAIL ("on", -EINVAL), FAIL ("[[1, 2], [3, 4]]", -EINVAL),
    FAIL ("[1, [2]]", -EINVAL), FAIL ("[1] [2]", -EINVAL),
    FAIL ("[]", -EINVAL), FAIL ("[", -EINVAL), FAIL ("]", -EINVAL),
    FAIL ("1,", -EINVAL), FAIL ("[1,,2]", -EINVAL),
    FAIL ("true false", -EINVAL), FAIL ("[true]", -EINVAL),
    FAIL ("1 true", -EINVAL), FAIL ("1.5.5", -EINVAL),
    FAIL ("[1, 2", -EINVAL), FAIL ("1 2]", -EINVAL),
    FAIL ("(1, 2)", -EINVAL), FAIL ("1 x", -EINVAL),
    FAIL ("0x", -EINVAL), FAIL ("'a'", -EINVAL),
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const char *text = cases[i].text;
      ShmType t, before;
      int r;

      memset (&t, POISON, sizeof t);
      before = t;
      r = shm_codec_infer (text, strlen (text), &t);
      if (cases[i].type == NULL)
        {
          if (r != cases[i].err)
            g_error ("infer \"%s\": got %d, want %d", text, r, cases[i].err);
          g_assert_true (memcmp (&t, &before, sizeof t) == 0);
        }
      else
        {
          g_autofree char *s = NULL;
          guint8 value[64];

          if (r != 0)
            g_error ("infer \"%s\": got %d", text, r);
          s = shm_type_to_string (&t);
          g_assert_cmpstr (s, ==, cases[i].type);
          /* What infer accepts, parse takes as that type. */
          g_assert_cmpint (shm_codec_parse (&t, text, strlen (text), value),
                           ==, 0);
        }
    }
}

/* ---- Incremental scan ---- */

static ShmCodecScan
scan_whole (const ShmType *t, const char *text)
{
  ShmCodecScan scan = { 0 };

  shm_codec_scan (t, &scan, text, strlen (text));
  return scan;
}

static void
assert_scan (const ShmCodecScan *scan, gsize pos, guint64 elements,
             gboolean in_token)
{
  g_assert_cmpuint (scan->pos, ==, pos);
  g_assert_cmpuint (scan->elements, ==, elements);
  g_assert_cmpint (scan->in_token, ==, in_token);
}

static void
test_scan_numbers (void)
{
  ShmType t = type_of ("i32[4]");
  const char *text = "12 3,4 [56]";
  ShmCodecScan scan = { 0 };
  ShmCodecScan whole;

  /* A token split across pieces is one element. */
  shm_codec_scan (&t, &scan, text, 1);
  assert_scan (&scan, 1, 1, TRUE);
  shm_codec_scan (&t, &scan, text, 2);
  assert_scan (&scan, 2, 1, TRUE);
  shm_codec_scan (&t, &scan, text, 3);
  assert_scan (&scan, 3, 1, FALSE);
  shm_codec_scan (&t, &scan, text, 6);
  assert_scan (&scan, 6, 3, TRUE);
  shm_codec_scan (&t, &scan, text, 6);
  assert_scan (&scan, 6, 3, TRUE);
  shm_codec_scan (&t, &scan, text, 9);
  assert_scan (&scan, 9, 4, TRUE);
  shm_codec_scan (&t, &scan, text, 11);
  assert_scan (&scan, 11, 4, FALSE);

  whole = scan_whole (&t, "");
  assert_scan (&whole, 0, 0, FALSE);
  whole = scan_whole (&t, " \n[ ,");
  assert_scan (&whole, 5, 0, FALSE);
  whole = scan_whole (&t, "[1, 2, 3, 4]\n");
  assert_scan (&whole, 13, 4, FALSE);
  whole = scan_whole (&t, "1 2 3 4");
  assert_scan (&whole, 7, 4, TRUE);
  whole = scan_whole (&t, "1 2 3 4\n");
  assert_scan (&whole, 8, 4, FALSE);
}

static void
test_scan_lines (void)
{
  ShmType t = type_of ("char[8][2]");
  ShmCodecScan scan = { 0 };
  const char *text = "abc\nd\n";
  ShmCodecScan whole;

  shm_codec_scan (&t, &scan, text, 2);
  assert_scan (&scan, 2, 1, TRUE);
  shm_codec_scan (&t, &scan, text, 4);
  assert_scan (&scan, 4, 1, FALSE);
  shm_codec_scan (&t, &scan, text, 5);
  assert_scan (&scan, 5, 2, TRUE);
  shm_codec_scan (&t, &scan, text, 6);
  assert_scan (&scan, 6, 2, FALSE);

  /* Spaces, commas and brackets are data in a line. */
  whole = scan_whole (&t, " a, [b]");
  assert_scan (&whole, 7, 1, TRUE);
  whole = scan_whole (&t, "\n");
  assert_scan (&whole, 1, 1, FALSE);
  whole = scan_whole (&t, "\n\n\n");
  assert_scan (&whole, 3, 3, FALSE);
  whole = scan_whole (&t, "");
  assert_scan (&whole, 0, 0, FALSE);
}

/* Scanning in arbitrary pieces ends where scanning at once does. */
static void
test_scan_pieces (void)
{
  static const struct {
    const char *spec, *text;
  } cases[] = {
    { "f64[5]", "[1.5, -2e10, inf,\n nan, 0x1p3]\n" },
    { "i32[2][3]", "[[1 2 3]\n [44 55 66]]" },
    { "u8[4]", "  1\t2 ,3,  4  " },
    { "char[16][3]", "hello world\n\nlast" },
    { "char[4]", "ab\n" },
  };
  GRand *rand = g_rand_new_with_seed (SEED);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      ShmType t = type_of (cases[i].spec);
      const char *text = cases[i].text;
      gsize len = strlen (text);
      ShmCodecScan whole = scan_whole (&t, text);

      for (guint round = 0; round < 200; round++)
        {
          ShmCodecScan scan = { 0 };
          gsize end = 0;

          while (end < len)
            {
              end += g_rand_int_range (rand, 0, 4);
              end = MIN (end, len);
              shm_codec_scan (&t, &scan, text, end);
              g_assert_cmpuint (scan.pos, ==, end);
            }
          assert_scan (&scan, whole.pos, whole.elements, whole.in_token);
        }
    }
  g_rand_free (rand);
}

/* Rendering in pieces of any size makes the whole text, byte for byte. */
static void
test_format_items (void)
{
  const char *specs[] = { "u8[300]", "i32[7][5]", "f64[3][4][2]", "char[5][6]", "char[3]",
                          "bool[9]", "i64" };

  for (guint s = 0; s < G_N_ELEMENTS (specs); s++)
    {
      ShmType t;
      g_autofree guint8 *data = NULL;
      g_autoptr (GString) whole = g_string_new (NULL);
      guint64 count, nbytes;
      gsize size;

      g_assert_cmpint (shm_type_parse (specs[s], strlen (specs[s]), &t), ==, 0);
      nbytes = shm_type_nbytes (&t);
      count = shm_type_count (&t);
      size = shm_type_elem_size (&t);
      data = g_malloc (nbytes);
      for (guint64 i = 0; i < nbytes; i++)
        data[i] = t.elem == SHM_ELEM_CHAR ? (guint8) ('a' + i % 7) * (i % 4 != 3)
                : t.elem == SHM_ELEM_BOOL ? i % 2 : (guint8) (i * 37);
      shm_codec_format (&t, data, whole);
      for (guint64 piece = 1; piece <= count; piece = piece * 2 + 1)
        {
          g_autoptr (GString) pieces = g_string_new (NULL);

          for (guint64 i = 0; i < count; i += piece)
            shm_codec_format_items (&t, data + i * size, i, MIN (piece, count - i), pieces);
          g_assert_cmpstr (pieces->str, ==, whole->str);
        }
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/codec/format/items", test_format_items);
  g_test_add_func ("/codec/int/limits", test_int_limits);
  g_test_add_func ("/codec/int/forms", test_int_forms);
  g_test_add_func ("/codec/int/property", test_int_property);
  g_test_add_func ("/codec/parse/errors", test_parse_errors);
  g_test_add_func ("/codec/parse/length-bound", test_parse_length_bound);
  g_test_add_func ("/codec/f64/shortest", test_f64_shortest);
  g_test_add_func ("/codec/f64/text-round-trip", test_f64_text_round_trip);
  g_test_add_func ("/codec/f64/property", test_f64_property);
  g_test_add_func ("/codec/f64/speed", test_f64_speed);
  g_test_add_func ("/codec/f32/shortest", test_f32_shortest);
  g_test_add_func ("/codec/f32/property", test_f32_property);
  g_test_add_func ("/codec/float/parse", test_float_parse);
  g_test_add_func ("/codec/float/edges", test_float_edges);
  g_test_add_func ("/codec/float/locale", test_float_locale);
  g_test_add_func ("/codec/bool", test_bool);
  g_test_add_func ("/codec/char/scalar", test_char_scalar);
  g_test_add_func ("/codec/char/array", test_char_array);
  g_test_add_func ("/codec/array/separators", test_array_separators);
  g_test_add_func ("/codec/array/brackets", test_array_brackets);
  g_test_add_func ("/codec/array/python-output", test_array_python_output);
  g_test_add_func ("/codec/array/all-or-nothing", test_array_all_or_nothing);
  g_test_add_func ("/codec/format/multidim", test_format_multidim);
  g_test_add_func ("/codec/format/unaligned", test_format_unaligned);
  g_test_add_func ("/codec/format/round-trip", test_format_parse_round_trip);
  g_test_add_func ("/codec/infer", test_infer);
  g_test_add_func ("/codec/scan/numbers", test_scan_numbers);
  g_test_add_func ("/codec/scan/lines", test_scan_lines);
  g_test_add_func ("/codec/scan/pieces", test_scan_pieces);

  return g_test_run ();
}
