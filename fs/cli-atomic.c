/* cli-atomic.c — the atomic verbs (load, add, sub, cas, xchg) and set's
 * exchange of one number, through the atomic-operation ioctl.
 */
#include "config.h"

#include "cli-atomic.h"
#include "cli-io.h"
#include "cli-target.h"
#include "shm-codec.h"
#include "shmfs/ioctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Parses text as one element of type t into a widened value.  Returns 0,
 * -EINVAL or -ERANGE (the codec's verdict on that element type). */
static int
parse_operand (const ShmType *t, const char *text, union shmfs_value *v, gboolean *is_float)
{
  ShmType scalar = *t;
  guint8 bytes[8] = { 0 };
  int err;

  scalar.ndim = 0;
  if (t->elem == SHM_ELEM_CHAR)
    return -EINVAL;
  if ((err = shm_codec_parse (&scalar, text, strlen (text), bytes)) < 0)
    return err;
  *is_float = shm_type_is_float (t);
  switch (t->elem)
    {
    case SHM_ELEM_I8:  v->i = *(gint8 *) bytes; break;
    case SHM_ELEM_I16: v->i = *(gint16 *) bytes; break;
    case SHM_ELEM_I32: v->i = *(gint32 *) bytes; break;
    case SHM_ELEM_I64: v->i = *(gint64 *) bytes; break;
    case SHM_ELEM_U8: case SHM_ELEM_BOOL: v->u = *(guint8 *) bytes; break;
    case SHM_ELEM_U16: v->u = *(guint16 *) bytes; break;
    case SHM_ELEM_U32: v->u = *(guint32 *) bytes; break;
    case SHM_ELEM_U64: v->u = *(guint64 *) bytes; break;
    case SHM_ELEM_F32: v->f = *(float *) bytes; break;
    default:           v->f = *(double *) bytes; break;
    }
  return 0;
}

/* Formats a widened value as one element of type t would print. */
static char *
format_value (const ShmType *t, const union shmfs_value *v)
{
  ShmType scalar = *t;
  guint8 bytes[8] = { 0 };
  GString *out = g_string_new (NULL);

  scalar.ndim = 0;
  if (t->elem == SHM_ELEM_F32)
    {
      float f = (float) v->f;
      memcpy (bytes, &f, sizeof f);
    }
  else
    memcpy (bytes, v, shm_type_elem_size (t));   /* little end of the widened value */
  shm_codec_format (&scalar, bytes, out);
  return g_string_free (out, FALSE);
}

static int
operand_error (const char *verb, const char *text, const ShmType *leaf, int err)
{
  g_autofree char *lname = shm_type_to_string (leaf);

  fprintf (stderr, "shmfs %s: %s: not an element of type %s: %s\n", verb, text, lname,
           g_strerror (-err));
  return 2;
}

/* Sets io's field (when leaf is a record's field) and runs it on path. */
static int
run_atomic (const char *verb, const char *path, const ShmfsCliTarget *tg, guint64 offset,
            struct shmfs_atomic *io)
{
  int fd, err;

  io->index = tg->index;
  if (tg->field != NULL)
    {
      if (offset > G_MAXUINT32)
        return shmfs_cli_fail (verb, path, EOVERFLOW);
      io->flags |= SHMFS_ATOMIC_FIELD;
      io->field = (guint32) offset;
    }
  fd = open (path, (io->op == SHMFS_ATOMIC_LOAD ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0)
    return shmfs_cli_fail (verb, path, errno);
  err = ioctl (fd, SHMFS_IOC_ATOMIC, io) < 0 ? errno : 0;
  close (fd);
  return err != 0 ? shmfs_cli_fail (verb, path, err) : 0;
}

int
shmfs_cli_set_number (const char *path, const ShmfsCliTarget *tg, guint64 offset, const ShmType *leaf,
            const char *text)
{
  struct shmfs_atomic io = { .op = SHMFS_ATOMIC_XCHG };
  gboolean is_float = FALSE;
  int err;

  if (shmfs_cli_want_number ("set", path, tg, leaf) != 0)
    return 2;
  if ((err = parse_operand (leaf, text, &io.operand, &is_float)) < 0)
    return operand_error ("set", text, leaf, err);
  io.flags = is_float ? SHMFS_ATOMIC_FLOAT : 0;
  return run_atomic ("set", path, tg, offset, &io);
}

static int
atomic (const char *verb, int argc, char **argv, guint32 op)
{
  struct shmfs_atomic io = { .op = op };
  g_autofree char *shown = NULL;
  g_auto (ShmType) type = { 0 };
  g_auto (ShmType) leaf = { 0 };
  const char *path;
  gboolean is_float;
  guint64 offset;
  ShmfsCliTarget tg;
  int err, want = op == SHMFS_ATOMIC_CAS ? 3 : op == SHMFS_ATOMIC_LOAD ? 1 : 2;

  if (shmfs_cli_take_target (&argc, argv, &tg) < 0 || argc != want)
    return SHMFS_CLI_USAGE;
  path = argv[0];
  if ((err = shmfs_cli_read_type (path, &type)) < 0)
    return shmfs_cli_fail (verb, path, -err);
  if ((err = shmfs_cli_resolve_target (verb, path, &type, &tg, &offset, &leaf)) != 0
      || (err = shmfs_cli_want_number (verb, path, &tg, &leaf)) != 0)
    return err;
  is_float = shm_type_is_float (&leaf);
  if (op != SHMFS_ATOMIC_LOAD)
    {
      err = parse_operand (&leaf, argv[want - 1], &io.operand, &is_float);
      if (err < 0)
        return operand_error (verb, argv[want - 1], &leaf, err);
    }
  if (op == SHMFS_ATOMIC_CAS && (err = parse_operand (&leaf, argv[1], &io.expected, &is_float)) < 0)
    return operand_error (verb, argv[1], &leaf, err);
  io.flags = is_float ? SHMFS_ATOMIC_FLOAT : 0;
  if ((err = run_atomic (verb, path, &tg, offset, &io)) != 0)
    return err;

  if (op == SHMFS_ATOMIC_ADD || op == SHMFS_ATOMIC_SUB)
    {
      /* The value after this operation, with the element's own arithmetic. */
      union shmfs_value after = io.result;
      if (is_float)
        after.f = op == SHMFS_ATOMIC_ADD ? io.result.f + io.operand.f : io.result.f - io.operand.f;
      else
        after.u = op == SHMFS_ATOMIC_ADD ? io.result.u + io.operand.u : io.result.u - io.operand.u;
      shown = format_value (&leaf, &after);
    }
  else
    shown = format_value (&leaf, &io.result);
  fputs (shown, stdout);
  return op == SHMFS_ATOMIC_CAS && !io.swapped ? 1 : 0;
}

int shmfs_cli_cmd_load (int argc, char **argv) { return atomic ("load", argc, argv, SHMFS_ATOMIC_LOAD); }
int shmfs_cli_cmd_add (int argc, char **argv)  { return atomic ("add", argc, argv, SHMFS_ATOMIC_ADD); }
int shmfs_cli_cmd_sub (int argc, char **argv)  { return atomic ("sub", argc, argv, SHMFS_ATOMIC_SUB); }
int shmfs_cli_cmd_xchg (int argc, char **argv) { return atomic ("xchg", argc, argv, SHMFS_ATOMIC_XCHG); }
int shmfs_cli_cmd_cas (int argc, char **argv)  { return atomic ("cas", argc, argv, SHMFS_ATOMIC_CAS); }
