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

/* The xattr as a string; NULL and errno when absent. */
static char *
get_xattr (const char *path, const char *name)
{
  char buf[256];
  ssize_t len = getxattr (path, name, buf, sizeof buf - 1);

  if (len < 0)
    return NULL;
  return g_strndup (buf, (gsize) len);
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

/* ---- new, get, set, rm ---------------------------------------------- */

static int
cmd_new (int argc, char **argv)
{
  const char *path = argv[0], *spec = argv[1];
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *tmp = g_strdup_printf ("%s/.%s.new-XXXXXX", dir, base);
  ShmType type;
  int fd, err = 0;

  if (shm_type_parse (spec, strlen (spec), &type) < 0)
    {
      fprintf (stderr, "shmfs new: %s: not a type (e.g. f64, i32[5], char[16])\n", spec);
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
  g_autoptr (GString) text = g_string_new (NULL);
  int err = read_text (argv[0], text);

  if (err < 0)
    return fail ("get", argv[0], -err);
  fwrite (text->str, 1, text->len, stdout);
  return 0;
}

static int
cmd_set (int argc, char **argv)
{
  g_autofree char *text = join_values (argc - 1, argv + 1);
  int fd = open (argv[0], O_WRONLY | O_CLOEXEC), err;

  if (fd < 0)
    return fail ("set", argv[0], errno);
  err = write_text_fd (fd, text);
  if (close (fd) < 0 && err == 0)
    err = -errno;
  return err < 0 ? fail ("set", argv[0], -err) : 0;
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

/* Finds --index N among the arguments, removing it.  Returns -1 on junk. */
static int
take_index (int *argc, char **argv, guint64 *index)
{
  *index = 0;
  for (int i = 0; i < *argc; i++)
    if (strcmp (argv[i], "--index") == 0 || strcmp (argv[i], "-i") == 0)
      {
        char *end;
        if (i + 1 >= *argc || !g_ascii_isdigit (argv[i + 1][0]))
          return -1;
        *index = g_ascii_strtoull (argv[i + 1], &end, 10);
        if (*end != '\0')
          return -1;
        memmove (argv + i, argv + i + 2, (size_t) (*argc - i - 2) * sizeof *argv);
        *argc -= 2;
        return 0;
      }
  return 0;
}

static int
atomic (const char *verb, int argc, char **argv, guint32 op)
{
  struct shmfs_atomic io = { .op = op };
  g_autofree char *shown = NULL;
  const char *path;
  gboolean is_float = FALSE;
  ShmType type;
  int fd, err, want = op == SHMFS_ATOMIC_CAS ? 3 : 2;

  if (take_index (&argc, argv, &io.index) < 0 || argc != want)
    {
      fprintf (stderr, "shmfs %s: usage: shmfs %s\n", verb, find_verb (verb)->args);
      return 2;
    }
  path = argv[0];
  if ((err = read_type (path, &type)) < 0)
    return fail (verb, path, -err);
  err = parse_operand (&type, argv[want - 1], &io.operand, &is_float);
  if (err == 0 && op == SHMFS_ATOMIC_CAS)
    err = parse_operand (&type, argv[1], &io.expected, &is_float);
  if (err < 0)
    {
      g_autofree char *tname = shm_type_to_string (&type);
      fprintf (stderr, "shmfs %s: %s: not an element of type %s: %s\n", verb,
               argv[want - 1], tname, g_strerror (-err));
      return 2;
    }
  io.flags = is_float ? SHMFS_ATOMIC_FLOAT : 0;

  fd = open (path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return fail (verb, path, errno);
  err = ioctl (fd, SHMFS_IOC_ATOMIC, &io) < 0 ? errno : 0;
  close (fd);
  if (err != 0)
    return fail (verb, path, err);

  if (op == SHMFS_ATOMIC_ADD || op == SHMFS_ATOMIC_SUB)
    {
      /* The value after this operation, with the element's own arithmetic. */
      union shmfs_value after = io.result;
      if (is_float)
        after.f = op == SHMFS_ATOMIC_ADD ? io.result.f + io.operand.f : io.result.f - io.operand.f;
      else
        after.u = op == SHMFS_ATOMIC_ADD ? io.result.u + io.operand.u : io.result.u - io.operand.u;
      shown = format_value (&type, &after);
    }
  else
    shown = format_value (&type, &io.result);
  fputs (shown, stdout);
  return op == SHMFS_ATOMIC_CAS && !io.swapped ? 1 : 0;
}

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
  { "new",  "new PATH TYPE [VALUE...]", "create PATH of TYPE (atomically; fails if PATH exists)", cmd_new, 2, -1 },
  { "get",  "get PATH", "print the value", cmd_get, 1, 1 },
  { "set",  "set PATH VALUE...", "set the value (all elements of an array)", cmd_set, 2, -1 },
  { "add",  "add PATH [--index N] VALUE", "atomically add; print the new value", cmd_add, 2, 4 },
  { "sub",  "sub PATH [--index N] VALUE", "atomically subtract; print the new value", cmd_sub, 2, 4 },
  { "cas",  "cas PATH [--index N] OLD NEW", "set to NEW if OLD; exit 0 if swapped, 1 if not; print the value seen", cmd_cas, 3, 5 },
  { "xchg", "xchg PATH [--index N] VALUE", "atomically set; print the old value", cmd_xchg, 2, 4 },
  { "ls",   "ls [DIR]", "list objects: mode, type, bytes, name", cmd_ls, 0, 1 },
  { "info", "info PATH", "type, shape, dtype, bytes, version, lifetime, mode", cmd_info, 1, 1 },
  { "rm",   "rm PATH...", "remove objects", cmd_rm, 1, -1 },
  { "watch","watch PATH", "print the value, then each new value, until interrupted", cmd_watch, 1, 1 },
};

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
    printf ("    shmfs %-30s %s\n", verbs[i].args, verbs[i].help);
  printf ("    shmfs %-30s %s\n", "VERB --help", "help on one verb");
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
      return 0;
    }
  if (nargs < verb->min_args || (verb->max_args >= 0 && nargs > verb->max_args))
    {
      fprintf (stderr, "shmfs %s: usage: shmfs %s\n", verb->name, verb->args);
      return 2;
    }
  return verb->run (nargs, argv + 2);
}
