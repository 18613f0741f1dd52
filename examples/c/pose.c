/* pose.c — a record shared between processes: a robot's pose with its
 * timestamp, as a C struct mapped from shmfs.
 *
 * MNT/pose has the record type
 *
 *     {seq:u64, t:f64, pos:{x:f64, y:f64, z:f64}, yaw:f64, frame:char[8]}
 *
 * which shmfs lays out as a C compiler lays out struct Pose below, so the
 * binary view MNT/.raw/pose maps 1:1 onto it.  Before trusting that, the
 * program checks the object against the struct with libshmfs: the record's
 * size, and each field's offset and element type by its path ("pos.x").
 * A forked writer then publishes poses into its own mapping while the
 * parent reads them from its own, consistently: seq is a seqlock (odd
 * while the writer is between its two increments), so a reader retries
 * instead of seeing half of one pose.  The text view shows the same bytes
 * as JSON to cat, jq or `shmfs get MNT/pose --field pos.x`.  "write" and
 * "read" split the two sides into separately started processes.
 *
 * Usage: pose [write|read] [MNT] [N]     MNT: argument, else $SHMFS_MNT,
 *                                        else /tmp/shm; N: poses (default 5)
 *   pose MNT         create MNT/pose, fork a writer of N poses, read them
 *   pose write MNT   publish N poses (creating MNT/pose if absent)
 *   pose read MNT    print the current pose, read consistently
 *
 * Meson builds it as build/examples/pose, linked with libshmfs
 * (clients/c).  Run against a mount at /tmp/exmnt (build/fs/shmfs
 * /tmp/exmnt):
 *
 *   $ cc -std=gnu11 -o pose examples/c/pose.c $(pkg-config --cflags --libs shmfs)
 *   $ ./pose /tmp/exmnt 3
 *   /tmp/exmnt/pose {seq:u64, t:f64, pos:{x:f64, y:f64, z:f64}, yaw:f64, frame:char[8]} matches struct Pose (56 bytes)
 *   reader: pose 1 at t=1754311200.512 pos=(1, 2, 0.5) yaw=0.25 frame=map
 *   reader: pose 2 at t=1754311200.532 pos=(2, 4, 0.5) yaw=0.5 frame=map
 *   reader: pose 3 at t=1754311200.552 pos=(3, 6, 0.5) yaw=0.75 frame=map
 *   writer 8120 published 3 poses into its own mapping of /tmp/exmnt/.raw/pose
 *   cat /tmp/exmnt/pose: {"seq": 6, "t": 1754311200.5523, "pos": {"x": 3, "y": 6, "z": 0.5}, "yaw": 0.75, "frame": "map"}
 *   $ build/fs/shmfs get /tmp/exmnt/pose --field pos
 *   {"x": 3, "y": 6, "z": 0.5}
 *   $ echo '{"pos": {"x": 10, "y": 20}}' > /tmp/exmnt/pose; ./pose read /tmp/exmnt
 *   pose 3 at t=1754311200.552 pos=(10, 20, 0.5) yaw=0.75 frame=map
 *   $ rm /tmp/exmnt/pose; build/fs/shmfs new /tmp/exmnt/pose '{t:f64, x:f32}'
 *   $ ./pose read /tmp/exmnt
 *   pose: /tmp/exmnt/pose is {t:f64, x:f32}, not struct Pose: its fields are t f64 @0, x f32 @8
 *   $ ./pose /tmp
 *   pose: /tmp is not a shmfs mount
 *
 * (A slow reader may skip a pose; it never sees half of one.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmfs.h"

#define POSE_SPEC "{seq:u64, t:f64, pos:{x:f64, y:f64, z:f64}, yaw:f64, frame:char[8]}"

typedef struct {
  uint64_t seq;                     /* a seqlock: odd while being written */
  double   t;                       /* seconds since the epoch */
  struct { double x, y, z; } pos;   /* metres */
  double   yaw;                     /* radians */
  char     frame[8];                /* NUL-padded */
} Pose;

/* What the object must hold, field by field, for the mapping to be a Pose. */
#define FIELD(path, member, elem) \
  { path, offsetof (Pose, member), sizeof (((Pose *) 0)->member), elem }
static const struct {
  const char *path;
  size_t      offset, size;
  ShmfsElem   elem;
} pose_layout[] = {
  FIELD ("seq", seq, SHMFS_ELEM_U64),
  FIELD ("t", t, SHMFS_ELEM_F64),
  FIELD ("pos.x", pos.x, SHMFS_ELEM_F64),
  FIELD ("pos.y", pos.y, SHMFS_ELEM_F64),
  FIELD ("pos.z", pos.z, SHMFS_ELEM_F64),
  FIELD ("yaw", yaw, SHMFS_ELEM_F64),
  FIELD ("frame", frame, SHMFS_ELEM_CHAR),
};

static const char *prog = "pose";

/* Prints why err (a -errno from libshmfs about path under mnt) and
 * returns 1. */
static int
fail_shmfs (const char *mnt, const char *path, int err)
{
  struct stat st;

  if (err == -ENOTSUP || ((err == -ENOENT || err == -ENOTDIR)
                          && (stat (mnt, &st) < 0 || !S_ISDIR (st.st_mode))))
    fprintf (stderr, "%s: %s is not a shmfs mount\n", prog, mnt);
  else
    fprintf (stderr, "%s: %s: %s\n", prog, path, shmfs_strerror (err));
  return 1;
}

/* Returns 1 when the mapped object is a Pose, field for field; else says
 * what it is instead (its fields, as libshmfs lists them) and returns 0. */
static int
is_pose (ShmfsMap *m, const char *path)
{
  int ok = shmfs_map_elem (m) == SHMFS_ELEM_RECORD && shmfs_map_ndim (m) == 0
           && shmfs_map_elem_size (m) == sizeof (Pose);

  for (size_t i = 0; ok && i < sizeof pose_layout / sizeof pose_layout[0]; i++)
    {
      size_t offset, size;
      ShmfsElem elem;

      ok = shmfs_map_field_offset (m, pose_layout[i].path, &offset, &elem, &size) == 0
           && offset == pose_layout[i].offset && size == pose_layout[i].size
           && elem == pose_layout[i].elem;
    }
  if (ok)
    return 1;
  fprintf (stderr, "%s: %s is %s, not struct Pose", prog, path, shmfs_map_type (m));
  for (unsigned i = 0; i < shmfs_map_n_fields (m); i++)
    {
      const char *name, *type;
      size_t offset;

      shmfs_map_field (m, i, &name, &offset, &type);
      fprintf (stderr, "%s %s %s @%zu", i ? "," : ": its fields are", name, type, offset);
    }
  fputc ('\n', stderr);
  return 0;
}

/* Maps MNT/pose into *map and *pose, creating it first when create is set
 * and it is absent. */
static int
map_pose (const char *mnt, int create, ShmfsMap **map, Pose **pose)
{
  char path[4096];
  int err;

  snprintf (path, sizeof path, "%s/pose", mnt);
  err = shmfs_map (path, 0, map);
  if (err == -ENOENT && create)
    {
      err = shmfs_create (path, POSE_SPEC, 0644);
      if (err == 0 || err == -EEXIST)   /* or another process did meanwhile */
        err = shmfs_map (path, 0, map);
    }
  if (err < 0)
    return fail_shmfs (mnt, path, err);
  if (!is_pose (*map, path))
    {
      shmfs_unmap (*map);
      return 1;
    }
  *pose = shmfs_map_data (*map);
  return 0;
}

/* Publishes pose number k: seq goes odd, the fields change, seq goes even
 * (so seq / 2 counts the poses published). */
static void
publish (Pose *p, int k)
{
  uint64_t seq = __atomic_load_n (&p->seq, __ATOMIC_RELAXED);
  struct timespec now;

  clock_gettime (CLOCK_REALTIME, &now);
  __atomic_store_n (&p->seq, seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence (__ATOMIC_RELEASE);
  p->t = (double) now.tv_sec + (double) now.tv_nsec / 1e9;
  p->pos.x = k;
  p->pos.y = 2.0 * k;
  p->pos.z = 0.5;
  p->yaw = 0.25 * k;
  strncpy (p->frame, "map", sizeof p->frame);
  __atomic_store_n (&p->seq, seq + 2, __ATOMIC_RELEASE);
}

/* Copies a consistent pose out of the mapping: retries while the writer is
 * between its two increments of seq. */
static Pose
read_pose (const Pose *p)
{
  Pose copy;
  uint64_t before, after;

  do
    {
      before = __atomic_load_n (&p->seq, __ATOMIC_ACQUIRE);
      memcpy (&copy, (const void *) p, sizeof copy);
      __atomic_thread_fence (__ATOMIC_ACQUIRE);
      after = __atomic_load_n (&p->seq, __ATOMIC_RELAXED);
    }
  while ((before & 1) != 0 || before != after);
  copy.seq = before;
  return copy;
}

static void
print_pose (const char *who, const Pose *p)
{
  printf ("%spose %llu at t=%.3f pos=(%g, %g, %g) yaw=%g frame=%.*s\n", who,
          (unsigned long long) (p->seq / 2), p->t, p->pos.x, p->pos.y, p->pos.z, p->yaw,
          (int) sizeof p->frame, p->frame);
}

static int
run_write (const char *mnt, int n)
{
  ShmfsMap *m;
  Pose *p;

  if (map_pose (mnt, 1, &m, &p) != 0)
    return 1;
  for (int k = 1; k <= n; k++)
    {
      publish (p, k);
      shmfs_notify (m);   /* wakes `shmfs watch MNT/pose` and other pollers */
      usleep (20000);
    }
  printf ("writer %d published %d poses into its own mapping of %s/.raw/pose\n",
          (int) getpid (), n, mnt);
  shmfs_unmap (m);
  return 0;
}

static int
run_read (const char *mnt)
{
  ShmfsMap *m;
  Pose *p, now;

  if (map_pose (mnt, 0, &m, &p) != 0)
    return 1;
  now = read_pose (p);
  print_pose ("", &now);
  shmfs_unmap (m);
  return 0;
}

/* Creates MNT/pose afresh: typed under a temporary name, then renamed over
 * any older one. */
static int
create_pose (const char *mnt)
{
  char tmp[4096], path[4096];
  int err;

  snprintf (tmp, sizeof tmp, "%s/.pose.tmp%d", mnt, (int) getpid ());
  snprintf (path, sizeof path, "%s/pose", mnt);
  if ((err = shmfs_create (tmp, POSE_SPEC, 0644)) < 0)
    return fail_shmfs (mnt, tmp, err);
  if (rename (tmp, path) < 0)
    {
      fprintf (stderr, "%s: %s: %s\n", prog, path, strerror (errno));
      unlink (tmp);
      return 1;
    }
  return 0;
}

static int
run_fork (const char *mnt, int n)
{
  char path[4096], text[512];
  uint64_t seen = 0;
  ShmfsMap *m;
  Pose *p;
  pid_t pid;
  int status, fd;
  ssize_t len;

  if (create_pose (mnt) != 0 || map_pose (mnt, 0, &m, &p) != 0)
    return 1;
  printf ("%s/pose %s matches struct Pose (%zu bytes)\n", mnt, shmfs_map_type (m), sizeof (Pose));
  fflush (stdout);

  pid = fork ();
  if (pid < 0)
    return 1;
  if (pid == 0)
    {
      /* Like a fresh process: drop the inherited mapping, make our own. */
      int code;

      shmfs_unmap (m);
      code = run_write (mnt, n);
      fflush (stdout);
      _exit (code);
    }

  /* The reader: every pose it finds, until the last. */
  while (seen < 2 * (uint64_t) n)
    {
      Pose now = read_pose (p);

      if (now.seq != seen)
        {
          if (now.pos.y != 2.0 * now.pos.x)   /* never: the seqlock */
            {
              fprintf (stderr, "%s: read half of a pose\n", prog);
              return 1;
            }
          print_pose ("reader: ", &now);
          fflush (stdout);
          seen = now.seq;
        }
      usleep (1000);
    }
  if (waitpid (pid, &status, 0) < 0 || !WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      fprintf (stderr, "%s: the writer failed\n", prog);
      return 1;
    }

  snprintf (path, sizeof path, "%s/pose", mnt);
  if ((fd = open (path, O_RDONLY)) < 0 || (len = read (fd, text, sizeof text - 1)) < 0)
    {
      fprintf (stderr, "%s: %s: %s\n", prog, path, strerror (errno));
      return 1;
    }
  close (fd);
  text[len] = '\0';
  printf ("cat %s: %s", path, text);
  shmfs_unmap (m);
  return 0;
}

int
main (int argc, char **argv)
{
  const char *mode = NULL, *mnt = NULL;
  int arg = 1, n = 5;

  if (argc > 1 && (strcmp (argv[1], "write") == 0 || strcmp (argv[1], "read") == 0))
    mode = argv[arg++];
  if (argc > arg)
    mnt = argv[arg++];
  if (argc > arg)
    n = atoi (argv[arg++]);
  if (argc > arg || n < 1 || (mnt != NULL && mnt[0] == '-'))
    {
      fprintf (stderr, "usage: %s [write|read] [MNT] [N]\n", prog);
      return 2;
    }
  if (mnt == NULL && ((mnt = getenv ("SHMFS_MNT")) == NULL || mnt[0] == '\0'))
    mnt = "/tmp/shm";

  if (mode == NULL)
    return run_fork (mnt, n);
  if (strcmp (mode, "write") == 0)
    return run_write (mnt, n);
  return run_read (mnt);
}
