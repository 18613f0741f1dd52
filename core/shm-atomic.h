/* shm-atomic.h — read-modify-write of one element, with CPU atomics.
 *
 * Values travel widened to 64 bits: signed integers in .i, unsigned and
 * bool in .u, floats in .f.  Integer add/sub wrap at the element's width,
 * as C atomics do; a value to store (xchg, cas) outside the element's
 * range is -ERANGE.
 */
#pragma once

#include <glib.h>
#include "shm-type.h"

G_BEGIN_DECLS

typedef enum {
  SHM_ATOMIC_LOAD, SHM_ATOMIC_ADD, SHM_ATOMIC_SUB, SHM_ATOMIC_XCHG, SHM_ATOMIC_CAS,
} ShmAtomicOp;

typedef union {
  gint64  i;
  guint64 u;
  double  f;
} ShmAtomicValue;

typedef struct {
  ShmAtomicOp    op;
  gboolean       is_float;   /* operand and expected are doubles */
  guint64        index;      /* the element, in C order */
  gboolean       has_field;  /* records: field names the scalar */
  guint64        field;      /* its byte offset in the record */
  ShmAtomicValue operand;
  ShmAtomicValue expected;   /* cas */
  ShmAtomicValue old;        /* out: the element before */
  gboolean       swapped;    /* out: cas */
} ShmAtomic;

/* Checks a against type t: 0, or -EINVAL (unknown op, index out of
 * bounds, a float operand for an integer element, add/sub on bool, any op
 * on char[N]; on a record, no field or one that is not a number or bool)
 * or -ERANGE (a value to store that the element cannot hold). */
int shm_atomic_check (const ShmType *t, const ShmAtomic *a);

/* Checks a as shm_atomic_check and finds what it applies to: the scalar's
 * type (a record's field, or t's element) in *elem and its byte offset in
 * the value in *offset. */
int shm_atomic_target (const ShmType *t, const ShmAtomic *a, ShmType *elem, guint64 *offset);

/* Applies a checked a to the value at data with CPU atomics (so it is
 * atomic with other CPU atomics on the same memory); fills old, swapped.
 * Returns TRUE when the element may have changed. */
gboolean shm_atomic_apply (const ShmType *t, guint8 *data, ShmAtomic *a);
/* The same on the scalar itself: elem and the pointer are what
 * shm_atomic_target found. */
gboolean shm_atomic_apply_elem (const ShmType *elem, guint8 *p, ShmAtomic *a);


G_END_DECLS
