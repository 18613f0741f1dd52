/* value.c — the seed's multiprocessing.Value example, in C on shmfs.
 *
 * Python's
 *
 *     num = Value('d', 0.0)
 *     p = Process(target=f, args=(num,))   # f sets num.value = 3.1415926
 *     p.start(); p.join()
 *     print(num.value)
 *
 * becomes a file: MNT/value, typed f64.  The parent creates it and maps its
 * binary view MNT/.raw/value; a forked child opens and maps that view on its
 * own and stores 3.1415926 with a plain assignment.  The parent then reads
 * the store from its own mapping (no msync, no pipe), and the text view
 * MNT/value shows the same bytes to cat.  "set" and "get" split the two
 * sides into separately started processes, which need not be related.
 *
 * Usage: value [set|get] [MNT]     MNT: argument, else $SHMFS_MNT, else /tmp/shm
 *   value MNT        create MNT/value = 0, fork the storing child, print the result
 *   value set MNT    store 3.1415926 from this process (creating MNT/value if absent)
 *   value get MNT    print MNT/value as read through this process's own mapping
 *
 * Meson builds it as build/examples/value; by hand, as below.  Run against
 * a mount at /tmp/exmnt (started with: build/fs/shmfs /tmp/exmnt):
 *
 *   $ cc -std=gnu11 -o value examples/c/value.c
 *   $ ./value /tmp/exmnt
 *   parent created /tmp/exmnt/value (f64), its mapping reads 0
 *   child 7810 stored 3.1415926 into its own mapping of /tmp/exmnt/.raw/value
 *   cat /tmp/exmnt/value: 3.1415926
 *   3.1415926
 *   $ ./value set /tmp/exmnt
 *   pid 7812 stored 3.1415926 into its own mapping of /tmp/exmnt/.raw/value
 *   $ ./value get /tmp/exmnt
 *   3.1415926
 *   $ python3 examples/python/value.py get /tmp/exmnt
 *   3.1415926
 *   $ cat /tmp/exmnt/value
 *   3.1415926
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#define TYPE_XATTR "user.shmfs.type"
#define PI_ISH 3.1415926

static const char *prog = "value";

/* Prints "value: what: strerror(errno)" and returns 1, for "return fail(...)". */
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

/* Creates MNT/value of type f64 atomically: under a temporary name, typed
 * (which zero-fills it, so it reads 0 like Value('d', 0.0)), then renamed
 * into place, replacing any older MNT/value. */
static int
create_value (const char *mnt)
{
  char tmp[4096], path[4096];
  int fd;

  snprintf (tmp, sizeof tmp, "%s/.value.tmpXXXXXX", mnt);
  snprintf (path, sizeof path, "%s/value", mnt);
  fd = mkstemp (tmp);
  if (fd < 0)
    return fail (tmp);
  if (fsetxattr (fd, TYPE_XATTR, "f64", strlen ("f64"), 0) < 0)
    {
      fail ("setting " TYPE_XATTR " to f64");
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

/* Maps the binary view of MNT/value (which must be an f64) into *num. */
static int
map_value (const char *mnt, double **num)
{
  char path[4096], type[64];
  struct stat st;
  ssize_t len;
  void *p;
  int fd;

  snprintf (path, sizeof path, "%s/value", mnt);
  len = getxattr (path, TYPE_XATTR, type, sizeof type - 1);
  if (len < 0 && errno == ENODATA)
    {
      fprintf (stderr, "%s: %s has no type yet\n", prog, path);
      return 1;
    }
  if (len < 0)
    return fail (path);
  type[len] = '\0';
  if (strcmp (type, "f64") != 0)
    {
      fprintf (stderr, "%s: %s has type %s, not f64\n", prog, path, type);
      return 1;
    }

  snprintf (path, sizeof path, "%s/.raw/value", mnt);
  fd = open (path, O_RDWR);
  if (fd < 0)
    return fail (path);
  if (fstat (fd, &st) < 0)
    {
      close (fd);
      return fail (path);
    }
  if (st.st_size != sizeof (double))
    {
      fprintf (stderr, "%s: %s is %lld bytes, not %zu\n",
               prog, path, (long long) st.st_size, sizeof (double));
      close (fd);
      return 1;
    }
  p = mmap (NULL, sizeof (double), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close (fd);  /* the mapping keeps the object */
  if (p == MAP_FAILED)
    return fail (path);
  *num = p;
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
store_pi (const char *mnt)
{
  double *num;

  if (map_value (mnt, &num) != 0)
    return 1;
  *num = PI_ISH;
  munmap (num, sizeof *num);
  return 0;
}

static int
run_set (const char *mnt)
{
  char path[4096];

  snprintf (path, sizeof path, "%s/value", mnt);
  if (access (path, F_OK) < 0)
    {
      if (errno != ENOENT)
        return fail (path);
      if (create_value (mnt) != 0)
        return 1;
    }
  if (store_pi (mnt) != 0)
    return 1;
  printf ("pid %d stored 3.1415926 into its own mapping of %s/.raw/value\n",
          (int) getpid (), mnt);
  return 0;
}

static int
run_get (const char *mnt)
{
  char buf[64];
  double *num;

  if (map_value (mnt, &num) != 0)
    return 1;
  printf ("%s\n", shortest (*num, buf, sizeof buf));
  munmap (num, sizeof *num);
  return 0;
}

static int
run_fork (const char *mnt)
{
  char buf[64], text[64];
  double *num;
  pid_t pid;
  int status;

  if (create_value (mnt) != 0 || map_value (mnt, &num) != 0)
    return 1;
  printf ("parent created %s/value (f64), its mapping reads %s\n",
          mnt, shortest (*num, buf, sizeof buf));
  fflush (stdout);

  pid = fork ();
  if (pid < 0)
    return fail ("fork");
  if (pid == 0)
    {
      /* Like a fresh process: drop the inherited mapping, make our own. */
      munmap (num, sizeof *num);
      if (store_pi (mnt) != 0)
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
  munmap (num, sizeof *num);
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

  if (check_mount (mnt) != 0)
    return 1;
  if (mode == NULL)
    return run_fork (mnt);
  if (strcmp (mode, "set") == 0)
    return run_set (mnt);
  return run_get (mnt);
}
