/* array.c — the seed's multiprocessing.Array example, in C on shmfs.
 *
 * Python's
 *
 *     arr = Array('i', 5)
 *     p = Process(target=f, args=(arr,))   # f sets arr[i] = i for i in 0..4
 *     p.start(); p.join()
 *     print(arr[:])
 *
 * becomes a file: MNT/array, typed i32[5].  The parent creates it with
 * libshmfs's shmfs_create() and maps its binary view MNT/.raw/array (5
 * native ints, C layout) with shmfs_map(), which finds the mount and reads
 * the type; a forked child maps that view on its own and fills it with
 * plain stores.  The parent then reads them from its own mapping (no msync,
 * no pipe), and the text view MNT/array shows the same ints to cat.
 *
 * Usage: array [MNT]      MNT: argument, else $SHMFS_MNT, else /tmp/shm
 *
 * Meson builds it as build/examples/array, linked with libshmfs
 * (clients/c); by hand, with libshmfs installed, as below.  Run against
 * a mount at /tmp/exmnt (started with: build/fs/shmfs /tmp/exmnt):
 *
 *   $ cc -std=gnu11 -o array examples/c/array.c $(pkg-config --cflags --libs shmfs)
 *   $ ./array /tmp/exmnt
 *   parent created /tmp/exmnt/array (i32[5]), its mapping reads [0, 0, 0, 0, 0]
 *   child 7825 stored 0..4 into its own mapping of /tmp/exmnt/.raw/array
 *   cat /tmp/exmnt/array: 0 1 2 3 4
 *   [0, 1, 2, 3, 4]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmfs.h"

#define LEN 5
#define TYPE "i32[5]"

static const char *prog = "array";

/* Prints "array: what: strerror(errno)" and returns 1, for "return fail(...)". */
static int
fail (const char *what)
{
  fprintf (stderr, "%s: %s: %s\n", prog, what, strerror (errno));
  return 1;
}

/* Likewise for err, a -errno from libshmfs about what (a path under MNT);
 * when that path is outside any shmfs mount, or MNT is no directory at
 * all, says MNT is not a shmfs mount. */
static int
fail_shmfs (const char *mnt, const char *what, int err)
{
  struct stat st;

  if (err == -ENOTSUP)
    fprintf (stderr, "%s: %s is not a shmfs mount\n", prog, mnt);
  else if ((err == -ENOENT || err == -ENOTDIR) && (stat (mnt, &st) < 0 || !S_ISDIR (st.st_mode)))
    fprintf (stderr, "%s: %s is not a shmfs mount (%s)\n", prog, mnt, strerror (-err));
  else
    fprintf (stderr, "%s: %s: %s\n", prog, what, shmfs_strerror (err));
  return 1;
}

/* Creates MNT/array of type i32[5], zero-filled like Array('i', 5).
 * shmfs_create() makes it typed under a temporary name (it never replaces
 * a file), which then replaces any older MNT/array at once. */
static int
create_array (const char *mnt)
{
  char tmp[4096], path[4096];
  int err;

  snprintf (tmp, sizeof tmp, "%s/.array.tmp%d", mnt, (int) getpid ());
  snprintf (path, sizeof path, "%s/array", mnt);
  err = shmfs_create (tmp, TYPE, 0600);
  if (err < 0)
    return fail_shmfs (mnt, tmp, err);
  if (rename (tmp, path) < 0)
    {
      fail (path);
      unlink (tmp);
      return 1;
    }
  return 0;
}

/* Maps the binary view of MNT/array (which must hold LEN int32s) into *map. */
static int
map_array (const char *mnt, ShmfsMap **map)
{
  char path[4096];
  int err;

  snprintf (path, sizeof path, "%s/array", mnt);
  err = shmfs_map (path, 0, map);
  if (err < 0)
    return fail_shmfs (mnt, path, err);
  if (shmfs_map_elem (*map) != SHMFS_ELEM_I32 || shmfs_map_count (*map) != LEN)
    {
      fprintf (stderr, "%s: %s has type %s, not " TYPE "\n", prog, path, shmfs_map_type (*map));
      shmfs_unmap (*map);
      return 1;
    }
  return 0;
}

/* Reads the text view MNT/array, as cat does, without its newline. */
static int
read_text (const char *mnt, char *buf, size_t size)
{
  char path[4096];
  ssize_t n;
  int fd;

  snprintf (path, sizeof path, "%s/array", mnt);
  fd = open (path, O_RDONLY);
  if (fd < 0)
    return fail (path);
  n = read (fd, buf, size - 1);
  close (fd);
  if (n < 0)
    return fail (path);
  buf[n] = '\0';
  buf[strcspn (buf, "\n")] = '\0';
  return 0;
}

/* Prints arr as Python prints a list: "[0, 1, 2, 3, 4]". */
static void
print_list (FILE *out, const int32_t *arr)
{
  fprintf (out, "[");
  for (int i = 0; i < LEN; i++)
    fprintf (out, "%s%d", i ? ", " : "", (int) arr[i]);
  fprintf (out, "]\n");
}

int
main (int argc, char **argv)
{
  const char *mnt;
  char text[256];
  ShmfsMap *map;
  int32_t *arr;
  pid_t pid;
  int status;

  if (argc > 2 || (argc == 2 && argv[1][0] == '-'))
    {
      fprintf (stderr, "usage: %s [MNT]\n", prog);
      return 2;
    }
  mnt = argc > 1 ? argv[1] : getenv ("SHMFS_MNT");
  if (mnt == NULL || mnt[0] == '\0')
    mnt = "/tmp/shm";

  if (create_array (mnt) != 0 || map_array (mnt, &map) != 0)
    return 1;
  arr = shmfs_map_data (map);
  printf ("parent created %s/array (" TYPE "), its mapping reads ", mnt);
  print_list (stdout, arr);
  fflush (stdout);

  pid = fork ();
  if (pid < 0)
    return fail ("fork");
  if (pid == 0)
    {
      /* Like a fresh process: drop the inherited mapping, make our own. */
      shmfs_unmap (map);
      if (map_array (mnt, &map) != 0)
        _exit (1);
      arr = shmfs_map_data (map);
      for (int i = 0; i < LEN; i++)
        arr[i] = i;
      shmfs_unmap (map);
      printf ("child %d stored 0..4 into its own mapping of %s/.raw/array\n",
              (int) getpid (), mnt);
      fflush (stdout);
      _exit (0);
    }

  if (waitpid (pid, &status, 0) < 0)
    return fail ("waitpid");
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      fprintf (stderr, "%s: the child failed\n", prog);
      return 1;
    }

  if (read_text (mnt, text, sizeof text) != 0)
    return 1;
  printf ("cat %s/array: %s\n", mnt, text);

  for (int i = 0; i < LEN; i++)
    if (arr[i] != i)
      {
        fprintf (stderr, "%s: the parent's mapping reads ", prog);
        print_list (stderr, arr);
        return 1;
      }
  print_list (stdout, arr);  /* print(arr[:]) */
  shmfs_unmap (map);
  return 0;
}
