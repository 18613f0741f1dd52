/* shm-atomic.c — one element's read-modify-write with CPU atomics. */
#include "config.h"

#include "shm-atomic.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static gboolean
is_signed (ShmElem e)
{
  gint64 min;
  guint64 max;

  return shm_elem_int_range (e, &min, &max) && min < 0;
}

static gboolean
fits (const ShmType *t, const ShmAtomicValue *v, gboolean is_float)
{
  gint64 min;
  guint64 max;

  /* Any number converts to a float as a C assignment does, but one past
   * an f32's range is ERANGE, as the text view says of it. */
  if (t->elem == SHM_ELEM_F32 && is_float)
    return !isfinite (v->f) || isfinite ((float) v->f);
  if (shm_type_is_float (t))
    return TRUE;
  if (is_float)
    return FALSE;
  if (t->elem == SHM_ELEM_BOOL)
    return v->u <= 1;
  shm_elem_int_range (t->elem, &min, &max);
  if (min < 0)
    return v->i >= min && v->i <= (gint64) max;
  return v->u <= max;
}

int
shm_atomic_target (const ShmType *t, const ShmAtomic *a, ShmType *elem, guint64 *offset)
{
  ShmType e = { .elem = t->elem, .char_len = t->char_len };

  if (a->op > SHM_ATOMIC_CAS || a->index >= shm_type_count (t))
    return -EINVAL;
  if (t->elem == SHM_ELEM_RECORD
      ? !a->has_field || a->field >= shm_type_elem_size (t) || shm_type_scalar_at (t, a->field, &e) < 0
      : a->has_field)
    return -EINVAL;
  if (e.elem == SHM_ELEM_CHAR)
    return -EINVAL;
  if (a->is_float && !shm_type_is_float (&e))
    return -EINVAL;
  if ((a->op == SHM_ATOMIC_ADD || a->op == SHM_ATOMIC_SUB) && e.elem == SHM_ELEM_BOOL)
    return -EINVAL;
  if ((a->op == SHM_ATOMIC_XCHG || a->op == SHM_ATOMIC_CAS) && !fits (&e, &a->operand, a->is_float))
    return -ERANGE;
  *elem = e;
  *offset = a->index * shm_type_elem_size (t) + (a->has_field ? a->field : 0);
  return 0;
}

int
shm_atomic_check (const ShmType *t, const ShmAtomic *a)
{
  ShmType elem;
  guint64 offset;

  return shm_atomic_target (t, a, &elem, &offset);
}

static double
as_double (const ShmAtomicValue *v, gboolean is_float)
{
  return is_float ? v->f : (double) v->i;
}

/* Integers: the operation on the element's bits, in unsigned arithmetic
 * so that add and sub wrap. */
#define INT_APPLY(type, p, a)                                                  \
  do {                                                                         \
    type *ptr_ = (type *) (p), old_, arg_ = (type) (a)->operand.u;            \
    switch ((a)->op)                                                           \
      {                                                                        \
      case SHM_ATOMIC_LOAD: old_ = __atomic_load_n (ptr_, __ATOMIC_SEQ_CST); break; \
      case SHM_ATOMIC_ADD: old_ = __atomic_fetch_add (ptr_, arg_, __ATOMIC_SEQ_CST); break; \
      case SHM_ATOMIC_SUB: old_ = __atomic_fetch_sub (ptr_, arg_, __ATOMIC_SEQ_CST); break; \
      case SHM_ATOMIC_XCHG: old_ = __atomic_exchange_n (ptr_, arg_, __ATOMIC_SEQ_CST); break; \
      default:                                                                 \
        old_ = (type) (a)->expected.u;                                         \
        (a)->swapped = __atomic_compare_exchange_n (ptr_, &old_, arg_, FALSE,  \
                                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
        break;                                                                 \
      }                                                                        \
    bits = old_;                                                               \
  } while (0)

/* Floats: a compare-and-swap loop on the bits. */
#define FLOAT_APPLY(ftype, itype, p, a)                                        \
  do {                                                                         \
    itype *ptr_ = (itype *) (p), cur_, next_;                                  \
    ftype value_, arg_ = (ftype) as_double (&(a)->operand, (a)->is_float);     \
    cur_ = __atomic_load_n (ptr_, __ATOMIC_SEQ_CST);                           \
    for (;;)                                                                   \
      {                                                                        \
        memcpy (&value_, &cur_, sizeof value_);                                \
        if ((a)->op == SHM_ATOMIC_LOAD)                                        \
          break;                                                               \
        if ((a)->op == SHM_ATOMIC_CAS)                                         \
          {                                                                    \
            ftype want_ = (ftype) as_double (&(a)->expected, (a)->is_float);  \
            if (value_ != want_)                                               \
              break;                                                           \
          }                                                                    \
        ftype new_ = (a)->op == SHM_ATOMIC_ADD ? value_ + arg_ :              \
                     (a)->op == SHM_ATOMIC_SUB ? value_ - arg_ : arg_;         \
        memcpy (&next_, &new_, sizeof next_);                                  \
        if (__atomic_compare_exchange_n (ptr_, &cur_, next_, FALSE,           \
                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) \
          {                                                                    \
            (a)->swapped = (a)->op == SHM_ATOMIC_CAS;                          \
            break;                                                             \
          }                                                                    \
      }                                                                        \
    (a)->old.f = value_;                                                       \
  } while (0)

gboolean
shm_atomic_apply (const ShmType *t, guint8 *data, ShmAtomic *a)
{
  ShmType elem;
  guint64 offset;

  g_return_val_if_fail (shm_atomic_target (t, a, &elem, &offset) == 0, FALSE);
  return shm_atomic_apply_elem (&elem, data + offset, a);
}

gboolean
shm_atomic_apply_elem (const ShmType *t, guint8 *p, ShmAtomic *a)
{
  guint64 bits = 0;

  a->swapped = FALSE;
  switch (t->elem)
    {
    case SHM_ELEM_F32: FLOAT_APPLY (float, guint32, p, a); break;
    case SHM_ELEM_F64: FLOAT_APPLY (double, guint64, p, a); break;
    case SHM_ELEM_I8: case SHM_ELEM_U8: case SHM_ELEM_BOOL: INT_APPLY (guint8, p, a); break;
    case SHM_ELEM_I16: case SHM_ELEM_U16: INT_APPLY (guint16, p, a); break;
    case SHM_ELEM_I32: case SHM_ELEM_U32: INT_APPLY (guint32, p, a); break;
    default: INT_APPLY (guint64, p, a); break;
    }

  if (!shm_type_is_float (t))
    {
      gsize width = shm_type_elem_size (t) * 8;
      if (is_signed (t->elem) && width < 64 && (bits >> (width - 1)) & 1)
        bits |= ~G_GUINT64_CONSTANT (0) << width;   /* sign-extend */
      a->old.u = bits;
    }
  return a->op != SHM_ATOMIC_LOAD && (a->op != SHM_ATOMIC_CAS || a->swapped);
}
