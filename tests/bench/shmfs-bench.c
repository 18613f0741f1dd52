/* shmfs-bench: what a shared object costs, on shmfs and on /dev/shm.
 *
 * Run it once on a directory of /dev/shm (plain files sized with ftruncate,
 * the baseline) and once on a shmfs mount (objects typed with the
 * user.shmfs.type xattr, bytes at DIR/.raw/NAME, text at DIR/NAME).  Which
 * one DIR is comes from statfs(2).  Every figure is the median of --reps
 * repetitions, printed with its min and max as one tab-separated line:
 *
 *   LABEL  PIN  OP  UNIT  MEDIAN  MIN  MAX
 *
 * PIN is "pinned" (the process on one CPU; ping-pong's two processes on two
 * CPUs) or "unpinned".  Lines starting with '#' are comments.  --only picks
 * groups of figures (io, text, bw, bigbw, atomic, ping, fault, create).  It
 * asserts nothing about times; tests/bench/run-bench.py runs it on both
 * sides, one repetition at a time, alternating, and compares.
 *
 *   $ mkdir /dev/shm/b && shmfs-bench --only io /dev/shm/b shm
 *   shm     pinned    pread8   ns/op  184.5  180.2  190.3
 *   ...
 *   $ shmfs -f -o mode=passthrough /tmp/m &
 *   $ shmfs-bench --only io /tmp/m shmfs
 *   shmfs   pinned    pread8   ns/op  271.2  265.8  278.6
 *   ...
 */

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#define FUSE_SUPER_MAGIC 0x65735546
#define TYPE_XATTR "user.shmfs.type"
#define MAX_REPS 101
#define PI_TEXT "3.1415926\n"
#define MIB ((size_t) 1 << 20)
/* A repetition of a per-op figure lasts about this long. */
#define TARGET_NS 20e6

typedef struct
{
  const char *dir;
  const char *label;
  gboolean    shmfs;        /* DIR is a shmfs mount, else plain files */
  int         reps;
  size_t      big_bytes;    /* the large bandwidth mapping */
  size_t      fault_bytes;  /* each first-touch object */
  size_t      page;
  const char *pin_name;     /* "pinned" or "unpinned" */
  gboolean    pinned;
  int         cpu[2];       /* CPUs for pinning: bench / ping-pong peer */
  cpu_set_t   all_cpus;     /* the affinity we started with */
  unsigned    serial;       /* for unique object names */
} Bench;

/* An object made for one measurement: its two views. */
typedef struct
{
  char  *text_path;   /* shmfs: DIR/NAME; plain: DIR/NAME (the same file) */
  char  *raw_path;    /* shmfs: DIR/.raw/NAME; plain: DIR/NAME */
  size_t nbytes;
} Obj;

static volatile uint64_t bench_sink;

static void die (const char *what, ...) G_GNUC_PRINTF (1, 2) G_GNUC_NORETURN;

static void
die (const char *what, ...)
{
  va_list ap;
  int err = errno;

  fflush (stdout);
  fputs ("shmfs-bench: ", stderr);
  va_start (ap, what);
  vfprintf (stderr, what, ap);
  va_end (ap);
  fprintf (stderr, ": %s\n", g_strerror (err));
  exit (1);
}

static double
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}

static inline void
cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#elif defined(__aarch64__)
  __asm__ __volatile__ ("yield");
#endif
}

static void
pin_to (const Bench *b, int cpu)
{
  cpu_set_t set;

  if (cpu < 0)
    set = b->all_cpus;
  else
    {
      CPU_ZERO (&set);
      CPU_SET (cpu, &set);
    }
  if (sched_setaffinity (0, sizeof set, &set) < 0)
    die ("sched_setaffinity(cpu %d)", cpu);
}

/* ---- objects ---------------------------------------------------------- */

/* Makes a zero-filled object of nbytes: a typed shmfs object, or a plain
 * file sized with ftruncate.  type is the shmfs type spec. */
static Obj
obj_create (Bench *b, const char *stem, const char *type, size_t nbytes)
{
  g_autofree char *name = g_strdup_printf ("bench-%d-%u-%s", (int) getpid (), b->serial++, stem);
  Obj o = { .nbytes = nbytes };
  struct stat st;
  int fd;

  o.text_path = g_build_filename (b->dir, name, NULL);
  o.raw_path = b->shmfs ? g_build_filename (b->dir, ".raw", name, NULL) : g_strdup (o.text_path);

  fd = open (o.text_path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0)
    die ("create %s", o.text_path);
  if (b->shmfs)
    {
      if (fsetxattr (fd, TYPE_XATTR, type, strlen (type), 0) < 0)
        die ("setxattr %s=%s on %s", TYPE_XATTR, type, o.text_path);
    }
  else if (ftruncate (fd, (off_t) nbytes) < 0)
    die ("ftruncate %s", o.text_path);
  close (fd);

  if (stat (o.raw_path, &st) < 0)
    die ("stat %s", o.raw_path);
  if ((size_t) st.st_size != nbytes)
    {
      errno = EIO;
      die ("%s: st_size %jd, expected %zu", o.raw_path, (intmax_t) st.st_size, nbytes);
    }
  return o;
}

static void
obj_destroy (Obj *o)
{
  if (unlink (o->text_path) < 0)
    die ("unlink %s", o->text_path);
  g_clear_pointer (&o->text_path, g_free);
  g_clear_pointer (&o->raw_path, g_free);
}

static int
obj_open_raw (const Obj *o)
{
  int fd = open (o->raw_path, O_RDWR | O_CLOEXEC);

  if (fd < 0)
    die ("open %s", o->raw_path);
  return fd;
}

static void *
obj_map (const Obj *o)
{
  int fd = obj_open_raw (o);
  void *p = mmap (NULL, o->nbytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

  if (p == MAP_FAILED)
    die ("mmap %s (%zu bytes)", o->raw_path, o->nbytes);
  close (fd);
  return p;
}

/* ---- measurement ------------------------------------------------------ */

/* One repetition: do the operation n times, return the elapsed ns. */
typedef double (*TimedLoop) (void *ctx, size_t n);
/* One repetition of a figure that sets itself up; returns the figure. */
typedef double (*Repetition) (Bench *b, void *ctx);

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

static void
report (const Bench *b, const char *op, const char *unit, double *v, int n)
{
  qsort (v, (size_t) n, sizeof *v, cmp_double);
  printf ("%s\t%s\t%s\t%s\t%.6g\t%.6g\t%.6g\n", b->label, b->pin_name, op, unit,
          n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[0], v[n - 1]);
  fflush (stdout);
}

/* Warms the loop up while finding an n that lasts about TARGET_NS, then
 * reports ns per operation over b->reps repetitions of n. */
static void
measure_per_op (Bench *b, const char *op, TimedLoop loop, void *ctx)
{
  double v[MAX_REPS], t;
  size_t n = 8;

  while ((t = loop (ctx, n)) < TARGET_NS / 4 && n < ((size_t) 1 << 40))
    n *= 2;
  n = MAX ((size_t) 1, (size_t) ((double) n * TARGET_NS / MAX (t, 1.0)));
  for (int r = 0; r < b->reps; r++)
    v[r] = loop (ctx, n) / (double) n;
  report (b, op, "ns/op", v, b->reps);
}

static void
measure_reps (Bench *b, const char *op, const char *unit, Repetition rep, void *ctx)
{
  double v[MAX_REPS];

  for (int r = 0; r < b->reps; r++)
    v[r] = rep (b, ctx);
  report (b, op, unit, v, b->reps);
}

/* ---- 1, 2: pread / pwrite of 8 bytes on the binary view --------------- */

typedef struct
{
  int    fd;
  size_t words;   /* nbytes / 8 */
} IoCtx;

static inline off_t
io_offset (const IoCtx *c, size_t i)
{
  /* Spread over the object, 8-byte aligned; every page gets visited. */
  return (off_t) (((i * 2654435761u) % c->words) * 8);
}

static double
loop_pread (void *ctx, size_t n)
{
  IoCtx *c = ctx;
  uint64_t x, sum = 0;
  double t0 = now_ns ();

  for (size_t i = 0; i < n; i++)
    {
      if (pread (c->fd, &x, sizeof x, io_offset (c, i)) != sizeof x)
        die ("pread 8 bytes");
      sum += x;
    }
  bench_sink += sum;
  return now_ns () - t0;
}

static double
loop_pwrite (void *ctx, size_t n)
{
  IoCtx *c = ctx;
  double t0 = now_ns ();

  for (size_t i = 0; i < n; i++)
    {
      uint64_t x = i;

      if (pwrite (c->fd, &x, sizeof x, io_offset (c, i)) != sizeof x)
        die ("pwrite 8 bytes");
    }
  return now_ns () - t0;
}

static void
bench_io (Bench *b)
{
  Obj o = obj_create (b, "io", "u8[1048576]", MIB);
  IoCtx c = { .fd = obj_open_raw (&o), .words = o.nbytes / 8 };
  g_autofree uint8_t *fill = g_malloc (o.nbytes);

  /* Give it contents first: reading a file that ftruncate left sparse
   * takes tmpfs' zero-page shortcut, which a written object never sees. */
  memset (fill, 0x5a, o.nbytes);
  if (pwrite (c.fd, fill, o.nbytes, 0) != (ssize_t) o.nbytes)
    die ("fill %s", o.raw_path);
  measure_per_op (b, "pread8", loop_pread, &c);
  measure_per_op (b, "pwrite8", loop_pwrite, &c);
  close (c.fd);
  obj_destroy (&o);
}

/* ---- 3: open + read to EOF + close of the text view ------------------- */

static void
read_text (const char *path, char *buf, size_t size, size_t *len)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ssize_t k;

  if (fd < 0)
    die ("open %s", path);
  *len = 0;
  while ((k = read (fd, buf + *len, size - *len)) > 0)
    *len += (size_t) k;
  if (k < 0)
    die ("read %s", path);
  close (fd);
}

static double
loop_text (void *ctx, size_t n)
{
  const char *path = ctx;
  char buf[256];
  size_t len;
  double t0 = now_ns ();

  for (size_t i = 0; i < n; i++)
    read_text (path, buf, sizeof buf, &len);
  bench_sink += len;
  return now_ns () - t0;
}

static void
bench_text (Bench *b)
{
  /* shmfs: a typed f64 set through its text view; plain: a small file. */
  Obj o = obj_create (b, "pi", "f64", b->shmfs ? 8 : 0);
  char buf[256];
  size_t len;
  int fd;

  fd = open (o.text_path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    die ("open %s", o.text_path);
  if (write (fd, PI_TEXT, strlen (PI_TEXT)) != (ssize_t) strlen (PI_TEXT))
    die ("write %s", o.text_path);
  close (fd);

  read_text (o.text_path, buf, sizeof buf, &len);
  if (len != strlen (PI_TEXT) || memcmp (buf, PI_TEXT, len) != 0)
    {
      errno = EIO;
      die ("%s reads \"%.*s\", expected \"3.1415926\\n\"", o.text_path, (int) len, buf);
    }
  measure_per_op (b, "text-read", loop_text, o.text_path);
  obj_destroy (&o);
}

/* ---- 4, 5: mmap bandwidth --------------------------------------------- */

typedef struct
{
  uint64_t *p;
  size_t    nbytes;
  int       passes;
  gboolean  write;
} BwCtx;

static uint64_t
sum_words (const uint64_t *p, size_t n)
{
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;

  for (size_t i = 0; i + 4 <= n; i += 4)
    {
      s0 += p[i];
      s1 += p[i + 1];
      s2 += p[i + 2];
      s3 += p[i + 3];
    }
  return s0 + s1 + s2 + s3;
}

static double
rep_bandwidth (G_GNUC_UNUSED Bench *b, void *ctx)
{
  BwCtx *c = ctx;
  double t0 = now_ns ();

  for (int k = 0; k < c->passes; k++)
    {
      if (c->write)
        memset (c->p, k & 0xff, c->nbytes);
      else
        bench_sink += sum_words (c->p, c->nbytes / 8);
    }
  /* bytes per ns = GB/s */
  return (double) c->nbytes * c->passes / (now_ns () - t0);
}

static void
bench_bandwidth (Bench *b, size_t nbytes, const char *size_name)
{
  g_autofree char *type = g_strdup_printf ("u8[%zu]", nbytes);
  g_autofree char *rd = g_strdup_printf ("mmap-read-%s", size_name);
  g_autofree char *wr = g_strdup_printf ("mmap-write-%s", size_name);
  Obj o = obj_create (b, "bw", type, nbytes);
  BwCtx c = { .p = obj_map (&o), .nbytes = nbytes };
  double t0, t;

  /* Touch every page (fault it in, writable) before timing anything. */
  memset (c.p, 1, nbytes);
  bench_sink += sum_words (c.p, nbytes / 8);

  /* Enough passes that a repetition lasts about TARGET_NS. */
  t0 = now_ns ();
  bench_sink += sum_words (c.p, nbytes / 8);
  t = now_ns () - t0;
  c.passes = (int) CLAMP (TARGET_NS / MAX (t, 1.0), 1, 100000);

  c.write = FALSE;
  measure_reps (b, rd, "GB/s", rep_bandwidth, &c);
  c.write = TRUE;
  measure_reps (b, wr, "GB/s", rep_bandwidth, &c);

  munmap (c.p, nbytes);
  obj_destroy (&o);
}

/* ---- 6: atomic add on a mapping --------------------------------------- */

static double
loop_atomic_add (void *ctx, size_t n)
{
  uint64_t *p = ctx;
  double t0 = now_ns ();

  for (size_t i = 0; i < n; i++)
    __atomic_fetch_add (p, 1, __ATOMIC_SEQ_CST);
  return now_ns () - t0;
}

static void
bench_atomic (Bench *b)
{
  Obj o = obj_create (b, "atomic", "u64[8]", 64);
  uint64_t *p = obj_map (&o);

  measure_per_op (b, "atomic-add", loop_atomic_add, p);
  munmap (p, o.nbytes);
  obj_destroy (&o);
}

/* ---- 7: cross-process ping-pong through a mapped page ----------------- */

#define PING_WARMUP 100000   /* untimed: lets the scheduler settle */
#define PING_ROUNDS 100000
#define PING_TIMEOUT_NS 20e9

/* Spins until *word == want; FALSE if that took longer than the deadline. */
static gboolean
spin_until (uint64_t *word, uint64_t want, double deadline)
{
  unsigned spins = 0;

  while (__atomic_load_n (word, __ATOMIC_ACQUIRE) != want)
    {
      cpu_relax ();
      if (++spins % 4096 == 0)
        {
          /* Unpinned, both may land on one CPU: let the other one run. */
          sched_yield ();
          if (now_ns () > deadline)
            return FALSE;
        }
    }
  return TRUE;
}

static G_GNUC_NORETURN void
ping_child (Bench *b, const Obj *o)
{
  /* The peer maps the object itself, as an unrelated process would. */
  uint64_t *p;
  double deadline;

  if (b->pinned)
    pin_to (b, b->cpu[1]);
  p = obj_map (o);
  __atomic_store_n (&p[8], 1, __ATOMIC_RELEASE);   /* ready */
  deadline = now_ns () + PING_TIMEOUT_NS;
  for (uint64_t i = 0; i < PING_WARMUP + PING_ROUNDS; i++)
    {
      if (!spin_until (&p[0], 2 * i + 1, deadline))
        _exit (2);
      __atomic_store_n (&p[0], 2 * i + 2, __ATOMIC_RELEASE);
    }
  _exit (0);
}

static double
rep_ping_pong (Bench *b, void *ctx)
{
  const Obj *o = ctx;
  uint64_t *p = obj_map (o);
  double t0, t, deadline;
  gboolean ok = TRUE;
  pid_t pid;
  int status;

  p[0] = 0;
  p[8] = 0;
  fflush (stdout);
  pid = fork ();
  if (pid < 0)
    die ("fork");
  if (pid == 0)
    ping_child (b, o);

  deadline = now_ns () + PING_TIMEOUT_NS;
  if (!spin_until (&p[8], 1, deadline))
    ok = FALSE;
  t0 = now_ns ();
  for (uint64_t i = 0; ok && i < PING_WARMUP + PING_ROUNDS; i++)
    {
      if (i == PING_WARMUP)
        t0 = now_ns ();
      __atomic_store_n (&p[0], 2 * i + 1, __ATOMIC_RELEASE);
      ok = spin_until (&p[0], 2 * i + 2, deadline);
    }
  t = now_ns () - t0;
  if (!ok)
    kill (pid, SIGKILL);
  if (waitpid (pid, &status, 0) < 0)
    die ("waitpid");
  if (!ok || !WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      errno = ETIMEDOUT;
      die ("ping-pong through %s stalled or its peer failed (status 0x%x)", o->raw_path, status);
    }
  munmap (p, o->nbytes);
  return t / PING_ROUNDS;
}

static void
bench_ping_pong (Bench *b)
{
  Obj o = obj_create (b, "ping", "u8[4096]", 4096);

  rep_ping_pong (b, &o);   /* warm-up */
  measure_reps (b, "ping-pong", "ns/rtt", rep_ping_pong, &o);
  obj_destroy (&o);
}

/* ---- 8: first-touch page faults --------------------------------------- */

typedef struct
{
  gboolean write;
} FaultCtx;

/* In a VM with free page reporting (virtio-balloon), memory the guest freed
 * a while ago may have been handed back to the host, and touching it again
 * costs a host fault on top of the guest's.  Touching and freeing a large
 * anonymous buffer just before a measurement leaves fresh, host-backed pages
 * at the head of the free lists, so first-touch figures measure the guest
 * kernel (and shmfs), not whatever the host did with free memory. */
static void
recycle_free_memory (Bench *b, size_t nbytes)
{
  uint8_t *p = mmap (NULL, nbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

  if (p == MAP_FAILED)
    die ("mmap %zu anonymous bytes", nbytes);
  for (size_t i = 0; i < nbytes; i += b->page)
    p[i] = 1;
  munmap (p, nbytes);
}

static double
rep_first_touch (Bench *b, void *ctx)
{
  FaultCtx *c = ctx;
  g_autofree char *type = g_strdup_printf ("u8[%zu]", b->fault_bytes);
  size_t pages = b->fault_bytes / b->page;
  volatile uint8_t *p;
  uint64_t sum = 0;
  double t0, t;
  Obj o;

  /* Enough for the object, its page cache (cached mode) and the daemon. */
  recycle_free_memory (b, 3 * b->fault_bytes);
  o = obj_create (b, "fault", type, b->fault_bytes);
  p = obj_map (&o);

  t0 = now_ns ();
  if (c->write)
    for (size_t i = 0; i < pages; i++)
      p[i * b->page] = 1;
  else
    for (size_t i = 0; i < pages; i++)
      sum += p[i * b->page];
  t = now_ns () - t0;

  bench_sink += sum;
  munmap ((void *) p, b->fault_bytes);
  obj_destroy (&o);
  return t / (double) pages;
}

static void
bench_first_touch (Bench *b)
{
  FaultCtx c;

  c.write = FALSE;
  measure_reps (b, "fault-read", "ns/page", rep_first_touch, &c);
  c.write = TRUE;
  measure_reps (b, "fault-write", "ns/page", rep_first_touch, &c);
}

/* ---- 9: create + type + delete ---------------------------------------- */

static double
loop_create_delete (void *ctx, size_t n)
{
  Bench *b = ctx;
  char path[4096];
  double t0 = now_ns ();

  for (size_t i = 0; i < n; i++)
    {
      int fd;

      snprintf (path, sizeof path, "%s/bench-%d-cd-%zu", b->dir, (int) getpid (), i);
      fd = open (path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
      if (fd < 0)
        die ("create %s", path);
      if (b->shmfs ? fsetxattr (fd, TYPE_XATTR, "u64", 3, 0) : ftruncate (fd, 8))
        die ("type %s", path);
      close (fd);
      if (unlink (path) < 0)
        die ("unlink %s", path);
    }
  return now_ns () - t0;
}

/* ---- main ------------------------------------------------------------- */

static void
bench_create_delete (Bench *b)
{
  measure_per_op (b, "create-type-delete", loop_create_delete, b);
}

static void
bench_bandwidth_small (Bench *b)
{
  bench_bandwidth (b, MIB, "1M");
}

static void
bench_bandwidth_big (Bench *b)
{
  g_autofree char *name = g_strdup_printf ("%zuM", b->big_bytes / MIB);

  bench_bandwidth (b, b->big_bytes, name);
}

static const struct
{
  const char *name;
  void      (*run) (Bench *b);
} groups[] = {
  { "io", bench_io },
  { "text", bench_text },
  { "bw", bench_bandwidth_small },
  { "bigbw", bench_bandwidth_big },
  { "atomic", bench_atomic },
  { "ping", bench_ping_pong },
  { "fault", bench_first_touch },
  { "create", bench_create_delete },
};

static void
run_suite (Bench *b, char **only)
{
  for (size_t i = 0; i < G_N_ELEMENTS (groups); i++)
    {
      if (only != NULL && !g_strv_contains ((const char *const *) only, groups[i].name))
        continue;
      pin_to (b, b->pinned ? b->cpu[0] : -1);
      groups[i].run (b);
    }
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) opts = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *pin = g_strdup ("both");
  g_autofree char *only_arg = NULL;
  g_auto (GStrv) only = NULL;
  int big_mib = 256, fault_mib = 64, ncpu = 0;
  Bench b = { .reps = 7 };
  struct statfs sfs;
  GOptionEntry entries[] = {
    { "reps", 'r', 0, G_OPTION_ARG_INT, &b.reps, "Repetitions per figure (default 7)", "N" },
    { "pin", 'p', 0, G_OPTION_ARG_STRING, &pin, "pinned, unpinned or both (default)", "WHICH" },
    { "big-mib", 'b', 0, G_OPTION_ARG_INT, &big_mib, "Size of the large mapping (default 256)", "MIB" },
    { "fault-mib", 'f', 0, G_OPTION_ARG_INT, &fault_mib, "Size of each first-touch object (default 64)", "MIB" },
    { "only", 'o', 0, G_OPTION_ARG_STRING, &only_arg,
      "Comma-separated groups: io,text,bw,bigbw,atomic,ping,fault,create (default all)", "LIST" },
    G_OPTION_ENTRY_NULL
  };

  opts = g_option_context_new ("DIR LABEL");
  g_option_context_set_summary (opts,
                                "Measures shared-object costs on DIR: a /dev/shm directory (plain files)\n"
                                "or a shmfs mount (typed objects, DIR/.raw/NAME).  Prints\n"
                                "LABEL PIN OP UNIT MEDIAN MIN MAX, tab-separated.");
  g_option_context_add_main_entries (opts, entries, NULL);
  if (!g_option_context_parse (opts, &argc, &argv, &error))
    {
      fprintf (stderr, "shmfs-bench: %s\n", error->message);
      return 2;
    }
  if (argc != 3 || b.reps < 1 || b.reps > MAX_REPS || big_mib < 1 || fault_mib < 1 ||
      (g_strcmp0 (pin, "both") != 0 && g_strcmp0 (pin, "pinned") != 0 && g_strcmp0 (pin, "unpinned") != 0))
    {
      g_autofree char *help = g_option_context_get_help (opts, TRUE, NULL);

      fputs (help, stderr);
      return 2;
    }
  if (only_arg != NULL)
    only = g_strsplit (only_arg, ",", -1);
  for (char **g = only; g != NULL && *g != NULL; g++)
    {
      size_t i = 0;

      while (i < G_N_ELEMENTS (groups) && g_strcmp0 (groups[i].name, *g) != 0)
        i++;
      if (i == G_N_ELEMENTS (groups))
        {
          fprintf (stderr, "shmfs-bench: --only: unknown group \"%s\"\n", *g);
          return 2;
        }
    }
  b.dir = argv[1];
  b.label = argv[2];
  b.big_bytes = (size_t) big_mib * MIB;
  b.fault_bytes = (size_t) fault_mib * MIB;
  b.page = (size_t) sysconf (_SC_PAGESIZE);

  if (statfs (b.dir, &sfs) < 0)
    die ("statfs %s", b.dir);
  b.shmfs = sfs.f_type == FUSE_SUPER_MAGIC;

  if (sched_getaffinity (0, sizeof b.all_cpus, &b.all_cpus) < 0)
    die ("sched_getaffinity");
  b.cpu[0] = b.cpu[1] = -1;
  for (int i = 0; i < CPU_SETSIZE && ncpu < 2; i++)
    if (CPU_ISSET (i, &b.all_cpus))
      b.cpu[ncpu++] = i;
  if (ncpu < 2)
    b.cpu[1] = b.cpu[0];

  printf ("# shmfs-bench %s: %s (%s), %d reps, page %zu, cpus %d/%d%s\n", b.label, b.dir,
          b.shmfs ? "shmfs" : "plain files", b.reps, b.page, b.cpu[0], b.cpu[1],
          ncpu < 2 ? " (one CPU: pinned ping-pong shares it)" : "");
  printf ("# label\tpin\top\tunit\tmedian\tmin\tmax\n");

  for (int pass = 0; pass < 2; pass++)
    {
      b.pinned = pass == 0;
      b.pin_name = b.pinned ? "pinned" : "unpinned";
      if (g_strcmp0 (pin, "both") != 0 && g_strcmp0 (pin, b.pin_name) != 0)
        continue;
      run_suite (&b, only);
    }
  return 0;
}
