/* shmfs/ioctl.h — atomic operations on shmfs objects, for any language.
 *
 * The ABI is this file: every other language's copy of struct shmfs_atomic
 * (the Python package's included) is checked against it by a test.
 *
 * Open either view of an object (MNT/PATH or MNT/.raw/PATH) and call
 * ioctl(fd, SHMFS_IOC_ATOMIC, &op) with a struct shmfs_atomic.  The daemon
 * waits while another process holds the object's lock exclusively (flock or
 * fcntl), then applies the operation to one element:
 *
 *   SHMFS_ATOMIC_LOAD   result = element
 *   SHMFS_ATOMIC_ADD    result = element; element += operand
 *   SHMFS_ATOMIC_SUB    result = element; element -= operand
 *   SHMFS_ATOMIC_XCHG   result = element; element = operand
 *   SHMFS_ATOMIC_CAS    result = element; if element == expected: element =
 *                       operand, swapped = 1; else swapped = 0
 *
 * Values travel widened to 64 bits: integers (and bool) as int64/uint64 in
 * .i/.u, floats as double in .f.  Set SHMFS_ATOMIC_FLOAT in flags when
 * operand/expected are doubles; that is EINVAL on an integer element.
 * Integer arithmetic wraps at the element's width, as C atomics do.  add/sub
 * on bool and anything on char[N] are EINVAL; an index past the last
 * element is EINVAL; an untyped object is ENODATA.
 *
 * On a record (or an array of them) index picks the record and field the
 * scalar in it: set SHMFS_ATOMIC_FIELD in flags and field to the scalar's
 * byte offset in the record (offsetof in C, Structure.x.offset in ctypes;
 * an element of a field array too).  A record without SHMFS_ATOMIC_FIELD,
 * an offset that is not the start of a number or bool of the record, or
 * SHMFS_ATOMIC_FIELD on any other type is EINVAL.  Every operation but a
 * load changes the value, so it needs a file opened for writing (O_RDWR or
 * O_WRONLY), as write(2) does: EBADF otherwise.  On a directory: ENOTTY.
 *
 * The daemon applies them with CPU atomics on the very memory clients map
 * (passthrough mode: the object's memfd; cached mode: the kernel's page,
 * through a helper process), so they compose with __atomic operations on
 * mappings and are atomic with respect to every file interface.
 *
 * ioctl(fd, SHMFS_IOC_NOTIFY) tells the daemon the value changed through a
 * mapping, waking poll(2)ers of the text view (see docs/semantics.md).
 */
#pragma once

#include <linux/ioctl.h>
#include <stdint.h>

enum {
  SHMFS_ATOMIC_LOAD = 0,
  SHMFS_ATOMIC_ADD  = 1,
  SHMFS_ATOMIC_SUB  = 2,
  SHMFS_ATOMIC_XCHG = 3,
  SHMFS_ATOMIC_CAS  = 4,
};

#define SHMFS_ATOMIC_FLOAT 0x1u
#define SHMFS_ATOMIC_FIELD 0x2u

union shmfs_value {
  int64_t  i;
  uint64_t u;
  double   f;
};

struct shmfs_atomic {
  uint32_t op;
  uint32_t flags;
  uint64_t index;
  union shmfs_value operand;
  union shmfs_value expected;
  union shmfs_value result;    /* out */
  uint32_t swapped;            /* out */
  uint32_t field;              /* with SHMFS_ATOMIC_FIELD; else 0 */
};

_Static_assert (sizeof (union shmfs_value) == 8, "union shmfs_value is 8 bytes");
_Static_assert (sizeof (struct shmfs_atomic) == 48, "struct shmfs_atomic is 48 bytes");
_Static_assert (__builtin_offsetof (struct shmfs_atomic, index) == 8, "index at 8");
_Static_assert (__builtin_offsetof (struct shmfs_atomic, operand) == 16, "operand at 16");
_Static_assert (__builtin_offsetof (struct shmfs_atomic, expected) == 24, "expected at 24");
_Static_assert (__builtin_offsetof (struct shmfs_atomic, result) == 32, "result at 32");
_Static_assert (__builtin_offsetof (struct shmfs_atomic, swapped) == 40, "swapped at 40");
_Static_assert (__builtin_offsetof (struct shmfs_atomic, field) == 44, "field at 44");

#define SHMFS_IOC_ATOMIC _IOWR ('S', 1, struct shmfs_atomic)
#define SHMFS_IOC_NOTIFY _IO ('S', 2)
