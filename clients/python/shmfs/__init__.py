r"""shmfs -- multiprocessing.Value and Array as files on a shmfs mount.

Pure Python 3 standard library (numpy optional).  An object is the file
MNT/PATH of a shmfs mount; this module maps its binary view MNT/.raw/PATH
(MAP_SHARED) and reads and stores the bytes in place, so any process --
forked, spawned, or started on its own in any language -- shares them.
The seed's programs run on it with one import changed and path= added (see
value_client.py and array_client.py).  With shmfs mounted on /tmp/exmnt:

    >>> import ctypes
    >>> from shmfs import Value, Array, RawArray, attach
    >>> v = Value(ctypes.c_double, 0.0, path='/tmp/exmnt/num')   # or 'd'
    >>> v.value = 3.1415926
    >>> open('/tmp/exmnt/num').read()
    '3.1415926\n'
    >>> a = Array('i', range(5), path='/tmp/exmnt/arr')
    >>> a[1:4] = [10, 20, 30]
    >>> attach('/tmp/exmnt/arr')[:]          # as another process would
    [0, 10, 20, 30, 4]
    >>> a.add(5, index=-1), a[-1]            # the daemon's atomic add
    (4, 9)
    >>> a.cas(0, 7), a[0]
    (CasResult(swapped=True, previous=0), 7)
    >>> with v:                              # its lock: excludes `flock /tmp/exmnt/num`
    ...     v.value += 1
    ...
    >>> v.value
    4.1415926
    >>> import numpy as np
    >>> np.frombuffer(a.get_obj(), dtype=np.int32)       # or a.numpy()
    array([ 7, 10, 20, 30,  9], dtype=int32)
    >>> g = RawArray('d', shape=(2, 3), path='/tmp/exmnt/grid')
    >>> g[5] = 1.5                           # items index flat, in C order
    >>> memoryview(g).shape                  # g is a ctypes array
    (2, 3)
    >>> open('/tmp/exmnt/grid').read()
    '0 0 0\n0 0 1.5\n'
    >>> Value('i', path='/tmp/exmnt/num')
    Traceback (most recent call last):
      ...
    FileExistsError: [Errno 17] exists as f64, not i32: '/tmp/exmnt/num'

As in multiprocessing:

* Value(typecode_or_type, value=0, *, path, lock=True) and
  Array(typecode_or_type, size_or_initializer, *, path, lock=True,
  shape=None); RawValue() and RawArray() are them with lock=False.  The
  type is a Python typecode (b B h H i I l L q Q f d ? c), a ctypes simple
  type of a shmfs element's kind and size (c_bool, c_char, c_byte ...
  c_ulonglong, c_int8 ... c_uint64, c_size_t, c_ssize_t, c_float,
  c_double) in the host's byte order, or a shmfs element name (i8 u8 i16
  u16 i32 u32 i64 u64 f32 f64 bool; char[N] as an Array element makes an
  array of N-byte strings).  A type shmfs has no element for is a
  TypeError: c_char_p, c_void_p, c_wchar, c_longdouble, pointers and
  ctypes.Union.  A ctypes.Structure class makes a record (below).
* lock=True or None (the default is True) gives a SharedValue or
  SharedArray: .value and item and slice reads and stores each hold the
  object's lock, as multiprocessing's synchronized wrappers do.
  get_lock() returns the lock, acquire() and release() take and drop it,
  and `with obj:` holds it (`with obj as x` makes x True, as there).
  get_obj() returns the object without its lock, a RawSharedValue or
  RawSharedArray, the same one each time.  A lock object of your own
  (with acquire and release, e.g. a multiprocessing.Lock) may be passed
  instead; it is the one taken, and it travels with the object to the
  children it is given to.  Any other lock= is a TypeError, which is also
  an AttributeError, the error multiprocessing raises.
* lock=False, RawValue() and RawArray() give a RawSharedValue or
  RawSharedArray: a ctypes object over the mapping (c_double; c_int32 * 5;
  (c_int32 * 3) * 2 for a 2x3 array; c_char * N for Array('c', N)), with
  neither get_lock() nor get_obj(), like multiprocessing's raw objects.  It
  has the buffer protocol: memoryview(raw) and numpy.frombuffer(raw,
  dtype) read and store the shared bytes.  (ctypes gives a memoryview a
  format with a byte order, '<i', which its tolist() and indexing do not
  unpack: cast('B').cast('i') first, as for multiprocessing's.)  A
  SharedValue or SharedArray has no buffer, as multiprocessing's have
  none; its get_obj() has.
* A char array (Array('c', N)) is one byte string: items are 1-byte
  bytes, slices bytes, .value and .raw as for ctypes char arrays.
* Objects pickle, so they travel to 'spawn' and 'forkserver' children.

What differs, on purpose:

* path= (keyword, required) names the object.  Creation is atomic: the
  object is made under a temporary name in the same directory, typed
  (xattr user.shmfs.type), given its initial value, then renamed into place
  with renameat2(RENAME_NOREPLACE), so an existing path is never clobbered.
  If PATH already exists with the same type, Value()/Array() attach to it
  and leave its value alone (the initializer is for creation only); with
  another type, or untyped, they raise FileExistsError.  New objects get
  mode 0o600 (mode= to change it), like multiprocessing.shared_memory.
* Objects outlive the process, as files do; unlink() removes one (see the
  docs/semantics.md for binding an object to a process's lifetime instead).
* A value out of the type's range raises OverflowError and stores nothing
  (ctypes would wrap silently); a float for an integer type is a TypeError.
  A slice store converts every item before storing any.  Stores through a
  buffer (memoryview, numpy) are the buffer's own, unchecked.
* No empty arrays: a shmfs type has no dimension of 0 (the daemon refuses
  i32[0]), so Array('i', 0), an empty array in multiprocessing, is a
  ValueError.
* shape= makes a multi-dimensional array: Array('d', shape=(2, 3),
  path=...) is f64[2][3]; an initializer gives its items flat, in C order
  (and a size, if given, must be their number).  With 'c' (c_char) the
  last dimension is the strings' length: shape=(4, 16) is char[16][4],
  four strings of 16 bytes, as ctypes' (c_char * 16) * 4.  A SharedArray
  or RawSharedArray indexes its items flat, in C order, whatever its shape
  (ctypes indexes arrays of arrays by rows, so a ctypes array type as the
  typecode is a TypeError: use shape=); .shape has the shape, .numpy() is
  a shaped view and memoryview(raw) is shaped.
* get_lock() is the daemon's lock of the object, the one `flock MNT/PATH`
  and fcntl locks on either view take, so it excludes shell scripts and
  programs in other languages too.  It is reentrant like multiprocessing's
  default RLock: the holding thread may take it again, other threads of
  the process wait, as do other processes.  Each process takes it through
  its own open of MNT/.raw/PATH (reopened after fork, so a forked child
  never shares its parent's lock), and all objects of one process on the
  same file share one lock.  acquire(block=True, timeout=None) and
  release() as in multiprocessing.
* close() unmaps an object and closes its file (multiprocessing's objects
  have no close); as `with obj:` takes the lock, contextlib.closing(obj)
  makes a block that closes it.  What uses the mapping keeps it until it
  goes: numpy views, and ctypes objects over it, which a RawSharedValue or
  RawSharedArray is itself -- its mapping lasts as long as the object, and
  close() only makes its methods fail.
* Objects pickle as their path (and a lock of your own), so they also go
  through queues and pipes; with a multiprocessing lock, only to children
  being started, as multiprocessing's objects do.
* attach(path, typecode=None, *, lock=True) opens any existing object: a
  SharedValue for a scalar (or char[1], which is Value('c')), a
  SharedArray otherwise (RawSharedValue, RawSharedArray with lock=False).
  A typecode, if given, must match: else TypeError.  An untyped object is
  a TypeError, a path outside shmfs a ValueError.
* Atomic operations by the daemon (include/shmfs/ioctl.h), on any element type
  but char: add(x, index=0), sub(x, index=0), xchg(x, index=0) return the
  previous value; cas(expected, new, index=0) returns CasResult(swapped,
  previous), true when it swapped; load(index=0).  Integer add/sub wrap at
  the element's width, as C atomics do.  The daemon applies them while no
  other process holds the lock (this process may), so they compose with
  get_lock() users.  notify() wakes poll(2)ers of the text view after
  stores through the mapping.
* numpy() returns a zero-copy numpy view of the mapping (dtype from
  user.shmfs.dtype, shape from user.shmfs.shape); numpy(copy=True) a
  snapshot in an array of its own (read under the lock, with one).
* On a remote mount (shmfs -o remote=...) MNT/.raw/PATH cannot be mapped:
  mmap fails with ENODEV.  Objects there are read and stored through
  pread/pwrite of MNT/.raw/PATH instead, with the same API -- .value,
  items and slices, a char array's .value and .raw, record fields and
  items, todict(), get_obj(), copy(), pickling, the atomic operations and
  the lock -- so the same programs run.  Each read of a value, item, slice
  or record is one pread (a consistent snapshot) and each store of one is
  one pwrite, which the mount applies atomically; a read-modify-write is
  one under the lock (with v.get_lock(): v.value += 1), as anywhere.
  What differs there, for want of a mapping: raw objects (lock=False,
  RawValue, RawArray, get_obj()) are not ctypes objects and have no buffer
  (memoryview(raw) is a TypeError), a raw record is a RawSharedRecord with
  its fields as attributes; reading a field array, a nested Structure or
  an item of an Array of records gives a copy (store it whole:
  p.xyz = (4, 5, 6), a[3] = rec); numpy() raises io.UnsupportedOperation
  (an OSError with errno ENODEV) rather than copying silently, and
  numpy(copy=True) gives a snapshot.

Records (docs/contract.md, "Records"): a ctypes.Structure class is a shmfs
record type, {name:TYPE, ...}, with the same C layout, so the class maps
MNT/.raw/PATH 1:1:

    >>> class Pose(ctypes.Structure):
    ...     _fields_ = [('t', ctypes.c_double), ('xyz', ctypes.c_double * 3),
    ...                 ('frame', ctypes.c_char * 8), ('seq', ctypes.c_uint32)]
    >>> p = Value(Pose, 0.5, (1, 2, 3), b'map', path='/tmp/exmnt/pose')
    >>> p.typecode
    '{t:f64, xyz:f64[3], frame:char[8], seq:u32}'
    >>> p.seq += 1                           # each field holds the lock
    >>> with p:                              # several fields, one lock
    ...     p.t, p.xyz = 0.75, (4, 5, 6)
    >>> open('/tmp/exmnt/pose').read()
    '{"t": 0.75, "xyz": [4, 5, 6], "frame": "map", "seq": 1}\n'
    >>> p.add('seq', 1), p.load('seq')       # field atomics: 'seq', 'xyz[2]'
    (1, 2)
    >>> attach('/tmp/exmnt/pose').xyz[:]     # a Structure class made from the type
    [4.0, 5.0, 6.0]

* Fields may be the element types above (c_char is char[1], c_bool bool),
  ctypes arrays of them (any rank; c_char * N is char[N], a string) and
  Structures, nested; a Structure's base class's fields come first.  A
  TypeError names what shmfs cannot hold: an array of Structures as a
  field (make the object an Array of records instead), _pack_, bitfields,
  unions, pointers, a non-native byte order.  A record spec string
  ('{x:f64, y:f64}') works as the type too.
* Value(StructureClass, *initial, path=..., lock=True) takes the initial
  field values as the Structure's constructor does (the first fields', the
  others zero; a tuple for a nested Structure or a field array), or one
  Structure or one dict (the fields it names).  Array(StructureClass,
  size_or_initializer, shape=...) takes one Structure, tuple or dict per
  record.  RawValue and RawArray are them with lock=False.
* The layout check: a class given for an existing object (Value, Array,
  attach(path, StructureClass)) must have the object's fields -- names,
  types and offsets -- and size; if not, FileExistsError (Value, Array) or
  TypeError (attach) names the first field that differs.  attach(path)
  without a class makes one from user.shmfs.type.
* A SharedRecord (lock=True) is made per class, as multiprocessing's
  synchronized wrappers are: each field is a property whose read and store
  hold the lock (v.x *= 2 is a read and a store, each locked; `with v:`
  around it makes it one).  Reading a field array or nested Structure
  gives ctypes' view of it over the mapping, as ctypes does.  get_obj()
  is the RawSharedRecord.  A field named like a method or attribute
  (add, path, ...) hides it; _m, _obj, _lock, _lockarg and _type are
  refused as field names with a lock.
* A RawSharedRecord (lock=False, RawValue, get_obj()) is an instance of the
  Structure class (a subclass of it) over the mapping; a
  RawSharedRecordArray is the ctypes array of it, items indexed flat in C
  order, each a Structure over the mapping.  They pickle as their path.
* Stores of a field or record through these objects are checked as for
  Values: a value out of its field's range is an OverflowError, a wrong
  type a TypeError, a wrong count of items or a string over its capacity a
  ValueError, and nothing is stored; a whole record (a tuple or Structure)
  is converted before anything is stored, a dict stores the fields it
  names.  Stores through ctypes' views of field arrays and nested
  Structures, and through buffers, are ctypes' own, unchecked.
* todict() reads a record as plain values (numbers, bool, bytes, nested
  lists and dicts), under the lock; tolist() every record of an array.
* Atomic operations address a number or bool field by name, with the
  record's index in an Array: add(field, x, index=0), sub(field, x,
  index=0), xchg(field, x, index=0), cas(field, expected, new, index=0),
  load(field, index=0); field is 'x', 'q.b' (nested) or 'v[2]' (an item
  of a field array).  They use SHMFS_ATOMIC_FIELD with the field's offset.
* numpy() is a zero-copy structured view (dtype from user.shmfs.dtype, a
  JSON object numpy takes): v.numpy()['x'], a.numpy()[3]['v'];
  numpy(copy=True) a snapshot.
* copy(obj, *, path) makes a raw object holding a copy of a ctypes object
  (a Structure, a simple type or a 1-D array), as
  multiprocessing.sharedctypes.copy does.
"""

# The modules, each importing only those above it (the classes' __reduce__
# name _opening's unpickling functions, imported when first called):
#   _element_types  element specs, typecodes and ctypes types, checked values
#   _ioctl          struct shmfs_atomic and the atomic and notify ioctls
#   _pread          an object's bytes through pread/pwrite (a remote mount)
#   _files          the mount, an object's two paths, its type, rename, mapping
#   _object_lock    ObjectLock, the daemon's lock of an object
#   _values         RawSharedValue/Array, SharedValue/Array
#   _record_types   record specs, Structure classes, the layout check
#   _record_codec   values to a record's bytes and back, field paths
#   _records        RawSharedRecord(Array), SharedRecord(Array)
#   _opening        Value, Array, RawValue, RawArray, attach, copy, unpickling
from ._files import MODE_XATTR, TYPE_XATTR, mount_root  # noqa: F401
from ._ioctl import SHMFS_IOC_ATOMIC, SHMFS_IOC_NOTIFY, CasResult  # noqa: F401
from ._object_lock import ObjectLock
from ._opening import Array, RawArray, RawValue, Value, attach, copy
from ._records import RawSharedRecord, RawSharedRecordArray, SharedRecord, SharedRecordArray
from ._values import RawSharedArray, RawSharedValue, SharedArray, SharedValue

__all__ = ['Value', 'Array', 'RawValue', 'RawArray', 'attach', 'mount_root',
           'SharedValue', 'SharedArray', 'RawSharedValue', 'RawSharedArray',
           'ObjectLock', 'CasResult', 'SharedRecord', 'SharedRecordArray',
           'RawSharedRecord', 'RawSharedRecordArray', 'copy']

# What is imported from here shows as shmfs.NAME (in repr, help and
# pickles by reference), where it is documented.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
