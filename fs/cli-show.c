/* cli-show.c — the verbs that show what a mount holds: ls, info, watch. */
#include "config.h"

#include "cli-show.h"
#include "cli-io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int
shmfs_cli_cmd_ls (int argc, char **argv)
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
      g_autofree char *spec = shmfs_cli_get_xattr (path, SHMFS_CLI_XA_TYPE);
      g_autofree char *nbytes = shmfs_cli_get_xattr (path, "user.shmfs.nbytes");
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

int
shmfs_cli_cmd_info (int argc, char **argv)
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
    return shmfs_cli_fail ("info", argv[0], errno);
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      g_autofree char *value = shmfs_cli_get_xattr (argv[0], fields[i][1]);
      const char *absent = i == 0 ? "untyped" : i == 5 ? "mount" : "-";
      printf ("%-9s %s\n", fields[i][0], value ? value : absent);
    }
  mode_string (st.st_mode, mode);
  printf ("%-9s %s (%04o) uid %u gid %u\n", "mode", mode, (unsigned) (st.st_mode & 07777),
          (unsigned) st.st_uid, (unsigned) st.st_gid);
  if (shmfs_cli_read_type (argv[0], &type) == 0 && type.elem == SHM_ELEM_RECORD)
    print_fields (&type);
  return 0;
}

static volatile sig_atomic_t interrupted;

static void
on_signal (int sig)
{
  interrupted = 1;
}

int
shmfs_cli_cmd_watch (int argc, char **argv)
{
  g_autoptr (GString) text = g_string_new (NULL);
  struct sigaction sa = { .sa_handler = on_signal };
  int fd = open (argv[0], O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return shmfs_cli_fail ("watch", argv[0], errno);
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
        return shmfs_cli_fail ("watch", argv[0], errno);
      fwrite (text->str, 1, text->len, stdout);
      while (!interrupted && poll (&pfd, 1, -1) <= 0)
        ;
      if (pfd.revents & (POLLHUP | POLLNVAL))
        break;
    }
  close (fd);
  return 0;
}
