/* cli-value.h — the verbs new, get, set, rm (cli-value.c).  Each takes the
 * arguments after the verb and returns the exit status or SHMFS_CLI_USAGE.
 */
#pragma once

int shmfs_cli_cmd_new (int argc, char **argv);
int shmfs_cli_cmd_get (int argc, char **argv);
int shmfs_cli_cmd_set (int argc, char **argv);
int shmfs_cli_cmd_rm (int argc, char **argv);
