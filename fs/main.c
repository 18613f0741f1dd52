/* main.c — options and the main loop of the shmfs daemon. */
#include "config.h"

#include "shmfs.h"
#include "handles.h"
#include "ops.h"
#include "authority.h"
#include "session.h"
#ifdef SHMFS_HAVE_REMOTE
#include "shm-remote.h"
#endif
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_THREADS 64
/* Helper processes for cached mode's atomic operations (rawclient.c). */
#define RAW_HELPERS 2

/* shmfs' own -o options; the rest go to libfuse. */
typedef struct {
  char *mode;    /* auto | cached | passthrough */
  char *size;    /* capacity: BYTES[k|m|g] or N% of memory */
  char *store;   /* directory keeping the objects across mounts */
  char *remote;  /* redis://HOST[:PORT][/DB]: the mount lives there */
  char *remote_prefix;
  char *remote_timeout;
  char *remote_lease;
} ShmfsConfig;

#define OPTION(t, p) { t, offsetof (ShmfsConfig, p), 1 }
static const struct fuse_opt config_spec[] = {
  OPTION ("mode=%s", mode),
  OPTION ("size=%s", size),
  OPTION ("store=%s", store),
  OPTION ("remote=%s", remote),
  OPTION ("remote_prefix=%s", remote_prefix),
  OPTION ("remote_timeout=%s", remote_timeout),
  OPTION ("remote_lease=%s", remote_lease),
  FUSE_OPT_END
};

static void
usage (void)
{
  printf ("usage: shmfs [mount] [options] MOUNTPOINT\n"
          "       shmfs VERB ARGS...\n\n"
          "Shared typed values and arrays as files.  MOUNTPOINT/PATH is the\n"
          "text view of an object, MOUNTPOINT/.raw/PATH its bytes (mmap them).\n\n"
          "shmfs options:\n"
          "    -h, --help             print this help\n"
          "    -V, --version          print the version\n"
          "    -o mode=MODE           auto (default), cached or passthrough\n"
          "    -o size=SIZE           capacity in bytes (suffix k, m, g) or N%% of memory\n"
          "    -o store=DIR           keep objects in DIR across unmounts (cached mode)\n"
          "    -o remote=URL          keep the mount in Redis, shared by every host that\n"
          "                           mounts it: redis://HOST[:PORT][/DB]\n"
          "    -o remote_prefix=NAME  the prefix of its keys (default shmfs)\n"
          "    -o remote_timeout=SEC  how long a Redis request may take (default 3)\n"
          "    -o remote_lease=SEC    how long a lock outlives a host that stopped\n"
          "                           renewing it (default 15)\n"
          "\n");
  shmfs_cli_usage ();
  /* libfuse's own options, less its -s: shmfs always runs several threads
   * (see docs/running.md). */
  printf ("\n"
          "    -d   -o debug          enable debug output (implies -f)\n"
          "    -f                     foreground operation\n"
          "    -s                     accepted; shmfs always runs several worker threads\n"
          "    -o clone_fd            use separate fuse device fd for each thread\n"
          "    -o max_idle_threads    the maximum number of idle worker threads\n"
          "    -o max_threads         the maximum number of worker threads (at least %d)\n",
          MAX_THREADS);
  fuse_lowlevel_help ();
}

/* libfuse's messages, on stderr like ours, with our prefix. */
static void
log_to_stderr (enum fuse_log_level level, const char *fmt, va_list ap)
{
  static gboolean at_line_start = TRUE;   /* messages come in pieces */
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);

  if (*msg == '\0')
    return;
  if (at_line_start)
    fputs ("shmfs: ", stderr);
  fputs (at_line_start && g_str_has_prefix (msg, "fuse: ") ? msg + 6 : msg, stderr);
  at_line_start = g_str_has_suffix (msg, "\n");
}

/* The kernel holds a FUSE mount's dirty pages to a strict share of its
 * dirty limit (tens of MiB) and reads ahead 128 KiB: in cached mode that
 * throttles a process streaming stores through a big mapping to the pace of
 * writeback.  Where allowed (root), let this mount's pages be like any
 * filesystem's (read-ahead is set at init, which would lower it again).
 * Returns the device ("MAJ:MIN"), or NULL. */
static char *
tune_backing_device (const char *mountpoint)
{
  g_autofree char *mountinfo = NULL;
  g_autofree char *real = realpath (mountpoint, NULL);
  g_auto (GStrv) lines = NULL;
  const char *dev = NULL;

  if (real == NULL || !g_file_get_contents ("/proc/self/mountinfo", &mountinfo, NULL, NULL))
    return NULL;
  lines = g_strsplit (mountinfo, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) f = g_strsplit (lines[i], " ", 6);
      if (g_strv_length (f) >= 5 && strcmp (f[4], real) == 0)
        dev = g_intern_string (f[2]);   /* the last mount there is ours */
    }
  if (dev == NULL)
    return NULL;
  shmfs_set_bdi (dev, "strict_limit", "0");
  shmfs_set_bdi (dev, "max_ratio", "100");
  return g_strdup (dev);
}

/* mount(8) runs a FUSE helper as "shmfs SOURCE MOUNTPOINT -o OPTS" (fstab
 * "shmfs /mnt fuse.shmfs ..." through mount.fuse3): the source says nothing
 * to us.  Drops the first of two positional arguments. */
static void
drop_mount_source (struct fuse_args *args)
{
  int positional[3], n = 0;

  for (int i = 1; i < args->argc && n < 3; i++)
    {
      const char *a = args->argv[i];
      if (a[0] != '-')
        positional[n++] = i;
      else if (strcmp (a, "-o") == 0)
        i++;   /* its value */
    }
  if (n == 2)
    {
      memmove (args->argv + positional[0], args->argv + positional[0] + 1,
               (size_t) (args->argc - positional[0]) * sizeof *args->argv);
      args->argc--;
    }
}

/* mount(8) runs /sbin/mount.TYPE as "mount.TYPE SOURCE MOUNTPOINT [-sfnv]
 * [-N NS] [-o OPTIONS] [-t TYPE]": for an fstab line such as
 * "shmfs /mnt/x fuse.shmfs defaults 0 0" that is mount.fuse.shmfs, which
 * (with mount.shmfs) is this binary.  Rewrites such a command line as the
 * daemon's own: "shmfs MOUNTPOINT -o OPTIONS", without the options that
 * are mount(8)'s and not the filesystem's.  Returns 0, 1 for -f (fake: do
 * nothing, successfully), or -1 with a message. */
static gboolean
is_mount_option (const char *opt)
{
  static const char *const ours[] = {
    "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group",
    "nofail", "_netdev", "rw",
  };

  for (guint i = 0; i < G_N_ELEMENTS (ours); i++)
    if (strcmp (opt, ours[i]) == 0)
      return TRUE;
  return g_str_has_prefix (opt, "x-") || g_str_has_prefix (opt, "comment=");
}

static int
mount_helper_args (int argc, char **argv, GPtrArray *out)
{
  const char *positional[2] = { NULL, NULL };
  g_autoptr (GString) options = g_string_new (NULL);
  int n = 0;

  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];

      if (strcmp (a, "-o") == 0 && i + 1 < argc)
        {
          g_auto (GStrv) opts = g_strsplit (argv[++i], ",", -1);
          for (guint j = 0; opts[j] != NULL; j++)
            if (opts[j][0] != '\0' && !is_mount_option (opts[j]))
              g_string_append_printf (options, "%s%s", options->len ? "," : "", opts[j]);
        }
      else if (strcmp (a, "-t") == 0 || strcmp (a, "-N") == 0)
        {
          if (a[1] == 'N')
            {
              fprintf (stderr, "%s: -N (another mount namespace) is not supported\n", argv[0]);
              return -1;
            }
          i++;
        }
      else if (a[0] == '-' && a[1] != '\0' && strspn (a + 1, "sfnv") == strlen (a + 1))
        {
          if (strchr (a, 'f') != NULL)
            return 1;   /* fake */
        }
      else if (a[0] != '-' && n < 2)
        positional[n++] = a;
      else
        {
          fprintf (stderr, "%s: unexpected argument %s\n", argv[0], a);
          return -1;
        }
    }
  if (n != 2)
    {
      fprintf (stderr, "usage: %s SOURCE MOUNTPOINT [-o OPTIONS]\n", argv[0]);
      return -1;
    }
  g_ptr_array_add (out, g_strdup (argv[0]));
  g_ptr_array_add (out, g_strdup (positional[1]));
  if (options->len > 0)
    {
      g_ptr_array_add (out, g_strdup ("-o"));
      g_ptr_array_add (out, g_strdup (options->str));
    }
  g_ptr_array_add (out, NULL);
  return 0;
}

/* Parses a tmpfs-style size: bytes with an optional k/m/g suffix, or a
 * percentage of the memory.  Returns 0 and *bytes, or -1. */
static int
parse_size (const char *text, guint64 *bytes)
{
  guint64 value, unit = 1;
  char *end;

  if (!g_ascii_isdigit (*text))
    return -1;
  errno = 0;
  value = g_ascii_strtoull (text, &end, 10);
  if (errno != 0)
    return -1;
  switch (g_ascii_tolower (*end))
    {
    case '\0': break;
    case 'k': unit = G_GUINT64_CONSTANT (1) << 10; end++; break;
    case 'm': unit = G_GUINT64_CONSTANT (1) << 20; end++; break;
    case 'g': unit = G_GUINT64_CONSTANT (1) << 30; end++; break;
    case '%':
      unit = (guint64) sysconf (_SC_PHYS_PAGES) * (guint64) sysconf (_SC_PAGESIZE) / 100;
      end++;
      break;
    default: return -1;
    }
  if (*end != '\0' || value == 0 || value > G_MAXUINT64 / unit)
    return -1;
  *bytes = value * unit;
  return 0;
}

/* Whether this process may register backing files (CAP_SYS_ADMIN). */
static gboolean
have_sys_admin (void)
{
  g_autofree char *status = NULL;
  const char *line;
  guint64 caps;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL) ||
      (line = strstr (status, "\nCapEff:")) == NULL)
    return FALSE;
  caps = g_ascii_strtoull (line + 8, NULL, 16);
  return (caps >> 21) & 1;   /* CAP_SYS_ADMIN */
}

/* Decides the wanted mode before mounting; the kernel has the last word at
 * init.  Returns 0, or -1 after saying why. */
static int
choose_mode (const char *mode, ShmfsMode *out)
{
  if (g_strcmp0 (mode, "cached") == 0)
    *out = SHMFS_MODE_CACHED;
  else if (g_strcmp0 (mode, "passthrough") == 0 || g_strcmp0 (mode, "auto") == 0)
    {
      gboolean able = have_sys_admin ();
      if (!able && mode[0] == 'p')
        {
          fprintf (stderr, "shmfs: mode=passthrough needs CAP_SYS_ADMIN; use mode=cached or auto\n");
          return -1;
        }
      *out = !able ? SHMFS_MODE_CACHED : mode[0] == 'p' ? SHMFS_MODE_PASSTHROUGH : SHMFS_MODE_AUTO;
    }
  else
    {
      fprintf (stderr, "shmfs: mode=%s: expected auto, cached or passthrough\n", mode);
      return -1;
    }
  return 0;
}

/* Each typed object holds one file descriptor: allow as many as we may. */
static void
raise_fd_limit (void)
{
  g_autofree char *nr_open = NULL;
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) < 0)
    return;
  /* Privileged: up to the kernel's ceiling; otherwise up to the hard limit. */
  if (g_file_get_contents ("/proc/sys/fs/nr_open", &nr_open, NULL, NULL))
    {
      struct rlimit most = { g_ascii_strtoull (nr_open, NULL, 10), 0 };
      most.rlim_max = most.rlim_cur;
      if (most.rlim_cur > rl.rlim_max && setrlimit (RLIMIT_NOFILE, &most) == 0)
        return;
    }
  rl.rlim_cur = rl.rlim_max;
  setrlimit (RLIMIT_NOFILE, &rl);
}

static void
log_skipped (gpointer user_data, const char *path, const char *why)
{
  fprintf (stderr, "shmfs: store: skipping %s: %s\n", path, why);
}

static int
check_mountpoint (const char *mountpoint)
{
  struct stat st;

  if (mountpoint == NULL)
    {
      fprintf (stderr, "shmfs: no mount point given (see --help)\n");
      return -1;
    }
  if (stat (mountpoint, &st) < 0)
    {
      fprintf (stderr, "shmfs: %s: %s\n", mountpoint, g_strerror (errno));
      return -1;
    }
  if (!S_ISDIR (st.st_mode))
    {
      fprintf (stderr, "shmfs: %s: not a directory\n", mountpoint);
      return -1;
    }
  return 0;
}

#ifdef SHMFS_HAVE_REMOTE
/* Seconds, more than 0 and at most an hour, into *out (unchanged when
 * value is NULL).  0 or -1 (said why). */
static int
parse_seconds (const char *name, const char *value, double *out)
{
  char *end;
  double v;

  if (value == NULL)
    return 0;
  v = g_ascii_strtod (value, &end);
  if (*end != '\0' || end == value || !(v > 0) || v > 3600)
    {
      fprintf (stderr, "shmfs: %s=%s: expected seconds, more than 0 and at most 3600\n", name,
               value);
      return -1;
    }
  *out = v;
  return 0;
}
#endif

/* -o remote=URL: connects to the store (a one-line error otherwise) and
 * sets the mount up to follow it.  0 or -1. */
static int
open_remote (const ShmfsConfig *config, Shmfs *fs, ShmTreeConfig *tree_config)
{
#ifdef SHMFS_HAVE_REMOTE
  g_autoptr (GError) error = NULL;
  ShmRemoteConfig rc = { .timeout = 3.0, .lease = 15.0, .root_mode = 01777,
                         .root_uid = getuid (), .root_gid = getgid () };

  if (config->store != NULL || config->size != NULL ||
      (config->mode != NULL && strcmp (config->mode, "auto") != 0))
    {
      fprintf (stderr, "shmfs: remote= mounts take no store=, size= or mode= "
               "(the objects live in Redis)\n");
      return -1;
    }
  if (parse_seconds ("remote_timeout", config->remote_timeout, &rc.timeout) < 0 ||
      parse_seconds ("remote_lease", config->remote_lease, &rc.lease) < 0)
    return -1;
  fs->remote = shm_remote_open (config->remote,
                                config->remote_prefix != NULL ? config->remote_prefix : "shmfs",
                                &rc, &error);
  if (fs->remote == NULL)
    {
      fprintf (stderr, "shmfs: remote=%s: %s\n", config->remote, error->message);
      return -1;
    }
  fs->authority = &shmfs_authority_remote;
  fs->mode = SHMFS_MODE_REMOTE;
  tree_config->no_bytes = TRUE;
  tree_config->capacity = 0;   /* Redis' own (maxmemory) */
  /* Raw twins renumbered here take ids no host gives an object. */
  tree_config->first_local_id = G_GUINT64_CONSTANT (1) << 60;
  return 0;
#else
  fprintf (stderr, "shmfs: remote=: this shmfs was built without Redis support (hiredis)\n");
  return -1;
#endif
}

int
main (int argc, char *argv[])
{
  struct fuse_args args = FUSE_ARGS_INIT (argc, argv);
  struct fuse_cmdline_opts opts;
  struct fuse_loop_config *loop_config = NULL;
  ShmfsConfig config = { 0 };
  g_autoptr (GError) error = NULL;
  ShmTreeConfig tree_config = { 0 };
  Shmfs fs = { 0 };
  g_autoptr (GPtrArray) helper_argv = g_ptr_array_new_with_free_func (g_free);
  int ret = 1, res;

  /* "mount.shmfs SOURCE MOUNTPOINT ..." is mount(8)'s helper; "shmfs VERB
   * ..." the command line; "shmfs [mount] ... MOUNTPOINT" the daemon. */
  if (g_str_has_prefix (strrchr (argv[0], '/') ? strrchr (argv[0], '/') + 1 : argv[0], "mount."))
    {
      switch (mount_helper_args (argc, argv, helper_argv))
        {
        case 0:
          argc = (int) helper_argv->len - 1;
          argv = (char **) helper_argv->pdata;
          args = (struct fuse_args) FUSE_ARGS_INIT (argc, argv);
          break;
        case 1:
          return 0;
        default:
          return 1;
        }
    }
  else if ((ret = shmfs_cli_run (argc, argv)) >= 0)
    return ret;
  ret = 1;
  if (argc > 1 && strcmp (argv[1], "mount") == 0)
    {
      argv[1] = argv[0];
      args.argc--;
      args.argv++;
    }

  drop_mount_source (&args);

  fuse_set_log_func (log_to_stderr);
  config.mode = strdup ("auto");
  if (fuse_opt_parse (&args, &config, config_spec, NULL) != 0)
    {
      free (config.mode);
      free (config.size);
      return 1;
    }
  if (fuse_parse_cmdline (&args, &opts) != 0)
    {
      ret = 1;   /* libfuse said why */
      goto out_config;
    }
  if (opts.show_help)
    {
      usage ();
      ret = 0;
      goto out_args;
    }
  if (opts.show_version)
    {
      printf ("shmfs %s\n", SHMFS_VERSION);
      printf ("FUSE library version %s\n", fuse_pkgversion ());
      ret = 0;
      goto out_args;
    }
  if (check_mountpoint (opts.mountpoint) < 0 || choose_mode (config.mode, &fs.mode) < 0)
    goto out_args;
  /* tmpfs' default capacity, enforced as any other: half of the memory. */
  tree_config.capacity = (guint64) sysconf (_SC_PHYS_PAGES) * (guint64) sysconf (_SC_PAGESIZE) / 2;
  if (config.size != NULL && parse_size (config.size, &tree_config.capacity) < 0)
    {
      fprintf (stderr, "shmfs: size=%s: expected bytes with an optional k, m or g, or N%%\n",
               config.size);
      goto out_args;
    }

  /* Permissions are the kernel's to check, always. */
  if (fuse_opt_add_arg (&args, "-odefault_permissions,fsname=shmfs,subtype=shmfs") != 0)
    goto out_args;

  raise_fd_limit ();
  fs.authority = &shmfs_authority_local;
  if (config.remote != NULL && open_remote (&config, &fs, &tree_config) < 0)
    goto out_args;
  else if (config.remote == NULL && (config.remote_prefix != NULL || config.remote_timeout != NULL ||
                                     config.remote_lease != NULL))
    {
      fprintf (stderr, "shmfs: remote_prefix=, remote_timeout= and remote_lease= go with remote=URL\n");
      goto out_args;
    }
  if (config.store != NULL)
    {
      /* A regular file cannot be sealed against growing, which passthrough
       * needs (DESIGN.md §7): stored objects are served cached. */
      if (fs.mode == SHMFS_MODE_PASSTHROUGH)
        {
          fprintf (stderr, "shmfs: store= objects are served in cached mode; "
                   "drop mode=passthrough\n");
          goto out_args;
        }
      fs.mode = SHMFS_MODE_CACHED;
      fs.store = shm_store_open (config.store, &error);
      if (fs.store == NULL)
        {
          fprintf (stderr, "shmfs: %s\n", error->message);
          goto out_args;
        }
      tree_config.backing = shm_store_backing (fs.store);
    }


  g_mutex_init (&fs.tree_lock);
  g_mutex_init (&fs.poll_lock);
  g_cond_init (&fs.released);
  fs.handles = g_hash_table_new (NULL, NULL);
  shmfs_twin_ids_init (&fs);
  /* Another host may change anything of a remote mount at any time. */
  fs.timeout = fs.remote != NULL ? 0.0 : 86400.0;
  fs.verbose = opts.foreground;
  fs.coherence = shmfs_coherence_new ();
  if (fs.remote != NULL)
    shmfs_coherence_set_remote (fs.coherence, fs.remote);
  fs.inval = shmfs_inval_new ();
  tree_config.root_mode = 01777;
  tree_config.root_uid = getuid ();
  tree_config.root_gid = getgid ();
  fs.tree = shm_tree_new (&tree_config);
  if (fs.store != NULL)
    {
      guint n = shm_store_load (fs.store, fs.tree, log_skipped, NULL);
      if (opts.foreground)
        fprintf (stderr, "shmfs: store %s: %u entries\n", config.store, n);
    }
  shmfs_attach_states (&fs);
  if (fs.authority->refresh != NULL && (res = fs.authority->refresh (&fs, FUSE_ROOT_ID)) < 0)
    {
      fprintf (stderr, "shmfs: remote: cannot read the root: %s\n", g_strerror (-res));
      goto out_fs;
    }

  fs.lifetimes = shmfs_lifetimes_new (shmfs_expire, &fs, &error);
  if (fs.lifetimes == NULL)
    {
      fprintf (stderr, "shmfs: %s\n", error->message);
      goto out_fs;
    }
  fs.se = fuse_session_new (&args, &shmfs_ops, sizeof shmfs_ops, &fs);
  if (fs.se == NULL)
    goto out_fs;   /* libfuse said why */
  if (fuse_set_signal_handlers (fs.se) != 0)
    goto out_session;
  if (fuse_session_mount (fs.se, opts.mountpoint) != 0)
    {
      fprintf (stderr, "shmfs: cannot mount on %s\n", opts.mountpoint);
      goto out_signals;
    }
  if (fs.mode == SHMFS_MODE_AUTO || fs.mode == SHMFS_MODE_CACHED)
    fs.bdi = tune_backing_device (opts.mountpoint);
  fs.mountpoint = realpath (opts.mountpoint, NULL);   /* fuse_daemonize goes to / */
  /* Every thread starts after this: a fork keeps only the calling one. */
  fuse_daemonize (opts.foreground);
  if (fs.mode == SHMFS_MODE_AUTO || fs.mode == SHMFS_MODE_CACHED)
    {
      /* Forks: before any thread.  Passthrough mode, once chosen, drops it. */
      fs.raw_client = shmfs_raw_client_new (fs.mountpoint, RAW_HELPERS, &error);
      if (fs.raw_client == NULL)
        {
          g_warning ("%s: cached-mode atomic operations go through the daemon's copy",
                     error->message);
          g_clear_error (&error);
        }
    }
  shmfs_lifetimes_start (fs.lifetimes);
  if (fs.authority->start != NULL)
    fs.authority->start (&fs);

  /* Always several threads, -s or not: the daemon's own page-cache
   * requests (notify_retrieve) are answered on another worker, and a store
   * into a page under writeback waits for a worker to answer it. */
  loop_config = fuse_loop_cfg_create ();
  fuse_loop_cfg_set_clone_fd (loop_config, opts.clone_fd);
  fuse_loop_cfg_set_max_threads (loop_config, MAX (opts.max_threads, MAX_THREADS));
  fuse_loop_cfg_set_idle_threads (loop_config, opts.max_idle_threads);
  res = fuse_session_loop_mt (fs.se, loop_config);
  shmfs_lifetimes_free (fs.lifetimes);   /* before the session goes */
  fs.lifetimes = NULL;
  if (fs.authority->stop != NULL)
    fs.authority->stop (&fs);
  /* A signal ends the loop with its number: a clean unmount.  So does the
   * kernel ending the connection as the last user of a lazily unmounted
   * filesystem goes (ENODEV, or ECONNABORTED if requests were in flight). */
  if (res == -ECONNABORTED || res == -ENODEV)
    res = 0;
  ret = res < 0 || fs.init_failed ? 1 : 0;
  if (res < 0)
    fprintf (stderr, "shmfs: session ended: %s\n", g_strerror (-res));

  shmfs_coherence_stop (fs.coherence);
  shmfs_inval_stop (fs.inval);
  fuse_session_unmount (fs.se);
  if (fs.store != NULL && (res = shm_store_sync (fs.store)) < 0)
    {
      fprintf (stderr, "shmfs: store: cannot sync: %s\n", g_strerror (-res));
      ret = 1;
    }
out_signals:
  fuse_remove_signal_handlers (fs.se);
out_session:
  fuse_session_destroy (fs.se);
  shmfs_raw_client_free (fs.raw_client);   /* its helpers die with the connection */
out_fs:
  shmfs_lifetimes_free (fs.lifetimes);
  fuse_loop_cfg_destroy (loop_config);
  shmfs_coherence_free (fs.coherence);
  shmfs_inval_free (fs.inval);
  if (fs.handles != NULL)
    shmfs_free_handles (&fs);
  shm_tree_free (fs.tree);
  if (fs.twin_ids != NULL)
    shmfs_twin_ids_clear (&fs);
  shm_store_free (fs.store);
#ifdef SHMFS_HAVE_REMOTE
  g_clear_pointer (&fs.remote, shm_remote_free);
#endif
  g_mutex_clear (&fs.tree_lock);
  g_mutex_clear (&fs.poll_lock);
  g_cond_clear (&fs.released);
  if (fs.handles != NULL)
    g_hash_table_unref (fs.handles);
  g_free (fs.bdi);
  free (fs.mountpoint);
out_args:
  free (opts.mountpoint);
out_config:
  free (config.mode);
  free (config.size);
  free (config.store);
  free (config.remote);
  free (config.remote_prefix);
  free (config.remote_timeout);
  free (config.remote_lease);
  fuse_opt_free_args (&args);
  return ret;
}
