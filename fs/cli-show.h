/* cli-show.h — the verbs ls, info, watch (cli-show.c).  Each takes the
 * arguments after the verb and returns the exit status.
 */
#pragma once

int shmfs_cli_cmd_ls (int argc, char **argv);
int shmfs_cli_cmd_info (int argc, char **argv);
int shmfs_cli_cmd_watch (int argc, char **argv);
