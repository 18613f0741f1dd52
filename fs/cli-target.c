/* cli-target.c — what a verb applies to: element --index N of an array and
 * field --field F of a record, taken from the arguments, checked against the
 * object's type, and a field's value as JSON.
 */
#include "config.h"

#include "cli-target.h"
#include "shm-json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Takes --index N (or -i N) and --field NAME out of the arguments, wherever
 * they stand after the verb.  Returns -1 on junk (a missing or malformed
 * argument, an option given twice). */
int
shmfs_cli_take_target (int *argc, char **argv, ShmfsCliTarget *tg)
{
  memset (tg, 0, sizeof *tg);
  for (int i = 0; i < *argc;)
    {
      gboolean is_index = strcmp (argv[i], "--index") == 0 || strcmp (argv[i], "-i") == 0;
      const char *arg = i + 1 < *argc ? argv[i + 1] : NULL;

      if (!is_index && strcmp (argv[i], "--field") != 0)
        {
          i++;
          continue;
        }
      if (arg == NULL)
        return -1;
      if (is_index)
        {
          char *end;

          if (tg->has_index || !g_ascii_isdigit (arg[0]))
            return -1;
          errno = 0;
          tg->index = g_ascii_strtoull (arg, &end, 10);
          if (*end != '\0' || errno == ERANGE)
            return -1;
          tg->has_index = TRUE;
        }
      else
        {
          if (tg->field != NULL || arg[0] == '\0')
            return -1;
          tg->field = arg;
        }
      memmove (argv + i, argv + i + 2, (size_t) (*argc - i - 2) * sizeof *argv);
      *argc -= 2;
    }
  return 0;
}

/* Checks tg against the object's type (an index in range, a field of a
 * record) and resolves it: *offset of the field in the element and *leaf,
 * its type (without --field the element's).  Prints why not and returns 2;
 * else 0. */
int
shmfs_cli_resolve_target (const char *verb, const char *path, const ShmType *type, const ShmfsCliTarget *tg,
                guint64 *offset, ShmType *leaf)
{
  g_autofree char *tname = shm_type_to_string (type);
  guint64 count = shm_type_count (type);

  if (tg->has_index && tg->index >= count)
    {
      fprintf (stderr, "shmfs %s: %s: index %" G_GUINT64_FORMAT " out of range: %s has %"
               G_GUINT64_FORMAT " element%s\n", verb, path, tg->index, tname, count,
               count == 1 ? "" : "s");
      return 2;
    }
  *offset = 0;
  if (tg->field == NULL)
    {
      shm_type_copy (leaf, type);
      leaf->ndim = 0;
      return 0;
    }
  if (type->elem != SHM_ELEM_RECORD)
    {
      fprintf (stderr, "shmfs %s: %s: --field needs a record, not %s\n", verb, path, tname);
      return 2;
    }
  if (shm_type_resolve_field (type, tg->field, strlen (tg->field), offset, leaf) < 0)
    {
      fprintf (stderr, "shmfs %s: %s: no field %s in %s\n", verb, path, tg->field, tname);
      return 2;
    }
  return 0;
}

/* Refuses (returns 2, saying why) a leaf that is not one number or bool. */
int
shmfs_cli_want_number (const char *verb, const char *path, const ShmfsCliTarget *tg, const ShmType *leaf)
{
  g_autofree char *lname = NULL;

  if (leaf->ndim == 0 && leaf->elem != SHM_ELEM_CHAR && leaf->elem != SHM_ELEM_RECORD)
    return 0;
  lname = shm_type_to_string (leaf);
  if (tg->field != NULL)
    fprintf (stderr, "shmfs %s: %s: field %s is %s, not a number%s%s%s\n", verb, path,
             tg->field, lname, leaf->ndim > 0 ? " (name one of its items: " : "",
             leaf->ndim > 0 ? tg->field : "", leaf->ndim > 0 ? "[0] ...)" : "");
  else if (leaf->elem == SHM_ELEM_RECORD)
    fprintf (stderr, "shmfs %s: %s: a record: name one of its numbers with --field\n", verb, path);
  else
    fprintf (stderr, "shmfs %s: %s: %s is not a number\n", verb, path, lname);
  return 2;
}

/* A one-field record {v:LEAF} around a type that is not a record, so that
 * its JSON is a record's (shm-json.c). */
static void
wrap_in_record (const ShmType *leaf, ShmType *wrap)
{
  g_autofree char *lname = shm_type_to_string (leaf);
  g_autofree char *spec = g_strdup_printf ("{v:%s}", lname);
  int err = shm_type_parse (spec, strlen (spec), wrap);

  g_assert (err == 0);
}

/* Appends the JSON text of the value of type leaf at data: a number, a
 * string, an array or an object. */
void
shmfs_cli_append_json (const ShmType *leaf, const guint8 *data, GString *out)
{
  static const char head[] = "{\"v\": ";
  g_autoptr (GString) line = g_string_new (NULL);
  g_autofree guint8 *bytes = NULL;
  g_auto (ShmType) wrap = { 0 };

  if (leaf->elem == SHM_ELEM_RECORD)
    {
      shm_json_format_items (leaf, data, 0, 1, line);   /* {...}\n */
      g_string_append_len (out, line->str, line->len - 1);
      return;
    }
  wrap_in_record (leaf, &wrap);
  bytes = g_malloc0 (shm_type_nbytes (&wrap));
  memcpy (bytes, data, shm_type_nbytes (leaf));
  shm_json_format_items (&wrap, bytes, 0, 1, line);   /* {"v": VALUE}\n */
  g_assert (g_str_has_prefix (line->str, head) && g_str_has_suffix (line->str, "}\n"));
  g_string_append_len (out, line->str + strlen (head), line->len - strlen (head) - 2);
}

/* Checks that json is one value of type leaf and nothing else (no text
 * that would close an object and name another field): 0, -EINVAL or
 * -ERANGE, as the text view would answer. */
int
shmfs_cli_check_json (const ShmType *leaf, const char *json)
{
  g_autofree char *object = NULL;
  g_autofree guint8 *bytes = NULL;
  g_auto (ShmType) t = { 0 };

  if (leaf->elem == SHM_ELEM_RECORD)
    shm_type_copy (&t, leaf);
  else
    {
      wrap_in_record (leaf, &t);
      json = object = g_strdup_printf ("{\"v\": %s}", json);
    }
  bytes = g_malloc0 (shm_type_nbytes (&t));
  return shm_json_merge (&t, json, strlen (json), bytes, NULL);
}

/* The text that merges json into field path (no brackets; NULL: the whole
 * record) of element tg->index, or of every element without --index:
 * {"pose": {"x": JSON}} for it, {} (kept as it is) for the others. */
char *
shmfs_cli_merge_text (const ShmType *type, const ShmfsCliTarget *tg, const char *json)
{
  g_autoptr (GString) object = g_string_new (NULL);
  GString *text = g_string_new (NULL);
  guint depth = 0;

  if (tg->field != NULL)
    {
      g_auto (GStrv) names = g_strsplit (tg->field, ".", -1);

      for (char **name = names; *name != NULL; name++, depth++)
        g_string_append_printf (object, "{\"%s\": ", *name);
    }
  g_string_append (object, json);
  while (depth-- > 0)
    g_string_append_c (object, '}');
  for (guint64 i = 0; i < shm_type_count (type); i++)
    {
      g_string_append (text, !tg->has_index || i == tg->index ? object->str : "{}");
      g_string_append_c (text, '\n');
    }
  return g_string_free (text, FALSE);
}
