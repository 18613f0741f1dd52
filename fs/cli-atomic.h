/* cli-atomic.h — the atomic verbs, and set's exchange of one number
 * (cli-atomic.c).  Each verb takes the arguments after it and returns the
 * exit status or SHMFS_CLI_USAGE.
 */
#pragma once

#include <glib.h>

#include "cli-target.h"

int shmfs_cli_cmd_load (int argc, char **argv);
int shmfs_cli_cmd_add (int argc, char **argv);
int shmfs_cli_cmd_sub (int argc, char **argv);
int shmfs_cli_cmd_xchg (int argc, char **argv);
int shmfs_cli_cmd_cas (int argc, char **argv);
/* Sets one number (text) at offset in tg's element by an atomic exchange. */
int shmfs_cli_set_number (const char *path, const ShmfsCliTarget *tg, guint64 offset, const ShmType *leaf, const char *text);
