/* cli-target.h — what a verb applies to: --index and --field, and a field's
 * value as JSON (cli-target.c).
 */
#pragma once

#include <glib.h>

#include "shm-type.h"

/* What a verb applies to: element --index N of an array, and --field NAME
 * of a record, a field path ("x", "pose.x", "v[2]"). */
typedef struct {
  guint64     index;
  gboolean    has_index;
  const char *field;    /* NULL: the whole element */
} ShmfsCliTarget;

/* Takes --index N (-i N) and --field F out of the arguments; -1 on junk. */
int shmfs_cli_take_target (int *argc, char **argv, ShmfsCliTarget *tg);
/* Checks tg against type: *offset and *leaf of the field, or prints why not and returns 2. */
int shmfs_cli_resolve_target (const char *verb, const char *path, const ShmType *type, const ShmfsCliTarget *tg, guint64 *offset, ShmType *leaf);
/* Refuses (returns 2, saying why) a leaf that is not one number or bool. */
int shmfs_cli_want_number (const char *verb, const char *path, const ShmfsCliTarget *tg, const ShmType *leaf);
/* Appends the JSON text of the value of type leaf at data. */
void shmfs_cli_append_json (const ShmType *leaf, const guint8 *data, GString *out);
/* Checks that json is one value of type leaf: 0, -EINVAL or -ERANGE. */
int shmfs_cli_check_json (const ShmType *leaf, const char *json);
/* The text that merges json into tg's field of tg's element(s); g_free() it. */
char *shmfs_cli_merge_text (const ShmType *type, const ShmfsCliTarget *tg, const char *json);
