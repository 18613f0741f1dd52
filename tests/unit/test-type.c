/* test-type.c — type specs: parsing, canonical names, numpy strings. */
#include "shm-type.h"
#include "type-helpers.h"

#include <errno.h>
#include <string.h>

static void
test_parse_elements (void)
{
  static const struct {
    const char *spec;
    ShmElem elem;
    gsize size;
    gboolean is_float;
  } cases[] = {
    { "i8", SHM_ELEM_I8, 1, FALSE },     { "u8", SHM_ELEM_U8, 1, FALSE },
    { "i16", SHM_ELEM_I16, 2, FALSE },   { "u16", SHM_ELEM_U16, 2, FALSE },
    { "i32", SHM_ELEM_I32, 4, FALSE },   { "u32", SHM_ELEM_U32, 4, FALSE },
    { "i64", SHM_ELEM_I64, 8, FALSE },   { "u64", SHM_ELEM_U64, 8, FALSE },
    { "f32", SHM_ELEM_F32, 4, TRUE },    { "f64", SHM_ELEM_F64, 8, TRUE },
    { "bool", SHM_ELEM_BOOL, 1, FALSE }, { "char[7]", SHM_ELEM_CHAR, 7, FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      ShmType t = parse_ok (cases[i].spec);
      g_autofree char *s = shm_type_to_string (&t);

      g_assert_cmpint (t.elem, ==, cases[i].elem);
      g_assert_cmpuint (t.ndim, ==, 0);
      g_assert_cmpuint (shm_type_elem_size (&t), ==, cases[i].size);
      g_assert_cmpuint (shm_type_count (&t), ==, 1);
      g_assert_cmpuint (shm_type_nbytes (&t), ==, cases[i].size);
      g_assert_cmpint (shm_type_is_float (&t), ==, cases[i].is_float);
      g_assert_cmpstr (s, ==, cases[i].spec);
    }
}

static void
test_parse_aliases (void)
{
  static const struct {
    const char *alias, *canonical;
  } cases[] = {
    { "b", "i8" },   { "B", "u8" },   { "h", "i16" }, { "H", "u16" },
    { "i", "i32" },  { "I", "u32" },  { "q", "i64" }, { "Q", "u64" },
    { "f", "f32" },  { "d", "f64" },  { "?", "bool" },
    { "c", "char[1]" }, { "c[16]", "char[16]" }, { "c[16][4]", "char[16][4]" },
    { "d[3]", "f64[3]" }, { "B[2,2]", "u8[2][2]" },
#if GLIB_SIZEOF_LONG == 8
    { "l", "i64" },  { "L", "u64" },
#else
    { "l", "i32" },  { "L", "u32" },
#endif
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    assert_canonical (cases[i].alias, cases[i].canonical);
}

static void
test_parse_char (void)
{
  ShmType t = parse_ok ("char[16]");

  g_assert_cmpint (t.elem, ==, SHM_ELEM_CHAR);
  g_assert_cmpuint (t.char_len, ==, 16);
  g_assert_cmpuint (t.ndim, ==, 0);
  g_assert_cmpuint (shm_type_count (&t), ==, 1);
  g_assert_cmpuint (shm_type_nbytes (&t), ==, 16);

  t = parse_ok ("char[16][4]");
  g_assert_cmpuint (t.char_len, ==, 16);
  g_assert_cmpuint (t.ndim, ==, 1);
  g_assert_cmpuint (t.dims[0], ==, 4);
  g_assert_cmpuint (shm_type_elem_size (&t), ==, 16);
  g_assert_cmpuint (shm_type_count (&t), ==, 4);
  g_assert_cmpuint (shm_type_nbytes (&t), ==, 64);

  t = parse_ok ("c");
  g_assert_cmpuint (t.char_len, ==, 1);
  g_assert_cmpuint (shm_type_nbytes (&t), ==, 1);

  /* A comma in the first group reads as "][", as for other elements. */
  assert_canonical ("char[16,4]", "char[16][4]");
  assert_canonical ("char[4294967295]", "char[4294967295]");
}

static void
test_parse_dims (void)
{
  ShmType t = parse_ok ("f64[3][4]");

  g_assert_cmpuint (t.ndim, ==, 2);
  g_assert_cmpuint (t.dims[0], ==, 3);
  g_assert_cmpuint (t.dims[1], ==, 4);
  g_assert_cmpuint (shm_type_count (&t), ==, 12);
  g_assert_cmpuint (shm_type_nbytes (&t), ==, 96);

  assert_canonical ("f64[3,4]", "f64[3][4]");
  assert_canonical ("f64[3, 4]", "f64[3][4]");
  assert_canonical ("f64[3,  4]", "f64[3][4]");
  assert_canonical ("f64[ 3 , 4 ]", "f64[3][4]");
  assert_canonical ("i8[2,3][4]", "i8[2][3][4]");
  assert_canonical ("u16[5]", "u16[5]");
  assert_canonical ("u16[1]", "u16[1]");
  assert_canonical ("u16[007]", "u16[7]");
  assert_canonical ("bool[1,2,3,4,5,6,7,8]", "bool[1][2][3][4][5][6][7][8]");
  assert_canonical ("char[2][1,2,3,4,5,6,7,8]",
                    "char[2][1][2][3][4][5][6][7][8]");
}

static void
test_parse_whitespace (void)
{
  assert_canonical (" f64[3]\n", "f64[3]");
  assert_canonical ("\tbool \n", "bool");
  assert_canonical ("i32\n", "i32");
  assert_canonical ("\n\ni32\r\n", "i32");
}

static void
test_parse_limits (void)
{
  ShmType t;
  GString *s = g_string_new ("i8");

  /* SHM_TYPE_MAX_NBYTES itself is allowed, one more is not. */
  t = parse_ok ("u8[1099511627776]");
  g_assert_cmpuint (shm_type_nbytes (&t), ==, SHM_TYPE_MAX_NBYTES);
  t = parse_ok ("f64[137438953472]");
  g_assert_cmpuint (shm_type_nbytes (&t), ==, SHM_TYPE_MAX_NBYTES);
  t = parse_ok ("char[1024][1073741824]");
  g_assert_cmpuint (shm_type_nbytes (&t), ==, SHM_TYPE_MAX_NBYTES);

  /* The longest spec accepted, padded with leading zeros. */
  g_string_append_c (s, '[');
  while (s->len < SHM_TYPE_MAX_SPEC - 2)
    g_string_append_c (s, '0');
  g_string_append (s, "3]");
  g_assert_cmpuint (s->len, ==, SHM_TYPE_MAX_SPEC);
  g_assert_cmpint (shm_type_parse (s->str, s->len, &t), ==, 0);
  g_assert_cmpuint (t.dims[0], ==, 3);
  g_string_insert_c (s, 3, '0');
  g_assert_cmpint (shm_type_parse (s->str, s->len, &t), ==, -EINVAL);
  g_string_free (s, TRUE);
}

static void
test_parse_bad (void)
{
  static const char *const cases[] = {
    "", " ", "\n", "x", "F64", "I8x", "int", "float", "double", "f16",
    "i128", "u8u8", "char", "char[]", "char[0]", "c[0]", "char[4294967296]",
    "f64[]", "f64[0]", "f64[-1]", "f64[+3]", "f64[3", "f64[3]]", "f64[3][",
    "f64 [3]", "f64[3] [4]", "f64[a]", "f64[3,]", "f64[,3]", "f64[3,,4]",
    "f64[1.5]", "f64[0x10]", "f64[1e3]", "f64[3]x", "[3]", "f64(3)",
    "f64[3][0]", "f64[3;4]", "?[2]]", "c[]",
    "i8[1][1][1][1][1][1][1][1][1]", "i8[1,1,1,1,1,1,1,1,1]",
    "char[1][1][1][1][1][1][1][1][1][1]",
    "u8[1099511627777]", "f64[137438953473]", "u8[1048576][1048577]",
    "u8[99999999999999999999999999]", "u64[18446744073709551617]",
    "char[1024][1073741825]",
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      ShmType t, before;

      memset (&t, 0xa5, sizeof t);
      before = t;
      if (shm_type_parse (cases[i], strlen (cases[i]), &t) != -EINVAL)
        g_error ("shm_type_parse (\"%s\") accepted", cases[i]);
      g_assert_true (memcmp (&t, &before, sizeof t) == 0);
    }
}

static void
test_parse_length (void)
{
  ShmType t;

  /* The length bounds the spec, whatever follows. */
  g_assert_cmpint (shm_type_parse ("f64[3]garbage", 6, &t), ==, 0);
  g_assert_cmpuint (t.dims[0], ==, 3);
  g_assert_cmpint (shm_type_parse ("f64\0[3]", 7, &t), ==, -EINVAL);
  g_assert_cmpint (shm_type_parse ("f6", 2, &t), ==, -EINVAL);
  g_assert_cmpint (shm_type_parse ("", 0, &t), ==, -EINVAL);
}

static void
test_to_string_round_trip (void)
{
  static const char *const specs[] = {
    "i8", "u64[1]", "f32[2][3]", "bool[8]", "char[1]", "char[255][3][2]",
    "i16[1][1][1][1][1][1][1][1]", "u8[1099511627776]",
  };

  for (guint i = 0; i < G_N_ELEMENTS (specs); i++)
    {
      ShmType t = parse_ok (specs[i]);
      g_autofree char *s = shm_type_to_string (&t);
      ShmType back = parse_ok (s);

      g_assert_cmpstr (s, ==, specs[i]);
      g_assert_true (shm_type_equal (&t, &back));
    }
}

static void
test_equal (void)
{
  ShmType a = parse_ok ("f64[3][4]"), b = parse_ok ("d[3,4]");
  ShmType c = parse_ok ("f64[4][3]"), d = parse_ok ("f64[12]");
  ShmType e = parse_ok ("char[4]"), f = parse_ok ("char[5]");
  ShmType g = parse_ok ("i64[3][4]");

  g_assert_true (shm_type_equal (&a, &b));
  g_assert_false (shm_type_equal (&a, &c));
  g_assert_false (shm_type_equal (&a, &d));
  g_assert_false (shm_type_equal (&a, &g));
  g_assert_false (shm_type_equal (&e, &f));

  /* Dimensions beyond ndim do not count. */
  b.dims[5] = 99;
  g_assert_true (shm_type_equal (&a, &b));
}

static void
test_numpy_dtype (void)
{
  const char *le = G_BYTE_ORDER == G_LITTLE_ENDIAN ? "<" : ">";
  static const struct {
    const char *spec, *order, *dtype;
  } cases[] = {
    { "i8", "|", "i1" },  { "u8", "|", "u1" },  { "i16", NULL, "i2" },
    { "u16", NULL, "u2" }, { "i32", NULL, "i4" }, { "u32", NULL, "u4" },
    { "i64", NULL, "i8" }, { "u64", NULL, "u8" }, { "f32", NULL, "f4" },
    { "f64[3][4]", NULL, "f8" }, { "bool[2]", "|", "b1" },
    { "char[16]", "|", "S16" }, { "char[1][5]", "|", "S1" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      ShmType t = parse_ok (cases[i].spec);
      g_autofree char *dtype = shm_type_numpy_dtype (&t);
      g_autofree char *want = g_strconcat (cases[i].order ? cases[i].order : le,
                                           cases[i].dtype, NULL);

      g_assert_cmpstr (dtype, ==, want);
    }
}

static void
test_numpy_shape (void)
{
  static const struct {
    const char *spec, *shape;
  } cases[] = {
    { "f64", "()" }, { "char[16]", "()" }, { "i8[5]", "(5,)" },
    { "char[16][4]", "(4,)" }, { "f64[3][4]", "(3, 4)" },
    { "u8[2,3,4]", "(2, 3, 4)" }, { "u8[1099511627776]", "(1099511627776,)" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      ShmType t = parse_ok (cases[i].spec);
      g_autofree char *shape = shm_type_shape_string (&t);

      g_assert_cmpstr (shape, ==, cases[i].shape);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/type/parse/elements", test_parse_elements);
  g_test_add_func ("/type/parse/aliases", test_parse_aliases);
  g_test_add_func ("/type/parse/char", test_parse_char);
  g_test_add_func ("/type/parse/dims", test_parse_dims);
  g_test_add_func ("/type/parse/whitespace", test_parse_whitespace);
  g_test_add_func ("/type/parse/limits", test_parse_limits);
  g_test_add_func ("/type/parse/bad", test_parse_bad);
  g_test_add_func ("/type/parse/length", test_parse_length);
  g_test_add_func ("/type/to-string/round-trip", test_to_string_round_trip);
  g_test_add_func ("/type/equal", test_equal);
  g_test_add_func ("/type/numpy/dtype", test_numpy_dtype);
  g_test_add_func ("/type/numpy/shape", test_numpy_shape);

  return g_test_run ();
}
