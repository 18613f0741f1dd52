/* cli.c — the command-line verbs: their table, their help, and the
 * dispatch of argv to one of them.  The verbs speak to a mounted shmfs
 * through its files: text views, xattrs, rename(2), and the atomic-operation
 * ioctl.  They need no daemon of their own and work from any process.
 */
#include "config.h"

#include "cli.h"
#include "cli-atomic.h"
#include "cli-io.h"
#include "cli-show.h"
#include "cli-value.h"

#include <stdio.h>
#include <string.h>

typedef struct {
  const char *name;
  const char *args;
  const char *help;
  int (*run) (int argc, char **argv);
  int min_args, max_args;   /* after the verb; max -1: any */
} Verb;

static const Verb verbs[] = {
  { "new",  "new PATH TYPE [VALUE...]", "create PATH of TYPE (atomically; fails if PATH exists); a record's VALUE is JSON", shmfs_cli_cmd_new, 2, -1 },
  { "get",  "get PATH [--index N] [--field F]", "print the value; element N; a record's field F as JSON", shmfs_cli_cmd_get, 1, 5 },
  { "set",  "set PATH [--index N] [--field F] VALUE...", "set the value (all elements of an array); element N; only field F (JSON)", shmfs_cli_cmd_set, 2, -1 },
  { "load", "load PATH [--index N] [--field F]", "atomically read one number; print it", shmfs_cli_cmd_load, 1, 5 },
  { "add",  "add PATH [--index N] [--field F] VALUE", "atomically add; print the new value", shmfs_cli_cmd_add, 2, 6 },
  { "sub",  "sub PATH [--index N] [--field F] VALUE", "atomically subtract; print the new value", shmfs_cli_cmd_sub, 2, 6 },
  { "cas",  "cas PATH [--index N] [--field F] OLD NEW", "set to NEW if OLD; exit 0 if swapped, 1 if not; print the value seen", shmfs_cli_cmd_cas, 3, 7 },
  { "xchg", "xchg PATH [--index N] [--field F] VALUE", "atomically set; print the old value", shmfs_cli_cmd_xchg, 2, 6 },
  { "ls",   "ls [DIR]", "list objects: mode, type, bytes, name", shmfs_cli_cmd_ls, 0, 1 },
  { "info", "info PATH", "type, shape, dtype, bytes, version, lifetime, mode; a record's fields", shmfs_cli_cmd_info, 1, 1 },
  { "rm",   "rm PATH...", "remove objects", shmfs_cli_cmd_rm, 1, -1 },
  { "watch","watch PATH", "print the value, then each new value, until interrupted", shmfs_cli_cmd_watch, 1, 1 },
};

/* What --index and --field mean, for the verbs that take them. */
static const char target_help[] =
  "    --index N (-i N) picks element N of an array (C order; without it, 0\n"
  "    for the atomic verbs, every element for get and set).  --field F picks\n"
  "    a field of a record: x, pose.x, v[2].  get prints a field as JSON; set\n"
  "    takes JSON ('1.5', '\"abc\"', '[1, 2]', '{\"a\": 1}') and changes\n"
  "    that field only; the atomic verbs take a number or bool.\n";

static const Verb *
find_verb (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    if (strcmp (verbs[i].name, name) == 0)
      return &verbs[i];
  return NULL;
}

void
shmfs_cli_usage (void)
{
  printf ("Verbs, on objects of a mounted shmfs:\n");
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    printf ("    shmfs %-41s %s\n", verbs[i].args, verbs[i].help);
  printf ("    shmfs %-41s %s\n", "VERB --help", "help on one verb");
  printf ("\n%s", target_help);
}

int
shmfs_cli_run (int argc, char **argv)
{
  const Verb *verb;
  int nargs, status;

  if (argc < 2 || (verb = find_verb (argv[1])) == NULL)
    return -1;
  nargs = argc - 2;
  if (nargs == 1 && (strcmp (argv[2], "--help") == 0 || strcmp (argv[2], "-h") == 0))
    {
      printf ("usage: shmfs %s\n%s\n", verb->args, verb->help);
      if (strstr (verb->args, "--field") != NULL)
        printf ("\n%s", target_help);
      return 0;
    }
  if (nargs < verb->min_args || (verb->max_args >= 0 && nargs > verb->max_args)
      || (status = verb->run (nargs, argv + 2)) == SHMFS_CLI_USAGE)
    {
      fprintf (stderr, "shmfs %s: usage: shmfs %s\n", verb->name, verb->args);
      return 2;
    }
  return status;
}
