/* shm-type.h — type specs of shared objects: an element type and a shape.
 *
 * A spec is ELEM or ELEM[d0][d1]... (C order); ELEM[3,4] reads as ELEM[3][4].
 * ELEM is one of i8 u8 i16 u16 i32 u32 i64 u64 f32 f64 bool char[N], a
 * Python typecode alias (b B h H i I l L q Q f d ? c), or a record.  char[N]
 * is one element of N bytes; "c" alone is char[1].
 *
 * A record is {NAME:TYPE, NAME:TYPE, ...}: at least one field, names
 * [A-Za-z_][A-Za-z0-9_]* unique within it, each TYPE an element, an array
 * of one (f32[3], char[16]) or a record; blanks around the braces, names,
 * colons and commas are ignored.  Its layout is C's natural alignment (what
 * a C compiler, ctypes.Structure and numpy's align=True give): each field
 * at the next multiple of its alignment, the record's size a multiple of
 * its largest field alignment.  Canonical: {x:f64, v:f32[3]}.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  SHM_ELEM_I8, SHM_ELEM_U8, SHM_ELEM_I16, SHM_ELEM_U16,
  SHM_ELEM_I32, SHM_ELEM_U32, SHM_ELEM_I64, SHM_ELEM_U64,
  SHM_ELEM_F32, SHM_ELEM_F64, SHM_ELEM_BOOL, SHM_ELEM_CHAR,
  SHM_ELEM_RECORD,
} ShmElem;

typedef struct _ShmRecord ShmRecord;

#define SHM_TYPE_MAX_DIMS 8
/* Largest object a spec may describe (bytes). */
#define SHM_TYPE_MAX_NBYTES (G_GUINT64_CONSTANT (1) << 40)
/* Longest spec accepted (bytes, excluding the NUL). */
#define SHM_TYPE_MAX_SPEC 4095
/* Deepest nesting of records. */
#define SHM_TYPE_MAX_DEPTH 16
/* Largest record (one element; an array of them may hold up to
 * SHM_TYPE_MAX_NBYTES): its text is rendered a record at a time. */
#define SHM_TYPE_MAX_RECORD (G_GUINT64_CONSTANT (16) << 20)

typedef struct {
  ShmElem elem;
  guint32 char_len;                 /* N of char[N]; 0 for other elements */
  guint   ndim;                     /* 0 for a scalar */
  guint64 dims[SHM_TYPE_MAX_DIMS];  /* each >= 1 */
  ShmRecord *record;                /* SHM_ELEM_RECORD: its fields (a
                                       reference: shm_type_clear) */
} ShmType;

/* A field of a record: where it starts in the record, and its type (an
 * element, an array of one, or a record). */
typedef struct {
  const char *name;
  guint64     offset;
  ShmType     type;
} ShmField;

/* Parses spec (len bytes, not NUL-terminated; surrounding whitespace and one
 * trailing newline ignored) into *out.  Returns 0 or -EINVAL (unknown element,
 * zero or malformed dimension, too many dimensions, more than
 * SHM_TYPE_MAX_NBYTES, a bad record, a record over SHM_TYPE_MAX_RECORD, a
 * canonical form longer than SHM_TYPE_MAX_SPEC).  *out is untouched on error; on
 * success it holds a reference to its record: shm_type_clear() it. */
int shm_type_parse (const char *spec, gsize len, ShmType *out);

/* Drops t's reference to its record (nothing for other types). */
void shm_type_clear (ShmType *t);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ShmType, shm_type_clear)
/* Copies src into *dst, taking a reference to its record. */
void shm_type_copy (ShmType *dst, const ShmType *src);

/* The number of fields of r, and field i (declaration order). */
guint shm_record_n_fields (const ShmRecord *r);
const ShmField *shm_record_field (const ShmRecord *r, guint i);
/* The field named name (len bytes) of r, or NULL. */
const ShmField *shm_record_lookup (const ShmRecord *r, const char *name, gsize len);

/* Resolves a field path of t's element ("x", "pose.x", "v", "v[2]",
 * "m[1]") to what it names: its byte offset in the element and its type
 * (a field array's dimensions not indexed stay: "v" of f32[3] is f32[3],
 * "m[1]" of u8[2][3] a row u8[3]; shm_type_clear() it).  Returns 0 or
 * -EINVAL (t is not a record, no such field, an index out of the field's
 * shape or past its dimensions, a name after an array). */
int shm_type_resolve_field (const ShmType *t, const char *path, gsize len,
                            guint64 *offset, ShmType *leaf);
/* The scalar (not record, not char) element that starts at byte offset of
 * t's element, a record: returns 0 and its type in *leaf, or -EINVAL
 * (padding, the middle of a field, a string). */
int shm_type_scalar_at (const ShmType *t, guint64 offset, ShmType *leaf);

/* Alignment of t's element in a record: its size for numbers, 1 for bool
 * and char[N], the largest of its fields' for a record. */
gsize shm_type_elem_align (const ShmType *t);

/* Returns the canonical spec ("f64[3][4]", "char[16]"), malloc'ed: free() or
 * g_free() it; NULL when out of memory. */
char *shm_type_to_string (const ShmType *t);

/* Returns TRUE when a and b describe the same type and shape (for records:
 * the same field names, types and layout). */
gboolean shm_type_equal (const ShmType *a, const ShmType *b);

/* Bytes of one element (N for char[N], padding included for a record). */
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

/* Returns the numpy dtype string ("<f8", "|u1", "|b1", "|S16"); for a
 * record a JSON object np.dtype (json.loads (...)) takes: {"names": [...],
 * "formats": [...], "offsets": [...], "itemsize": N}, array fields as
 * "(3,)<f4", nested records as nested objects.  free() or g_free() it;
 * NULL when out of memory. */
char *shm_type_numpy_dtype (const ShmType *t);

/* Returns the shape as numpy prints it ("()", "(5,)", "(3, 4)"); free() or
 * g_free() it. */
char *shm_type_shape_string (const ShmType *t);

G_END_DECLS
