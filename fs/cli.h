/* cli.h — the shmfs command-line verbs (new, get, set, add, ...). */
#pragma once

/* Runs the verb argv[1] and returns the exit status, or -1 when argv[1]
 * names no verb (the daemon then parses the arguments). */
int shmfs_cli_run (int argc, char **argv);

/* Prints the verbs, for --help. */
void shmfs_cli_usage (void);
