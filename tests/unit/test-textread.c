/* Unit tests of core/shm-textread: a value's text read in pieces, as
 * seq_file does (docs/contract.md §4, docs/semantics.md "The text view"). */
#include "config.h"

#include <string.h>

#include "shm-codec.h"
#include "shm-textread.h"

static ShmType
parse (const char *spec)
{
  ShmType t;

  g_assert_cmpint (shm_type_parse (spec, strlen (spec), &t), ==, 0);
  return t;
}

/* Reads tr from off on in reads of size bytes; returns the text. */
static GString *
read_all (ShmTextRead *tr, guint64 off, gsize size)
{
  GString *out = g_string_new (NULL);

  for (;;)
    {
      gsize len;
      const char *p = shm_textread_read (tr, off, size, &len);

      g_assert_cmpuint (len, <=, size);
      if (len == 0)
        return out;
      g_string_append_len (out, p, (gssize) len);
      off += len;
    }
}

static void
test_pieces_make_the_whole (void)
{
  static const char *const specs[] = {
    "i32[100000]", "f64[3][5000]", "char[9][300]", "{a:u8, s:char[3]}[20000]", "u8",
  };
  static const gsize sizes[] = { 1, 7, 4096, 131072 };

  for (guint s = 0; s < G_N_ELEMENTS (specs); s++)
    {
      ShmType t = parse (specs[s]);
      guint64 n = shm_type_nbytes (&t);
      guint8 *bytes = g_malloc (n);
      g_autoptr (GString) whole = g_string_new (NULL);

      for (guint64 i = 0; i < n; i++)
        bytes[i] = (guint8) (i * 37 % 97 + 1);
      shm_codec_format (&t, bytes, whole);
      for (guint z = 0; z < G_N_ELEMENTS (sizes); z++)
        {
          ShmTextRead *tr = shm_textread_new ();
          g_autoptr (GString) got = NULL;

          if (sizes[z] == 1 && n > 20000)
            {
              shm_textread_free (tr);
              continue;
            }
          shm_textread_reset (tr, &t, g_memdup2 (bytes, n));
          got = read_all (tr, 0, sizes[z]);
          g_assert_cmpuint (got->len, ==, whole->len);
          g_assert_true (memcmp (got->str, whole->str, whole->len) == 0);
          shm_textread_free (tr);
        }
      g_free (bytes);
      shm_type_clear (&t);
    }
}

static void
test_snapshot_holds (void)
{
  ShmType t = parse ("u16[4]");
  guint16 v[4] = { 1, 2, 3, 4 };
  guint8 *bytes = g_memdup2 (v, sizeof v);
  ShmTextRead *tr = shm_textread_new ();
  g_autoptr (GString) rest = NULL;
  gsize len;
  const char *p;

  shm_textread_reset (tr, &t, bytes);
  /* The value changing under the snapshot changes nothing read. */
  v[3] = 9;
  p = shm_textread_read (tr, 0, 2, &len);
  g_assert_cmpmem (p, len, "1 ", 2);
  rest = read_all (tr, 2, 3);
  g_assert_cmpstr (rest->str, ==, "2 3 4\n");
  /* Back before what is kept: the same snapshot again. */
  p = shm_textread_read (tr, 0, 100, &len);
  g_assert_cmpmem (p, len, "1 2 3 4\n", 8);
  /* Past the end. */
  shm_textread_read (tr, 8, 10, &len);
  g_assert_cmpuint (len, ==, 0);
  shm_textread_read (tr, 1000, 10, &len);
  g_assert_cmpuint (len, ==, 0);
  /* A new snapshot starts over. */
  shm_textread_reset (tr, &t, g_memdup2 (v, sizeof v));
  p = shm_textread_read (tr, 6, 100, &len);
  g_assert_cmpmem (p, len, "9\n", 2);
  /* Untyped: no text. */
  shm_textread_reset (tr, NULL, NULL);
  shm_textread_read (tr, 0, 10, &len);
  g_assert_cmpuint (len, ==, 0);
  shm_textread_free (tr);
  shm_type_clear (&t);
}

static void
test_large_forward (void)
{
  ShmType t = parse ("u8[4194304]");
  ShmTextRead *tr = shm_textread_new ();
  guint64 off = 0, total = 0;

  /* 4 MiB of zeros, read forward 64 KiB at a time to its end: 8 MiB of
   * text ("0 " each), not one byte more. */
  shm_textread_reset (tr, &t, g_malloc0 (shm_type_nbytes (&t)));
  for (;;)
    {
      gsize len;

      shm_textread_read (tr, off, 65536, &len);
      if (len == 0)
        break;
      off += len;
      total += len;
    }
  g_assert_cmpuint (total, ==, 2 * 4194304);
  shm_textread_free (tr);
  shm_type_clear (&t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/textread/pieces-make-the-whole", test_pieces_make_the_whole);
  g_test_add_func ("/textread/snapshot-holds", test_snapshot_holds);
  g_test_add_func ("/textread/large-forward", test_large_forward);

  return g_test_run ();
}
