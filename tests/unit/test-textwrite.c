/* Unit tests of core/shm-textwrite: when a text written in pieces is
 * complete (docs/contract.md §4, docs/semantics.md "The text view"). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "shm-textwrite.h"

typedef struct {
  ShmTextWrite *tw;
  ShmType       type;
  const ShmType *t;      /* &type, or NULL: untyped */
  guint64       off;     /* where the next write goes, as a file offset would */
} Writer;

static void
writer_init (Writer *w, const char *spec)
{
  w->tw = shm_textwrite_new ();
  w->t = NULL;
  w->off = 0;
  if (spec != NULL)
    {
      g_assert_cmpint (shm_type_parse (spec, strlen (spec), &w->type), ==, 0);
      w->t = &w->type;
    }
}

static void
writer_clear (Writer *w)
{
  shm_textwrite_free (w->tw);
}

/* Writes s at off; returns the step and moves the offset on when taken. */
static ShmTextWriteStep
write_at (Writer *w, guint64 off, const char *s)
{
  ShmTextWriteStep step = (ShmTextWriteStep) -1;
  int err = shm_textwrite_write (w->tw, w->t, off, s, strlen (s), &step);

  if (step == SHM_TEXTWRITE_KEEP || step == SHM_TEXTWRITE_COMMIT)
    {
      g_assert_cmpint (err, ==, 0);
      w->off = off + strlen (s);
    }
  else
    g_assert_cmpint (err, ==, -EINVAL);
  return step;
}

/* Writes s where the file offset stands. */
static ShmTextWriteStep
write_on (Writer *w, const char *s)
{
  return write_at (w, w->off, s);
}

static void
assert_text (Writer *w, const char *expected)
{
  gsize len;
  const char *text = shm_textwrite_get_text (w->tw, &len);

  g_assert_cmpuint (len, ==, strlen (expected));
  g_assert_cmpstr (text, ==, expected);
}

static void
test_whole_in_one_write (void)
{
  Writer w;

  /* The last element has no separator, but the text came in one write. */
  writer_init (&w, "i64[3]");
  g_assert_cmpint (write_on (&w, "1 2 3"), ==, SHM_TEXTWRITE_COMMIT);
  assert_text (&w, "1 2 3");
  shm_textwrite_committed (w.tw, 0);
  g_assert_false (shm_textwrite_needs_commit (w.tw));
  writer_clear (&w);

  writer_init (&w, "f64");
  g_assert_cmpint (write_on (&w, "3.1415926"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);
}

static void
test_echo_line (void)
{
  Writer w;

  writer_init (&w, "i64[3]");
  g_assert_cmpint (write_on (&w, "1 2 3\n"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);

  writer_init (&w, "i64");
  g_assert_cmpint (write_on (&w, "5\n"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);
}

static void
test_pieces_completed_by_separator (void)
{
  Writer w;

  writer_init (&w, "i64[3]");
  g_assert_cmpint (write_on (&w, "1 2"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpuint (shm_textwrite_get_elements (w.tw), ==, 2);
  g_assert_cmpint (write_on (&w, " "), ==, SHM_TEXTWRITE_KEEP);
  /* The last element, then a separator: complete in this write. */
  g_assert_cmpint (write_on (&w, "3,"), ==, SHM_TEXTWRITE_COMMIT);
  assert_text (&w, "1 2 3,");
  writer_clear (&w);
}

static void
test_pieces_last_element_open_until_close (void)
{
  Writer w;

  writer_init (&w, "i64[3]");
  g_assert_cmpint (write_on (&w, "1 2 "), ==, SHM_TEXTWRITE_KEEP);
  /* "3" may go on ("34"): not complete until a separator or close. */
  g_assert_cmpint (write_on (&w, "3"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "4"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_true (shm_textwrite_needs_commit (w.tw));
  assert_text (&w, "1 2 34");
  shm_textwrite_committed (w.tw, 0);
  g_assert_false (shm_textwrite_needs_commit (w.tw));
  writer_clear (&w);
}

static void
test_incomplete_at_close (void)
{
  Writer w;

  /* Too few elements over several writes: close commits, and the parse
   * (the caller's) gives the verdict. */
  writer_init (&w, "i64[4]");
  g_assert_cmpint (write_on (&w, "1 2"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, " 3"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_true (shm_textwrite_needs_commit (w.tw));
  shm_textwrite_committed (w.tw, -EINVAL);
  g_assert_false (shm_textwrite_needs_commit (w.tw));
  writer_clear (&w);
}

static void
test_nothing_written_nothing_to_commit (void)
{
  Writer w;

  writer_init (&w, "i64[3]");
  g_assert_false (shm_textwrite_needs_commit (w.tw));
  assert_text (&w, "");
  writer_clear (&w);
}

static void
test_write_at_hole (void)
{
  Writer w;

  /* Nothing written yet: only offset 0 starts a text. */
  writer_init (&w, "i64[3]");
  g_assert_cmpint (write_at (&w, 5, "1 2 3"), ==, SHM_TEXTWRITE_HOLE);
  g_assert_false (shm_textwrite_needs_commit (w.tw));

  /* Past or before the end of the text so far: refused, the text kept. */
  g_assert_cmpint (write_at (&w, 0, "1 2"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_at (&w, 4, " 3"), ==, SHM_TEXTWRITE_HOLE);
  g_assert_cmpint (write_at (&w, 2, " 3"), ==, SHM_TEXTWRITE_HOLE);
  assert_text (&w, "1 2");
  g_assert_true (shm_textwrite_needs_commit (w.tw));
  /* A hole does not refuse the text: it goes on where it stands. */
  g_assert_cmpint (write_at (&w, 3, " 3\n"), ==, SHM_TEXTWRITE_COMMIT);
  assert_text (&w, "1 2 3\n");
  writer_clear (&w);
}

static void
test_offset_zero_restarts (void)
{
  Writer w;

  writer_init (&w, "i64[3]");
  g_assert_cmpint (write_on (&w, "9 9"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_at (&w, 0, "1 2 3"), ==, SHM_TEXTWRITE_COMMIT);
  assert_text (&w, "1 2 3");
  writer_clear (&w);
}

static void
test_refused_text_stays_refused (void)
{
  Writer w;

  writer_init (&w, "i64[2]");
  g_assert_cmpint (write_on (&w, "1 2 3"), ==, SHM_TEXTWRITE_TOO_MANY);
  g_assert_false (shm_textwrite_needs_commit (w.tw));
  /* The rest of that text, even a harmless byte, is refused too ... */
  g_assert_cmpint (write_at (&w, 5, "\n"), ==, SHM_TEXTWRITE_REFUSED);
  g_assert_false (shm_textwrite_needs_commit (w.tw));
  /* ... until a write at 0 starts another. */
  g_assert_cmpint (write_at (&w, 0, "1 2\n"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);
}

static void
test_failed_commit_refuses_the_rest (void)
{
  Writer w;

  writer_init (&w, "i8[2]");
  g_assert_cmpint (write_on (&w, "1 999 "), ==, SHM_TEXTWRITE_COMMIT);
  shm_textwrite_committed (w.tw, -ERANGE);
  g_assert_false (shm_textwrite_needs_commit (w.tw));
  g_assert_cmpint (write_on (&w, "\n"), ==, SHM_TEXTWRITE_REFUSED);
  g_assert_false (shm_textwrite_needs_commit (w.tw));
  writer_clear (&w);
}

static void
test_too_many_elements (void)
{
  Writer w;

  writer_init (&w, "i64[3]");
  g_assert_cmpint (write_on (&w, "1 2 3 "), ==, SHM_TEXTWRITE_COMMIT);
  shm_textwrite_committed (w.tw, 0);
  g_assert_cmpint (write_on (&w, "4"), ==, SHM_TEXTWRITE_TOO_MANY);
  g_assert_cmpuint (shm_textwrite_get_elements (w.tw), ==, 4);
  writer_clear (&w);

  writer_init (&w, "i64[2]");
  g_assert_cmpint (write_on (&w, "1 "), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "2 3"), ==, SHM_TEXTWRITE_TOO_MANY);
  writer_clear (&w);
}

static void
test_separators_after_commit (void)
{
  Writer w;

  /* Separators after a value that ended in one: nothing more to do. */
  writer_init (&w, "i64[3]");
  g_assert_cmpint (write_on (&w, "1 2 3\n"), ==, SHM_TEXTWRITE_COMMIT);
  shm_textwrite_committed (w.tw, 0);
  g_assert_cmpint (write_on (&w, " \n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_false (shm_textwrite_needs_commit (w.tw));
  writer_clear (&w);

  /* A value whose last element was still open ("3" may have gone on) is
   * committed again, whole, by the separator that closes it. */
  writer_init (&w, "i64[3]");
  g_assert_cmpint (write_on (&w, "1 2 3"), ==, SHM_TEXTWRITE_COMMIT);
  shm_textwrite_committed (w.tw, 0);
  g_assert_cmpint (write_on (&w, "\n"), ==, SHM_TEXTWRITE_COMMIT);
  assert_text (&w, "1 2 3\n");
  writer_clear (&w);

  /* But an element that goes on after a commit ("3" then "4") is new text. */
  writer_init (&w, "i64[3]");
  g_assert_cmpint (write_on (&w, "1 2 3"), ==, SHM_TEXTWRITE_COMMIT);
  shm_textwrite_committed (w.tw, 0);
  g_assert_cmpint (write_on (&w, "4"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_true (shm_textwrite_needs_commit (w.tw));
  assert_text (&w, "1 2 34");
  writer_clear (&w);
}

static void
test_echo_line_too_short (void)
{
  Writer w;

  /* echo '1 2' > arr: one line, the whole text, too short at once. */
  writer_init (&w, "i64[3]");
  g_assert_cmpint (write_on (&w, "1 2\n"), ==, SHM_TEXTWRITE_TOO_FEW);
  g_assert_cmpuint (shm_textwrite_get_elements (w.tw), ==, 2);
  g_assert_false (shm_textwrite_needs_commit (w.tw));
  g_assert_cmpint (write_at (&w, 4, "3\n"), ==, SHM_TEXTWRITE_REFUSED);
  writer_clear (&w);

  /* A row and a half of a 2-D array, in one line. */
  writer_init (&w, "i64[2][2]");
  g_assert_cmpint (write_on (&w, "1 2 3\n"), ==, SHM_TEXTWRITE_TOO_FEW);
  writer_clear (&w);
}

static void
test_line_per_element (void)
{
  Writer w;

  /* bash's echo -e '1\n2\n3': one write per line, one element each. */
  writer_init (&w, "i64[3]");
  g_assert_cmpint (write_on (&w, "1\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "2\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "3\n"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);

  /* echo 5 > arr on a longer array: incomplete, for close to refuse. */
  writer_init (&w, "i64[3]");
  g_assert_cmpint (write_on (&w, "5\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_true (shm_textwrite_needs_commit (w.tw));
  writer_clear (&w);
}

static void
test_line_per_row (void)
{
  Writer w;

  /* printf '1 2 3\n4 5 6\n' from bash: a row per write. */
  writer_init (&w, "i64[2][3]");
  g_assert_cmpint (write_on (&w, "1 2 3\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "4 5 6\n"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);

  /* A later line must end on a whole row. */
  writer_init (&w, "i64[3][3]");
  g_assert_cmpint (write_on (&w, "1 2 3\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "4 5\n"), ==, SHM_TEXTWRITE_TOO_FEW);
  g_assert_false (shm_textwrite_needs_commit (w.tw));
  writer_clear (&w);

  /* Lines of several rows are fine. */
  writer_init (&w, "i64[3][2]");
  g_assert_cmpint (write_on (&w, "1 2\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "3 4\n5 6\n"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);
}

static void
test_records (void)
{
  Writer w;

  /* A record array of any rank takes an object per line, as a shell's
   * lines or JSON Lines come. */
  writer_init (&w, "{a:u8, s:char[4]}[2][2]");
  g_assert_cmpint (write_on (&w, "{\"a\": 1}\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "{}\n{\"s\": \"}\"}\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "{\"a\""), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, ": 2}"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);
  shm_type_clear (&w.type);

  /* One JSON array in pieces: complete at its closing bracket, not at the
   * last object; braces inside strings do not count. */
  writer_init (&w, "{a:u8, s:char[4]}[2]");
  g_assert_cmpint (write_on (&w, "[{\"s\": \"{{\"}, "), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "{\"a\": 3}"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_true (shm_textwrite_needs_commit (w.tw));
  g_assert_cmpint (write_on (&w, "]\n"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);
  shm_type_clear (&w.type);

  /* A record's text in pieces, the first at 0 and cut inside the object
   * (cat's 128 KiB writes): it waits for the closing brace. */
  writer_init (&w, "{x:i32, v:u8[3]}");
  g_assert_cmpint (write_on (&w, "{\"x\": 5, \"v\": [1, "), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "2, 3]}"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);
  shm_type_clear (&w.type);
  /* Lines of one pretty-printed object, one write each (bash). */
  writer_init (&w, "{x:i32, y:i32}");
  g_assert_cmpint (write_on (&w, "{\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "  \"x\": 1,\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "  \"y\": 2}\n"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);
  shm_type_clear (&w.type);
  /* An array of records as one JSON array cut before its bracket. */
  writer_init (&w, "{x:i32}[2]");
  g_assert_cmpint (write_on (&w, "[{\"x\": 1}, {\"x\": 2}"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "]"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);
  shm_type_clear (&w.type);

  /* A third object for two elements. */
  writer_init (&w, "{a:u8}[2]");
  g_assert_cmpint (write_on (&w, "{}\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "{}\n{}\n"), ==, SHM_TEXTWRITE_TOO_MANY);
  writer_clear (&w);
  shm_type_clear (&w.type);

  /* A record's room is its fields': a long string field's text fits. */
  writer_init (&w, "{s:char[8192]}");
  {
    GString *text = g_string_new ("{\"s\": \"");

    for (guint i = 0; i < 8192; i++)
      g_string_append (text, "\\udcff");
    g_string_append (text, "\"}");
    g_assert_cmpint (write_on (&w, text->str), ==, SHM_TEXTWRITE_COMMIT);
    g_string_free (text, TRUE);
  }
  writer_clear (&w);
  shm_type_clear (&w.type);
}

static void
test_lines_not_line_wise (void)
{
  Writer w;

  /* A first write of several lines is not echo's single line: a newline
   * in a later write does not end the text. */
  writer_init (&w, "i64[4]");
  g_assert_cmpint (write_on (&w, "1\n2\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "3\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpint (write_on (&w, "4\n"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);

  /* A first line of two elements on a 1-D array is the whole text. */
  writer_init (&w, "i64[4]");
  g_assert_cmpint (write_on (&w, "1 2\n"), ==, SHM_TEXTWRITE_TOO_FEW);
  writer_clear (&w);
}

static void
test_too_long (void)
{
  Writer w;
  gsize limit = 3 * SHM_TEXTWRITE_BYTES_PER_ELEMENT + SHM_TEXTWRITE_SLACK;
  char *text = g_strnfill (limit + 1, ' ');

  /* Exactly the limit is taken (it is all separators) ... */
  writer_init (&w, "i64[3]");
  text[limit] = '\0';
  g_assert_cmpint (write_on (&w, text), ==, SHM_TEXTWRITE_KEEP);
  /* ... one byte more is not, and refuses the text. */
  g_assert_cmpint (write_on (&w, " "), ==, SHM_TEXTWRITE_TOO_LONG);
  g_assert_cmpint (write_at (&w, limit, "1"), ==, SHM_TEXTWRITE_REFUSED);
  writer_clear (&w);

  /* In one write. */
  writer_init (&w, "i64[3]");
  text[limit] = ' ';
  g_assert_cmpint (write_on (&w, text), ==, SHM_TEXTWRITE_TOO_LONG);
  assert_text (&w, "");
  writer_clear (&w);
  g_free (text);
}

static void
test_too_long_char (void)
{
  Writer w;
  gsize limit = 100 + SHM_TEXTWRITE_BYTES_PER_ELEMENT + SHM_TEXTWRITE_SLACK;
  char *text = g_strnfill (limit + 1, 'x');

  /* A char[N] may have N bytes more. */
  writer_init (&w, "char[100]");
  text[limit] = '\0';
  g_assert_cmpint (write_on (&w, text), ==, SHM_TEXTWRITE_COMMIT);
  g_assert_cmpint (write_on (&w, "x"), ==, SHM_TEXTWRITE_TOO_LONG);
  writer_clear (&w);
  g_free (text);
}

static void
test_untyped_commits_every_write (void)
{
  Writer w;
  gsize limit = SHM_TEXTWRITE_BYTES_PER_ELEMENT + SHM_TEXTWRITE_SLACK;
  char *text = g_strnfill (limit + 1, ' ');

  /* The first write infers the type: it must carry the whole text. */
  writer_init (&w, NULL);
  g_assert_cmpint (write_on (&w, "1 2"), ==, SHM_TEXTWRITE_COMMIT);
  shm_textwrite_committed (w.tw, 0);
  g_assert_cmpint (write_at (&w, 0, "[1, 2.5]\n"), ==, SHM_TEXTWRITE_COMMIT);
  assert_text (&w, "[1, 2.5]\n");
  shm_textwrite_committed (w.tw, -EINVAL);
  g_assert_cmpint (write_on (&w, " "), ==, SHM_TEXTWRITE_REFUSED);
  writer_clear (&w);

  /* Untyped: the limit of one element. */
  writer_init (&w, NULL);
  g_assert_cmpint (write_on (&w, text), ==, SHM_TEXTWRITE_TOO_LONG);
  writer_clear (&w);
  g_free (text);
}

static void
test_typed_by_first_write (void)
{
  Writer w;
  ShmType i64;

  /* "5" typed the object (i64); the newline that follows finds it typed. */
  writer_init (&w, NULL);
  g_assert_cmpint (write_on (&w, "5"), ==, SHM_TEXTWRITE_COMMIT);
  shm_textwrite_committed (w.tw, 0);
  g_assert_cmpint (shm_type_parse ("i64", 3, &i64), ==, 0);
  w.type = i64;
  w.t = &w.type;
  g_assert_cmpint (write_on (&w, "\n"), ==, SHM_TEXTWRITE_COMMIT);
  assert_text (&w, "5\n");
  writer_clear (&w);
}

static void
test_strings_by_line (void)
{
  Writer w;

  /* char[N] arrays take one element per line; spaces are bytes. */
  writer_init (&w, "char[8][2]");
  g_assert_cmpint (write_on (&w, "a b\n"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_cmpuint (shm_textwrite_get_elements (w.tw), ==, 1);
  g_assert_cmpint (write_on (&w, "c d\n"), ==, SHM_TEXTWRITE_COMMIT);
  writer_clear (&w);

  /* A string in pieces is complete at close. */
  writer_init (&w, "char[8]");
  g_assert_cmpint (write_on (&w, "ab"), ==, SHM_TEXTWRITE_COMMIT);
  shm_textwrite_committed (w.tw, 0);
  g_assert_cmpint (write_on (&w, "c"), ==, SHM_TEXTWRITE_KEEP);
  g_assert_true (shm_textwrite_needs_commit (w.tw));
  writer_clear (&w);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/textwrite/whole-in-one-write", test_whole_in_one_write);
  g_test_add_func ("/textwrite/echo-line", test_echo_line);
  g_test_add_func ("/textwrite/pieces-completed-by-separator", test_pieces_completed_by_separator);
  g_test_add_func ("/textwrite/pieces-last-element-open-until-close",
                   test_pieces_last_element_open_until_close);
  g_test_add_func ("/textwrite/incomplete-at-close", test_incomplete_at_close);
  g_test_add_func ("/textwrite/nothing-written", test_nothing_written_nothing_to_commit);
  g_test_add_func ("/textwrite/write-at-hole", test_write_at_hole);
  g_test_add_func ("/textwrite/offset-zero-restarts", test_offset_zero_restarts);
  g_test_add_func ("/textwrite/refused-text-stays-refused", test_refused_text_stays_refused);
  g_test_add_func ("/textwrite/failed-commit-refuses-the-rest", test_failed_commit_refuses_the_rest);
  g_test_add_func ("/textwrite/too-many-elements", test_too_many_elements);
  g_test_add_func ("/textwrite/separators-after-commit", test_separators_after_commit);
  g_test_add_func ("/textwrite/echo-line-too-short", test_echo_line_too_short);
  g_test_add_func ("/textwrite/line-per-element", test_line_per_element);
  g_test_add_func ("/textwrite/line-per-row", test_line_per_row);
  g_test_add_func ("/textwrite/lines-not-line-wise", test_lines_not_line_wise);
  g_test_add_func ("/textwrite/too-long", test_too_long);
  g_test_add_func ("/textwrite/too-long-char", test_too_long_char);
  g_test_add_func ("/textwrite/untyped-commits-every-write", test_untyped_commits_every_write);
  g_test_add_func ("/textwrite/typed-by-first-write", test_typed_by_first_write);
  g_test_add_func ("/textwrite/strings-by-line", test_strings_by_line);
  g_test_add_func ("/textwrite/records", test_records);
  return g_test_run ();
}
