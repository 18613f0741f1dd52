/* cli.c — the command-line verbs, speaking to a mounted shmfs through its
 * files: text views, xattrs, rename(2), and the atomic-operation ioctl.
 * They need no daemon of their own and work from any process.
 */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "shm-codec.h"
#include "shm-type.h"
#include "shmfs/ioctl.h"

#define XA_TYPE "user.shmfs.type"

typedef struct {
  const char *name;
  const char *args;
  const char *help;
  int (*run) (int argc, char **argv);
  int min_args, max_args;   /* after the verb; max -1: any */
} Verb;

static const Verb *find_verb (const char *name);

static int
fail (const char *verb, const char *what, int err)
{
  fprintf (stderr, "shmfs %s: %s: %s\n", verb, what, g_strerror (err));
  return 2;
}

/* The xattr as a string (any length: a record's spec and dtype run long);
 * NULL and errno when absent. */
static char *
get_xattr (const char *path, const char *name)
{
  for (;;)
    {
      ssize_t size = getxattr (path, name, NULL, 0), len;
      g_autofree char *buf = NULL;

      if (size < 0)
        return NULL;
      buf = g_malloc ((gsize) size + 1);
      len = getxattr (path, name, buf, (gsize) size);
      if (len >= 0)
        {
          buf[len] = '\0';
          return g_steal_pointer (&buf);
        }
      if (errno != ERANGE)   /* ERANGE: it grew in between */
        return NULL;
    }
}

static int
read_type (const char *path, ShmType *type)
{
  g_autofree char *spec = get_xattr (path, XA_TYPE);

  if (spec == NULL)
    return -errno;
  return shm_type_parse (spec, strlen (spec), type);
}

/* Reads the whole text view. */
static int
read_text (const char *path, GString *out)
{
  char buf[65536];
  ssize_t n;
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return -errno;
  g_string_truncate (out, 0);
  while ((n = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (out, buf, n);
  close (fd);
  return n < 0 ? -errno : 0;
}

/* Writes text in one write(2), so the write returns the verdict. */
static int
write_text_fd (int fd, const char *text)
{
  gsize len = strlen (text);
  ssize_t n = write (fd, text, len);

  if (n < 0)
    return -errno;
  return (gsize) n == len ? 0 : -EIO;
}

static char *
join_values (int argc, char **argv)
{
  GString *s = g_string_new (NULL);

  for (int i = 0; i < argc; i++)
    {
      if (i > 0)
        g_string_append_c (s, ' ');
      g_string_append (s, argv[i]);
    }
  g_string_append_c (s, '\n');
  return g_string_free (s, FALSE);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ShmType, shm_type_clear)

static int
usage (const char *verb)
{
  fprintf (stderr, "shmfs %s: usage: shmfs %s\n", verb, find_verb (verb)->args);
  return 2;
}

/* ---- elements and fields ------------------------------------------ */

/* What a verb applies to: element --index N of an array, and --field NAME
 * of a record, a field path ("x", "pose.x", "v[2]"). */
typedef struct {
  guint64     index;
  gboolean    has_index;
  const char *field;    /* NULL: the whole element */
} Target;

/* Takes --index N (or -i N) and --field NAME out of the arguments, wherever
 * they stand after the verb.  Returns -1 on junk (a missing or malformed
 * argument, an option given twice). */
static int
take_target (int *argc, char **argv, Target *tg)
{
  memset (tg, 0, sizeof *tg);
  for (int i = 0; i < *argc;)
    {
      gboolean is_index = strcmp (argv[i], "--index") == 0 || strcmp (argv[i], "-i") == 0;
      const char *arg = i + 1 < *argc ? argv[i + 1] : NULL;

      if (!is_index && strcmp (argv[i], "--field") != 0)
        {
          i++;
          continue;
        }
      if (arg == NULL)
        return -1;
      if (is_index)
        {
          char *end;

          if (tg->has_index || !g_ascii_isdigit (arg[0]))
            return -1;
          errno = 0;
          tg->index = g_ascii_strtoull (arg, &end, 10);
          if (*end != '\0' || errno == ERANGE)
            return -1;
          tg->has_index = TRUE;
        }
      else
        {
          if (tg->field != NULL || arg[0] == '\0')
            return -1;
          tg->field = arg;
        }
      memmove (argv + i, argv + i + 2, (size_t) (*argc - i - 2) * sizeof *argv);
      *argc -= 2;
    }
  return 0;
}

/* Checks tg against the object's type (an index in range, a field of a
 * record) and resolves it: *offset of the field in the element and *leaf,
 * its type (without --field the element's).  Prints why not and returns 2;
 * else 0. */
static int
resolve_target (const char *verb, const char *path, const ShmType *type, const Target *tg,
                guint64 *offset, ShmType *leaf)
{
  g_autofree char *tname = shm_type_to_string (type);
  guint64 count = shm_type_count (type);

  if (tg->has_index && tg->index >= count)
    {
      fprintf (stderr, "shmfs %s: %s: index %" G_GUINT64_FORMAT " out of range: %s has %"
               G_GUINT64_FORMAT " element%s\n", verb, path, tg->index, tname, count,
               count == 1 ? "" : "s");
      return 2;
    }
  *offset = 0;
  if (tg->field == NULL)
    {
      shm_type_copy (leaf, type);
      leaf->ndim = 0;
      return 0;
    }
  if (type->elem != SHM_ELEM_RECORD)
    {
      fprintf (stderr, "shmfs %s: %s: --field needs a record, not %s\n", verb, path, tname);
      return 2;
    }
  if (shm_type_resolve_field (type, tg->field, strlen (tg->field), offset, leaf) < 0)
    {
      fprintf (stderr, "shmfs %s: %s: no field %s in %s\n", verb, path, tg->field, tname);
      return 2;
    }
  return 0;
}

/* Refuses (returns 2, saying why) a leaf that is not one number or bool. */
static int
want_number (const char *verb, const char *path, const Target *tg, const ShmType *leaf)
{
  g_autofree char *lname = NULL;

  if (leaf->ndim == 0 && leaf->elem != SHM_ELEM_CHAR && leaf->elem != SHM_ELEM_RECORD)
    return 0;
  lname = shm_type_to_string (leaf);
  if (tg->field != NULL)
    fprintf (stderr, "shmfs %s: %s: field %s is %s, not a number%s%s%s\n", verb, path,
             tg->field, lname, leaf->ndim > 0 ? " (name one of its items: " : "",
             leaf->ndim > 0 ? tg->field : "", leaf->ndim > 0 ? "[0] ...)" : "");
  else if (leaf->elem == SHM_ELEM_RECORD)
    fprintf (stderr, "shmfs %s: %s: a record: name one of its numbers with --field\n", verb, path);
  else
    fprintf (stderr, "shmfs %s: %s: %s is not a number\n", verb, path, lname);
  return 2;
}

/* A one-field record {v:LEAF} around a type that is not a record, so that
 * its JSON is a record's (shm-json.c). */
static void
wrap_in_record (const ShmType *leaf, ShmType *wrap)
{
  g_autofree char *lname = shm_type_to_string (leaf);
  g_autofree char *spec = g_strdup_printf ("{v:%s}", lname);
  int err = shm_type_parse (spec, strlen (spec), wrap);

  g_assert (err == 0);
}

/* Appends the JSON text of the value of type leaf at data: a number, a
 * string, an array or an object. */
static void
append_json (const ShmType *leaf, const guint8 *data, GString *out)
{
  static const char head[] = "{\"v\": ";
  g_autoptr (GString) line = g_string_new (NULL);
  g_autofree guint8 *bytes = NULL;
  g_auto (ShmType) wrap = { 0 };

  if (leaf->elem == SHM_ELEM_RECORD)
    {
      shm_json_format_items (leaf, data, 0, 1, line);   /* {...}\n */
      g_string_append_len (out, line->str, line->len - 1);
      return;
    }
  wrap_in_record (leaf, &wrap);
  bytes = g_malloc0 (shm_type_nbytes (&wrap));
  memcpy (bytes, data, shm_type_nbytes (leaf));
  shm_json_format_items (&wrap, bytes, 0, 1, line);   /* {"v": VALUE}\n */
  g_assert (g_str_has_prefix (line->str, head) && g_str_has_suffix (line->str, "}\n"));
  g_string_append_len (out, line->str + strlen (head), line->len - strlen (head) - 2);
}

/* Checks that json is one value of type leaf and nothing else (no text
 * that would close an object and name another field): 0, -EINVAL or
 * -ERANGE, as the text view would answer. */
static int
check_json (const ShmType *leaf, const char *json)
{
  g_autofree char *object = NULL;
  g_autofree guint8 *bytes = NULL;
  g_auto (ShmType) t = { 0 };

  if (leaf->elem == SHM_ELEM_RECORD)
    shm_type_copy (&t, leaf);
  else
    {
      wrap_in_record (leaf, &t);
      json = object = g_strdup_printf ("{\"v\": %s}", json);
    }
  bytes = g_malloc0 (shm_type_nbytes (&t));
  return shm_json_merge (&t, json, strlen (json), bytes, NULL);
}

/* Reads the value into *bytes (g_free() them) from the text view: one
 * consistent snapshot, read back with the codec. */
static int
read_value (const char *path, const ShmType *type, guint8 **bytes)
{
  g_autoptr (GString) text = g_string_new (NULL);
  g_autofree guint8 *value = NULL;
  int err;

  if ((err = read_text (path, text)) < 0)
    return err;
  value = g_malloc0 (shm_type_nbytes (type));
  if ((err = shm_codec_parse (type, text->str, text->len, value)) < 0)
    return err;
  *bytes = g_steal_pointer (&value);
  return 0;
}

/* The text that merges json into field path (no brackets; NULL: the whole
 * record) of element tg->index, or of every element without --index:
 * {"pose": {"x": JSON}} for it, {} (kept as it is) for the others. */
static char *
merge_text (const ShmType *type, const Target *tg, const char *json)
{
  g_autoptr (GString) object = g_string_new (NULL);
  GString *text = g_string_new (NULL);
  guint depth = 0;

  if (tg->field != NULL)
    {
      g_auto (GStrv) names = g_strsplit (tg->field, ".", -1);

      for (char **name = names; *name != NULL; name++, depth++)
        g_string_append_printf (object, "{\"%s\": ", *name);
    }
  g_string_append (object, json);
  while (depth-- > 0)
    g_string_append_c (object, '}');
  for (guint64 i = 0; i < shm_type_count (type); i++)
    {
      g_string_append (text, !tg->has_index || i == tg->index ? object->str : "{}");
      g_string_append_c (text, '\n');
    }
  return g_string_free (text, FALSE);
}

/* ---- new, get, set, rm ---------------------------------------------- */

static int
cmd_new (int argc, char **argv)
{
  const char *path = argv[0], *spec = argv[1];
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *tmp = g_strdup_printf ("%s/.%s.new-XXXXXX", dir, base);
  g_auto (ShmType) type = { 0 };
  int fd, err = 0;

  if (shm_type_parse (spec, strlen (spec), &type) < 0)
    {
      fprintf (stderr, "shmfs new: %s: not a type (e.g. f64, i32[5], char[16], {x:f64, v:f32[3]})\n",
               spec);
      return 2;
    }
  if (access (path, F_OK) == 0)
    return fail ("new", path, EEXIST);
  fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0)
    return fail ("new", path, errno);
  if (fsetxattr (fd, XA_TYPE, spec, strlen (spec), 0) < 0)
    err = errno;
  else if (argc > 2)
    {
      g_autofree char *text = join_values (argc - 2, argv + 2);
      err = -write_text_fd (fd, text);
    }
  if (close (fd) < 0 && err == 0)
    err = errno;
  if (err == 0 && renameat2 (AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0)
    err = errno;
  if (err != 0)
    {
      unlink (tmp);   /* nothing left behind */
      return fail ("new", path, err);
    }
  return 0;
}

static int
cmd_get (int argc, char **argv)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autofree guint8 *bytes = NULL;
  g_auto (ShmType) type = { 0 };
  g_auto (ShmType) leaf = { 0 };
  guint64 offset, first, end, size;
  const char *path;
  Target tg;
  int err;

  if (take_target (&argc, argv, &tg) < 0 || argc != 1)
    return usage ("get");
  path = argv[0];
  if (tg.field == NULL && !tg.has_index)
    {
      /* The text view as it is. */
      if ((err = read_text (path, out)) < 0)
        return fail ("get", path, -err);
      fwrite (out->str, 1, out->len, stdout);
      return 0;
    }
  if ((err = read_type (path, &type)) < 0)
    return fail ("get", path, -err);
  if ((err = resolve_target ("get", path, &type, &tg, &offset, &leaf)) != 0)
    return err;
  if ((err = read_value (path, &type, &bytes)) < 0)
    return fail ("get", path, -err);

  size = shm_type_elem_size (&type);
  first = tg.has_index ? tg.index : 0;
  end = tg.has_index ? first + 1 : shm_type_count (&type);
  for (guint64 i = first; i < end; i++)
    if (tg.field != NULL)
      {
        append_json (&leaf, bytes + i * size + offset, out);
        g_string_append_c (out, '\n');
      }
    else
      shm_codec_format (&leaf, bytes + i * size, out);   /* as the text view prints one */
  fwrite (out->str, 1, out->len, stdout);
  return 0;
}

static int set_number (const char *path, const Target *tg, guint64 offset, const ShmType *leaf,
                       const char *text);

static int
cmd_set (int argc, char **argv)
{
  g_autofree char *text = NULL, *merged = NULL;
  g_auto (ShmType) type = { 0 };
  g_auto (ShmType) leaf = { 0 };
  const char *path;
  guint64 offset;
  Target tg;
  int fd, err;

  if (take_target (&argc, argv, &tg) < 0 || argc < 2)
    return usage ("set");
  path = argv[0];
  text = join_values (argc - 1, argv + 1);
  if (tg.field != NULL || tg.has_index)
    {
      if ((err = read_type (path, &type)) < 0)
        return fail ("set", path, -err);
      if ((err = resolve_target ("set", path, &type, &tg, &offset, &leaf)) != 0)
        return err;
      g_strchomp (text);
      /* One number of an array, or an item of a record's field array
       * (which JSON can only set whole): the daemon's atomic exchange
       * touches nothing else. */
      if (type.elem != SHM_ELEM_RECORD || strchr (tg.field ? tg.field : "", '[') != NULL)
        return set_number (path, &tg, offset, &leaf, text);
      if ((err = check_json (&leaf, text)) < 0)
        {
          g_autofree char *lname = shm_type_to_string (&leaf);
          fprintf (stderr, "shmfs set: %s: %s is not a JSON value of %s%s: %s\n", path, text,
                   tg.field ? "field " : "type ", tg.field ? tg.field : lname, g_strerror (-err));
          return 2;
        }
      merged = merge_text (&type, &tg, text);
      g_free (text);
      text = g_steal_pointer (&merged);
    }
  fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return fail ("set", path, errno);
  err = write_text_fd (fd, text);
  if (close (fd) < 0 && err == 0)
    err = -errno;
  return err < 0 ? fail ("set", path, -err) : 0;
}

static int
cmd_rm (int argc, char **argv)
{
  int status = 0;

  for (int i = 0; i < argc; i++)
    if (unlink (argv[i]) < 0)
      status = fail ("rm", argv[i], errno);
  return status;
}

/* ---- atomic operations -------------------------------------------- */

/* Parses text as one element of type t into a widened value.  Returns 0,
 * -EINVAL or -ERANGE (the codec's verdict on that element type). */
static int
parse_operand (const ShmType *t, const char *text, union shmfs_value *v, gboolean *is_float)
{
  ShmType scalar = *t;
  guint8 bytes[8] = { 0 };
  int err;

  scalar.ndim = 0;
  if (t->elem == SHM_ELEM_CHAR)
    return -EINVAL;
  if ((err = shm_codec_parse (&scalar, text, strlen (text), bytes)) < 0)
    return err;
  *is_float = shm_type_is_float (t);
  switch (t->elem)
    {
    case SHM_ELEM_I8:  v->i = *(gint8 *) bytes; break;
    case SHM_ELEM_I16: v->i = *(gint16 *) bytes; break;
    case SHM_ELEM_I32: v->i = *(gint32 *) bytes; break;
    case SHM_ELEM_I64: v->i = *(gint64 *) bytes; break;
    case SHM_ELEM_U8: case SHM_ELEM_BOOL: v->u = *(guint8 *) bytes; break;
    case SHM_ELEM_U16: v->u = *(guint16 *) bytes; break;
    case SHM_ELEM_U32: v->u = *(guint32 *) bytes; break;
    case SHM_ELEM_U64: v->u = *(guint64 *) bytes; break;
    case SHM_ELEM_F32: v->f = *(float *) bytes; break;
    default:           v->f = *(double *) bytes; break;
    }
  return 0;
}

/* Formats a widened value as one element of type t would print. */
static char *
format_value (const ShmType *t, const union shmfs_value *v)
{
  ShmType scalar = *t;
  guint8 bytes[8] = { 0 };
  GString *out = g_string_new (NULL);

  scalar.ndim = 0;
  if (t->elem == SHM_ELEM_F32)
    {
      float f = (float) v->f;
      memcpy (bytes, &f, sizeof f);
    }
  else
    memcpy (bytes, v, shm_type_elem_size (t));   /* little end of the widened value */
  shm_codec_format (&scalar, bytes, out);
  return g_string_free (out, FALSE);
}

static int
operand_error (const char *verb, const char *text, const ShmType *leaf, int err)
{
  g_autofree char *lname = shm_type_to_string (leaf);

  fprintf (stderr, "shmfs %s: %s: not an element of type %s: %s\n", verb, text, lname,
           g_strerror (-err));
  return 2;
}

/* Sets io's field (when leaf is a record's field) and runs it on path. */
static int
run_atomic (const char *verb, const char *path, const Target *tg, guint64 offset,
            struct shmfs_atomic *io)
{
  int fd, err;

  io->index = tg->index;
  if (tg->field != NULL)
    {
      if (offset > G_MAXUINT32)
        return fail (verb, path, EOVERFLOW);
      io->flags |= SHMFS_ATOMIC_FIELD;
      io->field = (guint32) offset;
    }
  fd = open (path, (io->op == SHMFS_ATOMIC_LOAD ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0)
    return fail (verb, path, errno);
  err = ioctl (fd, SHMFS_IOC_ATOMIC, io) < 0 ? errno : 0;
  close (fd);
  return err != 0 ? fail (verb, path, err) : 0;
}

static int
set_number (const char *path, const Target *tg, guint64 offset, const ShmType *leaf,
            const char *text)
{
  struct shmfs_atomic io = { .op = SHMFS_ATOMIC_XCHG };
  gboolean is_float = FALSE;
  int err;

  if (want_number ("set", path, tg, leaf) != 0)
    return 2;
  if ((err = parse_operand (leaf, text, &io.operand, &is_float)) < 0)
    return operand_error ("set", text, leaf, err);
  io.flags = is_float ? SHMFS_ATOMIC_FLOAT : 0;
  return run_atomic ("set", path, tg, offset, &io);
}

static int
atomic (const char *verb, int argc, char **argv, guint32 op)
{
  struct shmfs_atomic io = { .op = op };
  g_autofree char *shown = NULL;
  g_auto (ShmType) type = { 0 };
  g_auto (ShmType) leaf = { 0 };
  const char *path;
  gboolean is_float;
  guint64 offset;
  Target tg;
  int err, want = op == SHMFS_ATOMIC_CAS ? 3 : op == SHMFS_ATOMIC_LOAD ? 1 : 2;

  if (take_target (&argc, argv, &tg) < 0 || argc != want)
    return usage (verb);
  path = argv[0];
  if ((err = read_type (path, &type)) < 0)
    return fail (verb, path, -err);
  if ((err = resolve_target (verb, path, &type, &tg, &offset, &leaf)) != 0
      || (err = want_number (verb, path, &tg, &leaf)) != 0)
    return err;
  is_float = shm_type_is_float (&leaf);
  if (op != SHMFS_ATOMIC_LOAD)
    {
      err = parse_operand (&leaf, argv[want - 1], &io.operand, &is_float);
      if (err < 0)
        return operand_error (verb, argv[want - 1], &leaf, err);
    }
  if (op == SHMFS_ATOMIC_CAS && (err = parse_operand (&leaf, argv[1], &io.expected, &is_float)) < 0)
    return operand_error (verb, argv[1], &leaf, err);
  io.flags = is_float ? SHMFS_ATOMIC_FLOAT : 0;
  if ((err = run_atomic (verb, path, &tg, offset, &io)) != 0)
    return err;

  if (op == SHMFS_ATOMIC_ADD || op == SHMFS_ATOMIC_SUB)
    {
      /* The value after this operation, with the element's own arithmetic. */
      union shmfs_value after = io.result;
      if (is_float)
        after.f = op == SHMFS_ATOMIC_ADD ? io.result.f + io.operand.f : io.result.f - io.operand.f;
      else
        after.u = op == SHMFS_ATOMIC_ADD ? io.result.u + io.operand.u : io.result.u - io.operand.u;
      shown = format_value (&leaf, &after);
    }
  else
    shown = format_value (&leaf, &io.result);
  fputs (shown, stdout);
  return op == SHMFS_ATOMIC_CAS && !io.swapped ? 1 : 0;
}

static int cmd_load (int argc, char **argv) { return atomic ("load", argc, argv, SHMFS_ATOMIC_LOAD); }
static int cmd_add (int argc, char **argv)  { return atomic ("add", argc, argv, SHMFS_ATOMIC_ADD); }
static int cmd_sub (int argc, char **argv)  { return atomic ("sub", argc, argv, SHMFS_ATOMIC_SUB); }
static int cmd_xchg (int argc, char **argv) { return atomic ("xchg", argc, argv, SHMFS_ATOMIC_XCHG); }
static int cmd_cas (int argc, char **argv)  { return atomic ("cas", argc, argv, SHMFS_ATOMIC_CAS); }

/* ---- ls, info, watch ---------------------------------------------- */

static void
mode_string (mode_t mode, char out[11])
{
  const char *rwx = "rwxrwxrwx";

  out[0] = S_ISDIR (mode) ? 'd' : '-';
  for (int i = 0; i < 9; i++)
    out[i + 1] = (mode & (0400 >> i)) ? rwx[i] : '-';
  if (mode & S_ISVTX)
    out[9] = (mode & 0001) ? 't' : 'T';
  out[10] = '\0';
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* A record's spec for ls: whole when short, else its first fields and
 * "...", nested records as {...}: "{x:f64, id:u32, ...}[100]". */
static char *
short_record (const char *spec)
{
  enum { WIDTH = 40 };
  g_auto (ShmType) t = { 0 };
  GString *out;

  if (strlen (spec) <= WIDTH || shm_type_parse (spec, strlen (spec), &t) < 0)
    return g_strdup (spec);
  out = g_string_new ("{");
  for (guint i = 0; i < shm_record_n_fields (t.record); i++)
    {
      const ShmField *f = shm_record_field (t.record, i);
      g_autofree char *ftype = f->type.elem == SHM_ELEM_RECORD
        ? g_strdup ("{...}") : shm_type_to_string (&f->type);
      g_autofree char *item = g_strdup_printf ("%s%s:%s", i ? ", " : "", f->name, ftype);

      if (i > 0 && out->len + strlen (item) + strlen (", ...}") > WIDTH)
        {
          g_string_append (out, ", ...");
          break;
        }
      g_string_append (out, item);
    }
  g_string_append_c (out, '}');
  for (guint d = 0; d < t.ndim; d++)
    g_string_append_printf (out, "[%" G_GUINT64_FORMAT "]", t.dims[d]);
  return g_string_free (out, FALSE);
}

/* Lists the numbers, strings and field arrays of record r, nested records
 * flattened to dotted names ("pose.x"), with their offsets from base. */
static void
collect_fields (const ShmRecord *r, const char *prefix, guint64 base, GPtrArray *rows)
{
  for (guint i = 0; i < shm_record_n_fields (r); i++)
    {
      const ShmField *f = shm_record_field (r, i);
      g_autofree char *name = g_strconcat (prefix, f->name, NULL);

      if (f->type.elem == SHM_ELEM_RECORD)
        {
          g_autofree char *dotted = g_strconcat (name, ".", NULL);
          collect_fields (f->type.record, dotted, base + f->offset, rows);
          continue;
        }
      g_ptr_array_add (rows, g_steal_pointer (&name));
      g_ptr_array_add (rows, shm_type_to_string (&f->type));
      g_ptr_array_add (rows, g_strdup_printf ("%" G_GUINT64_FORMAT, base + f->offset));
    }
}

/* info's lines for a record: "field     pose.x  f64     offset 8". */
static void
print_fields (const ShmType *t)
{
  g_autoptr (GPtrArray) rows = g_ptr_array_new_with_free_func (g_free);
  int name_w = 0, type_w = 0;

  collect_fields (t->record, "", 0, rows);
  for (guint i = 0; i < rows->len; i += 3)
    {
      name_w = MAX (name_w, (int) strlen (rows->pdata[i]));
      type_w = MAX (type_w, (int) strlen (rows->pdata[i + 1]));
    }
  for (guint i = 0; i < rows->len; i += 3)
    printf ("%-9s %-*s  %-*s  offset %s\n", "field", name_w, (char *) rows->pdata[i], type_w,
            (char *) rows->pdata[i + 1], (char *) rows->pdata[i + 2]);
}

static int
cmd_ls (int argc, char **argv)
{
  const char *dir = argc > 0 ? argv[0] : ".";
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GDir *d = g_dir_open (dir, 0, &error);
  const char *name;

  if (d == NULL)
    {
      fprintf (stderr, "shmfs ls: %s\n", error->message);
      return 2;
    }
  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_dir_close (d);
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
      g_autofree char *spec = get_xattr (path, XA_TYPE);
      g_autofree char *nbytes = get_xattr (path, "user.shmfs.nbytes");
      char mode[11];
      struct stat st;

      if (stat (path, &st) < 0)
        continue;
      mode_string (st.st_mode, mode);
      if (spec != NULL && spec[0] == '{')
        {
          g_autofree char *full = g_steal_pointer (&spec);
          spec = short_record (full);
        }
      printf ("%s %-16s %10s  %s%s\n", mode,
              S_ISDIR (st.st_mode) ? "dir" : spec ? spec : "untyped",
              nbytes ? nbytes : "0", (char *) names->pdata[i], S_ISDIR (st.st_mode) ? "/" : "");
    }
  return 0;
}

static int
cmd_info (int argc, char **argv)
{
  static const char *const fields[][2] = {
    { "type", "user.shmfs.type" }, { "shape", "user.shmfs.shape" },
    { "dtype", "user.shmfs.dtype" }, { "bytes", "user.shmfs.nbytes" },
    { "version", "user.shmfs.version" }, { "lifetime", "user.shmfs.lifetime" },
  };
  g_auto (ShmType) type = { 0 };
  struct stat st;
  char mode[11];

  if (stat (argv[0], &st) < 0)
    return fail ("info", argv[0], errno);
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      g_autofree char *value = get_xattr (argv[0], fields[i][1]);
      const char *absent = i == 0 ? "untyped" : i == 5 ? "mount" : "-";
      printf ("%-9s %s\n", fields[i][0], value ? value : absent);
    }
  mode_string (st.st_mode, mode);
  printf ("%-9s %s (%04o) uid %u gid %u\n", "mode", mode, (unsigned) (st.st_mode & 07777),
          (unsigned) st.st_uid, (unsigned) st.st_gid);
  if (read_type (argv[0], &type) == 0 && type.elem == SHM_ELEM_RECORD)
    print_fields (&type);
  return 0;
}

static volatile sig_atomic_t interrupted;

static void
on_signal (int sig)
{
  interrupted = 1;
}

static int
cmd_watch (int argc, char **argv)
{
  g_autoptr (GString) text = g_string_new (NULL);
  struct sigaction sa = { .sa_handler = on_signal };
  int fd = open (argv[0], O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return fail ("watch", argv[0], errno);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  setvbuf (stdout, NULL, _IOLBF, 0);
  while (!interrupted)
    {
      struct pollfd pfd = { .fd = fd, .events = POLLPRI };
      char buf[65536];
      ssize_t n;

      /* A read from offset 0 renders the value and re-arms the wakeup. */
      g_string_truncate (text, 0);
      if (lseek (fd, 0, SEEK_SET) < 0)
        break;
      while ((n = read (fd, buf, sizeof buf)) > 0)
        g_string_append_len (text, buf, n);
      if (n < 0)
        return fail ("watch", argv[0], errno);
      fwrite (text->str, 1, text->len, stdout);
      while (!interrupted && poll (&pfd, 1, -1) <= 0)
        ;
      if (pfd.revents & (POLLHUP | POLLNVAL))
        break;
    }
  close (fd);
  return 0;
}

/* ---- dispatch ----------------------------------------------------- */

static const Verb verbs[] = {
  { "new",  "new PATH TYPE [VALUE...]", "create PATH of TYPE (atomically; fails if PATH exists); a record's VALUE is JSON", cmd_new, 2, -1 },
  { "get",  "get PATH [--index N] [--field F]", "print the value; element N; a record's field F as JSON", cmd_get, 1, 5 },
  { "set",  "set PATH [--index N] [--field F] VALUE...", "set the value (all elements of an array); element N; only field F (JSON)", cmd_set, 2, -1 },
  { "load", "load PATH [--index N] [--field F]", "atomically read one number; print it", cmd_load, 1, 5 },
  { "add",  "add PATH [--index N] [--field F] VALUE", "atomically add; print the new value", cmd_add, 2, 6 },
  { "sub",  "sub PATH [--index N] [--field F] VALUE", "atomically subtract; print the new value", cmd_sub, 2, 6 },
  { "cas",  "cas PATH [--index N] [--field F] OLD NEW", "set to NEW if OLD; exit 0 if swapped, 1 if not; print the value seen", cmd_cas, 3, 7 },
  { "xchg", "xchg PATH [--index N] [--field F] VALUE", "atomically set; print the old value", cmd_xchg, 2, 6 },
  { "ls",   "ls [DIR]", "list objects: mode, type, bytes, name", cmd_ls, 0, 1 },
  { "info", "info PATH", "type, shape, dtype, bytes, version, lifetime, mode; a record's fields", cmd_info, 1, 1 },
  { "rm",   "rm PATH...", "remove objects", cmd_rm, 1, -1 },
  { "watch","watch PATH", "print the value, then each new value, until interrupted", cmd_watch, 1, 1 },
};

/* What --index and --field mean, for the verbs that take them. */
static const char target_help[] =
  "    --index N (-i N) picks element N of an array (C order; without it, 0\n"
  "    for the atomic verbs, every element for get and set).  --field F picks\n"
  "    a field of a record: x, pose.x, v[2].  get prints a field as JSON; set\n"
  "    takes JSON ('1.5', '\"abc\"', '[1, 2]', '{\"a\": 1}') and changes\n"
  "    that field only; the atomic verbs take a number or bool.\n";

static const Verb *
find_verb (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    if (strcmp (verbs[i].name, name) == 0)
      return &verbs[i];
  return NULL;
}

void
shmfs_cli_usage (void)
{
  printf ("Verbs, on objects of a mounted shmfs:\n");
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    printf ("    shmfs %-41s %s\n", verbs[i].args, verbs[i].help);
  printf ("    shmfs %-41s %s\n", "VERB --help", "help on one verb");
  printf ("\n%s", target_help);
}

int
shmfs_cli_run (int argc, char **argv)
{
  const Verb *verb;
  int nargs;

  if (argc < 2 || (verb = find_verb (argv[1])) == NULL)
    return -1;
  nargs = argc - 2;
  if (nargs == 1 && (strcmp (argv[2], "--help") == 0 || strcmp (argv[2], "-h") == 0))
    {
      printf ("usage: shmfs %s\n%s\n", verb->args, verb->help);
      if (strstr (verb->args, "--field") != NULL)
        printf ("\n%s", target_help);
      return 0;
    }
  if (nargs < verb->min_args || (verb->max_args >= 0 && nargs > verb->max_args))
    {
      fprintf (stderr, "shmfs %s: usage: shmfs %s\n", verb->name, verb->args);
      return 2;
    }
  return verb->run (nargs, argv + 2);
}
