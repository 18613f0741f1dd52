/* shmfs-latency: one operation at a time, each one timed: median, p99, ops/s.
 *
 * shmfs-bench reports the mean of a loop, which is right for memory speed;
 * a remote mount's operations are Redis round trips whose spread matters
 * too, so this times every operation and reports its distribution.  The
 * same timer measures the Redis commands themselves (OP redis), so a
 * mount's figures and its store's can be set side by side.
 * tests/bench/remote-bench.py runs it; by hand:
 *
 *   $ shmfs-latency -n 20000 pread8 MNT/.raw/x
 *   pread8  20000   31234   58211   30871.2
 *   $ printf '474554 6b\n' > get.seq          # GET k, arguments in hex
 *   $ shmfs-latency -n 20000 redis 127.0.0.1:6379 get.seq
 *   redis   20000   24015   40122   40988.5
 *
 * Output, tab-separated: OP N MEDIAN_NS P99_NS OPS_PER_S (N over the time
 * of the whole timed loop, timing included).  --mark HOST:PORT sends
 * `ECHO shmfs-latency-begin` and `ECHO shmfs-latency-end` to that Redis
 * server around the timed operations, so that a `redis-cli MONITOR` can
 * tell which commands they caused.  Operations:
 *
 *   cat          open(O_RDONLY) + read to end of file + close, PATH
 *   pread-text   pread(64 bytes at 0) on a descriptor opened once, PATH
 *   echo         open(O_WRONLY|O_CREAT|O_TRUNC) + write "I\n" + close, as
 *                a shell's `echo I > PATH`
 *   pwrite-text  pwrite("I\n" at 0) on a descriptor opened once
 *   pread8       pread(8 bytes at 0), a descriptor opened once (.raw/PATH)
 *   pwrite8      pwrite(8 bytes at 0), a descriptor opened once
 *   atomic-add   ioctl(SHMFS_IOC_ATOMIC, add 1 to element 0), opened once
 *   redis        HOST:PORT SEQFILE: the commands of SEQFILE (one a line,
 *                arguments hex-encoded, space-separated) in turn, each
 *                waiting for its reply; one operation is the whole file
 *
 * It asserts nothing about times; a failed operation ends it (status 1).
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <hiredis.h>

#include <shmfs/ioctl.h>

typedef struct Op Op;

struct Op
{
  const char *name;
  void      (*setup) (Op *op, char **args);
  void      (*run) (Op *op, uint64_t i);
  int         nargs;
  /* state */
  const char *path;
  int         fd;
  redisContext *redis;
  GPtrArray  *commands;   /* of Command */
};

typedef struct
{
  int     argc;
  char  **argv;
  size_t *lens;
} Command;

static void die (const char *what, ...) G_GNUC_PRINTF (1, 2) G_GNUC_NORETURN;

static void
die (const char *what, ...)
{
  va_list ap;
  int err = errno;

  fflush (stdout);
  fputs ("shmfs-latency: ", stderr);
  va_start (ap, what);
  vfprintf (stderr, what, ap);
  va_end (ap);
  fprintf (stderr, ": %s\n", g_strerror (err));
  exit (1);
}

static redisContext *
redis_connect (const char *host_port)
{
  g_autofree char *host = g_strdup (host_port);
  char *colon = strrchr (host, ':');
  redisContext *c;

  if (colon == NULL)
    {
      errno = EINVAL;
      die ("%s: expected HOST:PORT", host_port);
    }
  *colon = '\0';
  c = redisConnect (host, atoi (colon + 1));
  if (c == NULL || c->err)
    {
      errno = ECONNREFUSED;
      die ("connect to %s: %s", host_port, c ? c->errstr : "no memory");
    }
  return c;
}

static void
redis_mark (redisContext *c, const char *what)
{
  redisReply *r;

  if (c == NULL)
    return;
  r = redisCommand (c, "ECHO shmfs-latency-%s", what);
  if (r == NULL)
    {
      errno = EIO;
      die ("--mark: %s", c->errstr);
    }
  freeReplyObject (r);
}

static uint64_t
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* ---- file operations -------------------------------------------------- */

static void
setup_path (Op *op, char **args)
{
  op->path = args[0];
}

static void
setup_open (Op *op, char **args)
{
  op->path = args[0];
  op->fd = open (op->path, (g_str_has_prefix (op->name, "pread") ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (op->fd < 0)
    die ("open %s", op->path);
}

static void
run_cat (Op *op, G_GNUC_UNUSED uint64_t i)
{
  char buf[4096];
  int fd = open (op->path, O_RDONLY | O_CLOEXEC);
  ssize_t k;

  if (fd < 0)
    die ("open %s", op->path);
  while ((k = read (fd, buf, sizeof buf)) > 0)
    ;
  if (k < 0)
    die ("read %s", op->path);
  close (fd);
}

static void
run_pread_text (Op *op, G_GNUC_UNUSED uint64_t i)
{
  char buf[64];

  if (pread (op->fd, buf, sizeof buf, 0) <= 0)
    die ("pread %s", op->path);
}

static void
run_echo (Op *op, uint64_t i)
{
  char text[32];
  int len = snprintf (text, sizeof text, "%" PRIu64 "\n", i);
  int fd = open (op->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

  if (fd < 0)
    die ("open %s", op->path);
  if (write (fd, text, (size_t) len) != len)
    die ("write %s", op->path);
  if (close (fd) < 0)
    die ("close %s", op->path);
}

static void
run_pwrite_text (Op *op, uint64_t i)
{
  char text[32];
  int len = snprintf (text, sizeof text, "%" PRIu64 "\n", i);

  if (pwrite (op->fd, text, (size_t) len, 0) != len)
    die ("pwrite %s", op->path);
}

static void
run_pread8 (Op *op, G_GNUC_UNUSED uint64_t i)
{
  uint64_t x;

  if (pread (op->fd, &x, sizeof x, 0) != sizeof x)
    die ("pread 8 bytes of %s", op->path);
}

static void
run_pwrite8 (Op *op, uint64_t i)
{
  if (pwrite (op->fd, &i, sizeof i, 0) != sizeof i)
    die ("pwrite 8 bytes of %s", op->path);
}

static void
run_atomic_add (Op *op, G_GNUC_UNUSED uint64_t i)
{
  struct shmfs_atomic a = { .op = SHMFS_ATOMIC_ADD, .operand.i = 1 };

  if (ioctl (op->fd, SHMFS_IOC_ATOMIC, &a) < 0)
    die ("ioctl(SHMFS_IOC_ATOMIC) on %s", op->path);
}

/* ---- Redis commands --------------------------------------------------- */

static void
command_free (gpointer p)
{
  Command *c = p;

  for (int k = 0; k < c->argc; k++)
    g_free (c->argv[k]);
  g_free (c->argv);
  g_free (c->lens);
  g_free (c);
}

static Command *
command_parse (const char *line, const char *file, int lineno)
{
  g_auto (GStrv) words = g_strsplit_set (line, " \t", -1);
  Command *c = g_new0 (Command, 1);

  c->argv = g_new0 (char *, g_strv_length (words) + 1);
  c->lens = g_new0 (size_t, g_strv_length (words) + 1);
  for (char **w = words; *w != NULL; w++)
    {
      size_t n = strlen (*w);
      char *arg;

      if (n == 0)
        continue;
      if (n % 2 != 0)
        {
          errno = EINVAL;
          die ("%s:%d: odd-length hex argument", file, lineno);
        }
      arg = g_malloc (n / 2 + 1);
      for (size_t k = 0; k < n / 2; k++)
        {
          int hi = g_ascii_xdigit_value ((*w)[2 * k]), lo = g_ascii_xdigit_value ((*w)[2 * k + 1]);

          if (hi < 0 || lo < 0)
            {
              errno = EINVAL;
              die ("%s:%d: not hex: %s", file, lineno, *w);
            }
          arg[k] = (char) (hi << 4 | lo);
        }
      arg[n / 2] = '\0';
      c->argv[c->argc] = arg;
      c->lens[c->argc++] = n / 2;
    }
  return c;
}

static void
setup_redis (Op *op, char **args)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) lines = NULL;
  int lineno = 0;

  op->redis = redis_connect (args[0]);
  if (!g_file_get_contents (args[1], &text, NULL, &error))
    {
      errno = ENOENT;
      die ("%s", error->message);
    }
  op->commands = g_ptr_array_new_with_free_func (command_free);
  lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l != NULL; l++)
    {
      lineno++;
      if (**l != '\0' && **l != '#')
        g_ptr_array_add (op->commands, command_parse (*l, args[1], lineno));
    }
  if (op->commands->len == 0)
    {
      errno = EINVAL;
      die ("%s: no commands", args[1]);
    }
}

static void
run_redis (Op *op, G_GNUC_UNUSED uint64_t i)
{
  for (guint k = 0; k < op->commands->len; k++)
    {
      Command *c = g_ptr_array_index (op->commands, k);
      redisReply *r = redisCommandArgv (op->redis, c->argc, (const char **) c->argv, c->lens);

      if (r == NULL)
        {
          errno = EIO;
          die ("redis: %s", op->redis->errstr);
        }
      if (r->type == REDIS_REPLY_ERROR)
        {
          errno = EIO;
          die ("redis %.*s: %s", (int) c->lens[0], c->argv[0], r->str);
        }
      freeReplyObject (r);
    }
}

/* ---- main ------------------------------------------------------------- */

static Op ops[] = {
  { "cat", setup_path, run_cat, 1 },
  { "pread-text", setup_open, run_pread_text, 1 },
  { "echo", setup_path, run_echo, 1 },
  { "pwrite-text", setup_open, run_pwrite_text, 1 },
  { "pread8", setup_open, run_pread8, 1 },
  { "pwrite8", setup_open, run_pwrite8, 1 },
  { "atomic-add", setup_open, run_atomic_add, 1 },
  { "redis", setup_redis, run_redis, 2 },
};

static int
cmp_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

  return (x > y) - (x < y);
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) opts = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree uint64_t *t = NULL;
  g_autofree char *mark = NULL;
  redisContext *marker = NULL;
  int n = 20000, warmup = -1;
  uint64_t start, elapsed;
  Op *op = NULL;
  GOptionEntry entries[] = {
    { "ops", 'n', 0, G_OPTION_ARG_INT, &n, "Timed operations (default 20000)", "N" },
    { "warmup", 'w', 0, G_OPTION_ARG_INT, &warmup, "Untimed operations first (default N/20)", "N" },
    { "mark", 'm', 0, G_OPTION_ARG_STRING, &mark, "ECHO markers to this Redis server around the timed operations",
      "HOST:PORT" },
    G_OPTION_ENTRY_NULL
  };

  opts = g_option_context_new ("OP PATH | redis HOST:PORT SEQFILE");
  g_option_context_set_summary (opts,
                                "Times N operations one at a time; prints OP N MEDIAN_NS P99_NS OPS_PER_S.\n"
                                "OP: cat pread-text echo pwrite-text pread8 pwrite8 atomic-add redis");
  g_option_context_add_main_entries (opts, entries, NULL);
  if (!g_option_context_parse (opts, &argc, &argv, &error))
    {
      fprintf (stderr, "shmfs-latency: %s\n", error->message);
      return 2;
    }
  for (size_t k = 0; argc >= 2 && k < G_N_ELEMENTS (ops); k++)
    if (strcmp (ops[k].name, argv[1]) == 0)
      op = &ops[k];
  if (op == NULL || argc != 2 + op->nargs || n < 1)
    {
      g_autofree char *help = g_option_context_get_help (opts, TRUE, NULL);

      fputs (help, stderr);
      return 2;
    }
  if (warmup < 0)
    warmup = MAX (10, n / 20);

  op->fd = -1;
  op->setup (op, argv + 2);
  for (int i = 0; i < warmup; i++)
    op->run (op, (uint64_t) i);

  t = g_new (uint64_t, n);
  if (mark != NULL)
    marker = redis_connect (mark);
  redis_mark (marker, "begin");
  start = now_ns ();
  for (int i = 0; i < n; i++)
    {
      uint64_t t0 = now_ns ();

      op->run (op, (uint64_t) (warmup + i));
      t[i] = now_ns () - t0;
    }
  elapsed = now_ns () - start;
  redis_mark (marker, "end");

  qsort (t, (size_t) n, sizeof *t, cmp_u64);
  printf ("%s\t%d\t%" PRIu64 "\t%" PRIu64 "\t%.1f\n", op->name, n,
          n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2,
          t[MIN ((size_t) n - 1, (size_t) n * 99 / 100)],
          (double) n * 1e9 / (double) MAX (elapsed, 1));

  if (op->fd >= 0)
    close (op->fd);
  if (op->redis != NULL)
    redisFree (op->redis);
  if (marker != NULL)
    redisFree (marker);
  g_clear_pointer (&op->commands, g_ptr_array_unref);
  return 0;
}
