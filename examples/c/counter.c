/* counter.c — a shared counter incremented from C through libshmfs, while
 * other processes increment it with `shmfs add`, the ioctl or `flock`.
 *
 * The counter is element 0 of an i64 object (created, atomically and
 * zeroed, when absent).  The program maps its binary view with shmfs_map()
 * and adds 1, N times, in one of three ways:
 *
 *   (default)  __atomic_fetch_add on the mapping.  The daemon's atomic
 *              operations are CPU atomics on these very pages (in cached
 *              mode too, through its helper processes), so this composes
 *              with `shmfs add` and the ioctl.
 *   --lock     shmfs_lock(), a plain load and store, shmfs_unlock(): the
 *              daemon's one lock per object, so it composes with a shell's
 *              `flock MNT/PATH -c ...` in either mode.
 *   --ioctl    shmfs_atomic_add(): the daemon's atomic operation.
 *
 * Usage: counter [--lock|--ioctl] MNT/PATH N
 *
 * Meson builds it as build/examples/counter.  A run against a mount at
 * /tmp/cc-mnt (build/fs/shmfs -o mode=passthrough /tmp/cc-mnt), with other
 * processes incrementing at the same time:
 *
 *   $ ./counter /tmp/cc-mnt/count 10000000 &
 *   $ for i in $(seq 1000); do build/fs/shmfs add /tmp/cc-mnt/count 1 >/dev/null; done; wait
 *   counter: created /tmp/cc-mnt/count (i64)
 *   counter: pid 18086 added 10000000 to /tmp/cc-mnt/count[0] with mmap atomics; it reads 10000016
 *   $ cat /tmp/cc-mnt/count
 *   10001000
 *   $ ./counter --lock /tmp/cc-mnt/count 1000 &
 *   $ for i in $(seq 100); do flock /tmp/cc-mnt/count sh -c \
 *       'echo $(( $(cat /tmp/cc-mnt/count) + 1 )) > /tmp/cc-mnt/count'; done; wait
 *   counter: pid 19754 added 1000 to /tmp/cc-mnt/count[0] under the object's lock; it reads 10002048
 *   $ cat /tmp/cc-mnt/count
 *   10002100
 *   $ ./counter --ioctl /tmp/cc-mnt/count 10
 *   counter: pid 20234 added 10 to /tmp/cc-mnt/count[0] with the daemon's atomic add; it reads 10002110
 *   $ ./counter /tmp/notshm 1
 *   counter: /tmp/notshm: not inside a shmfs mount
 *   $ touch /tmp/cc-mnt/empty; ./counter /tmp/cc-mnt/empty 1
 *   counter: /tmp/cc-mnt/empty: the object has no type yet
 *
 * ("it reads" is the total when this process finished: the other
 * processes' increments are in it too.)  The default way and --ioctl
 * compose with each other and with `shmfs add`; --lock composes with
 * `flock` users and with the daemon's atomics (which wait for the lock),
 * not with unlocked stores through a mapping (docs/contract.md §8).
 *
 * Built by hand from the sources:
 *
 *   $ gcc -std=gnu11 -D_GNU_SOURCE -Iinclude/shmfs -Iinclude -Icore -o counter examples/c/counter.c \
 *       clients/c/shmfs-client.c core/shm-type.c $(pkg-config --cflags --libs glib-2.0)
 *
 * or, with libshmfs installed: gcc -o counter counter.c $(pkg-config --cflags --libs shmfs)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmfs.h"

static const char *prog = "counter";

typedef enum { BY_CPU_ATOMICS, BY_LOCK, BY_IOCTL } Way;

static const char *const way_names[] = {
  "with mmap atomics", "under the object's lock", "with the daemon's atomic add",
};

static int
fail (const char *what, int err)
{
  fprintf (stderr, "%s: %s: %s\n", prog, what, shmfs_strerror (err));
  return 1;
}

/* Maps path, creating it as an i64 when absent. */
static int
map_counter (const char *path, ShmfsMap **map)
{
  int err = shmfs_map (path, 0, map);

  if (err == -ENOENT)
    {
      err = shmfs_create (path, "i64", 0644);
      if (err == 0)
        printf ("%s: created %s (i64)\n", prog, path);
      if (err == 0 || err == -EEXIST)   /* or another process did meanwhile */
        err = shmfs_map (path, 0, map);
    }
  if (err < 0)
    return fail (path, err);
  if (shmfs_map_elem (*map) != SHMFS_ELEM_I64)
    {
      fprintf (stderr, "%s: %s has type %s, not i64\n", prog, path, shmfs_map_type (*map));
      shmfs_unmap (*map);
      return 1;
    }
  return 0;
}

/* Adds 1 to *count under the object's lock: a plain, non-atomic
 * read-modify-write that the lock alone makes safe. */
static int
locked_increment (ShmfsMap *map, int64_t *count)
{
  int err = shmfs_lock (map, true);

  if (err < 0)
    return err;
  *count = *count + 1;
  return shmfs_unlock (map);
}

static int
run (Way way, const char *path, long n)
{
  ShmfsMap *map;
  int64_t *count, now;
  int err = 0;

  if (map_counter (path, &map) != 0)
    return 1;
  count = shmfs_map_data (map);
  for (long i = 0; i < n && err == 0; i++)
    switch (way)
      {
      case BY_CPU_ATOMICS:
        __atomic_fetch_add (count, 1, __ATOMIC_SEQ_CST);
        break;
      case BY_LOCK:
        err = locked_increment (map, count);
        break;
      case BY_IOCTL:
        err = shmfs_atomic_add (map, 0, 1, NULL);
        break;
      }
  if (err == 0)
    err = shmfs_atomic_load (map, 0, &now);
  if (err == 0)
    err = shmfs_notify (map);   /* wake pollers of the text view */
  if (err < 0)
    {
      shmfs_unmap (map);
      return fail (path, err);
    }
  printf ("%s: pid %d added %ld to %s[0] %s; it reads %" PRId64 "\n",
          prog, (int) getpid (), n, path, way_names[way], now);
  shmfs_unmap (map);
  return 0;
}

int
main (int argc, char **argv)
{
  Way way = BY_CPU_ATOMICS;
  int arg = 1;
  char *end;
  long n;

  if (argc > 1 && strcmp (argv[1], "--lock") == 0)
    way = BY_LOCK, arg++;
  else if (argc > 1 && strcmp (argv[1], "--ioctl") == 0)
    way = BY_IOCTL, arg++;
  if (argc != arg + 2)
    {
      fprintf (stderr, "usage: %s [--lock|--ioctl] MNT/PATH N\n", prog);
      return 2;
    }
  errno = 0;
  n = strtol (argv[arg + 1], &end, 10);
  if (errno != 0 || end == argv[arg + 1] || *end != '\0' || n < 0)
    {
      fprintf (stderr, "%s: %s: not a count\n", prog, argv[arg + 1]);
      return 2;
    }
  return run (way, argv[arg], n);
}
