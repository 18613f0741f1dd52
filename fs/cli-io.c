/* cli-io.c — what the verbs share: the files of a mounted shmfs read and
 * written (xattrs, text views), and how a verb says it failed.
 */
#include "config.h"

#include "cli-io.h"
#include "shm-codec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

int
shmfs_cli_fail (const char *verb, const char *what, int err)
{
  fprintf (stderr, "shmfs %s: %s: %s\n", verb, what, g_strerror (err));
  return 2;
}

/* The xattr as a string (any length: a record's spec and dtype run long);
 * NULL and errno when absent. */
char *
shmfs_cli_get_xattr (const char *path, const char *name)
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

int
shmfs_cli_read_type (const char *path, ShmType *type)
{
  g_autofree char *spec = shmfs_cli_get_xattr (path, SHMFS_CLI_XA_TYPE);

  if (spec == NULL)
    return -errno;
  return shm_type_parse (spec, strlen (spec), type);
}

/* Reads the whole text view. */
int
shmfs_cli_read_text (const char *path, GString *out)
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
int
shmfs_cli_write_text_fd (int fd, const char *text)
{
  gsize len = strlen (text);
  ssize_t n = write (fd, text, len);

  if (n < 0)
    return -errno;
  return (gsize) n == len ? 0 : -EIO;
}

char *
shmfs_cli_join_values (int argc, char **argv)
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


/* Reads the value into *bytes (g_free() them) from the text view: one
 * consistent snapshot, read back with the codec. */
int
shmfs_cli_read_value (const char *path, const ShmType *type, guint8 **bytes)
{
  g_autoptr (GString) text = g_string_new (NULL);
  g_autofree guint8 *value = NULL;
  int err;

  if ((err = shmfs_cli_read_text (path, text)) < 0)
    return err;
  value = g_malloc0 (shm_type_nbytes (type));
  if ((err = shm_codec_parse (type, text->str, text->len, value)) < 0)
    return err;
  *bytes = g_steal_pointer (&value);
  return 0;
}
