/* cli-value.c — the verbs that make, read, write and remove objects: new,
 * get, set, rm.
 */
#include "config.h"

#include "cli-value.h"
#include "cli-atomic.h"
#include "cli-io.h"
#include "cli-target.h"
#include "shm-codec.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

int
shmfs_cli_cmd_new (int argc, char **argv)
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
    return shmfs_cli_fail ("new", path, EEXIST);
  fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0)
    return shmfs_cli_fail ("new", path, errno);
  if (fsetxattr (fd, SHMFS_CLI_XA_TYPE, spec, strlen (spec), 0) < 0)
    err = errno;
  else if (argc > 2)
    {
      g_autofree char *text = shmfs_cli_join_values (argc - 2, argv + 2);
      err = -shmfs_cli_write_text_fd (fd, text);
    }
  if (close (fd) < 0 && err == 0)
    err = errno;
  if (err == 0 && renameat2 (AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0)
    err = errno;
  if (err != 0)
    {
      unlink (tmp);   /* nothing left behind */
      return shmfs_cli_fail ("new", path, err);
    }
  return 0;
}

int
shmfs_cli_cmd_get (int argc, char **argv)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autofree guint8 *bytes = NULL;
  g_auto (ShmType) type = { 0 };
  g_auto (ShmType) leaf = { 0 };
  guint64 offset, first, end, size;
  const char *path;
  ShmfsCliTarget tg;
  int err;

  if (shmfs_cli_take_target (&argc, argv, &tg) < 0 || argc != 1)
    return SHMFS_CLI_USAGE;
  path = argv[0];
  if (tg.field == NULL && !tg.has_index)
    {
      /* The text view as it is. */
      if ((err = shmfs_cli_read_text (path, out)) < 0)
        return shmfs_cli_fail ("get", path, -err);
      fwrite (out->str, 1, out->len, stdout);
      return 0;
    }
  if ((err = shmfs_cli_read_type (path, &type)) < 0)
    return shmfs_cli_fail ("get", path, -err);
  if ((err = shmfs_cli_resolve_target ("get", path, &type, &tg, &offset, &leaf)) != 0)
    return err;
  if ((err = shmfs_cli_read_value (path, &type, &bytes)) < 0)
    return shmfs_cli_fail ("get", path, -err);

  size = shm_type_elem_size (&type);
  first = tg.has_index ? tg.index : 0;
  end = tg.has_index ? first + 1 : shm_type_count (&type);
  for (guint64 i = first; i < end; i++)
    if (tg.field != NULL)
      {
        shmfs_cli_append_json (&leaf, bytes + i * size + offset, out);
        g_string_append_c (out, '\n');
      }
    else
      shm_codec_format (&leaf, bytes + i * size, out);   /* as the text view prints one */
  fwrite (out->str, 1, out->len, stdout);
  return 0;
}

int
shmfs_cli_cmd_set (int argc, char **argv)
{
  g_autofree char *text = NULL, *merged = NULL;
  g_auto (ShmType) type = { 0 };
  g_auto (ShmType) leaf = { 0 };
  const char *path;
  guint64 offset;
  ShmfsCliTarget tg;
  int fd, err;

  if (shmfs_cli_take_target (&argc, argv, &tg) < 0 || argc < 2)
    return SHMFS_CLI_USAGE;
  path = argv[0];
  text = shmfs_cli_join_values (argc - 1, argv + 1);
  if (tg.field != NULL || tg.has_index)
    {
      if ((err = shmfs_cli_read_type (path, &type)) < 0)
        return shmfs_cli_fail ("set", path, -err);
      if ((err = shmfs_cli_resolve_target ("set", path, &type, &tg, &offset, &leaf)) != 0)
        return err;
      g_strchomp (text);
      /* One number of an array, or an item of a record's field array
       * (which JSON can only set whole): the daemon's atomic exchange
       * touches nothing else. */
      if (type.elem != SHM_ELEM_RECORD || strchr (tg.field ? tg.field : "", '[') != NULL)
        return shmfs_cli_set_number (path, &tg, offset, &leaf, text);
      if ((err = shmfs_cli_check_json (&leaf, text)) < 0)
        {
          g_autofree char *lname = shm_type_to_string (&leaf);
          fprintf (stderr, "shmfs set: %s: %s is not a JSON value of %s%s: %s\n", path, text,
                   tg.field ? "field " : "type ", tg.field ? tg.field : lname, g_strerror (-err));
          return 2;
        }
      merged = shmfs_cli_merge_text (&type, &tg, text);
      g_free (text);
      text = g_steal_pointer (&merged);
    }
  fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return shmfs_cli_fail ("set", path, errno);
  err = shmfs_cli_write_text_fd (fd, text);
  if (close (fd) < 0 && err == 0)
    err = -errno;
  return err < 0 ? shmfs_cli_fail ("set", path, -err) : 0;
}

int
shmfs_cli_cmd_rm (int argc, char **argv)
{
  int status = 0;

  for (int i = 0; i < argc; i++)
    if (unlink (argv[i]) < 0)
      status = shmfs_cli_fail ("rm", argv[i], errno);
  return status;
}
