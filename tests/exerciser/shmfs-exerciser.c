/* shmfs-exerciser.c — random operations on one shmfs array from several
 * processes, every result checked against an exact model; in the spirit of
 * xfstests' fsx, written for shmfs.
 *
 * Usage: shmfs-exerciser [options] MNT/.raw/PATH
 *   -s SEED    seed (default: from the clock, printed); a run is a function
 *              of (seed, options), so a failure replays with the same line
 *   -n OPS     operations per worker (default 10000)
 *   -p NPROC   worker processes (default 1)
 *   -t MNT/PATH  the text view of the same object: enables text reads, and
 *              text writes when NPROC is 1
 *   -l LEN     ops of history printed on a failure (default 64)
 *   -X OP      inject a corruption: worker 0, at its op number OP (OPS: after
 *              its last op), writes one byte behind its model's back; the run
 *              must then fail with a miscompare
 *
 * The object must be a u32 array (user.shmfs.dtype <u4), e.g. u32[6000].
 * The parent fills it with bytes drawn from the seed, then forks the
 * workers.  Layout, for P workers:
 *
 *   [c0][ range of worker 0 ][c1][ range of worker 1 ] ... [cP]
 *
 * Each worker owns its range, so its model of those bytes is exact; the
 * counters c0..cP get atomic adds and subs from every worker, each of which
 * sums what it applied.  In the middle of each range, a contended zone of
 * up to 16 elements is changed by its owner through file I/O only (no
 * mapping stores) while the other workers aim atomics that change nothing
 * at it: they may land before or after the owner's pwrite on that very
 * element, never undo it.  A worker's ops, drawn from its own generator:
 *
 *   pread    pread of a subrange of its range (a third of the time of its
 *            zone), or anywhere ("wide"; only its own bytes are compared),
 *            at any byte offset and length
 *   pwrite   pwrite of random bytes into its range (or zone), likewise
 *   mread    the same through its MAP_SHARED mapping of the binary view
 *   mwrite   stores through that mapping, outside its zone
 *   tread    the whole text view (fresh open, or pread at 0 on a held fd),
 *            parsed strictly ("v v ... v\n") and compared
 *   twrite   (NPROC 1 only: a text write sets every element) a new value for
 *            every element in one of several text styles, in one or several
 *            write(2)s; the counters get their modelled value back
 *   atomic   SHMFS_IOC_ATOMIC load/add/sub/xchg/cas on an own element, on
 *            either view's fd; the old value and swapped are checked
 *   counter  atomic add/sub on a shared counter (checked too when NPROC 1)
 *   probe    load, add/sub of 0 or k<<32 (0 at u32's width), cas(v, v) (v
 *            as just loaded, or a guess) on an element of any zone or a
 *            counter (checked when modelled here)
 *   sync     fsync, fdatasync, msync(MS_SYNC), fsync of the text view
 *   reopen   reopen the binary view's fd, remap, drop the mapping's PTEs
 *            (MADV_DONTNEED), reopen the text view's fd
 *
 * At the end each worker checks its whole range by pread, mapping and text,
 * and the parent, after all are gone, checks the whole object (counters =
 * initial value + the sum of every worker's adds) by pread, a fresh mapping,
 * the atomic load and text.
 *
 * On the first miscompare a worker prints the seed, its number, the op, the
 * offset, expected and got from the first differing byte, its last -l ops
 * and the command that replays the run, and the run exits 1.  An op that
 * takes more than 20 s fails the run too: alarm(2) in the worker, and the
 * parent reports an op still running after 30 s (one in a FUSE request the
 * daemon read and never answered, which no signal ends) and kills it, or
 * leaves it behind if even SIGKILL cannot end it.  On success one line on
 * stdout counts the ops of each kind.
 *
 *   $ shmfs-exerciser -s 42 -n 30000 -p 4 -t /tmp/shm/a /tmp/shm/.raw/a
 *   shmfs-exerciser: OK: seed 42, 4 workers x 30000 ops on u32[6000] in 4.8 s: pread 23035
 *   pwrite 22956 mread 17125 mwrite 17438 tread 3589 twrite 0 atomic 13676 ... (one line)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "shmfs/ioctl.h"

#define HANG_SECONDS 20
#define ZONE_MAX 16               /* elements in a contended zone, at most */
#define ELEM 4                    /* sizeof (uint32_t) */
#define ARRAY_SIZE(a) (sizeof (a) / sizeof (a)[0])

enum kind {
  K_PREAD, K_PWRITE, K_MREAD, K_MWRITE, K_TREAD, K_TWRITE, K_ATOMIC,
  K_COUNTER, K_PROBE, K_SYNC, K_REOPEN, K_INJECT, K_FINAL, N_KINDS
};

static const char *const kind_names[N_KINDS] = {
  "pread", "pwrite", "mread", "mwrite", "tread", "twrite", "atomic",
  "counter", "probe", "sync", "reopen", "inject", "final",
};

/* Relative frequencies; twrite and tread are dropped when not possible. */
static const unsigned kind_weights[N_KINDS] = {
  [K_PREAD] = 20, [K_PWRITE] = 20, [K_MREAD] = 15, [K_MWRITE] = 15,
  [K_TREAD] = 3, [K_TWRITE] = 3, [K_ATOMIC] = 12, [K_COUNTER] = 8,
  [K_PROBE] = 8, [K_SYNC] = 2, [K_REOPEN] = 1,
};

static const char *const atomic_names[] = { "load", "add", "sub", "xchg", "cas" };
static const char *const sync_names[] = { "fsync", "fdatasync", "msync", "fsync-text" };
static const char *const reopen_names[] = { "reopen-raw", "remap", "dontneed", "reopen-text" };
static const char *const tread_names[] = { "open+read", "pread@0 on held fd" };
static const char *const twrite_names[] = { "line", "python-list", "chunked", "lines", "hex+tabs" };
static const char *const final_names[] = { "pread", "mapping", "text", "atomic-load" };

struct options {
  uint64_t seed;
  uint64_t nops;
  unsigned nproc;
  unsigned log_len;
  int64_t inject_at;              /* -1: none */
  const char *raw_path;
  const char *text_path;          /* NULL without -t */
};

/* One op as logged: written before the op runs, results filled after. */
struct log_entry {
  uint64_t opno;
  uint8_t kind;
  uint8_t how;                    /* variant: atomic op, sync kind, ... */
  uint8_t via_text;               /* atomic ops: on the text view's fd */
  uint8_t wide;                   /* reads: a range beyond the own one */
  uint32_t len;
  uint64_t off;                   /* byte offset, or element index */
  uint64_t a, b, c;               /* op-specific (see format_entry) */
  int64_t t0, t1;                 /* start and end, ns since the run began */
};

/* What a worker shares with the parent (anonymous MAP_SHARED). */
struct worker_share {
  volatile uint64_t opno;         /* op in progress */
  volatile int64_t started_ns;    /* when it began (CLOCK_MONOTONIC); 0 idle */
  uint64_t counts[N_KINDS];
  uint64_t unaligned;             /* byte ops not on whole elements */
  uint64_t atomics[ARRAY_SIZE (atomic_names)];
};

struct layout {
  size_t nelems, nbytes;
  unsigned ncounters;             /* nproc + 1 */
  size_t *counter_elem;           /* [ncounters] */
  size_t *range_lo, *range_hi;    /* [nproc], in bytes */
  size_t *zone_lo, *zone_hi;      /* [nproc], in bytes: contended zones */
};

struct worker {
  const struct options *opt;
  const struct layout *lay;
  int id;                         /* -1: the parent's final check */
  uint64_t rng;
  int raw_fd, text_fd;            /* text_fd -1 without -t */
  uint8_t *map;
  uint8_t *model;                 /* nbytes */
  size_t lo, hi;                  /* own bytes */
  size_t zlo, zhi;                /* own contended zone, inside [lo, hi) */
  bool counters_exact;            /* the model holds the counters too */
  uint64_t opno;
  struct worker_share *share;
  struct log_entry *log;          /* ring of opt->log_len */
  struct log_entry *last;         /* the entry of the op in progress */
  uint32_t *counter_sum;          /* [ncounters], in the shared area */
  uint8_t *image;                 /* shared: each worker leaves its range */
  uint8_t *buf;                   /* scratch, nbytes */
  char *text;                     /* scratch for the text view */
  size_t text_cap;
  int64_t poison;                 /* byte corrupted by -X, or -1 */
};

static const char *prog = "shmfs-exerciser";
static char *replay_line;         /* the command line, for failure reports */
static struct worker *current;    /* for the signal handlers */
static int64_t run_t0;            /* when the workers started */
static struct log_entry *all_logs; /* every worker's ring, shared */

/* -- random numbers: splitmix64, one stream per (seed, worker) ------------- */

static uint64_t
rnd (uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t
stream_seed (uint64_t seed, uint64_t stream)
{
  uint64_t s = seed ^ (stream * 0xd1342543de82ef95ULL);
  return rnd (&s);
}

/* Uniform in [0, n), n > 0. */
static uint64_t
below (uint64_t *s, uint64_t n)
{
  return (uint64_t) (((unsigned __int128) rnd (s) * n) >> 64);
}

static void
rnd_bytes (uint64_t *s, uint8_t *p, size_t n)
{
  while (n > 0)
    {
      uint64_t v = rnd (s);
      size_t k = n < 8 ? n : 8;
      memcpy (p, &v, k);
      p += k;
      n -= k;
    }
}

/* A u32 worth trying: edges as often as the rest. */
static uint32_t
rnd_value (uint64_t *s)
{
  switch (below (s, 8))
    {
    case 0: return 0;
    case 1: return UINT32_MAX;
    case 2: return (uint32_t) below (s, 10);
    case 3: return UINT32_C (1) << below (s, 32);
    default: return (uint32_t) rnd (s);
    }
}

/* -- small helpers ---------------------------------------------------------- */

static int64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *
xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  if (!p)
    {
      fprintf (stderr, "%s: out of memory\n", prog);
      exit (2);
    }
  return p;
}

static void *
shared_alloc (size_t n)
{
  void *p = mmap (NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    {
      fprintf (stderr, "%s: mmap of %zu shared bytes: %s\n", prog, n, strerror (errno));
      exit (2);
    }
  return p;
}

static uint32_t
get_u32 (const uint8_t *p)
{
  uint32_t v;
  memcpy (&v, p, sizeof v);
  return v;
}

static void
put_u32 (uint8_t *p, uint32_t v)
{
  memcpy (p, &v, sizeof v);
}

static bool
is_counter_elem (const struct layout *lay, size_t e)
{
  for (unsigned k = 0; k < lay->ncounters; k++)
    if (lay->counter_elem[k] == e)
      return true;
  return false;
}

/* -- the op log and failure reports ---------------------------------------- */

static void
format_hex (FILE *f, uint64_t bytes, uint32_t len)
{
  uint8_t b[8];
  memcpy (b, &bytes, sizeof b);
  for (uint32_t i = 0; i < len && i < 8; i++)
    fprintf (f, "%s%02x", i ? " " : "", b[i]);
  if (len > 8)
    fputs (" ...", f);
}

/* Whether op e read or changed byte b. */
static bool
touches (const struct log_entry *e, size_t b)
{
  switch (e->kind)
    {
    case K_PREAD: case K_MREAD: case K_PWRITE: case K_MWRITE: case K_INJECT:
      return b >= e->off && b < e->off + e->len;
    case K_ATOMIC: case K_COUNTER: case K_PROBE:
      return e->off == b / ELEM;
    case K_TREAD: case K_TWRITE:
      return true;
    default:
      return false;
    }
}

static void
format_entry (FILE *f, const struct log_entry *e, size_t mark)
{
  char t1[24] = "...";
  if (e->t1)
    snprintf (t1, sizeof t1, "%.6f", (double) e->t1 / 1e9);
  fprintf (f, " %c#%-7" PRIu64 " [%.6f-%s] %-7s ", mark != SIZE_MAX && touches (e, mark) ? '*' : ' ',
           e->opno, (double) e->t0 / 1e9, t1, kind_names[e->kind]);
  switch (e->kind)
    {
    case K_PREAD: case K_MREAD:
      fprintf (f, "off %" PRIu64 " len %u (elem %" PRIu64 "+%" PRIu64 ")%s",
               e->off, e->len, e->off / ELEM, e->off % ELEM, e->wide ? " wide" : "");
      break;
    case K_PWRITE: case K_MWRITE:
      fprintf (f, "off %" PRIu64 " len %u (elem %" PRIu64 "+%" PRIu64 ") data ",
               e->off, e->len, e->off / ELEM, e->off % ELEM);
      format_hex (f, e->a, e->len);
      break;
    case K_TREAD:
      fprintf (f, "%s", tread_names[e->how]);
      break;
    case K_TWRITE:
      fprintf (f, "%s, %" PRIu64 " write(s), %u bytes, elem 0.. = %" PRIu64 " %" PRIu64,
               twrite_names[e->how], e->off, e->len, e->a, e->b);
      break;
    case K_ATOMIC: case K_COUNTER: case K_PROBE:
      fprintf (f, "%s elem %" PRIu64 " operand %" PRIu64, atomic_names[e->how],
               e->off, e->a);
      if (e->how == SHMFS_ATOMIC_CAS)
        fprintf (f, " expected %" PRIu64, e->b);
      fprintf (f, " via %s fd -> old %" PRIu64, e->via_text ? "text" : "raw", e->c);
      if (e->how == SHMFS_ATOMIC_CAS)
        fprintf (f, e->c == e->b ? " (swapped)" : " (not swapped)");
      break;
    case K_SYNC:
      fprintf (f, "%s", sync_names[e->how]);
      break;
    case K_REOPEN:
      fprintf (f, "%s", reopen_names[e->how]);
      break;
    case K_INJECT:
      fprintf (f, "CORRUPTION by %s at byte %" PRIu64 " (elem %" PRIu64 "+%" PRIu64
               "): %02" PRIx64 " -> %02" PRIx64 ", model not told",
               e->how ? "mapping store" : "pwrite", e->off, e->off / ELEM,
               e->off % ELEM, e->a, e->b);
      break;
    case K_FINAL:
      fprintf (f, "check whole range by %s", final_names[e->how]);
      break;
    }
  fputc ('\n', f);
}

/* The last ops up to upto; with '*' those that touched byte mark. */
static void
print_log (FILE *f, const struct options *opt, const struct log_entry *log, uint64_t upto,
           size_t mark)
{
  uint64_t first = upto + 1 > opt->log_len ? upto + 1 - opt->log_len : 0;
  fprintf (f, "last %" PRIu64 " ops (oldest first; times in s since the start%s):\n",
           upto + 1 - first, mark != SIZE_MAX ? "; * = touched that byte" : "");
  for (uint64_t n = first; n <= upto; n++)
    {
      const struct log_entry *e = &log[n % opt->log_len];
      if (e->opno == n && (n > 0 || e->t0))
        format_entry (f, e, mark);
    }
}

/* What the other workers' recent ops did to byte b: the suspects of a race
 * (read while they run on; only their last -l ops are known). */
static void
print_others (FILE *f, const struct worker *w, size_t b)
{
  bool any = false;
  fprintf (f, "the other workers' last ops on byte %zu (element %zu):\n", b, b / ELEM);
  for (unsigned o = 0; o < w->opt->nproc; o++)
    for (unsigned i = 0; (int) o != w->id && i < w->opt->log_len; i++)
      {
        struct log_entry e = all_logs[(size_t) o * w->opt->log_len + i];
        if ((e.opno || e.t0) && e.kind != K_TREAD && touches (&e, b))
          {
            fprintf (f, "  worker %u", o);
            format_entry (f, &e, SIZE_MAX);
            any = true;
          }
      }
  if (!any)
    fprintf (f, "  (none)\n");
}

static const char *
who (const struct worker *w, char *buf, size_t size)
{
  if (w->id < 0)
    snprintf (buf, size, "final check (parent)");
  else
    snprintf (buf, size, "worker %d", w->id);
  return buf;
}

/* Ends the worker with a report: seed, worker, op, what went wrong, the op
 * log (ops that touched byte mark starred, and the other workers' ops on
 * it) and the replay line, written to stderr in one piece. */
static void __attribute__ ((noreturn, format (printf, 3, 4)))
fail_at (struct worker *w, size_t mark, const char *fmt, ...)
{
  char *text = NULL, name[48];
  size_t len = 0;
  FILE *f = open_memstream (&text, &len);
  va_list ap;

  fprintf (f, "%s: FAILED: seed %" PRIu64 ", %s, op %" PRIu64 ": ", prog,
           w->opt->seed, who (w, name, sizeof name), w->opno);
  va_start (ap, fmt);
  vfprintf (f, fmt, ap);
  va_end (ap);
  fputc ('\n', f);
  if (w->id >= 0)
    fprintf (f, "%s owns bytes [%zu, %zu) = elements %zu..%zu, contended zone %zu..%zu\n",
             name, w->lo, w->hi, w->lo / ELEM, w->hi / ELEM - 1, w->zlo / ELEM,
             w->zhi / ELEM - 1);
  if (w->log)
    print_log (f, w->opt, w->log, w->opno, mark);
  if (w->id >= 0 && mark != SIZE_MAX && w->opt->nproc > 1)
    print_others (f, w, mark);
  fprintf (f, "replay: %s\n", replay_line);
  fclose (f);
  if (write (STDERR_FILENO, text, len) < 0)
    { /* nothing left to tell */ }
  _exit (1);
}

#define fail(w, ...) fail_at (w, SIZE_MAX, __VA_ARGS__)

static void
fail_errno (struct worker *w, const char *what)
{
  fail (w, "%s: %s", what, strerror (errno));
}

/* Compares got (len bytes read at off) with the model where the model is
 * exact: the own range, and the counters when counters_exact. */
static void
check (struct worker *w, const char *what, size_t off, const uint8_t *got, size_t len)
{
  size_t first = SIZE_MAX, ndiff = 0, nchecked = 0;

  for (size_t i = 0; i < len; i++)
    {
      size_t b = off + i;
      bool exact = (b >= w->lo && b < w->hi)
                   || (w->counters_exact && is_counter_elem (w->lay, b / ELEM));
      if (!exact)
        continue;
      nchecked++;
      if (got[i] != w->model[b])
        {
          if (first == SIZE_MAX)
            first = b;
          ndiff++;
        }
    }
  if (first == SIZE_MAX)
    return;

  char *text = NULL;
  size_t tlen = 0;
  FILE *f = open_memstream (&text, &tlen);
  size_t e = first / ELEM, show = off + len - first < 16 ? off + len - first : 16;
  fprintf (f, "MISCOMPARE in %s of [%zu, %zu): first differing byte %zu (elem %zu"
           " byte %zu), %zu of %zu compared bytes differ\n", what, off, off + len,
           first, e, first % ELEM, ndiff, nchecked);
  fprintf (f, "  expected at %zu:", first);
  for (size_t i = 0; i < show; i++)
    fprintf (f, " %02x", w->model[first + i]);
  fprintf (f, "\n  got      at %zu:", first);
  for (size_t i = 0; i < show; i++)
    fprintf (f, " %02x", got[first - off + i]);
  if (e * ELEM >= off && e * ELEM + ELEM <= off + len)
    fprintf (f, "\n  element %zu: expected %" PRIu32 ", got %" PRIu32, e,
             get_u32 (w->model + e * ELEM), get_u32 (got + e * ELEM - off));
  fclose (f);
  fail_at (w, first, "%s", text);
}

/* -- the hang guard and fatal signals --------------------------------------- */

static void
on_fatal_signal (int sig)
{
  struct worker *w = current;
  /* The main code is blocked in a syscall or a page fault, never in stdio:
   * formatting here is safe enough for a test tool. */
  if (sig == SIGALRM)
    fail (w, "the op did not complete within %d s (hang)", HANG_SECONDS);
  fail (w, "signal %d (%s) during the op", sig, strsignal (sig));
}

static void
install_handlers (void)
{
  struct sigaction sa = { .sa_handler = on_fatal_signal };
  sigemptyset (&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction (SIGALRM, &sa, NULL);
  sigaction (SIGBUS, &sa, NULL);
  sigaction (SIGSEGV, &sa, NULL);
}

/* -- the worker's ops -------------------------------------------------------- */

static struct log_entry *
begin (struct worker *w, enum kind kind)
{
  struct log_entry *e = &w->log[w->opno % w->opt->log_len];
  int64_t t = now_ns () - run_t0;
  if (w->last)
    w->last->t1 = t;
  memset (e, 0, sizeof *e);
  e->opno = w->opno;
  e->kind = (uint8_t) kind;
  e->t0 = t;
  w->last = e;
  if (w->share)
    {
      w->share->counts[kind]++;
      w->share->opno = w->opno;
      w->share->started_ns = now_ns ();
    }
  alarm (HANG_SECONDS);
  return e;
}

/* A length: mostly small, sometimes up to max (> 0). */
static size_t
pick_len (struct worker *w, size_t max)
{
  size_t cap;
  switch (below (&w->rng, 20))
    {
    case 0 ... 9: cap = 8; break;
    case 10 ... 15: cap = 64; break;
    case 16 ... 18: cap = 4096; break;
    default: cap = max; break;
    }
  if (cap > max)
    cap = max;
  return 1 + below (&w->rng, cap);
}

/* A byte range inside [lo, hi): unaligned, or on whole elements. */
static void
pick_range (struct worker *w, size_t lo, size_t hi, size_t *off, size_t *len)
{
  size_t n = pick_len (w, hi - lo);
  if (below (&w->rng, 5) < 2)
    {
      size_t elems = (n + ELEM - 1) / ELEM, span = (hi - lo) / ELEM;
      if (elems > span)
        elems = span;
      *len = elems * ELEM;
      *off = lo + below (&w->rng, span - elems + 1) * ELEM;
    }
  else
    {
      *len = n;
      *off = lo + below (&w->rng, hi - lo - n + 1);
    }
}

static void
count_alignment (struct worker *w, size_t off, size_t len)
{
  if ((off % ELEM || len % ELEM) && w->share)
    w->share->unaligned++;
}

/* A range to change by file I/O: the own range, or a third of the time
 * the own contended zone, where other workers' no-op atomics race it. */
static void
pick_file_range (struct worker *w, size_t *off, size_t *len)
{
  if (below (&w->rng, 3) == 0)
    pick_range (w, w->zlo, w->zhi, off, len);
  else
    pick_range (w, w->lo, w->hi, off, len);
}

/* A range to store into through the mapping: the own range but the zone
 * (in cached mode the daemon's atomics are atomic with file I/O only). */
static void
pick_mapped_range (struct worker *w, size_t *off, size_t *len)
{
  size_t below_zone = w->zlo - w->lo, above_zone = w->hi - w->zhi;
  if (above_zone == 0 || (below_zone > 0 && below (&w->rng, below_zone + above_zone) < below_zone))
    pick_range (w, w->lo, w->zlo, off, len);
  else
    pick_range (w, w->zhi, w->hi, off, len);
}

/* Range for a read: mostly the own one, sometimes anywhere. */
static bool
pick_read_range (struct worker *w, size_t *off, size_t *len)
{
  bool wide = below (&w->rng, 4) == 0;
  if (wide)
    pick_range (w, 0, w->lay->nbytes, off, len);
  else
    pick_file_range (w, off, len);
  return wide;
}

static void
pread_full (struct worker *w, int fd, uint8_t *dst, size_t len, size_t off, const char *what)
{
  size_t done = 0;
  while (done < len)
    {
      ssize_t r = pread (fd, dst + done, len - done, (off_t) (off + done));
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          fail (w, "%s: pread(off %zu, len %zu): %s", what, off + done, len - done,
                strerror (errno));
        }
      if (r == 0)
        fail (w, "%s: pread(off %zu, len %zu): end of file at %zu of nbytes %zu",
              what, off, len, off + done, w->lay->nbytes);
      done += (size_t) r;
    }
}

static void
pwrite_full (struct worker *w, const uint8_t *src, size_t len, size_t off)
{
  ssize_t r;
  do
    r = pwrite (w->raw_fd, src, len, (off_t) off);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    fail (w, "pwrite(off %zu, len %zu): %s", off, len, strerror (errno));
  if ((size_t) r != len)
    fail (w, "pwrite(off %zu, len %zu) wrote %zd", off, len, r);
}

/* A write range covering the poisoned byte would hide the corruption -X
 * made: such a write becomes a read of the same range, which finds it. */
static bool
covers_poison (const struct worker *w, size_t off, size_t len)
{
  return w->poison >= 0 && (size_t) w->poison >= off && (size_t) w->poison < off + len;
}

static void
op_pread (struct worker *w, size_t off, size_t len, bool wide)
{
  struct log_entry *e = begin (w, K_PREAD);
  e->off = off, e->len = (uint32_t) len, e->wide = wide;
  count_alignment (w, off, len);
  pread_full (w, w->raw_fd, w->buf, len, off, "pread");
  check (w, "pread", off, w->buf, len);
}

static void
op_mread (struct worker *w, size_t off, size_t len, bool wide)
{
  struct log_entry *e = begin (w, K_MREAD);
  e->off = off, e->len = (uint32_t) len, e->wide = wide;
  count_alignment (w, off, len);
  memcpy (w->buf, w->map + off, len);
  check (w, "mapping read", off, w->buf, len);
}

static void
op_write (struct worker *w, bool mapped)
{
  size_t off, len;
  if (mapped)
    pick_mapped_range (w, &off, &len);
  else
    pick_file_range (w, &off, &len);
  if (covers_poison (w, off, len))
    {
      if (mapped)
        op_mread (w, off, len, false);
      else
        op_pread (w, off, len, false);
      return;
    }
  struct log_entry *e = begin (w, mapped ? K_MWRITE : K_PWRITE);
  rnd_bytes (&w->rng, w->buf, len);
  e->off = off, e->len = (uint32_t) len;
  memcpy (&e->a, w->buf, len < 8 ? len : 8);
  count_alignment (w, off, len);
  if (mapped)
    memcpy (w->map + off, w->buf, len);
  else
    pwrite_full (w, w->buf, len, off);
  memcpy (w->model + off, w->buf, len);
}

/* -- the text view ---------------------------------------------------------- */

/* Reads the whole text view into w->text; returns its length. */
static size_t
read_text (struct worker *w, bool held_fd)
{
  int fd = held_fd ? w->text_fd : open (w->opt->text_path, O_RDONLY);
  size_t len = 0;

  if (fd < 0)
    fail_errno (w, "open of the text view");
  for (;;)
    {
      if (len == w->text_cap)
        fail (w, "text view longer than %zu bytes, more than %zu elements can print",
              w->text_cap, w->lay->nelems);
      ssize_t r = held_fd ? pread (fd, w->text + len, w->text_cap - len, (off_t) len)
                          : read (fd, w->text + len, w->text_cap - len);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        fail_errno (w, "read of the text view");
      if (r == 0)
        break;
      len += (size_t) r;
    }
  if (!held_fd && close (fd) < 0)
    fail_errno (w, "close of the text view");
  return len;
}

/* Parses the text into w->buf as the binary view would hold it: exactly
 * nelems canonical decimals separated by single spaces, then "\n". */
static void
parse_text (struct worker *w, size_t len, const char *what)
{
  const char *t = w->text, *end = t + len, *p = t;

  for (size_t i = 0; i < w->lay->nelems; i++)
    {
      const char *start = p;
      uint64_t v = 0;
      while (p < end && *p >= '0' && *p <= '9' && p - start < 11)
        v = v * 10 + (uint64_t) (*p++ - '0');
      char want = i + 1 < w->lay->nelems ? ' ' : '\n';
      if (p == start || p - start > 10 || v > UINT32_MAX || (*start == '0' && p - start > 1)
          || p == end || *p != want)
        {
          size_t at = (size_t) (start - t), from = at > 40 ? at - 40 : 0;
          size_t to = at + 40 < len ? at + 40 : len;
          fail (w, "%s: malformed text view (%zu bytes) at element %zu, byte %zu:"
                " \"%.*s\" <here> \"%.*s\"", what, len, i, at, (int) (at - from),
                t + from, (int) (to - at), t + at);
        }
      p++;
      put_u32 (w->buf + i * ELEM, (uint32_t) v);
    }
  if (p != end)
    fail (w, "%s: text view has %zu bytes after its %zu elements", what,
          (size_t) (end - p), w->lay->nelems);
}

static void
op_tread (struct worker *w)
{
  struct log_entry *e = begin (w, K_TREAD);
  e->how = (uint8_t) below (&w->rng, 2);
  size_t len = read_text (w, e->how == 1);
  parse_text (w, len, "text read");
  check (w, "text read", 0, w->buf, w->lay->nbytes);
}

static void
append (struct worker *w, size_t *len, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (w->text + *len, w->text_cap - *len, fmt, ap);
  va_end (ap);
  if (n < 0 || (size_t) n >= w->text_cap - *len)
    fail (w, "text buffer too small");
  *len += (size_t) n;
}

static void
write_all_text (struct worker *w, int fd, const char *p, size_t n, size_t nwrites_done)
{
  ssize_t r;
  do
    r = write (fd, p, n);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    fail (w, "text write: write #%zu of %zu bytes: %s", nwrites_done + 1, n, strerror (errno));
  if ((size_t) r != n)
    fail (w, "text write: write #%zu of %zu bytes wrote %zd", nwrites_done + 1, n, r);
}

/* A new value for every element (the counters keep theirs) as text. */
static void
op_twrite (struct worker *w)
{
  const struct layout *lay = w->lay;
  uint8_t *next = w->buf;

  if (covers_poison (w, 0, lay->nbytes))
    return op_tread (w);
  struct log_entry *e = begin (w, K_TWRITE);
  unsigned style = (unsigned) below (&w->rng, ARRAY_SIZE (twrite_names));
  size_t len = 0;

  e->how = (uint8_t) style;
  memcpy (next, w->model, lay->nbytes);
  for (size_t i = 0; i < lay->nelems; i++)
    if (!is_counter_elem (lay, i))
      put_u32 (next + i * ELEM, rnd_value (&w->rng));
  if (style == 1)
    append (w, &len, "[");
  for (size_t i = 0; i < lay->nelems; i++)
    {
      uint32_t v = get_u32 (next + i * ELEM);
      bool last = i + 1 == lay->nelems;
      switch (style)
        {
        case 1: append (w, &len, last ? "%" PRIu32 "]\n" : "%" PRIu32 ", ", v); break;
        case 3: append (w, &len, "%" PRIu32 "\n", v); break;
        case 4: append (w, &len, (i & 1) ? "0x%" PRIx32 "%s" : "%" PRIu32 "%s", v,
                        last ? "\n" : "\t"); break;
        default: append (w, &len, last ? "%" PRIu32 "\n" : "%" PRIu32 " ", v); break;
        }
    }
  /* chunked: several write(2)s cut anywhere (inside numbers too); half of
   * the time without the final newline, so that close commits it. */
  if (style == 2 && below (&w->rng, 2))
    len--;
  e->len = (uint32_t) len;
  e->a = get_u32 (next), e->b = get_u32 (next + ELEM);

  int fd = open (w->opt->text_path, O_WRONLY | O_TRUNC);
  if (fd < 0)
    fail_errno (w, "text write: open");
  size_t done = 0, nwrites = 0;
  while (done < len)
    {
      size_t n = len - done;
      if (style == 2 && n > 1)
        n = 1 + below (&w->rng, n < 8192 ? n : 8192);
      e->off = nwrites + 1;           /* the write in progress, if it hangs */
      write_all_text (w, fd, w->text + done, n, nwrites);
      done += n;
      nwrites++;
    }
  e->off = nwrites;
  if (close (fd) < 0)
    fail (w, "text write (%s, %zu writes, %zu bytes): close: %s", twrite_names[style],
          nwrites, len, strerror (errno));
  memcpy (w->model, next, lay->nbytes);
}

/* -- atomics ------------------------------------------------------------------ */

static void
atomic_ioctl (struct worker *w, struct log_entry *e, struct shmfs_atomic *a)
{
  int fd = e->via_text ? w->text_fd : w->raw_fd;
  if (ioctl (fd, SHMFS_IOC_ATOMIC, a) < 0)
    fail (w, "ioctl SHMFS_IOC_ATOMIC %s elem %" PRIu64 " via %s fd: %s",
          atomic_names[a->op], a->index, e->via_text ? "text" : "raw", strerror (errno));
  e->c = a->result.u;
}

/* Applies the op's effect to the modelled value. */
static uint32_t
atomic_effect (const struct shmfs_atomic *a, uint32_t old, bool *swapped)
{
  *swapped = false;
  switch (a->op)
    {
    case SHMFS_ATOMIC_ADD: return old + (uint32_t) a->operand.u;
    case SHMFS_ATOMIC_SUB: return old - (uint32_t) a->operand.u;
    case SHMFS_ATOMIC_XCHG: return (uint32_t) a->operand.u;
    case SHMFS_ATOMIC_CAS:
      if (old != (uint32_t) a->expected.u)
        return old;
      *swapped = true;
      return (uint32_t) a->operand.u;
    default: return old;
    }
}

/* Checks the old value and swapped of an atomic on an exactly modelled
 * element and updates the model. */
static void
atomic_check (struct worker *w, const struct shmfs_atomic *a, const char *what)
{
  size_t off = a->index * ELEM;
  uint32_t old = get_u32 (w->model + off);
  bool swapped;
  uint32_t next = atomic_effect (a, old, &swapped);

  if (a->result.u != old)
    {
      uint8_t got[ELEM];
      if (a->result.u > UINT32_MAX)
        fail (w, "%s %s elem %" PRIu64 ": old value %" PRIu64 " is not a u32", what,
              atomic_names[a->op], a->index, a->result.u);
      put_u32 (got, (uint32_t) a->result.u);
      check (w, what, off, got, ELEM);
    }
  if (a->op == SHMFS_ATOMIC_CAS && (bool) a->swapped != swapped)
    fail (w, "%s cas elem %" PRIu64 ": swapped %u, expected %u (old %" PRIu32
          ", expected %" PRIu64 ")", what, a->index, a->swapped, swapped, old,
          a->expected.u);
  put_u32 (w->model + off, next);
}

static bool
pick_via_text (struct worker *w)
{
  return w->text_fd >= 0 && below (&w->rng, 3) == 0;
}

static void
op_atomic (struct worker *w)
{
  size_t lo = w->lo, hi = w->hi;
  if (below (&w->rng, 3) == 0)
    lo = w->zlo, hi = w->zhi;
  size_t elem = lo / ELEM + below (&w->rng, (hi - lo) / ELEM);
  struct log_entry *e = begin (w, K_ATOMIC);
  struct shmfs_atomic a = { .op = (uint32_t) below (&w->rng, 5), .index = elem };
  uint32_t cur = get_u32 (w->model + elem * ELEM);

  a.operand.u = a.op == SHMFS_ATOMIC_ADD || a.op == SHMFS_ATOMIC_SUB
                ? (below (&w->rng, 2) ? below (&w->rng, 100) : rnd (&w->rng))
                : rnd_value (&w->rng);
  if (a.op == SHMFS_ATOMIC_CAS)
    a.expected.u = below (&w->rng, 3) ? cur : (uint32_t) (cur + 1 + below (&w->rng, 1000));
  e->how = (uint8_t) a.op, e->off = elem, e->a = a.operand.u, e->b = a.expected.u;
  e->via_text = pick_via_text (w);
  if (w->share)
    w->share->atomics[a.op]++;
  atomic_ioctl (w, e, &a);
  atomic_check (w, &a, "atomic");
}

static void
op_counter (struct worker *w)
{
  unsigned k = (unsigned) below (&w->rng, w->lay->ncounters);
  struct log_entry *e = begin (w, K_COUNTER);
  struct shmfs_atomic a = {
    .op = below (&w->rng, 3) ? SHMFS_ATOMIC_ADD : SHMFS_ATOMIC_SUB,
    .index = w->lay->counter_elem[k],
  };

  a.operand.u = 1 + below (&w->rng, below (&w->rng, 4) ? 1000 : UINT32_MAX);
  e->how = (uint8_t) a.op, e->off = a.index, e->a = a.operand.u;
  e->via_text = pick_via_text (w);
  atomic_ioctl (w, e, &a);
  if (a.op == SHMFS_ATOMIC_ADD)
    w->counter_sum[k] += (uint32_t) a.operand.u;
  else
    w->counter_sum[k] -= (uint32_t) a.operand.u;
  if (w->counters_exact)
    atomic_check (w, &a, "counter");
}

/* An atomic that changes nothing -- load, add or sub of 0 or of a multiple
 * of 2^32 (which wraps to 0 at u32), cas with operand == expected -- on an
 * element of any worker's contended zone or a counter.  Racing the owner's
 * pwrite, text write or atomic on that very element, it must not undo it:
 * whichever comes first, the owner's value stands.  Checked in full when
 * the element is modelled here. */
static void
op_probe (struct worker *w)
{
  const struct layout *lay = w->lay;
  size_t nzone = 0, elem;

  for (unsigned i = 0; i < w->opt->nproc; i++)
    nzone += (lay->zone_hi[i] - lay->zone_lo[i]) / ELEM;
  size_t pick = below (&w->rng, nzone + lay->ncounters);
  if (pick >= nzone)
    elem = lay->counter_elem[pick - nzone];
  else
    for (unsigned i = 0;; i++)
      {
        size_t n = (lay->zone_hi[i] - lay->zone_lo[i]) / ELEM;
        if (pick < n)
          {
            elem = lay->zone_lo[i] / ELEM + pick;
            break;
          }
        pick -= n;
      }

  struct log_entry *e = begin (w, K_PROBE);
  struct shmfs_atomic a = { .index = elem };
  bool modelled = (elem * ELEM >= w->lo && elem * ELEM < w->hi)
                  || (w->counters_exact && is_counter_elem (lay, elem));

  e->via_text = pick_via_text (w);
  switch (below (&w->rng, 4))
    {
    case 0: a.op = SHMFS_ATOMIC_LOAD; break;
    case 1: a.op = SHMFS_ATOMIC_ADD; a.operand.u = below (&w->rng, 4) << 32; break;
    case 2: a.op = SHMFS_ATOMIC_SUB; a.operand.u = below (&w->rng, 4) << 32; break;
    default:
      /* cas (v, v): v is the modelled value, a random one (no swap), or,
       * for an element of another worker, what a load just read (so that
       * it swaps unless the owner changes it in between). */
      a.op = SHMFS_ATOMIC_CAS;
      if (modelled && below (&w->rng, 2))
        a.expected.u = get_u32 (w->model + elem * ELEM);
      else if (modelled || below (&w->rng, 4) == 0)
        a.expected.u = rnd_value (&w->rng);
      else
        {
          struct shmfs_atomic load = { .op = SHMFS_ATOMIC_LOAD, .index = elem };
          atomic_ioctl (w, e, &load);
          a.expected.u = load.result.u;
        }
      a.operand.u = a.expected.u;
      break;
    }
  e->how = (uint8_t) a.op, e->off = elem, e->a = a.operand.u, e->b = a.expected.u;
  atomic_ioctl (w, e, &a);
  if (modelled)
    atomic_check (w, &a, "probe");
}

/* -- sync and reopen ----------------------------------------------------------- */

static void
map_object (struct worker *w)
{
  void *p = mmap (NULL, w->lay->nbytes, PROT_READ | PROT_WRITE, MAP_SHARED, w->raw_fd, 0);
  if (p == MAP_FAILED)
    fail_errno (w, "mmap of the binary view");
  w->map = p;
}

static int
open_or_fail (struct worker *w, const char *path, int flags)
{
  int fd = open (path, flags);
  if (fd < 0)
    fail (w, "open %s: %s", path, strerror (errno));
  return fd;
}

static void
op_sync (struct worker *w)
{
  struct log_entry *e = begin (w, K_SYNC);
  unsigned how = (unsigned) below (&w->rng, w->text_fd >= 0 ? 4 : 3);
  int r;

  e->how = (uint8_t) how;
  switch (how)
    {
    case 0: r = fsync (w->raw_fd); break;
    case 1: r = fdatasync (w->raw_fd); break;
    case 2: r = msync (w->map, w->lay->nbytes, MS_SYNC); break;
    default: r = fsync (w->text_fd); break;
    }
  if (r < 0)
    fail_errno (w, sync_names[how]);
}

static void
op_reopen (struct worker *w)
{
  struct log_entry *e = begin (w, K_REOPEN);
  unsigned how = (unsigned) below (&w->rng, w->text_fd >= 0 ? 4 : 3);

  e->how = (uint8_t) how;
  switch (how)
    {
    case 0:
      if (close (w->raw_fd) < 0)
        fail_errno (w, "close of the binary view");
      w->raw_fd = open_or_fail (w, w->opt->raw_path, O_RDWR);
      break;
    case 1:
      if (munmap (w->map, w->lay->nbytes) < 0)
        fail_errno (w, "munmap");
      map_object (w);
      break;
    case 2:
      if (madvise (w->map, w->lay->nbytes, MADV_DONTNEED) < 0)
        fail_errno (w, "madvise(MADV_DONTNEED)");
      break;
    default:
      if (close (w->text_fd) < 0)
        fail_errno (w, "close of the text view");
      w->text_fd = open_or_fail (w, w->opt->text_path, O_RDWR);
      break;
    }
}

/* -X: one byte changed behind the model's back. */
static void
op_inject (struct worker *w)
{
  struct log_entry *e = begin (w, K_INJECT);
  size_t b, len;

  e->how = (uint8_t) below (&w->rng, 2);
  if (e->how)
    pick_mapped_range (w, &b, &len);
  else
    b = w->lo + below (&w->rng, w->hi - w->lo);
  uint8_t v = w->model[b] ^ (uint8_t) (1 + below (&w->rng, 255));
  e->off = b, e->len = 1, e->a = w->model[b], e->b = v;
  if (e->how)
    w->map[b] = v;
  else
    pwrite_full (w, &v, 1, b);
  w->poison = (int64_t) b;
}

static void
random_op (struct worker *w, const unsigned *weights, unsigned total)
{
  unsigned r = (unsigned) below (&w->rng, total);
  enum kind k = 0;
  size_t off, len;
  bool wide;

  while (r >= weights[k])
    r -= weights[k++];
  switch (k)
    {
    case K_PREAD:
      wide = pick_read_range (w, &off, &len);
      op_pread (w, off, len, wide);
      break;
    case K_MREAD:
      wide = pick_read_range (w, &off, &len);
      op_mread (w, off, len, wide);
      break;
    case K_PWRITE: op_write (w, false); break;
    case K_MWRITE: op_write (w, true); break;
    case K_TREAD: op_tread (w); break;
    case K_TWRITE: op_twrite (w); break;
    case K_ATOMIC: op_atomic (w); break;
    case K_COUNTER: op_counter (w); break;
    case K_PROBE: op_probe (w); break;
    case K_SYNC: op_sync (w); break;
    default: op_reopen (w); break;
    }
}

/* The whole own range (or, for the parent, the whole object) by every way. */
static void
final_checks (struct worker *w)
{
  size_t off = w->lo, len = w->hi - w->lo;
  struct log_entry *e;

  e = begin (w, K_FINAL);
  e->how = 0;
  pread_full (w, w->raw_fd, w->buf, len, off, "final pread");
  check (w, "final pread", off, w->buf, len);
  w->opno++;

  e = begin (w, K_FINAL);
  e->how = 1;
  memcpy (w->buf, w->map + off, len);
  check (w, "final mapping read", off, w->buf, len);
  w->opno++;

  if (w->opt->text_path)
    {
      e = begin (w, K_FINAL);
      e->how = 2;
      parse_text (w, read_text (w, false), "final text read");
      check (w, "final text read", 0, w->buf, w->lay->nbytes);
      w->opno++;
    }
}

static void
open_views (struct worker *w)
{
  w->raw_fd = open_or_fail (w, w->opt->raw_path, O_RDWR);
  w->text_fd = w->opt->text_path ? open_or_fail (w, w->opt->text_path, O_RDWR) : -1;
  map_object (w);
}

static void
init_worker (struct worker *w, const struct options *opt, const struct layout *lay,
             int id, const uint8_t *initial)
{
  memset (w, 0, sizeof *w);
  w->opt = opt;
  w->lay = lay;
  w->id = id;
  w->poison = -1;
  w->model = xmalloc (lay->nbytes);
  memcpy (w->model, initial, lay->nbytes);
  w->buf = xmalloc (lay->nbytes);
  w->text_cap = lay->nelems * 16 + 4096;
  w->text = xmalloc (w->text_cap);
}

static void
free_worker (struct worker *w)
{
  if (w->map)
    munmap (w->map, w->lay->nbytes);
  if (w->raw_fd > 0)
    close (w->raw_fd);
  if (w->text_fd > 0)
    close (w->text_fd);
  free (w->model);
  free (w->buf);
  free (w->text);
}

static void __attribute__ ((noreturn))
run_worker (struct worker *w)
{
  const struct options *opt = w->opt;
  unsigned weights[N_KINDS], total = 0;

  current = w;
  install_handlers ();
  w->rng = stream_seed (opt->seed, (uint64_t) w->id + 1);
  w->counters_exact = opt->nproc == 1;
  open_views (w);
  for (int k = 0; k < N_KINDS; k++)
    {
      weights[k] = kind_weights[k];
      if ((k == K_TREAD && !opt->text_path)
          || (k == K_TWRITE && (!opt->text_path || opt->nproc != 1)))
        weights[k] = 0;
      total += weights[k];
    }

  for (w->opno = 0; w->opno < opt->nops; w->opno++)
    {
      if (w->id == 0 && (uint64_t) opt->inject_at == w->opno)
        op_inject (w);
      else
        random_op (w, weights, total);
    }
  if (w->id == 0 && (uint64_t) opt->inject_at == opt->nops)
    {
      op_inject (w);
      w->opno++;
    }
  final_checks (w);
  alarm (0);
  w->last->t1 = now_ns () - run_t0;
  memcpy (w->image + w->lo, w->model + w->lo, w->hi - w->lo);
  w->share->started_ns = 0;
  _exit (0);
}

/* -- the parent ------------------------------------------------------------ */

static void __attribute__ ((noreturn))
usage (int status)
{
  fprintf (status ? stderr : stdout,
           "usage: %s [-s SEED] [-n OPS] [-p NPROC] [-t MNT/PATH] [-l LOGLEN] [-X OP]"
           " MNT/.raw/PATH\n"
           "  random ops on a u32 array of shmfs by NPROC processes, checked against\n"
           "  a model; see the head of shmfs-exerciser.c\n", prog);
  exit (status);
}

static uint64_t
parse_number (const char *s, char opt, uint64_t min, uint64_t max)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull (s, &end, 0);
  if (errno || end == s || *end || *s == '-' || v < min || v > max)
    {
      fprintf (stderr, "%s: -%c: bad number '%s' (%" PRIu64 "..%" PRIu64 ")\n", prog,
               opt, s, min, max);
      exit (2);
    }
  return v;
}

static void
build_layout (struct layout *lay, size_t nbytes, unsigned nproc)
{
  lay->nbytes = nbytes;
  lay->nelems = nbytes / ELEM;
  lay->ncounters = nproc + 1;
  lay->counter_elem = xmalloc (lay->ncounters * sizeof (size_t));
  lay->range_lo = xmalloc (nproc * sizeof (size_t));
  lay->range_hi = xmalloc (nproc * sizeof (size_t));
  lay->zone_lo = xmalloc (nproc * sizeof (size_t));
  lay->zone_hi = xmalloc (nproc * sizeof (size_t));
  size_t per = (lay->nelems - lay->ncounters) / nproc, e = 0;
  for (unsigned w = 0; w < nproc; w++)
    {
      lay->counter_elem[w] = e++;
      size_t n = w + 1 == nproc ? lay->nelems - 1 - e : per;
      size_t z = n / 4 < 1 ? 1 : n / 4 > ZONE_MAX ? ZONE_MAX : n / 4;
      lay->range_lo[w] = e * ELEM;
      lay->zone_lo[w] = (e + (n - z) / 2) * ELEM;
      lay->zone_hi[w] = lay->zone_lo[w] + z * ELEM;
      e += n;
      lay->range_hi[w] = e * ELEM;
    }
  lay->counter_elem[nproc] = e;
}

static void
free_layout (struct layout *lay)
{
  free (lay->counter_elem);
  free (lay->range_lo);
  free (lay->range_hi);
  free (lay->zone_lo);
  free (lay->zone_hi);
}

static char *
join_args (int argc, char **argv)
{
  size_t n = 1;
  for (int i = 0; i < argc; i++)
    n += strlen (argv[i]) + 3;
  char *s = xmalloc (n), *p = s;
  for (int i = 0; i < argc; i++)
    {
      bool plain = argv[i][0] && strpbrk (argv[i], " \t'\"$\\") == NULL;
      p += sprintf (p, plain ? "%s%s" : "%s'%s'", i ? " " : "", argv[i]);
    }
  return s;
}

/* The object: a u32 array; returns nbytes. */
static size_t
check_object (const struct options *opt, int fd)
{
  char dtype[32] = "";
  ssize_t n = fgetxattr (fd, "user.shmfs.dtype", dtype, sizeof dtype - 1);
  struct stat st;

  if (n < 0)
    n = getxattr (opt->text_path ? opt->text_path : opt->raw_path, "user.shmfs.dtype",
                  dtype, sizeof dtype - 1);
  if (n < 0)
    {
      fprintf (stderr, "%s: %s: no user.shmfs.dtype (%s): not a typed shmfs object\n",
               prog, opt->raw_path, strerror (errno));
      exit (2);
    }
  dtype[n] = '\0';
  if (strcmp (dtype, "<u4") != 0)
    {
      fprintf (stderr, "%s: %s: dtype %s, but the exerciser needs a u32 array (<u4)\n",
               prog, opt->raw_path, dtype);
      exit (2);
    }
  if (fstat (fd, &st) < 0)
    {
      fprintf (stderr, "%s: stat %s: %s\n", prog, opt->raw_path, strerror (errno));
      exit (2);
    }
  return (size_t) st.st_size;
}

static void
print_summary (const struct options *opt, const struct layout *lay,
               struct worker_share *shares, double secs)
{
  uint64_t total[N_KINDS] = { 0 }, unaligned = 0, atomics[ARRAY_SIZE (atomic_names)] = { 0 };

  for (unsigned w = 0; w < opt->nproc; w++)
    {
      for (int k = 0; k < N_KINDS; k++)
        total[k] += shares[w].counts[k];
      for (size_t a = 0; a < ARRAY_SIZE (atomics); a++)
        atomics[a] += shares[w].atomics[a];
      unaligned += shares[w].unaligned;
    }
  printf ("%s: OK: seed %" PRIu64 ", %u worker%s x %" PRIu64 " ops on u32[%zu] in %.1f s:",
          prog, opt->seed, opt->nproc, opt->nproc == 1 ? "" : "s", opt->nops,
          lay->nelems, secs);
  for (int k = 0; k < K_FINAL; k++)
    if (k != K_INJECT || total[k])
      printf (" %s %" PRIu64, kind_names[k], total[k]);
  printf ("; unaligned %" PRIu64 "; atomic", unaligned);
  for (size_t a = 0; a < ARRAY_SIZE (atomics); a++)
    printf (" %s %" PRIu64, atomic_names[a], atomics[a]);
  printf ("\n");
  fflush (stdout);
}

/* Kills and reaps every worker still running.  One in a FUSE request the
 * daemon has read but not answered cannot die, not even of SIGKILL, until
 * the daemon answers or the connection is aborted: after 5 s it is named
 * and left behind, so that the run still ends. */
static void
kill_all (pid_t *pids, unsigned nproc)
{
  int64_t deadline = now_ns () + (int64_t) 5 * 1000000000;

  for (unsigned w = 0; w < nproc; w++)
    if (pids[w] > 0)
      kill (pids[w], SIGKILL);
  for (unsigned w = 0; w < nproc; w++)
    while (pids[w] > 0)
      {
        pid_t r = waitpid (pids[w], NULL, WNOHANG);
        if (r == pids[w] || (r < 0 && errno != EINTR))
          pids[w] = 0;
        else if (now_ns () > deadline)
          {
            fprintf (stderr, "%s: worker %u (pid %d) is stuck in the kernel even after"
                     " SIGKILL (a request the daemon does not answer); left behind\n",
                     prog, w, (int) pids[w]);
            pids[w] = 0;
          }
        else
          nanosleep (&(struct timespec) { .tv_nsec = 20 * 1000 * 1000 }, NULL);
      }
}

/* Waits for the workers; returns false (after a report) when one failed or
 * hung. */
static bool
wait_workers (const struct options *opt, pid_t *pids, struct worker_share *shares,
              struct log_entry *logs)
{
  unsigned live = opt->nproc;

  while (live > 0)
    {
      int status;
      pid_t pid = waitpid (-1, &status, WNOHANG);
      if (pid < 0 && errno != EINTR)
        {
          fprintf (stderr, "%s: waitpid: %s\n", prog, strerror (errno));
          kill_all (pids, opt->nproc);
          return false;
        }
      if (pid > 0)
        {
          unsigned w = 0;
          while (w < opt->nproc && pids[w] != pid)
            w++;
          if (w == opt->nproc)
            continue;
          pids[w] = 0;
          live--;
          if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
            continue;
          kill_all (pids, opt->nproc);
          if (WIFSIGNALED (status))
            {
              fprintf (stderr, "%s: FAILED: seed %" PRIu64 ", worker %u killed by signal %d"
                       " (%s) at op %" PRIu64 "\n", prog, opt->seed, w, WTERMSIG (status),
                       strsignal (WTERMSIG (status)), shares[w].opno);
              print_log (stderr, opt, logs + (size_t) w * opt->log_len, shares[w].opno, SIZE_MAX);
              fprintf (stderr, "replay: %s\n", replay_line);
            }
          else
            fprintf (stderr, "%s: worker %u failed (exit %d); the others were stopped\n",
                     prog, w, WEXITSTATUS (status));
          return false;
        }
      /* The backstop of each worker's alarm: an op stuck in a wait that
       * signals cannot end. */
      for (unsigned w = 0; w < opt->nproc; w++)
        {
          int64_t t0 = shares[w].started_ns;
          if (pids[w] > 0 && t0 && now_ns () - t0 > (int64_t) (HANG_SECONDS + 10) * 1000000000)
            {
              uint64_t opno = shares[w].opno;
              fprintf (stderr, "%s: FAILED: seed %" PRIu64 ", worker %u, op %" PRIu64
                       ": the op did not complete within %d s (hang; its alarm could"
                       " not end it)\n", prog, opt->seed, w, opno, HANG_SECONDS + 10);
              print_log (stderr, opt, logs + (size_t) w * opt->log_len, opno, SIZE_MAX);
              fprintf (stderr, "replay: %s\n", replay_line);
              kill_all (pids, opt->nproc);
              return false;
            }
        }
      if (pid == 0)
        nanosleep (&(struct timespec) { .tv_nsec = 20 * 1000 * 1000 }, NULL);
    }
  return true;
}

/* After the workers: the whole object, counters included, by every way. */
static void
final_object_check (struct worker *p, const uint8_t *image)
{
  const struct layout *lay = p->lay;

  memcpy (p->model, image, lay->nbytes);
  current = p;
  install_handlers ();
  p->lo = 0, p->hi = lay->nbytes;
  p->counters_exact = true;
  open_views (p);
  p->opno = 0;
  final_checks (p);
  for (unsigned k = 0; k < lay->ncounters; k++)
    {
      struct log_entry *e = begin (p, K_FINAL);
      struct shmfs_atomic a = { .op = SHMFS_ATOMIC_LOAD, .index = lay->counter_elem[k] };
      e->how = 3, e->off = a.index;
      atomic_ioctl (p, e, &a);
      atomic_check (p, &a, "final atomic load");
      p->opno++;
    }
  alarm (0);
}

int
main (int argc, char **argv)
{
  struct options opt = { .nops = 10000, .nproc = 1, .log_len = 64, .inject_at = -1 };
  bool seeded = false;
  int c;

  while ((c = getopt (argc, argv, "s:n:p:t:l:X:h")) != -1)
    switch (c)
      {
      case 's': opt.seed = parse_number (optarg, 's', 0, UINT64_MAX); seeded = true; break;
      case 'n': opt.nops = parse_number (optarg, 'n', 0, UINT64_MAX / 2); break;
      case 'p': opt.nproc = (unsigned) parse_number (optarg, 'p', 1, 256); break;
      case 't': opt.text_path = optarg; break;
      case 'l': opt.log_len = (unsigned) parse_number (optarg, 'l', 1, 100000); break;
      case 'X': opt.inject_at = (int64_t) parse_number (optarg, 'X', 0, UINT64_MAX / 2); break;
      case 'h': usage (0);
      default: usage (2);
      }
  if (optind + 1 != argc)
    usage (2);
  opt.raw_path = argv[optind];
  if (opt.inject_at > (int64_t) opt.nops)
    {
      fprintf (stderr, "%s: -X %" PRId64 " is past the last op (-n %" PRIu64 ")\n", prog,
               opt.inject_at, opt.nops);
      return 2;
    }
  if (!seeded)
    opt.seed = (uint64_t) time (NULL) * 1000003u ^ (uint64_t) getpid ();

  /* The replay line always names the seed. */
  {
    char **args = xmalloc ((size_t) (argc + 3) * sizeof *args), seedbuf[32];
    int n = 0;
    args[n++] = argv[0];
    if (!seeded)
      {
        snprintf (seedbuf, sizeof seedbuf, "%" PRIu64, opt.seed);
        args[n++] = (char *) "-s";
        args[n++] = seedbuf;
      }
    for (int i = 1; i < argc; i++)
      args[n++] = argv[i];
    replay_line = join_args (n, args);
    free (args);
  }

  int fd = open (opt.raw_path, O_RDWR);
  if (fd < 0)
    {
      fprintf (stderr, "%s: open %s: %s\n", prog, opt.raw_path, strerror (errno));
      return 2;
    }
  size_t nbytes = check_object (&opt, fd);
  struct layout lay;
  int status = 2;
  if (nbytes / ELEM < 4 * (size_t) opt.nproc + 1)
    {
      fprintf (stderr, "%s: u32[%zu] is too small for %u workers of 3 elements and %u"
               " counters (at least u32[%u])\n", prog, nbytes / ELEM, opt.nproc,
               opt.nproc + 1, 4 * opt.nproc + 1);
      goto out_close;
    }
  build_layout (&lay, nbytes, opt.nproc);

  /* The initial bytes, drawn from the seed, written in one pwrite. */
  uint8_t *initial = xmalloc (nbytes);
  uint64_t init_rng = stream_seed (opt.seed, 0);
  rnd_bytes (&init_rng, initial, nbytes);
  if (pwrite (fd, initial, nbytes, 0) != (ssize_t) nbytes)
    {
      fprintf (stderr, "%s: initial pwrite of %zu bytes: %s\n", prog, nbytes,
               strerror (errno));
      goto out_initial;
    }
  close (fd);
  fd = -1;

  struct worker_share *shares = shared_alloc (opt.nproc * sizeof *shares);
  struct log_entry *logs = shared_alloc ((size_t) (opt.nproc + 1) * opt.log_len * sizeof *logs);
  uint32_t *sums = shared_alloc ((size_t) opt.nproc * lay.ncounters * sizeof *sums);
  uint8_t *image = shared_alloc (nbytes);
  pid_t *pids = xmalloc (opt.nproc * sizeof *pids);
  int64_t t0 = now_ns ();

  run_t0 = t0;
  all_logs = logs;
  fflush (stdout);
  fflush (stderr);
  for (unsigned w = 0; w < opt.nproc; w++)
    {
      pids[w] = fork ();
      if (pids[w] < 0)
        {
          fprintf (stderr, "%s: fork: %s\n", prog, strerror (errno));
          kill_all (pids, w);
          goto out_pids;
        }
      if (pids[w] == 0)
        {
          struct worker wk;
          init_worker (&wk, &opt, &lay, (int) w, initial);
          wk.lo = lay.range_lo[w];
          wk.hi = lay.range_hi[w];
          wk.zlo = lay.zone_lo[w];
          wk.zhi = lay.zone_hi[w];
          wk.share = &shares[w];
          wk.log = logs + (size_t) w * opt.log_len;
          wk.counter_sum = sums + (size_t) w * lay.ncounters;
          wk.image = image;
          run_worker (&wk);
        }
    }
  status = 1;
  if (!wait_workers (&opt, pids, shares, logs))
    goto out_pids;
  double secs = (double) (now_ns () - t0) / 1e9;

  /* The workers left their ranges in image; the counters hold their
   * initial value plus every worker's sum. */
  for (unsigned k = 0; k < lay.ncounters; k++)
    {
      size_t off = lay.counter_elem[k] * ELEM;
      uint32_t v = get_u32 (initial + off);
      for (unsigned w = 0; w < opt.nproc; w++)
        v += sums[(size_t) w * lay.ncounters + k];
      put_u32 (image + off, v);
    }
  struct worker parent;
  init_worker (&parent, &opt, &lay, -1, image);
  parent.log = logs + (size_t) opt.nproc * opt.log_len;
  final_object_check (&parent, image);
  print_summary (&opt, &lay, shares, secs);
  free_worker (&parent);
  status = 0;

out_pids:
  free (pids);
out_initial:
  free (initial);
  free_layout (&lay);
out_close:
  if (fd >= 0)
    close (fd);
  free (replay_line);
  return status;
}
