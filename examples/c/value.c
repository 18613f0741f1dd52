/* value.c — the seed's multiprocessing.Value example, in C on shmfs.
 *
 * Python's
 *
 *     num = Value('d', 0.0)
 *     p = Process(target=f, args=(num,))   # f sets num.value = 3.1415926
 *     p.start(); p.join()
 *     print(num.value)
 *
 * becomes a file: MNT/value, typed f64.  The parent creates it with
 * libshmfs's shmfs_create() and maps its binary view MNT/.raw/value with
 * shmfs_map(), which finds the mount and reads the type; a forked child
 * maps that view on its own and stores 3.1415926 with a plain assignment.
 * The parent then reads the store from its own mapping (no msync, no pipe),
 * and the text view MNT/value shows the same bytes to cat.  "set" and
 * "get" split the two sides into separately started processes, which need
 * not be related.
 *
 * Usage: value [set|get] [MNT]     MNT: argument, else $SHMFS_MNT, else /tmp/shm
 *   value MNT        create MNT/value = 0, fork the storing child, print the result
 *   value set MNT    store 3.1415926 from this process (creating MNT/value if absent)
 *   value get MNT    print MNT/value as read through this process's own mapping
 *
 * Meson builds it as build/examples/value, linked with libshmfs
 * (clients/c); by hand, with libshmfs installed, as below.  Run against
 * a mount at /tmp/exmnt (started with: build/fs/shmfs /tmp/exmnt):
 *
 *   $ cc -std=gnu11 -o value examples/c/value.c $(pkg-config --cflags --libs shmfs)
 *   $ ./value /tmp/exmnt
 *   parent created /tmp/exmnt/value (f64), its mapping reads 0
 *   child 7810 stored 3.1415926 into its own mapping of /tmp/exmnt/.raw/value
 *   cat /tmp/exmnt/value: 3.1415926
 *   3.1415926
 *   $ ./value set /tmp/exmnt
 *   pid 7812 stored 3.1415926 into its own mapping of /tmp/exmnt/.raw/value
 *   $ ./value get /tmp/exmnt
 *   3.1415926
 *   $ python3 examples/python/value_mmap.py get /tmp/exmnt
 *   3.1415926
 *   $ cat /tmp/exmnt/value
 *   3.1415926
 *   $ ./value /tmp
 *   value: /tmp is not a shmfs mount
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmfs.h"

#define PI_ISH 3.1415926

static const char *prog = "value";

/* Prints "value: what: strerror(errno)" and returns 1, for "return fail(...)". */
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
  else if (err == -ENODATA)
    fprintf (stderr, "%s: %s has no type yet\n", prog, what);
  else
    fprintf (stderr, "%s: %s: %s\n", prog, what, shmfs_strerror (err));
  return 1;
}

/* Creates MNT/value of type f64, zero-filled so it reads 0 like
 * Value('d', 0.0).  shmfs_create() makes it typed under a temporary name
 * (it never replaces a file), which then replaces any older MNT/value at
 * once. */
static int
create_value (const char *mnt)
{
  char tmp[4096], path[4096];
  int err;

  snprintf (tmp, sizeof tmp, "%s/.value.tmp%d", mnt, (int) getpid ());
  snprintf (path, sizeof path, "%s/value", mnt);
  err = shmfs_create (tmp, "f64", 0600);
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

/* Maps the binary view of MNT/value (which must be an f64) into *map; with
 * create, creates MNT/value first if it is absent. */
static int
map_value (const char *mnt, bool create, ShmfsMap **map)
{
  char path[4096];
  int err;

  snprintf (path, sizeof path, "%s/value", mnt);
  err = shmfs_map (path, 0, map);
  if (err == -ENOENT && create)
    {
      err = shmfs_create (path, "f64", 0600);
      if (err == 0 || err == -EEXIST)   /* or another process did meanwhile */
        err = shmfs_map (path, 0, map);
    }
  if (err < 0)
    return fail_shmfs (mnt, path, err);
  if (shmfs_map_elem (*map) != SHMFS_ELEM_F64 || shmfs_map_ndim (*map) != 0)
    {
      fprintf (stderr, "%s: %s has type %s, not f64\n", prog, path, shmfs_map_type (*map));
      shmfs_unmap (*map);
      return 1;
    }
  return 0;
}

/* Formats v as the shortest %g text that reads back as v, as cat shows it. */
static const char *
shortest (double v, char *buf, size_t size)
{
  for (int prec = 1; prec <= 17; prec++)
    {
      snprintf (buf, size, "%.*g", prec, v);
      if (strtod (buf, NULL) == v)
        break;
    }
  return buf;
}

/* Reads the text view MNT/value, as cat does, without its newline. */
static int
read_text (const char *mnt, char *buf, size_t size)
{
  char path[4096];
  ssize_t n;
  int fd;

  snprintf (path, sizeof path, "%s/value", mnt);
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

/* What the child (or "value set") does: its own mapping, one store. */
static int
store_pi (const char *mnt, bool create)
{
  ShmfsMap *map;

  if (map_value (mnt, create, &map) != 0)
    return 1;
  *(double *) shmfs_map_data (map) = PI_ISH;
  shmfs_unmap (map);
  return 0;
}

static int
run_set (const char *mnt)
{
  if (store_pi (mnt, true) != 0)
    return 1;
  printf ("pid %d stored 3.1415926 into its own mapping of %s/.raw/value\n",
          (int) getpid (), mnt);
  return 0;
}

static int
run_get (const char *mnt)
{
  ShmfsMap *map;
  char buf[64];

  if (map_value (mnt, false, &map) != 0)
    return 1;
  printf ("%s\n", shortest (*(const double *) shmfs_map_data (map), buf, sizeof buf));
  shmfs_unmap (map);
  return 0;
}

static int
run_fork (const char *mnt)
{
  char buf[64], text[64];
  ShmfsMap *map;
  double *num;
  pid_t pid;
  int status;

  if (create_value (mnt) != 0 || map_value (mnt, false, &map) != 0)
    return 1;
  num = shmfs_map_data (map);
  printf ("parent created %s/value (f64), its mapping reads %s\n",
          mnt, shortest (*num, buf, sizeof buf));
  fflush (stdout);

  pid = fork ();
  if (pid < 0)
    return fail ("fork");
  if (pid == 0)
    {
      /* Like a fresh process: drop the inherited mapping, make our own. */
      shmfs_unmap (map);
      if (store_pi (mnt, false) != 0)
        _exit (1);
      printf ("child %d stored 3.1415926 into its own mapping of %s/.raw/value\n",
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
  printf ("cat %s/value: %s\n", mnt, text);

  if (*num != PI_ISH)
    {
      fprintf (stderr, "%s: the parent's mapping reads %s, not 3.1415926\n",
               prog, shortest (*num, buf, sizeof buf));
      return 1;
    }
  printf ("%s\n", shortest (*num, buf, sizeof buf));  /* print(num.value) */
  shmfs_unmap (map);
  return 0;
}

int
main (int argc, char **argv)
{
  const char *mode = NULL, *mnt;
  int arg = 1;

  if (argc > 1 && (strcmp (argv[1], "set") == 0 || strcmp (argv[1], "get") == 0))
    mode = argv[arg++];
  if (argc > arg + 1 || (argc > arg && argv[arg][0] == '-'))
    {
      fprintf (stderr, "usage: %s [set|get] [MNT]\n", prog);
      return 2;
    }
  mnt = argc > arg ? argv[arg] : getenv ("SHMFS_MNT");
  if (mnt == NULL || mnt[0] == '\0')
    mnt = "/tmp/shm";

  if (mode == NULL)
    return run_fork (mnt);
  if (strcmp (mode, "set") == 0)
    return run_set (mnt);
  return run_get (mnt);
}
