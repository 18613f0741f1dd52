/* array.c — the seed's multiprocessing.Array example, in C on shmfs.
 *
 * Python's
 *
 *     arr = Array('i', 5)
 *     p = Process(target=f, args=(arr,))   # f sets arr[i] = i for i in 0..4
 *     p.start(); p.join()
 *     print(arr[:])
 *
 * becomes a file: MNT/array, typed i32[5].  The parent creates it and maps
 * its binary view MNT/.raw/array (5 native ints, C layout); a forked child
 * opens and maps that view on its own and fills it with plain stores.  The
 * parent then reads them from its own mapping (no msync, no pipe), and the
 * text view MNT/array shows the same ints to cat.
 *
 * Usage: array [MNT]      MNT: argument, else $SHMFS_MNT, else /tmp/shm
 *
 * Meson builds it as build/examples/array; by hand, as below.  Run against
 * a mount at /tmp/exmnt (started with: build/fs/shmfs /tmp/exmnt):
 *
 *   $ cc -std=gnu11 -o array examples/c/array.c
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#define TYPE_XATTR "user.shmfs.type"
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

/* Fails unless mnt is a shmfs mount: only shmfs has MNT/.raw. */
static int
check_mount (const char *mnt)
{
  char raw[4096];
  struct stat st;

  snprintf (raw, sizeof raw, "%s/.raw", mnt);
  if (stat (raw, &st) < 0 || !S_ISDIR (st.st_mode))
    {
      fprintf (stderr, "%s: %s is not a shmfs mount (no %s)\n", prog, mnt, raw);
      return 1;
    }
  return 0;
}

/* Creates MNT/array of type i32[5] atomically: under a temporary name, typed
 * (which zero-fills it, like Array('i', 5)), then renamed into place,
 * replacing any older MNT/array. */
static int
create_array (const char *mnt)
{
  char tmp[4096], path[4096];
  int fd;

  snprintf (tmp, sizeof tmp, "%s/.array.tmpXXXXXX", mnt);
  snprintf (path, sizeof path, "%s/array", mnt);
  fd = mkstemp (tmp);
  if (fd < 0)
    return fail (tmp);
  if (fsetxattr (fd, TYPE_XATTR, TYPE, strlen (TYPE), 0) < 0)
    {
      fail ("setting " TYPE_XATTR " to " TYPE);
      goto err;
    }
  if (rename (tmp, path) < 0)
    {
      fail (path);
      goto err;
    }
  close (fd);
  return 0;

err:
  unlink (tmp);
  close (fd);
  return 1;
}

/* Maps the binary view MNT/.raw/array (LEN int32s) into *arr. */
static int
map_array (const char *mnt, int32_t **arr)
{
  char path[4096];
  struct stat st;
  void *p;
  int fd;

  snprintf (path, sizeof path, "%s/.raw/array", mnt);
  fd = open (path, O_RDWR);
  if (fd < 0)
    return fail (path);
  if (fstat (fd, &st) < 0)
    {
      close (fd);
      return fail (path);
    }
  if (st.st_size != LEN * sizeof (int32_t))
    {
      fprintf (stderr, "%s: %s is %lld bytes, not %zu\n",
               prog, path, (long long) st.st_size, LEN * sizeof (int32_t));
      close (fd);
      return 1;
    }
  p = mmap (NULL, LEN * sizeof (int32_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close (fd);  /* the mapping keeps the object */
  if (p == MAP_FAILED)
    return fail (path);
  *arr = p;
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

  if (check_mount (mnt) != 0 || create_array (mnt) != 0 || map_array (mnt, &arr) != 0)
    return 1;
  printf ("parent created %s/array (" TYPE "), its mapping reads ", mnt);
  print_list (stdout, arr);
  fflush (stdout);

  pid = fork ();
  if (pid < 0)
    return fail ("fork");
  if (pid == 0)
    {
      /* Like a fresh process: drop the inherited mapping, make our own. */
      munmap (arr, LEN * sizeof *arr);
      if (map_array (mnt, &arr) != 0)
        _exit (1);
      for (int i = 0; i < LEN; i++)
        arr[i] = i;
      munmap (arr, LEN * sizeof *arr);
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
  munmap (arr, LEN * sizeof *arr);
  return 0;
}
