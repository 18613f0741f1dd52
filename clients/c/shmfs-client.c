/* shmfs-client.c — libshmfs: mapping (or reading and writing), creating,
 * locking and atomic operations on the objects of a mounted shmfs, through
 * its files only.
 *
 * Types are read with core's shm_type_parse; glib comes in only through
 * it.  The library holds no global state: a ShmfsMap owns its fd (the lock,
 * the ioctls, pread and pwrite go through it) and its mapping, if any
 * (shmfs_open makes none: a remote mount cannot map).
 */
#include "shmfs/shmfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "shm-type.h"
#include "shmfs/ioctl.h"

#define XA_TYPE "user.shmfs.type"
#define XA_MODE "user.shmfs.mode"
#define RAW_DIR ".raw"

struct _ShmfsMap {
  int      fd;                            /* the binary view */
  void    *data;                          /* NULL from shmfs_open */
  size_t   nbytes;
  size_t   count;
  size_t   elem_size;
  ShmfsElem elem;
  gboolean is_float;
  unsigned ndim;
  size_t   shape[SHM_TYPE_MAX_DIMS];
  char    *spec;                          /* canonical, malloc'ed */
  ShmType  type;                          /* holds a record's fields */
  char   **field_types;                   /* a record's: each field's spec */
};

/* ---- finding the mount ------------------------------------------------ */

static gboolean
has_mode_xattr (const char *dir)
{
  return getxattr (dir, XA_MODE, NULL, 0) >= 0;
}

/* Cuts abs (an absolute path) after its parent directory: "/a/b" -> "/a",
 * "/a" -> "/".  Returns FALSE at "/". */
static gboolean
cut_to_parent (char *abs)
{
  char *slash = strrchr (abs, '/');

  if (abs[1] == '\0')
    return FALSE;
  if (slash == abs)
    slash[1] = '\0';
  else
    *slash = '\0';
  return TRUE;
}

/* Fills *root_len with the length of the mount root's prefix of abs (the
 * real path of an existing non-directory on device dev): the topmost
 * ancestor on the same device with user.shmfs.mode.  That is MNT, not
 * MNT/.raw, which carries the xattr too.  Returns 0 or -ENOTSUP. */
static int
find_root (const char *abs, dev_t dev, size_t *root_len)
{
  char *dir = strdup (abs);
  gboolean found = FALSE;
  struct stat st;

  if (dir == NULL)
    return -ENOMEM;
  while (cut_to_parent (dir) && stat (dir, &st) == 0 && st.st_dev == dev)
    if (has_mode_xattr (dir))
      {
        found = TRUE;
        *root_len = strlen (dir);
      }
  free (dir);
  return found ? 0 : -ENOTSUP;
}

/* The binary view of path (a text or binary view inside a shmfs mount);
 * free() it. */
static int
raw_path_of (const char *path, char **out)
{
  char *abs, *raw;
  const char *rel;
  struct stat st;
  size_t root_len;
  int err;

  if (stat (path, &st) < 0)
    return -errno;
  if (S_ISDIR (st.st_mode))
    return -EISDIR;
  if ((abs = realpath (path, NULL)) == NULL)
    return -errno;
  if ((err = find_root (abs, st.st_dev, &root_len)) < 0)
    {
      free (abs);
      return err;
    }
  rel = abs + root_len + (root_len > 1);   /* past "MNT/" ("/" alone: past it) */
  if (strncmp (rel, RAW_DIR "/", strlen (RAW_DIR "/")) == 0)
    {
      *out = abs;
      return 0;
    }
  if (asprintf (&raw, "%.*s/" RAW_DIR "/%s", (int) (root_len > 1 ? root_len : 0), abs, rel) < 0)
    raw = NULL;
  free (abs);
  if (raw == NULL)
    return -ENOMEM;
  *out = raw;
  return 0;
}

/* ---- mapping ---------------------------------------------------------- */

static ShmfsElem
public_elem (ShmElem e)
{
  switch (e)
    {
    case SHM_ELEM_I8:   return SHMFS_ELEM_I8;
    case SHM_ELEM_U8:   return SHMFS_ELEM_U8;
    case SHM_ELEM_I16:  return SHMFS_ELEM_I16;
    case SHM_ELEM_U16:  return SHMFS_ELEM_U16;
    case SHM_ELEM_I32:  return SHMFS_ELEM_I32;
    case SHM_ELEM_U32:  return SHMFS_ELEM_U32;
    case SHM_ELEM_I64:  return SHMFS_ELEM_I64;
    case SHM_ELEM_U64:  return SHMFS_ELEM_U64;
    case SHM_ELEM_F32:  return SHMFS_ELEM_F32;
    case SHM_ELEM_F64:  return SHMFS_ELEM_F64;
    case SHM_ELEM_BOOL: return SHMFS_ELEM_BOOL;
    case SHM_ELEM_RECORD: return SHMFS_ELEM_RECORD;
    case SHM_ELEM_CHAR: break;
    }
  return SHMFS_ELEM_CHAR;
}

/* Reads the open view's type into *t.  Returns 0, -ENODATA (untyped) or
 * -EIO (a spec this library cannot read: a newer daemon). */
static int
read_type (int fd, ShmType *t)
{
  char spec[SHM_TYPE_MAX_SPEC + 1];
  ssize_t len = fgetxattr (fd, XA_TYPE, spec, sizeof spec);

  if (len < 0)
    return errno == ERANGE ? -EIO : -errno;
  return shm_type_parse (spec, (gsize) len, t) < 0 ? -EIO : 0;
}

/* Fills map's type fields from type, taking over its reference. */
static int
set_type (ShmfsMap *map, ShmType *type)
{
  const ShmType *t = &map->type;
  guint64 nbytes;

  map->type = *type;
  type->record = NULL;
  nbytes = shm_type_nbytes (t);
  if (nbytes > SIZE_MAX)
    return -EFBIG;
  map->nbytes = (size_t) nbytes;
  map->count = (size_t) shm_type_count (t);
  map->elem_size = shm_type_elem_size (t);
  map->elem = public_elem (t->elem);
  map->is_float = shm_type_is_float (t);
  map->ndim = t->ndim;
  for (unsigned i = 0; i < t->ndim; i++)
    map->shape[i] = (size_t) t->dims[i];
  map->spec = shm_type_to_string (t);   /* malloc'ed, freed with the map */
  if (map->spec == NULL)
    return -ENOMEM;
  if (t->elem == SHM_ELEM_RECORD)
    {
      unsigned n = shm_record_n_fields (map->type.record);

      if ((map->field_types = calloc (n, sizeof (char *))) == NULL)
        return -ENOMEM;
      for (unsigned i = 0; i < n; i++)
        if ((map->field_types[i] = shm_type_to_string (&shm_record_field (map->type.record, i)->type)) == NULL)
          return -ENOMEM;
    }
  return 0;
}

/* Opens path's binary view and reads its type into a new *out, unmapped
 * (data NULL).  Returns 0 or -errno as shmfs_open. */
static int
open_object (const char *path, int flags, ShmfsMap **out)
{
  gboolean ro = (flags & SHMFS_MAP_READONLY) != 0;
  ShmfsMap *map = NULL;
  char *raw = NULL;
  struct stat st;
  ShmType t;
  int err;

  if ((flags & ~SHMFS_MAP_READONLY) != 0 || path == NULL || out == NULL)
    return -EINVAL;
  if ((err = raw_path_of (path, &raw)) < 0)
    return err;
  if ((map = calloc (1, sizeof *map)) == NULL)
    {
      err = -ENOMEM;
      goto out;
    }
  map->fd = open (raw, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (map->fd < 0)
    {
      err = -errno;
      goto out;
    }
  if ((err = read_type (map->fd, &t)) < 0 || (err = set_type (map, &t)) < 0)
    goto out;
  if (fstat (map->fd, &st) < 0)
    {
      err = -errno;
      goto out;
    }
  if ((guint64) st.st_size != map->nbytes)
    {
      err = -EIO;   /* not what the type says: not a shmfs binary view */
      goto out;
    }
  *out = map;
  map = NULL;

out:
  shmfs_unmap (map);
  free (raw);
  return err;
}

int
shmfs_open (const char *path, int flags, ShmfsMap **out)
{
  return open_object (path, flags, out);
}

int
shmfs_map (const char *path, int flags, ShmfsMap **out)
{
  gboolean ro = (flags & SHMFS_MAP_READONLY) != 0;
  ShmfsMap *map;
  void *data;
  int err;

  if ((err = open_object (path, flags, &map)) < 0)
    return err;
  data = mmap (NULL, map->nbytes, ro ? PROT_READ : PROT_READ | PROT_WRITE,
               MAP_SHARED, map->fd, 0);
  if (data == MAP_FAILED)
    {
      err = -errno;   /* -ENODEV: a remote mount, whose views cannot be mapped */
      shmfs_unmap (map);
      return err;
    }
  map->data = data;
  *out = map;
  return 0;
}

void
shmfs_unmap (ShmfsMap *map)
{
  if (map == NULL)
    return;
  if (map->data != NULL)
    munmap (map->data, map->nbytes);
  if (map->fd >= 0)
    close (map->fd);
  free (map->spec);
  if (map->field_types != NULL)
    for (unsigned i = 0; i < shmfs_map_n_fields (map); i++)
      free (map->field_types[i]);
  free (map->field_types);
  shm_type_clear (&map->type);
  free (map);
}

void *shmfs_map_data (const ShmfsMap *map)         { return map->data; }
size_t shmfs_map_nbytes (const ShmfsMap *map)      { return map->nbytes; }
size_t shmfs_map_count (const ShmfsMap *map)       { return map->count; }
ShmfsElem shmfs_map_elem (const ShmfsMap *map)     { return map->elem; }
size_t shmfs_map_elem_size (const ShmfsMap *map)   { return map->elem_size; }
unsigned shmfs_map_ndim (const ShmfsMap *map)      { return map->ndim; }
const size_t *shmfs_map_shape (const ShmfsMap *map) { return map->shape; }
const char *shmfs_map_type (const ShmfsMap *map)   { return map->spec; }
int shmfs_map_fd (const ShmfsMap *map)             { return map->fd; }

/* ---- reading and writing ---------------------------------------------- */

/* Whether len bytes at off lie within the object. */
static gboolean
in_object (const ShmfsMap *map, size_t off, size_t len)
{
  return off <= map->nbytes && len <= map->nbytes - off;
}

int
shmfs_read (const ShmfsMap *map, size_t off, void *buf, size_t len)
{
  ssize_t n;

  if (map == NULL || (buf == NULL && len > 0) || !in_object (map, off, len))
    return -EINVAL;
  if (len == 0)
    return 0;
  n = pread (map->fd, buf, len, (off_t) off);   /* one call: one snapshot */
  if (n < 0)
    return -errno;
  return (size_t) n == len ? 0 : -EIO;
}

int
shmfs_write (ShmfsMap *map, size_t off, const void *buf, size_t len)
{
  ssize_t n;

  if (map == NULL || (buf == NULL && len > 0) || !in_object (map, off, len))
    return -EINVAL;
  if (len == 0)
    return 0;
  n = pwrite (map->fd, buf, len, (off_t) off);  /* one call: stored at once */
  if (n < 0)
    return -errno;
  return (size_t) n == len ? 0 : -EIO;
}

/* ---- records ---------------------------------------------------------- */

unsigned
shmfs_map_n_fields (const ShmfsMap *map)
{
  return map->type.elem == SHM_ELEM_RECORD ? shm_record_n_fields (map->type.record) : 0;
}

int
shmfs_map_field (const ShmfsMap *map, unsigned i, const char **name, size_t *offset,
                 const char **type)
{
  const ShmField *f;

  if (i >= shmfs_map_n_fields (map))
    return -EINVAL;
  f = shm_record_field (map->type.record, i);
  if (name != NULL)
    *name = f->name;
  if (offset != NULL)
    *offset = (size_t) f->offset;
  if (type != NULL)
    *type = map->field_types[i];
  return 0;
}

int
shmfs_map_field_offset (const ShmfsMap *map, const char *path, size_t *offset, ShmfsElem *elem,
                        size_t *size)
{
  guint64 off;
  ShmType leaf;

  if (path == NULL || map->type.elem != SHM_ELEM_RECORD
      || shm_type_resolve_field (&map->type, path, strlen (path), &off, &leaf) < 0)
    return -EINVAL;
  if (offset != NULL)
    *offset = (size_t) off;
  if (elem != NULL)
    *elem = public_elem (leaf.elem);
  if (size != NULL)
    *size = (size_t) shm_type_nbytes (&leaf);
  shm_type_clear (&leaf);
  return 0;
}

/* ---- creating --------------------------------------------------------- */

/* Returns 0 when directory dir is inside a shmfs mount, else -ENOTSUP or
 * the errno of finding it. */
static int
check_in_mount (const char *dir)
{
  char *probe, *abs = realpath (dir, NULL);
  struct stat st;
  size_t root_len;
  int err;

  if (abs == NULL)
    return -errno;
  if (stat (abs, &st) < 0)
    err = -errno;
  else if (!S_ISDIR (st.st_mode))
    err = -ENOTDIR;
  else if (asprintf (&probe, "%s/x", abs) < 0)
    err = -ENOMEM;
  else
    {
      err = find_root (probe, st.st_dev, &root_len);   /* walks up from abs itself */
      free (probe);
    }
  free (abs);
  return err;
}

int
shmfs_create (const char *path, const char *spec, mode_t mode)
{
  char *dir = NULL, *tmp = NULL;
  const char *base;
  struct stat st;
  ShmType t;
  int fd = -1, err = 0;

  if (path == NULL || spec == NULL || shm_type_parse (spec, strlen (spec), &t) < 0)
    return -EINVAL;
  shm_type_clear (&t);   /* only checked: the daemon parses it again */
  base = strrchr (path, '/');
  base = base ? base + 1 : path;
  if (base[0] == '\0' || strcmp (base, ".") == 0 || strcmp (base, "..") == 0)
    return -EINVAL;
  if (lstat (path, &st) == 0)
    return -EEXIST;
  if (errno != ENOENT)
    return -errno;
  if (asprintf (&dir, "%.*s", (int) (base - path), path) < 0)   /* "" or ends in '/' */
    return -ENOMEM;
  if ((err = check_in_mount (dir[0] ? dir : ".")) < 0)
    goto out;

  for (int tries = 0; fd < 0; tries++)
    {
      unsigned int rnd = 0;

      if (getrandom (&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
        rnd = (unsigned int) getpid () * 2654435761u + (unsigned int) tries;
      free (tmp);
      if (asprintf (&tmp, "%s.%s.new-%08x", dir, base, rnd) < 0)
        {
          tmp = NULL;
          err = -ENOMEM;
          goto out;
        }
      fd = open (tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
      if (fd < 0 && (errno != EEXIST || tries >= 100))
        {
          err = -errno;
          goto out;
        }
    }
  if (fsetxattr (fd, XA_TYPE, spec, strlen (spec), 0) < 0)
    err = -errno;
  if (close (fd) < 0 && err == 0)
    err = -errno;
  if (err == 0 && renameat2 (AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0)
    err = -errno;
  if (err < 0)
    unlink (tmp);   /* nothing left behind */

out:
  free (tmp);
  free (dir);
  return err;
}

/* ---- locking ---------------------------------------------------------- */

static int
do_flock (ShmfsMap *map, int op)
{
  return flock (map->fd, op) < 0 ? -errno : 0;
}

int
shmfs_lock (ShmfsMap *map, bool exclusive)
{
  return do_flock (map, exclusive ? LOCK_EX : LOCK_SH);
}

int
shmfs_trylock (ShmfsMap *map, bool exclusive)
{
  return do_flock (map, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
}

int
shmfs_unlock (ShmfsMap *map)
{
  return do_flock (map, LOCK_UN);
}

/* ---- atomic operations ------------------------------------------------ */

/* No field: the element itself. */
#define NO_FIELD SIZE_MAX

/* Runs op on element index (on the number at byte offset field of that
 * record, unless NO_FIELD) through the daemon; io carries the operands in
 * and the result out.  Integer ops need an integer (or bool) element and
 * float ops a float one: the widened result is read accordingly. */
static int
atomic (ShmfsMap *map, uint32_t op, gboolean is_float, size_t index, size_t field,
        struct shmfs_atomic *io)
{
  gboolean target_float = map->is_float;

  if (field != NO_FIELD)
    {
      ShmType leaf;

      if (field > UINT32_MAX || shm_type_scalar_at (&map->type, field, &leaf) < 0)
        return -EINVAL;
      target_float = shm_type_is_float (&leaf);
      shm_type_clear (&leaf);
      io->flags = SHMFS_ATOMIC_FIELD;
      io->field = (uint32_t) field;
    }
  if (target_float != is_float)
    return -EINVAL;
  io->op = op;
  io->flags |= is_float ? SHMFS_ATOMIC_FLOAT : 0;
  io->index = index;
  return ioctl (map->fd, SHMFS_IOC_ATOMIC, io) < 0 ? -errno : 0;
}

static int
atomic_int (ShmfsMap *map, uint32_t op, size_t index, size_t field, int64_t operand,
            int64_t expected, int64_t *old)
{
  struct shmfs_atomic io = { .operand.i = operand, .expected.i = expected };
  int err = atomic (map, op, FALSE, index, field, &io);

  if (err < 0)
    return err;
  if (old != NULL)
    *old = io.result.i;
  return op == SHMFS_ATOMIC_CAS ? (io.swapped != 0) : 0;
}

static int
atomic_f64 (ShmfsMap *map, uint32_t op, size_t index, size_t field, double operand,
            double expected, double *old)
{
  struct shmfs_atomic io = { .operand.f = operand, .expected.f = expected };
  int err = atomic (map, op, TRUE, index, field, &io);

  if (err < 0)
    return err;
  if (old != NULL)
    *old = io.result.f;
  return op == SHMFS_ATOMIC_CAS ? (io.swapped != 0) : 0;
}

int
shmfs_atomic_load (ShmfsMap *map, size_t index, int64_t *old)
{
  return atomic_int (map, SHMFS_ATOMIC_LOAD, index, NO_FIELD, 0, 0, old);
}

int
shmfs_atomic_add (ShmfsMap *map, size_t index, int64_t delta, int64_t *old)
{
  return atomic_int (map, SHMFS_ATOMIC_ADD, index, NO_FIELD, delta, 0, old);
}

int
shmfs_atomic_sub (ShmfsMap *map, size_t index, int64_t delta, int64_t *old)
{
  return atomic_int (map, SHMFS_ATOMIC_SUB, index, NO_FIELD, delta, 0, old);
}

int
shmfs_atomic_xchg (ShmfsMap *map, size_t index, int64_t value, int64_t *old)
{
  return atomic_int (map, SHMFS_ATOMIC_XCHG, index, NO_FIELD, value, 0, old);
}

int
shmfs_atomic_cas (ShmfsMap *map, size_t index, int64_t expected, int64_t value, int64_t *old)
{
  return atomic_int (map, SHMFS_ATOMIC_CAS, index, NO_FIELD, value, expected, old);
}

int
shmfs_atomic_load_f64 (ShmfsMap *map, size_t index, double *old)
{
  return atomic_f64 (map, SHMFS_ATOMIC_LOAD, index, NO_FIELD, 0, 0, old);
}

int
shmfs_atomic_add_f64 (ShmfsMap *map, size_t index, double delta, double *old)
{
  return atomic_f64 (map, SHMFS_ATOMIC_ADD, index, NO_FIELD, delta, 0, old);
}

int
shmfs_atomic_sub_f64 (ShmfsMap *map, size_t index, double delta, double *old)
{
  return atomic_f64 (map, SHMFS_ATOMIC_SUB, index, NO_FIELD, delta, 0, old);
}

int
shmfs_atomic_xchg_f64 (ShmfsMap *map, size_t index, double value, double *old)
{
  return atomic_f64 (map, SHMFS_ATOMIC_XCHG, index, NO_FIELD, value, 0, old);
}

int
shmfs_atomic_cas_f64 (ShmfsMap *map, size_t index, double expected, double value, double *old)
{
  return atomic_f64 (map, SHMFS_ATOMIC_CAS, index, NO_FIELD, value, expected, old);
}

int
shmfs_atomic_field_load (ShmfsMap *map, size_t index, size_t field, int64_t *old)
{
  return atomic_int (map, SHMFS_ATOMIC_LOAD, index, field, 0, 0, old);
}

int
shmfs_atomic_field_add (ShmfsMap *map, size_t index, size_t field, int64_t delta, int64_t *old)
{
  return atomic_int (map, SHMFS_ATOMIC_ADD, index, field, delta, 0, old);
}

int
shmfs_atomic_field_sub (ShmfsMap *map, size_t index, size_t field, int64_t delta, int64_t *old)
{
  return atomic_int (map, SHMFS_ATOMIC_SUB, index, field, delta, 0, old);
}

int
shmfs_atomic_field_xchg (ShmfsMap *map, size_t index, size_t field, int64_t value, int64_t *old)
{
  return atomic_int (map, SHMFS_ATOMIC_XCHG, index, field, value, 0, old);
}

int
shmfs_atomic_field_cas (ShmfsMap *map, size_t index, size_t field, int64_t expected,
                        int64_t value, int64_t *old)
{
  return atomic_int (map, SHMFS_ATOMIC_CAS, index, field, value, expected, old);
}

int
shmfs_atomic_field_load_f64 (ShmfsMap *map, size_t index, size_t field, double *old)
{
  return atomic_f64 (map, SHMFS_ATOMIC_LOAD, index, field, 0, 0, old);
}

int
shmfs_atomic_field_add_f64 (ShmfsMap *map, size_t index, size_t field, double delta, double *old)
{
  return atomic_f64 (map, SHMFS_ATOMIC_ADD, index, field, delta, 0, old);
}

int
shmfs_atomic_field_sub_f64 (ShmfsMap *map, size_t index, size_t field, double delta, double *old)
{
  return atomic_f64 (map, SHMFS_ATOMIC_SUB, index, field, delta, 0, old);
}

int
shmfs_atomic_field_xchg_f64 (ShmfsMap *map, size_t index, size_t field, double value,
                             double *old)
{
  return atomic_f64 (map, SHMFS_ATOMIC_XCHG, index, field, value, 0, old);
}

int
shmfs_atomic_field_cas_f64 (ShmfsMap *map, size_t index, size_t field, double expected,
                            double value, double *old)
{
  return atomic_f64 (map, SHMFS_ATOMIC_CAS, index, field, value, expected, old);
}

int
shmfs_notify (ShmfsMap *map)
{
  return ioctl (map->fd, SHMFS_IOC_NOTIFY) < 0 ? -errno : 0;
}

const char *
shmfs_strerror (int err)
{
  switch (err)
    {
    case -ENOTSUP: return "not inside a shmfs mount";
    case -ENODATA: return "the object has no type yet";
    case -ENODEV:  return "the object lives on a remote mount and cannot be mapped; "
                          "use shmfs_open, shmfs_read and shmfs_write";
    default:       return strerror (err < 0 ? -err : err);
    }
}
