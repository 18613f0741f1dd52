/* shm-type.h — type specs of shared objects: an element type and a shape.
 *
 * A spec is ELEM or ELEM[d0][d1]... (C order); ELEM[3,4] reads as ELEM[3][4].
 * ELEM is one of i8 u8 i16 u16 i32 u32 i64 u64 f32 f64 bool char[N], or a
 * Python typecode alias (b B h H i I l L q Q f d ? c).  char[N] is one
 * element of N bytes; "c" alone is char[1].
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  SHM_ELEM_I8, SHM_ELEM_U8, SHM_ELEM_I16, SHM_ELEM_U16,
  SHM_ELEM_I32, SHM_ELEM_U32, SHM_ELEM_I64, SHM_ELEM_U64,
  SHM_ELEM_F32, SHM_ELEM_F64, SHM_ELEM_BOOL, SHM_ELEM_CHAR,
} ShmElem;

#define SHM_TYPE_MAX_DIMS 8
/* Largest object a spec may describe (bytes). */
#define SHM_TYPE_MAX_NBYTES (G_GUINT64_CONSTANT (1) << 40)
/* Longest spec accepted (bytes, excluding the NUL). */
#define SHM_TYPE_MAX_SPEC 255

typedef struct {
  ShmElem elem;
  guint32 char_len;                 /* N of char[N]; 0 for other elements */
  guint   ndim;                     /* 0 for a scalar */
  guint64 dims[SHM_TYPE_MAX_DIMS];  /* each >= 1 */
} ShmType;

/* Parses spec (len bytes, not NUL-terminated; surrounding whitespace and one
 * trailing newline ignored) into *out.  Returns 0 or -EINVAL (unknown element,
 * zero or malformed dimension, too many dimensions, more than
 * SHM_TYPE_MAX_NBYTES).  *out is untouched on error. */
int shm_type_parse (const char *spec, gsize len, ShmType *out);

/* Returns the canonical spec ("f64[3][4]", "char[16]"), malloc'ed: free() or
 * g_free() it; NULL when out of memory. */
char *shm_type_to_string (const ShmType *t);

/* Returns TRUE when a and b describe the same type and shape. */
gboolean shm_type_equal (const ShmType *a, const ShmType *b);

/* Bytes of one element (N for char[N]). */
gsize shm_type_elem_size (const ShmType *t);

/* Number of elements (1 for a scalar). */
guint64 shm_type_count (const ShmType *t);

/* Total bytes: elem_size * count. */
guint64 shm_type_nbytes (const ShmType *t);

/* Returns TRUE for f32 and f64. */
gboolean shm_type_is_float (const ShmType *t);

/* The values an integer element holds, [min, max] (min is 0 for unsigned
 * ones); FALSE for bool, char and floats. */
gboolean shm_elem_int_range (ShmElem elem, gint64 *min, guint64 *max);

/* Returns the numpy dtype string ("<f8", "|u1", "|b1", "|S16"); free() or
 * g_free() it. */
char *shm_type_numpy_dtype (const ShmType *t);

/* Returns the shape as numpy prints it ("()", "(5,)", "(3, 4)"); free() or
 * g_free() it. */
char *shm_type_shape_string (const ShmType *t);

G_END_DECLS
