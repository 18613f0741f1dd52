/* shmfs.h — libshmfs, the C client of a mounted shmfs.
 *
 * Maps an object's binary view (MNT/.raw/PATH) given its path -- or, on a
 * remote mount, which cannot map it, opens it to read and write it --
 * tells its type and shape (and a record's fields), creates typed objects
 * atomically, takes the object's lock (the one `flock MNT/PATH` takes) and
 * runs the daemon's atomic operations (shmfs/ioctl.h), on a record's
 * fields too.  Plain C: no glib in this header, and the
 * library needs only libc at run time.
 *
 * Every function that can fail returns 0 (or a count) or -errno; errno
 * itself is left alone.  shmfs_strerror() says what an error means here.
 *
 *   ShmfsMap *m;
 *   int err = shmfs_map ("/tmp/shm/count", 0, &m);
 *   if (err < 0)
 *     errx (1, "/tmp/shm/count: %s", shmfs_strerror (err));
 *   __atomic_fetch_add ((int64_t *) shmfs_map_data (m), 1, __ATOMIC_SEQ_CST);
 *   shmfs_unmap (m);
 *
 * Build with: cc prog.c $(pkg-config --cflags --libs shmfs)
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An object's binary view, open and mapped MAP_SHARED (shmfs_map), or
 * open only (shmfs_open). */
typedef struct _ShmfsMap ShmfsMap;

/* Element types, as in type specs (i8 ... char[N]). */
typedef enum {
  SHMFS_ELEM_I8, SHMFS_ELEM_U8, SHMFS_ELEM_I16, SHMFS_ELEM_U16,
  SHMFS_ELEM_I32, SHMFS_ELEM_U32, SHMFS_ELEM_I64, SHMFS_ELEM_U64,
  SHMFS_ELEM_F32, SHMFS_ELEM_F64, SHMFS_ELEM_BOOL, SHMFS_ELEM_CHAR,
  SHMFS_ELEM_RECORD,
} ShmfsElem;

/* shmfs_map() and shmfs_open() flags. */
#define SHMFS_MAP_READONLY 0x1   /* open O_RDONLY, map PROT_READ */

/* Maps the object at path: its text view MNT/PATH, or its binary view
 * MNT/.raw/PATH.  The mount is found by walking up to the topmost directory
 * of the same filesystem carrying the xattr user.shmfs.mode.  Returns 0 and
 * *out, or -ENOTSUP (path is not inside a shmfs mount), -ENODATA (the
 * object has no type yet), -EISDIR, -EINVAL (bad flags), -EIO (the binary
 * view's size or type is not one this library reads), -ENODEV (the object
 * lives on a remote mount, which cannot map it: use shmfs_open), or the
 * errno of stat/open/mmap (-ENOENT, -EACCES ...). */
int shmfs_map (const char *path, int flags, ShmfsMap **out);

/* As shmfs_map, but does not map: for remote mounts (shmfs -o
 * remote=...), whose binary views cannot be mapped, and for programs that
 * run on any mount.  The object's bytes are read and written with
 * shmfs_read and shmfs_write; shmfs_map_data returns NULL; every other
 * function here works as on a mapping.
 *
 *   ShmfsMap *m;
 *   int64_t n;
 *   int err = shmfs_map ("/mnt/shm/count", 0, &m);
 *   if (err == -ENODEV)
 *     err = shmfs_open ("/mnt/shm/count", 0, &m);
 *   if (err < 0)
 *     errx (1, "count: %s", shmfs_strerror (err));
 *   shmfs_lock (m, true);                  (a read-modify-write: locked)
 *   shmfs_read (m, 0, &n, sizeof n);
 *   n++;
 *   shmfs_write (m, 0, &n, sizeof n);
 *   shmfs_unlock (m);
 *   shmfs_unmap (m);
 */
int shmfs_open (const char *path, int flags, ShmfsMap **out);

/* Reads (writes) len bytes at byte offset off of the object, with one
 * pread (pwrite), which a remote mount applies atomically: a read is a
 * consistent snapshot of the range, a write is seen whole or not at all.
 * On any map, from shmfs_map or shmfs_open.  Returns 0, -EINVAL (the range
 * passes the object's end), -EIO (a short transfer), -EBADF (a write on a
 * SHMFS_MAP_READONLY map), or the errno of pread (pwrite). */
int shmfs_read (const ShmfsMap *map, size_t off, void *buf, size_t len);
int shmfs_write (ShmfsMap *map, size_t off, const void *buf, size_t len);

/* Unmaps, closes (dropping a lock still held) and frees; NULL is a no-op.
 * Also for a map from shmfs_open. */
void shmfs_unmap (ShmfsMap *map);

/* The mapped bytes: nbytes long, native byte order, C order.  NULL for a
 * map from shmfs_open. */
void *shmfs_map_data (const ShmfsMap *map);
size_t shmfs_map_nbytes (const ShmfsMap *map);
/* Number of elements (1 for a scalar). */
size_t shmfs_map_count (const ShmfsMap *map);
ShmfsElem shmfs_map_elem (const ShmfsMap *map);
/* Bytes of one element (N for char[N]). */
size_t shmfs_map_elem_size (const ShmfsMap *map);
/* Rank (0 for a scalar) and the ndim dimensions, outermost first. */
unsigned shmfs_map_ndim (const ShmfsMap *map);
const size_t *shmfs_map_shape (const ShmfsMap *map);
/* The canonical type spec, e.g. "f64[3][4]"; valid until shmfs_unmap. */
const char *shmfs_map_type (const ShmfsMap *map);
/* The open binary view, e.g. for fsync(2); owned by map. */
int shmfs_map_fd (const ShmfsMap *map);

/* Records ({x:f64, v:f32[3]}, SHMFS_ELEM_RECORD; shmfs_map_elem_size is
 * the record's size, padding included): check a C struct against the
 * object before using the mapping as one.
 *
 *   size_t off;
 *   ShmfsElem elem;
 *   if (shmfs_map_elem_size (m) != sizeof (Pose)
 *       || shmfs_map_field_offset (m, "x", &off, &elem, NULL) < 0
 *       || off != offsetof (Pose, x) || elem != SHMFS_ELEM_F64)
 *     errx (1, "not a Pose: %s", shmfs_map_type (m));
 */
/* Number of fields of the record, nested records counting as one (0 for
 * any other type). */
unsigned shmfs_map_n_fields (const ShmfsMap *map);
/* Field i (declaration order): its name, byte offset in the record
 * (offsetof) and type spec ("f64", "f32[3]", "{a:u8, b:i64}"); any pointer
 * may be NULL; the strings stay valid until shmfs_unmap.  Returns 0 or
 * -EINVAL (no field i). */
int shmfs_map_field (const ShmfsMap *map, unsigned i, const char **name, size_t *offset,
                     const char **type);
/* The field at path ("x", "pose.x", "v[2]", "m[1][0]", or a whole array
 * "v"): its byte offset in the record, its element type and its size in
 * bytes (sizeof); any pointer may be NULL.  Returns 0 or -EINVAL (not a
 * record, no such field, an index out of the field's shape). */
int shmfs_map_field_offset (const ShmfsMap *map, const char *path, size_t *offset,
                            ShmfsElem *elem, size_t *size);

/* Creates the object path of type spec atomically: under a hidden
 * temporary name in the same directory, typed (zero-filled), then renamed
 * into place with RENAME_NOREPLACE, so nobody sees it untyped.  mode is
 * as for open(2).  Returns 0, -EEXIST (path exists), -EINVAL (bad spec),
 * -ENOTSUP (not inside a shmfs mount), or the daemon's errno (e.g. ENOSPC). */
int shmfs_create (const char *path, const char *spec, mode_t mode);

/* Takes the object's lock, waiting for it: the daemon keeps one lock per
 * object, so this excludes `flock MNT/PATH` and fcntl locks on either view
 * and makes the daemon's atomic operations from other processes wait.  The
 * lock belongs to map (an flock on its open file): two maps exclude each
 * other even in one process, and a forked child shares it.  Returns 0 or
 * -errno (-EINTR when a signal interrupted the wait). */
int shmfs_lock (ShmfsMap *map, bool exclusive);
/* As shmfs_lock, but -EWOULDBLOCK at once when someone else holds it. */
int shmfs_trylock (ShmfsMap *map, bool exclusive);
int shmfs_unlock (ShmfsMap *map);

/* Atomic operations on element index (C order), done by the daemon
 * (shmfs/ioctl.h): atomic with every file interface, and in passthrough
 * mode also with CPU atomics on mappings.  Integer variants take integer
 * and bool elements, widened to int64_t (an unsigned element's value is
 * its bits: cast to uint64_t); add/sub wrap at the element's width.  The
 * _f64 variants take f32 and f64 elements.  *old (may be NULL) receives
 * the element as it was before.  Returns 0 or -EINVAL (index out of range,
 * wrong kind of element, add/sub on bool, any char[N]), -ERANGE (a value to
 * store the element cannot hold), -EBADF (a change on a map made with
 * SHMFS_MAP_READONLY: only loads), or another -errno. */
int shmfs_atomic_load (ShmfsMap *map, size_t index, int64_t *old);
int shmfs_atomic_add (ShmfsMap *map, size_t index, int64_t delta, int64_t *old);
int shmfs_atomic_sub (ShmfsMap *map, size_t index, int64_t delta, int64_t *old);
int shmfs_atomic_xchg (ShmfsMap *map, size_t index, int64_t value, int64_t *old);
/* Stores value if the element equals expected: returns 1 when it did, 0
 * when not (*old then holds what it was), or -errno. */
int shmfs_atomic_cas (ShmfsMap *map, size_t index, int64_t expected, int64_t value,
                      int64_t *old);

int shmfs_atomic_load_f64 (ShmfsMap *map, size_t index, double *old);
int shmfs_atomic_add_f64 (ShmfsMap *map, size_t index, double delta, double *old);
int shmfs_atomic_sub_f64 (ShmfsMap *map, size_t index, double delta, double *old);
int shmfs_atomic_xchg_f64 (ShmfsMap *map, size_t index, double value, double *old);
int shmfs_atomic_cas_f64 (ShmfsMap *map, size_t index, double expected, double value,
                          double *old);

/* The same on the number or bool at byte offset field (offsetof, or
 * shmfs_map_field_offset: a field array's items too) of record index of a
 * record object.  -EINVAL also when field does not start a number or bool
 * (padding, a string, the middle of a field) or the object is no record. */
int shmfs_atomic_field_load (ShmfsMap *map, size_t index, size_t field, int64_t *old);
int shmfs_atomic_field_add (ShmfsMap *map, size_t index, size_t field, int64_t delta,
                            int64_t *old);
int shmfs_atomic_field_sub (ShmfsMap *map, size_t index, size_t field, int64_t delta,
                            int64_t *old);
int shmfs_atomic_field_xchg (ShmfsMap *map, size_t index, size_t field, int64_t value,
                             int64_t *old);
int shmfs_atomic_field_cas (ShmfsMap *map, size_t index, size_t field, int64_t expected,
                            int64_t value, int64_t *old);

int shmfs_atomic_field_load_f64 (ShmfsMap *map, size_t index, size_t field, double *old);
int shmfs_atomic_field_add_f64 (ShmfsMap *map, size_t index, size_t field, double delta,
                                double *old);
int shmfs_atomic_field_sub_f64 (ShmfsMap *map, size_t index, size_t field, double delta,
                                double *old);
int shmfs_atomic_field_xchg_f64 (ShmfsMap *map, size_t index, size_t field, double value,
                                 double *old);
int shmfs_atomic_field_cas_f64 (ShmfsMap *map, size_t index, size_t field, double expected,
                                double value, double *old);

/* Tells the daemon the value changed through a mapping, waking poll(2)ers
 * of the text view (SHMFS_IOC_NOTIFY).  Returns 0 or -errno. */
int shmfs_notify (ShmfsMap *map);

/* A message for err (a -errno from this library): the meaning given above
 * for -ENOTSUP, -ENODATA and -ENODEV, strerror() otherwise. */
const char *shmfs_strerror (int err);

#ifdef __cplusplus
}
#endif
