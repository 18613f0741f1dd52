/* test-record.c — records: specs, C layout, field paths, JSON text, field
 * atomics (core/shm-type.c, core/shm-json.c, core/shm-atomic.c). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

#include "shm-atomic.h"
#include "shm-codec.h"
#include "shm-type.h"
#include "type-helpers.h"

/* ---- Specs ---- */

static void
test_spec_canonical (void)
{
  assert_canonical ("{x:f64}", "{x:f64}");
  assert_canonical (" { x : f64 ,y:f64 , id :u32,tag:char[6],v:f32[3] } \n",
                    "{x:f64, y:f64, id:u32, tag:char[6], v:f32[3]}");
  assert_canonical ("{\n\tx:d,\n\tn:q,\n\tok:?,\n\tc:c\n}", "{x:f64, n:i64, ok:bool, c:char[1]}");
  assert_canonical ("{p:{x:f64, y:f64}, m:i32[2,3]}", "{p:{x:f64, y:f64}, m:i32[2][3]}");
  assert_canonical ("{x:f64, y:f64}[100]", "{x:f64, y:f64}[100]");
  assert_canonical ("{_a1:u8, B_2:{C:{d:i8}}}[2,3]", "{_a1:u8, B_2:{C:{d:i8}}}[2][3]");
}

static void
test_spec_bad (void)
{
  static const char *const cases[] = {
    "{}", "{ }", "{x}", "{x:}", "{:f64}", "{x:f64,}", "{,x:f64}", "{x:f64 y:f64}",
    "{x:f64, x:i32}", "{x:f64", "x:f64}", "{x:f64}}", "{{x:f64}}", "{x:f65}",
    "{x:f64[0]}", "{x:char}", "{1x:f64}", "{x-y:f64}", "{x:f64} [2]", "{x:f64}[0]",
    "{x:f64 [3]}", "{p:{x:f64}[2]}", "{x:f64}x", "{x:f64;y:f64}", "{x::f64}",
    "{x:{}}", "{x:f64}[2]]", "{x:u8[1099511627777]}", "{x:u8[1099511627776], y:u8}",
    "{x:{y:{z:{a:{b:{c:{d:{e:{f:{g:{h:{i:{j:{k:{l:{m:{n:u8}}}}}}}}}}}}}}}}}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      ShmType t;

      memset (&t, 0xa5, sizeof t);
      if (shm_type_parse (cases[i], strlen (cases[i]), &t) != -EINVAL)
        g_error ("shm_type_parse (\"%s\") accepted", cases[i]);
    }
  /* Sixteen levels are allowed. */
  assert_canonical ("{a:{b:{c:{d:{e:{f:{g:{h:{i:{j:{k:{l:{m:{n:{o:{p:u8}}}}}}}}}}}}}}}}",
                    "{a:{b:{c:{d:{e:{f:{g:{h:{i:{j:{k:{l:{m:{n:{o:{p:u8}}}}}}}}}}}}}}}}");
}

static void
test_spec_long (void)
{
  GString *s = g_string_new ("{");
  ShmType t;

  /* 400 fields: a spec well past 255 bytes. */
  for (guint i = 0; i < 400; i++)
    g_string_append_printf (s, "%sf%u:u8", i ? ", " : "", i);
  g_string_append_c (s, '}');
  t = parse_ok (s->str);
  g_assert_cmpuint (shm_record_n_fields (t.record), ==, 400);
  g_assert_cmpuint (shm_type_nbytes (&t), ==, 400);
  shm_type_clear (&t);
  while (s->len <= SHM_TYPE_MAX_SPEC)
    g_string_insert (s, 1, " ");
  g_assert_cmpint (shm_type_parse (s->str, s->len, &t), ==, -EINVAL);
  g_string_free (s, TRUE);

  /* A spec within the limit whose canonical form is not ("?" is "bool",
   * fields get ", "): user.shmfs.type could not be read back. */
  s = g_string_new ("{");
  for (guint i = 0; s->len < SHM_TYPE_MAX_SPEC - 12; i++)
    g_string_append_printf (s, "%sf%u:?", i ? "," : "", i);
  g_string_append_c (s, '}');
  g_assert_cmpuint (s->len, <=, SHM_TYPE_MAX_SPEC);
  g_assert_cmpint (shm_type_parse (s->str, s->len, &t), ==, -EINVAL);
  g_string_free (s, TRUE);

  /* A record is at most 16 MiB; an array of them may be larger. */
  t = parse_ok ("{v:u8[16777216]}");
  shm_type_clear (&t);
  t = parse_ok ("{v:u8[8388608], w:u8[8388608]}[64]");
  g_assert_cmpuint (shm_type_nbytes (&t), ==, G_GUINT64_CONSTANT (1) << 30);
  shm_type_clear (&t);
  g_assert_cmpint (shm_type_parse ("{v:u8[16777217]}", 16, &t), ==, -EINVAL);
  g_assert_cmpint (shm_type_parse ("{a:u8, v:u64[2097152]}", 22, &t), ==, -EINVAL);
}

/* ---- Layout: what the C compiler gives ---- */

struct pose { double x, y; uint32_t id; char tag[6]; float v[3]; };
struct inner { uint8_t a; int64_t b; };
struct outer { bool ok; struct inner in; uint16_t h[3]; char c; };
struct mixed { uint8_t a; uint16_t b; uint8_t c; uint32_t d; uint8_t e; uint64_t f; int8_t g; };
struct tail { double d; uint8_t u; };
struct strs { char a[3]; char b[5][2]; int16_t s; };

static void
assert_layout (const char *spec, gsize size, gsize align, const gsize *offsets, guint n)
{
  ShmType t = parse_ok (spec);

  g_assert_cmpint (t.elem, ==, SHM_ELEM_RECORD);
  g_assert_cmpuint (shm_type_elem_size (&t), ==, size);
  g_assert_cmpuint (shm_type_elem_align (&t), ==, align);
  g_assert_cmpuint (shm_record_n_fields (t.record), ==, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpuint (shm_record_field (t.record, i)->offset, ==, offsets[i]);
  shm_type_clear (&t);
}

#define OFFSETS(...) ((const gsize[]) { __VA_ARGS__ }), \
  G_N_ELEMENTS (((const gsize[]) { __VA_ARGS__ }))

static void
test_layout_c (void)
{
  assert_layout ("{x:f64, y:f64, id:u32, tag:char[6], v:f32[3]}",
                 sizeof (struct pose), G_ALIGNOF (struct pose),
                 OFFSETS (offsetof (struct pose, x), offsetof (struct pose, y),
                          offsetof (struct pose, id), offsetof (struct pose, tag),
                          offsetof (struct pose, v)));
  assert_layout ("{ok:bool, in:{a:u8, b:i64}, h:u16[3], c:char[1]}",
                 sizeof (struct outer), G_ALIGNOF (struct outer),
                 OFFSETS (offsetof (struct outer, ok), offsetof (struct outer, in),
                          offsetof (struct outer, h), offsetof (struct outer, c)));
  assert_layout ("{a:u8, b:u16, c:u8, d:u32, e:u8, f:u64, g:i8}",
                 sizeof (struct mixed), G_ALIGNOF (struct mixed),
                 OFFSETS (offsetof (struct mixed, a), offsetof (struct mixed, b),
                          offsetof (struct mixed, c), offsetof (struct mixed, d),
                          offsetof (struct mixed, e), offsetof (struct mixed, f),
                          offsetof (struct mixed, g)));
  assert_layout ("{d:f64, u:u8}", sizeof (struct tail), G_ALIGNOF (struct tail),
                 OFFSETS (offsetof (struct tail, d), offsetof (struct tail, u)));
  assert_layout ("{a:char[3], b:char[2][5], s:i16}", sizeof (struct strs), G_ALIGNOF (struct strs),
                 OFFSETS (offsetof (struct strs, a), offsetof (struct strs, b),
                          offsetof (struct strs, s)));
}

static void
test_layout_arrays (void)
{
  ShmType t = parse_ok ("{d:f64, u:u8}[3][2]");

  g_assert_cmpuint (shm_type_count (&t), ==, 6);
  g_assert_cmpuint (shm_type_nbytes (&t), ==, 6 * sizeof (struct tail));
  shm_type_clear (&t);
}

static void
test_numpy_dtype (void)
{
  ShmType t = parse_ok ("{x:f64, v:f32[3], m:u8[2][2], q:{a:u8, s:char[4]}, ok:bool}");
  g_autofree char *d = shm_type_numpy_dtype (&t);

  g_assert_cmpstr (d, ==,
                   "{\"names\": [\"x\", \"v\", \"m\", \"q\", \"ok\"], "
                   "\"formats\": [\"<f8\", \"(3,)<f4\", \"(2,2,)|u1\", "
                   "{\"names\": [\"a\", \"s\"], \"formats\": [\"|u1\", \"|S4\"], "
                   "\"offsets\": [0, 1], \"itemsize\": 5}, \"|b1\"], "
                   "\"offsets\": [0, 8, 20, 24, 29], \"itemsize\": 32}");
  shm_type_clear (&t);
}

static void
test_equal_and_copy (void)
{
  ShmType a = parse_ok ("{x:f64, y:i32}"), b = parse_ok ("{ x:d , y:i }"), c = parse_ok ("{x:f64, z:i32}");
  ShmType d = parse_ok ("{x:f64, y:i32}[2]"), copy;

  g_assert_true (shm_type_equal (&a, &b));
  g_assert_false (shm_type_equal (&a, &c));
  g_assert_false (shm_type_equal (&a, &d));
  shm_type_copy (&copy, &a);
  shm_type_clear (&a);
  /* The copy keeps the record alive. */
  g_assert_true (shm_type_equal (&copy, &b));
  g_assert_cmpstr (shm_record_field (copy.record, 1)->name, ==, "y");
  shm_type_clear (&copy);
  shm_type_clear (&b);
  shm_type_clear (&c);
  shm_type_clear (&d);
}

/* ---- Field paths ---- */

static void
test_resolve_field (void)
{
  static const struct {
    const char *path;
    guint64 offset;
    const char *type;
  } ok[] = {
    { "x", 0, "f64" }, { "v", 8, "f32[3]" }, { "v[2]", 16, "f32" },
    { "m[1]", 23, "u8[3]" }, { "m[1][2]", 25, "u8" }, { "q", 32, "{a:u8, b:i64}" },
    { "q.b", 40, "i64" }, { "tag", 48, "char[5]" },
  };
  static const char *const bad[] = {
    "", "y", "x.y", "x[0]", "v[3]", "v[]", "v[1", "v[1]]", "v.1", "q.", "q.c", ".x", "m[2][0]",
    "m[0][3]", "q[0]", "v[1][0]", "tag[0]", "v[99999999999999999999]",
  };
  ShmType t = parse_ok ("{x:f64, v:f32[3], m:u8[2][3], q:{a:u8, b:i64}, tag:char[5]}[4]");

  for (guint i = 0; i < G_N_ELEMENTS (ok); i++)
    {
      ShmType leaf;
      guint64 off = 99;
      g_autofree char *s = NULL;

      g_assert_cmpint (shm_type_resolve_field (&t, ok[i].path, strlen (ok[i].path), &off, &leaf), ==, 0);
      s = shm_type_to_string (&leaf);
      g_assert_cmpuint (off, ==, ok[i].offset);
      g_assert_cmpstr (s, ==, ok[i].type);
      shm_type_clear (&leaf);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      ShmType leaf;
      guint64 off;

      if (shm_type_resolve_field (&t, bad[i], strlen (bad[i]), &off, &leaf) != -EINVAL)
        g_error ("field path \"%s\" resolved", bad[i]);
    }
  shm_type_clear (&t);
}

static void
test_scalar_at (void)
{
  ShmType t = parse_ok ("{a:u8, b:i64, v:f32[3], q:{c:u16, s:char[2]}, ok:bool}");
  static const struct { guint64 off; ShmElem elem; } ok[] = {
    { 0, SHM_ELEM_U8 }, { 8, SHM_ELEM_I64 }, { 16, SHM_ELEM_F32 }, { 20, SHM_ELEM_F32 },
    { 24, SHM_ELEM_F32 }, { 28, SHM_ELEM_U16 }, { 32, SHM_ELEM_BOOL },
  };
  static const guint64 bad[] = { 1, 7, 9, 15, 17, 29, 30, 31, 33, 40, 1000 };

  for (guint i = 0; i < G_N_ELEMENTS (ok); i++)
    {
      ShmType leaf;

      g_assert_cmpint (shm_type_scalar_at (&t, ok[i].off, &leaf), ==, 0);
      g_assert_cmpint (leaf.elem, ==, ok[i].elem);
      g_assert_cmpuint (leaf.ndim, ==, 0);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      ShmType leaf;

      if (shm_type_scalar_at (&t, bad[i], &leaf) != -EINVAL)
        g_error ("offset %" G_GUINT64_FORMAT " is a scalar", bad[i]);
    }
  shm_type_clear (&t);
}

/* ---- JSON ---- */

static char *
format (const ShmType *t, const void *data)
{
  GString *out = g_string_new (NULL);

  shm_codec_format (t, data, out);
  return g_string_free (out, FALSE);
}

static void
test_json_format (void)
{
  ShmType t = parse_ok ("{x:f64, y:f64, id:u32, tag:char[6], v:f32[3], ok:bool, m:i8[2][2]}");
  struct {
    double x, y; uint32_t id; char tag[6]; float v[3]; bool ok; int8_t m[2][2];
  } rec = { 1.5, -2, 7, "abc", { 1, 2, 3.5 }, true, { { -1, 2 }, { 3, -128 } } };
  g_autofree char *s = NULL, *s2 = NULL, *s3 = NULL;

  g_assert_cmpuint (sizeof rec, ==, shm_type_nbytes (&t));
  s = format (&t, &rec);
  g_assert_cmpstr (s, ==, "{\"x\": 1.5, \"y\": -2, \"id\": 7, \"tag\": \"abc\", "
                          "\"v\": [1, 2, 3.5], \"ok\": true, \"m\": [[-1, 2], [3, -128]]}\n");
  rec.x = NAN;
  rec.y = -INFINITY;
  rec.v[0] = INFINITY;
  memcpy (rec.tag, "q\"\\\n\xff\x01", 6);   /* no NUL: all six bytes */
  rec.ok = false;
  s2 = format (&t, &rec);
  g_assert_cmpstr (s2, ==, "{\"x\": NaN, \"y\": -Infinity, \"id\": 7, "
                           "\"tag\": \"q\\\"\\\\\\n\\udcff\\u0001\", "
                           "\"v\": [Infinity, 2, 3.5], \"ok\": false, \"m\": [[-1, 2], [3, -128]]}\n");
  /* A NaN is rewritten where it is, not in names or strings before it. */
  {
    ShmType n = parse_ok ("{s:char[8], nanos:i32, d:f64}[2]");
    struct { char s[8]; int32_t nanos; double d; } r2[2] = { { "banana", 0, NAN }, { "", 1, NAN } };
    g_autofree char *out = format (&n, r2);

    g_assert_cmpstr (out, ==, "{\"s\": \"banana\", \"nanos\": 0, \"d\": NaN}\n"
                              "{\"s\": \"\", \"nanos\": 1, \"d\": NaN}\n");
    shm_type_clear (&n);
  }
  /* UTF-8 passes through; a truncated sequence is escaped byte by byte. */
  memcpy (rec.tag, "\xc3\xa9\xe2\x82\0", 6);
  s3 = format (&t, &rec);
  g_assert_true (strstr (s3, "\"tag\": \"\xc3\xa9\\udce2\\udc82\"") != NULL);
  shm_type_clear (&t);
}

static void
test_json_array_lines (void)
{
  ShmType t = parse_ok ("{a:u8, b:i16}[2][2]");
  guint8 data[16] = { 1, 0, 2, 0, 3, 0, 0xff, 0xff, 5, 0, 6, 0, 7, 0, 8, 0 };
  g_autofree char *s = format (&t, data);
  GString *part = g_string_new (NULL);

  g_assert_cmpstr (s, ==, "{\"a\": 1, \"b\": 2}\n{\"a\": 3, \"b\": -1}\n"
                          "{\"a\": 5, \"b\": 6}\n{\"a\": 7, \"b\": 8}\n");
  /* Items in pieces make up the whole text. */
  shm_codec_format_items (&t, data + 8, 2, 2, part);
  g_assert_cmpstr (part->str, ==, "{\"a\": 5, \"b\": 6}\n{\"a\": 7, \"b\": 8}\n");
  g_string_free (part, TRUE);
  shm_type_clear (&t);
}

/* Merges text into value (holding before), expecting ret, and checks the
 * mask marks exactly the bytes in want_mask ("1" per byte written). */
static void
merge (const ShmType *t, guint8 *value, const char *text, int ret)
{
  gsize n = shm_type_nbytes (t);
  g_autofree guint8 *copy = g_memdup2 (value, n), *mask = g_malloc0 (n);
  int r = shm_codec_merge (t, text, strlen (text), copy, mask);

  if (r != ret)
    g_error ("merge of '%s' = %d, not %d", text, r, ret);
  if (r == 0)
    {
      /* Bytes outside the mask are as they were. */
      for (gsize i = 0; i < n; i++)
        if (!mask[i])
          g_assert_cmpuint (copy[i], ==, value[i]);
      memcpy (value, copy, n);
    }
}

static void
test_json_merge (void)
{
  ShmType t = parse_ok ("{x:f64, id:u32, tag:char[4], v:i16[3], q:{a:u8, b:i64}, ok:bool}");
  struct {
    double x; uint32_t id; char tag[4]; int16_t v[3]; struct { uint8_t a; int64_t b; } q; bool ok;
  } rec;
  gsize n = shm_type_nbytes (&t);
  g_autofree guint8 *mask = g_malloc0 (n);
  g_autofree char *s = NULL;
  guint8 *p = (guint8 *) &rec;

  g_assert_cmpuint (sizeof rec, ==, n);
  memset (&rec, 0, sizeof rec);
  rec.id = 42;
  rec.q.a = 9;
  merge (&t, p, "{\"x\": 2.5, \"tag\": \"ab\", \"q\": {\"b\": -3}}", 0);
  g_assert_cmpfloat (rec.x, ==, 2.5);
  g_assert_cmpuint (rec.id, ==, 42);
  g_assert_cmpmem (rec.tag, 4, "ab\0\0", 4);
  g_assert_cmpuint (rec.q.a, ==, 9);
  g_assert_cmpint (rec.q.b, ==, -3);

  /* The mask: the fields named, and the padding of the records reached. */
  memset (mask, 0, n);
  g_assert_cmpint (shm_codec_merge (&t, "{\"id\": 1}", 9, p, mask), ==, 0);
  for (gsize i = 0; i < n; i++)
    {
      gboolean field = i >= 8 && i < 12;
      gboolean padding = (i >= 22 && i < 24) || i >= 41;

      if (mask[i] != (field || padding))
        g_error ("mask byte %" G_GSIZE_FORMAT " is %u", i, mask[i]);
    }

  merge (&t, p, "  {\"v\": [1, -2, 32767], \"ok\": true}\n", 0);
  g_assert_cmpint (rec.v[2], ==, 32767);
  g_assert_true (rec.ok);
  merge (&t, p, "{\"ok\": 0, \"tag\": \"\\u00e9\\udcff\\/\"}", 0);
  g_assert_false (rec.ok);
  g_assert_cmpmem (rec.tag, 4, "\xc3\xa9\xff/", 4);
  merge (&t, p, "{}", 0);
  merge (&t, p, "{\"x\": NaN}", 0);
  g_assert_true (isnan (rec.x));
  merge (&t, p, "{\"x\": -Infinity, \"id\": 4294967295}", 0);
  g_assert_true (isinf (rec.x) && rec.x < 0);
  merge (&t, p, "{\"x\": 1e-3}", 0);
  g_assert_cmpfloat (rec.x, ==, 1e-3);

  s = format (&t, p);
  /* What is read writes back to the same bytes. */
  {
    g_autofree guint8 *again = g_malloc0 (n);

    g_assert_cmpint (shm_codec_parse (&t, s, strlen (s), again), ==, 0);
    g_assert_cmpmem (again, 8 + 4 + 4 + 6, p, 8 + 4 + 4 + 6);
  }
  shm_type_clear (&t);
}

static void
test_json_bad (void)
{
  static const struct { const char *text; int err; } cases[] = {
    { "", -EINVAL }, { "{", -EINVAL }, { "}", -EINVAL }, { "{\"x\": 1", -EINVAL },
    { "{\"zz\": 1}", -EINVAL }, { "{\"x\": 1, \"x\": 2}", -EINVAL }, { "{x: 1}", -EINVAL },
    { "{'x': 1}", -EINVAL }, { "{\"x\" 1}", -EINVAL }, { "{\"x\": 1,}", -EINVAL },
    { "{\"x\": 1} {}", -EINVAL }, { "{\"x\": 1} x", -EINVAL }, { "[{\"x\": 1}", -EINVAL },
    { "{\"id\": 1.5}", -EINVAL }, { "{\"id\": 1e3}", -EINVAL }, { "{\"id\": -1}", -ERANGE },
    { "{\"id\": 4294967296}", -ERANGE }, { "{\"id\": 0x10}", -EINVAL },
    { "{\"id\": \"1\"}", -EINVAL }, { "{\"id\": NaN}", -EINVAL }, { "{\"id\": 01}", -EINVAL },
    { "{\"id\": +1}", -EINVAL }, { "{\"id\": true}", -EINVAL }, { "{\"id\": null}", -EINVAL },
    { "{\"x\": 1e999}", -ERANGE }, { "{\"x\": \"1\"}", -EINVAL }, { "{\"x\": inf}", -EINVAL },
    { "{\"x\": .5}", -EINVAL }, { "{\"x\": 1.}", -EINVAL }, { "{\"x\": [1]}", -EINVAL },
    { "{\"tag\": \"abcde\"}", -EINVAL }, { "{\"tag\": \"a\\u0000\"}", -EINVAL },
    { "{\"tag\": \"\\ud800\"}", -EINVAL }, { "{\"tag\": \"\\udc00\"}", -EINVAL },
    { "{\"tag\": \"\\x41\"}", -EINVAL }, { "{\"tag\": \"a\nb\"}", -EINVAL },
    { "{\"tag\": 1}", -EINVAL }, { "{\"tag\": \"ab}", -EINVAL },
    { "{\"v\": [1, 2]}", -EINVAL }, { "{\"v\": [1, 2, 3, 4]}", -EINVAL },
    { "{\"v\": [1, 2, 32768]}", -ERANGE }, { "{\"v\": 1}", -EINVAL }, { "{\"v\": [1, 2, 3,]}", -EINVAL },
    { "{\"q\": 1}", -EINVAL }, { "{\"q\": {\"c\": 1}}", -EINVAL }, { "{\"q\": {\"a\": 256}}", -ERANGE },
    { "{\"ok\": 2}", -EINVAL }, { "{\"ok\": \"true\"}", -EINVAL }, { "{\"ok\": True}", -EINVAL },
    { "[]", -EINVAL }, { "{\"x\": 1}{\"x\": 2}", -EINVAL },
  };
  ShmType t = parse_ok ("{x:f64, id:u32, tag:char[4], v:i16[3], q:{a:u8, b:i64}, ok:bool}");
  gsize n = shm_type_nbytes (&t);
  g_autofree guint8 *value = g_malloc0 (n);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    merge (&t, value, cases[i].text, cases[i].err);
  shm_type_clear (&t);
}

static void
test_json_arrays_of_records (void)
{
  ShmType t = parse_ok ("{a:u8, b:i16}[2][2]");
  guint8 value[16] = { 0 };
  gint16 b;

  merge (&t, value, "{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3}\n{\"a\": 4}\n", 0);
  g_assert_cmpuint (value[12], ==, 4);
  merge (&t, value, "[{\"b\": 1}, {}, {\"b\": 3}, {}]", 0);
  memcpy (&b, value + 10, 2);
  g_assert_cmpint (b, ==, 3);
  g_assert_cmpuint (value[8], ==, 3);
  merge (&t, value, "[[{}, {\"a\": 9}], [{}, {}]]\n", 0);
  g_assert_cmpuint (value[4], ==, 9);
  merge (&t, value, "[{}, {}]\n[{}, {\"b\": -1}]", 0);
  /* Brackets only group, as in a numeric array's text: order and count
   * are what matter. */
  merge (&t, value, "[[{}, {\"b\": 2}], {}, {}]", 0);
  memcpy (&b, value + 6, 2);
  g_assert_cmpint (b, ==, 2);
  memcpy (&b, value + 14, 2);
  g_assert_cmpint (b, ==, -1);

  merge (&t, value, "{}\n{}\n{}", -EINVAL);
  merge (&t, value, "{}\n{}\n{}\n{}\n{}", -EINVAL);
  merge (&t, value, "[{}, {}, {}, {}", -EINVAL);
  merge (&t, value, "[{}, {}, {}, {}]]", -EINVAL);
  merge (&t, value, "[{}, {} {}, {}]", -EINVAL);
  merge (&t, value, "{}, {}, {}, {}", -EINVAL);
  merge (&t, value, "[1, {}, {}, {}]", -EINVAL);
  merge (&t, value, "[{}, {}, {}, {},]", -EINVAL);
  merge (&t, value, "[{}, {}, {}, {}, ]", -EINVAL);
  merge (&t, value, "[[{}, {}], [{}, {}],]", -EINVAL);
  merge (&t, value, "[[{}, {},], [{}, {}]]", -EINVAL);
  merge (&t, value, "[, {}, {}, {}, {}]", -EINVAL);
  merge (&t, value, "[{}, {}, [], {}, {}]", -EINVAL);
  merge (&t, value, "[]\n{}\n{}\n{}\n{}", -EINVAL);
  shm_type_clear (&t);

  /* Brackets around records have their own bound, apart from the depth
   * of records: a 16-deep record fits in nested arrays. */
  {
    GString *spec = g_string_new (NULL), *obj = g_string_new (NULL), *text = g_string_new (NULL);

    for (guint i = 0; i < 15; i++)
      g_string_append_printf (spec, "{f%u:", i);
    g_string_append (spec, "{z:u8}");
    for (guint i = 0; i < 15; i++)
      g_string_append_c (spec, '}');
    g_string_append (spec, "[2][2][2]");
    t = parse_ok (spec->str);
    for (guint i = 0; i < 15; i++)
      g_string_append_printf (obj, "{\"f%u\": ", i);
    g_string_append (obj, "{\"z\": 7}");
    for (guint i = 0; i < 15; i++)
      g_string_append_c (obj, '}');
    g_string_printf (text, "[[[%s, %s], [%s, %s]], [[%s, %s], [%s, %s]]]", obj->str, obj->str,
                     obj->str, obj->str, obj->str, obj->str, obj->str, obj->str);
    {
      g_autofree guint8 *v = g_malloc0 (shm_type_nbytes (&t));

      g_assert_cmpint (shm_codec_merge (&t, text->str, text->len, v, NULL), ==, 0);
      g_assert_cmpuint (v[7], ==, 7);
    }
    g_string_free (spec, TRUE);
    g_string_free (obj, TRUE);
    g_string_free (text, TRUE);
  }
  shm_type_clear (&t);
}

static void
test_json_scan (void)
{
  ShmType t = parse_ok ("{s:char[8], v:u8[2]}[3]");
  const char *text = "{\"s\": \"{[\\\"\", \"v\": [1, 2]}\n[{\"s\": \"}\"},\n{}]";
  ShmCodecScan scan = { 0 };
  gsize len = strlen (text);

  /* Byte by byte, as many writes would bring it. */
  for (gsize i = 1; i <= len; i++)
    {
      shm_codec_scan (&t, &scan, text, i);
      if (i == 1)
        g_assert_true (scan.elements == 1 && scan.in_token);
    }
  g_assert_cmpuint (scan.elements, ==, 3);
  g_assert_false (scan.in_token);
  /* Open inside the outer array until its ']'. */
  memset (&scan, 0, sizeof scan);
  shm_codec_scan (&t, &scan, text, len - 1);
  g_assert_cmpuint (scan.elements, ==, 3);
  g_assert_true (scan.in_token);
  /* Anything but an object at the top level counts as an element, so a
   * text of the right count is complete (and refused by its parse) when
   * written, not at close. */
  {
    static const struct { const char *text; guint64 elements; } junk[] = {
      { "5", 1 }, { "null true", 2 }, { "\"x\"", 1 }, { "[{}, 5, {}]", 3 },
      { "{\"s\": 5} 7\n{}", 3 }, { "[{}, null]\n", 2 }, { "x=1", 1 },
      { "[{}, [], {}]", 3 }, { "{}\n[ ]\n", 2 }, { "[[{}], [{}]]", 2 },
    };

    for (guint i = 0; i < G_N_ELEMENTS (junk); i++)
      {
        memset (&scan, 0, sizeof scan);
        shm_codec_scan (&t, &scan, junk[i].text, strlen (junk[i].text));
        if (scan.elements != junk[i].elements)
          g_error ("'%s': %" G_GUINT64_FORMAT " elements", junk[i].text, scan.elements);
      }
  }
  g_assert_cmpuint (shm_codec_max_text (&t), >=, 3 * strlen ("{\"s\": \"\\udcff\\udcff\\udcff\\udcff\\udcff\\udcff\\udcff\\udcff\", \"v\": [255, 255]}\n"));
  shm_type_clear (&t);
}

/* ---- Field atomics ---- */

static void
test_atomic_fields (void)
{
  ShmType t = parse_ok ("{a:u8, b:i64, v:f32[2], s:char[3], ok:bool}[2]"), elem;
  struct { uint8_t a; int64_t b; float v[2]; char s[3]; bool ok; } rec[2];
  ShmAtomic a = { .op = SHM_ATOMIC_ADD, .index = 1, .has_field = TRUE, .field = 8 };
  guint64 off;

  memset (rec, 0, sizeof rec);
  g_assert_cmpuint (sizeof rec, ==, shm_type_nbytes (&t));
  a.operand.i = -5;
  g_assert_cmpint (shm_atomic_target (&t, &a, &elem, &off), ==, 0);
  g_assert_cmpuint (off, ==, sizeof rec[0] + offsetof (typeof (rec[0]), b));
  g_assert_cmpint (elem.elem, ==, SHM_ELEM_I64);
  g_assert_true (shm_atomic_apply (&t, (guint8 *) rec, &a));
  g_assert_cmpint (rec[1].b, ==, -5);
  g_assert_cmpint (rec[0].b, ==, 0);

  a.field = 0;
  a.operand.i = 300;   /* wraps at u8 */
  shm_atomic_apply (&t, (guint8 *) rec, &a);
  g_assert_cmpuint (rec[1].a, ==, 44);

  a.field = offsetof (typeof (rec[0]), v) + 4;
  a.is_float = TRUE;
  a.operand.f = 1.25;
  shm_atomic_apply (&t, (guint8 *) rec, &a);
  g_assert_cmpfloat (rec[1].v[1], ==, 1.25f);
  g_assert_cmpfloat (rec[1].v[0], ==, 0);
  a.is_float = FALSE;

  a.op = SHM_ATOMIC_XCHG;
  a.field = offsetof (typeof (rec[0]), ok);
  a.operand.u = 1;
  shm_atomic_apply (&t, (guint8 *) rec, &a);
  g_assert_true (rec[1].ok);
  a.operand.u = 2;
  g_assert_cmpint (shm_atomic_check (&t, &a), ==, -ERANGE);
  a.op = SHM_ATOMIC_ADD;
  a.operand.u = 1;
  g_assert_cmpint (shm_atomic_check (&t, &a), ==, -EINVAL);   /* add on bool */

  /* Not a scalar's start, a string, past the record, no field, a field on
   * a plain type. */
  for (guint64 bad = 1; bad < 8; bad++)
    {
      a.field = bad;
      g_assert_cmpint (shm_atomic_check (&t, &a), ==, -EINVAL);
    }
  a.field = offsetof (typeof (rec[0]), s);
  g_assert_cmpint (shm_atomic_check (&t, &a), ==, -EINVAL);
  a.field = sizeof rec[0];
  g_assert_cmpint (shm_atomic_check (&t, &a), ==, -EINVAL);
  a.field = 0;
  a.index = 2;
  g_assert_cmpint (shm_atomic_check (&t, &a), ==, -EINVAL);
  a.index = 0;
  a.has_field = FALSE;
  g_assert_cmpint (shm_atomic_check (&t, &a), ==, -EINVAL);
  shm_type_clear (&t);
  t = parse_ok ("i64");
  a.has_field = TRUE;
  g_assert_cmpint (shm_atomic_check (&t, &a), ==, -EINVAL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/record/spec/canonical", test_spec_canonical);
  g_test_add_func ("/record/spec/bad", test_spec_bad);
  g_test_add_func ("/record/spec/long", test_spec_long);
  g_test_add_func ("/record/layout/c", test_layout_c);
  g_test_add_func ("/record/layout/arrays", test_layout_arrays);
  g_test_add_func ("/record/numpy-dtype", test_numpy_dtype);
  g_test_add_func ("/record/equal-and-copy", test_equal_and_copy);
  g_test_add_func ("/record/field/resolve", test_resolve_field);
  g_test_add_func ("/record/field/scalar-at", test_scalar_at);
  g_test_add_func ("/record/json/format", test_json_format);
  g_test_add_func ("/record/json/array-lines", test_json_array_lines);
  g_test_add_func ("/record/json/merge", test_json_merge);
  g_test_add_func ("/record/json/bad", test_json_bad);
  g_test_add_func ("/record/json/arrays-of-records", test_json_arrays_of_records);
  g_test_add_func ("/record/json/scan", test_json_scan);
  g_test_add_func ("/record/atomic/fields", test_atomic_fields);

  return g_test_run ();
}
