/* main.c — options and the main loop of the shmfs daemon. */
#include "config.h"

#include "shmfs.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_THREADS 64

static void
usage (const char *prog)
{
  printf ("usage: %s [options] MOUNTPOINT\n\n"
          "Shared typed values and arrays as files.  MOUNTPOINT/PATH is the\n"
          "text view of an object, MOUNTPOINT/.raw/PATH its bytes (mmap them).\n\n"
          "shmfs options:\n"
          "    -h, --help             print this help\n"
          "    -V, --version          print the version\n"
          "\n", prog);
  fuse_cmdline_help ();
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

int
main (int argc, char *argv[])
{
  struct fuse_args args = FUSE_ARGS_INIT (argc, argv);
  struct fuse_cmdline_opts opts;
  struct fuse_loop_config *loop_config = NULL;
  ShmTreeConfig tree_config = { 0 };
  Shmfs fs = { 0 };
  int ret = 1, res;

  fuse_set_log_func (log_to_stderr);
  if (fuse_parse_cmdline (&args, &opts) != 0)
    return 1;   /* libfuse said why */
  if (opts.show_help)
    {
      usage (argv[0]);
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
  if (check_mountpoint (opts.mountpoint) < 0)
    goto out_args;

  /* Permissions are the kernel's to check, always. */
  if (fuse_opt_add_arg (&args, "-odefault_permissions,fsname=shmfs,subtype=shmfs") != 0)
    goto out_args;

  g_mutex_init (&fs.tree_lock);
  fs.timeout = 86400.0;
  fs.verbose = opts.foreground;
  fs.coherence = shmfs_coherence_new ();
  tree_config.root_mode = 01777;
  tree_config.root_uid = getuid ();
  tree_config.root_gid = getgid ();
  fs.tree = shm_tree_new (&tree_config);
  shm_node_set_data (shm_tree_get_root (fs.tree), g_new0 (ShmfsNode, 1), g_free);

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
  fprintf (stderr, opts.foreground ? "shmfs: mounted on %s (mode cached)\n" : "", opts.mountpoint);
  fuse_daemonize (opts.foreground);

  if (opts.singlethread)
    res = fuse_session_loop (fs.se);
  else
    {
      loop_config = fuse_loop_cfg_create ();
      fuse_loop_cfg_set_clone_fd (loop_config, opts.clone_fd);
      fuse_loop_cfg_set_max_threads (loop_config, MAX(opts.max_threads, MAX_THREADS));
      fuse_loop_cfg_set_idle_threads (loop_config, opts.max_idle_threads);
      res = fuse_session_loop_mt (fs.se, loop_config);
    }
  /* A signal ends the loop with its number: a clean unmount. */
  ret = res < 0 ? 1 : 0;
  if (res < 0)
    fprintf (stderr, "shmfs: session ended: %s\n", g_strerror (-res));

  shmfs_coherence_stop (fs.coherence);
  fuse_session_unmount (fs.se);
out_signals:
  fuse_remove_signal_handlers (fs.se);
out_session:
  fuse_session_destroy (fs.se);
out_fs:
  fuse_loop_cfg_destroy (loop_config);
  shmfs_coherence_free (fs.coherence);
  shm_tree_free (fs.tree);
  g_mutex_clear (&fs.tree_lock);
out_args:
  free (opts.mountpoint);
  fuse_opt_free_args (&args);
  return ret;
}
