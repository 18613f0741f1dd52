/* cli-io.h — what the verbs share: a mount's files read and written, and
 * how a verb fails (cli-io.c).
 */
#pragma once

#include <glib.h>

#include "shm-type.h"

/* The xattr that holds an object's type. */
#define SHMFS_CLI_XA_TYPE "user.shmfs.type"
/* What a verb returns for arguments it cannot take: cli.c prints its usage. */
#define SHMFS_CLI_USAGE (-2)

/* Prints "shmfs VERB: WHAT: strerror(err)"; returns 2, the exit status. */
int shmfs_cli_fail (const char *verb, const char *what, int err);
/* The xattr as a string (any length); NULL and errno when absent. */
char *shmfs_cli_get_xattr (const char *path, const char *name);
/* The object's type, parsed from its xattr: 0 or -errno. */
int shmfs_cli_read_type (const char *path, ShmType *type);
/* Reads the whole text view into out: 0 or -errno. */
int shmfs_cli_read_text (const char *path, GString *out);
/* Writes text in one write(2), so the write returns the verdict. */
int shmfs_cli_write_text_fd (int fd, const char *text);
/* The arguments joined by spaces, one line; g_free() it. */
char *shmfs_cli_join_values (int argc, char **argv);
/* Reads the value into *bytes (g_free() them) from the text view. */
int shmfs_cli_read_value (const char *path, const ShmType *type, guint8 **bytes);
