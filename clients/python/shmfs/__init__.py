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
  user.shmfs.dtype, shape from user.shmfs.shape).

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
  JSON object numpy takes): v.numpy()['x'], a.numpy()[3]['v'].
* copy(obj, *, path) makes a raw object holding a copy of a ctypes object
  (a Structure, a simple type or a 1-D array), as
  multiprocessing.sharedctypes.copy does.
"""

import ctypes
import errno
import fcntl
import json
import math
import mmap
import operator
import os
import re
import stat
import struct
import sys
import threading
import time
import weakref
from typing import NamedTuple

__all__ = ['Value', 'Array', 'RawValue', 'RawArray', 'attach', 'mount_root',
           'SharedValue', 'SharedArray', 'RawSharedValue', 'RawSharedArray',
           'ObjectLock', 'CasResult', 'SharedRecord', 'SharedRecordArray',
           'RawSharedRecord', 'RawSharedRecordArray', 'copy']

TYPE_XATTR = 'user.shmfs.type'
MODE_XATTR = 'user.shmfs.mode'

# ---- types -------------------------------------------------------------------


class _Elem(NamedTuple):
    name: str      # shmfs element name
    fmt: str       # struct/memoryview format, native
    kind: str      # 'int', 'uint', 'float', 'bool' or 'char'

    @property
    def size(self):
        return struct.calcsize(self.fmt)


_ELEMS = {e.name: e for e in (
    _Elem('i8', 'b', 'int'), _Elem('u8', 'B', 'uint'),
    _Elem('i16', 'h', 'int'), _Elem('u16', 'H', 'uint'),
    _Elem('i32', 'i', 'int'), _Elem('u32', 'I', 'uint'),
    _Elem('i64', 'q', 'int'), _Elem('u64', 'Q', 'uint'),
    _Elem('f32', 'f', 'float'), _Elem('f64', 'd', 'float'),
    _Elem('bool', '?', 'bool'), _Elem('char', 'c', 'char'))}

_LONG = 'i64' if struct.calcsize('l') == 8 else 'i32'
_TYPECODES = {'b': 'i8', 'B': 'u8', 'h': 'i16', 'H': 'u16', 'i': 'i32',
              'I': 'u32', 'l': _LONG, 'L': 'u' + _LONG[1:], 'q': 'i64',
              'Q': 'u64', 'f': 'f32', 'd': 'f64', '?': 'bool'}

_SPEC = re.compile(r'^(i8|u8|i16|u16|i32|u32|i64|u64|f32|f64|bool|char)'
                   r'((?:\[[0-9]+\])*)$')


_CTYPES = {'i8': ctypes.c_int8, 'u8': ctypes.c_uint8, 'i16': ctypes.c_int16,
           'u16': ctypes.c_uint16, 'i32': ctypes.c_int32, 'u32': ctypes.c_uint32,
           'i64': ctypes.c_int64, 'u64': ctypes.c_uint64, 'f32': ctypes.c_float,
           'f64': ctypes.c_double, 'bool': ctypes.c_bool, 'char': ctypes.c_char}

# A ctypes simple type's _type_ code: the kind of its shmfs element.
_CTYPE_KINDS = dict.fromkeys('bhilq', 'i')
_CTYPE_KINDS.update(dict.fromkeys('BHILQ', 'u'))
_CTYPE_KINDS.update({'f': 'f', 'd': 'f', '?': 'bool', 'c': 'char'})
_NATIVE_ORDER = ('@', '=', '<' if sys.byteorder == 'little' else '>')


class _Type:
    """A parsed canonical type spec: 'f64', 'i32[5]', 'char[16][4]'.  For
    char the first dimension is the string's capacity; items are strings."""

    def __init__(self, spec):
        m = _SPEC.match(spec)
        if not m:
            raise TypeError(f'unknown shmfs type {spec!r}')
        self.spec = spec
        self.elem = _ELEMS[m.group(1)]
        dims = tuple(int(d) for d in re.findall(r'[0-9]+', m.group(2)))
        if self.elem.kind == 'char':
            if not dims:
                raise TypeError(f'unknown shmfs type {spec!r}')
            self.strlen, self.shape = dims[0], dims[1:]
        else:
            self.strlen, self.shape = None, dims
        self.count = 1
        for d in self.shape:
            self.count *= d
        self.itemsize = self.strlen or self.elem.size
        self.nbytes = self.count * self.itemsize

    @property
    def is_scalar(self):
        """A Value: a number, or char[1] (multiprocessing's Value('c'))."""
        return self.spec == 'char[1]' or (not self.shape and not self.strlen)

    @property
    def is_string(self):
        """A single char[N] (Array('c', N)): its items are bytes."""
        return self.strlen is not None and not self.shape

    def ctype(self, array):
        """The ctypes type of the whole object, as multiprocessing would make
        it: c_double; c_int32 * 5; (c_int32 * 3) * 2 for i32[2][3]; c_char
        for Value('c'); c_char * 16 for char[16]; (c_char * 16) * 4."""
        c = _CTYPES[self.elem.name]
        if self.strlen is not None and (array or self.strlen != 1):
            c = c * self.strlen
        for d in reversed(self.shape):
            c = c * d
        return c


def _ctype_elem(ctype):
    """The shmfs element name of a ctypes type, as multiprocessing takes
    them: any simple type of a shmfs element's kind and size."""
    if issubclass(ctype, ctypes.Union):
        raise TypeError(f'{ctype.__name__} is a ctypes.Union: shmfs has no unions')
    if issubclass(ctype, ctypes.Structure):
        raise TypeError(f'{ctype.__name__} is a ctypes.Structure, a record: not an '
                        f'element of an array of numbers or strings')
    if issubclass(ctype, ctypes.Array):
        raise TypeError(f'{ctype.__name__}: give an array\'s dimensions with '
                        f'Array(typecode, shape=...) instead of a ctypes array type')
    code = getattr(ctype, '_type_', None) if issubclass(ctype, ctypes._SimpleCData) else None
    kind = _CTYPE_KINDS.get(code) if isinstance(code, str) else None
    if kind is None:
        raise TypeError(f'{ctype.__name__} is not the ctypes type of a shmfs element '
                        f'(an integer or floating-point type, c_bool or c_char)')
    if memoryview(ctype()).format[0] not in _NATIVE_ORDER:
        raise TypeError(f'{ctype.__name__}: shmfs stores elements in the host\'s '
                        f'byte order')
    if kind == 'char':
        return 'char[1]'
    if kind == 'bool':
        return 'bool'
    return f'{kind}{8 * ctypes.sizeof(ctype)}'


def _elem_name(typecode):
    """The shmfs element name of a Python typecode, a shmfs element name or
    a ctypes simple type."""
    if isinstance(typecode, type):
        return _ctype_elem(typecode)
    if not isinstance(typecode, str):
        raise TypeError(f'typecode must be a str or a ctypes type, '
                        f'not {type(typecode).__name__}')
    name = _TYPECODES.get(typecode, typecode.strip())
    if name == 'c':
        return 'char[1]'
    if name in _ELEMS and name != 'char':
        return name
    if re.fullmatch(r'char\[[0-9]+\]', name) and int(name[5:-1]) > 0:
        return name
    raise TypeError(f'bad typecode {typecode!r}: expected one of '
                    f'{" ".join(_TYPECODES)} c, a shmfs element name or a ctypes type')


def _value_spec(typecode):
    name = _elem_name(typecode)
    if name.startswith('char[') and name != 'char[1]':
        raise TypeError(f'Value({typecode!r}): use Array("c", N) for strings')
    return name


def _array_spec(typecode, dims):
    """The spec of an array of typecode's elements with dimensions dims.
    For 'c' (char[1]) the last dimension is the strings' length:
    Array('c', 16) is one string, shape=(4, 16) four, as ctypes'
    (c_char * 16) * 4."""
    name = _elem_name(typecode)
    if name == 'char[1]':
        name, dims = f'char[{dims[-1]}]', dims[:-1]
    return name + ''.join(f'[{d}]' for d in dims)


# ---- element conversion ------------------------------------------------------

_INT_RANGE = {e.name: ((-(1 << (8 * e.size - 1)), (1 << (8 * e.size - 1)) - 1)
                       if e.kind == 'int' else (0, (1 << (8 * e.size)) - 1))
              for e in _ELEMS.values() if e.kind in ('int', 'uint')}


def _reject_text(x):
    if isinstance(x, (str, bytes, bytearray, memoryview)):
        raise TypeError(f'a number is expected, not {type(x).__name__}')


def _to_number(t, x):
    """x converted for an element of t, or OverflowError/TypeError."""
    kind = t.elem.kind
    if kind == 'float':
        _reject_text(x)
        f = float(x)
        if t.elem.name == 'f32' and math.isfinite(f) and \
                math.isinf(struct.unpack('f', struct.pack('f', f))[0]):
            raise OverflowError(f'{x!r} is out of range for f32')
        return f
    if kind == 'bool':
        _reject_text(x)
        return bool(x)
    i = operator.index(x)       # TypeError for floats and str, as ctypes
    lo, hi = _INT_RANGE[t.elem.name]
    if not lo <= i <= hi:
        raise OverflowError(f'{i} is out of range for {t.elem.name}')
    return i


def _to_char(x):
    """One byte, from a length-1 bytes-like or an int 0..255 (as ctypes)."""
    if isinstance(x, (bytes, bytearray)) and len(x) == 1:
        return bytes(x)
    if isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 256:
        return bytes((x,))
    raise TypeError('one character bytes, bytearray or integer expected')


def _to_string(t, x):
    """A char[N] item: bytes-like, at most N bytes, NUL-padded to N."""
    if not isinstance(x, (bytes, bytearray)):
        raise TypeError(f'bytes expected instead of {type(x).__name__} instance')
    if len(x) > t.strlen:
        raise ValueError('byte string too long')
    return bytes(x).ljust(t.strlen, b'\0')


# ---- where objects live ------------------------------------------------------

def _is_root(d):
    try:
        os.getxattr(d, MODE_XATTR)
        return True
    except OSError as e:
        if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        return False


def mount_root(path):
    """The root of the shmfs mount holding path (which need not exist): the
    nearest directory upwards carrying user.shmfs.mode (MNT/.raw, the root's
    twin, carries it too).  ValueError if the search leaves path's
    filesystem first."""
    d = os.path.dirname(os.path.realpath(path))
    dev = os.stat(d).st_dev
    while not _is_root(d):
        parent = os.path.dirname(d)
        if parent == d or os.stat(parent).st_dev != dev:
            raise ValueError(f'{path} is not on a shmfs mount')
        d = parent
    if os.path.basename(d) == '.raw' and _is_root(os.path.dirname(d)):
        d = os.path.dirname(d)
    return d


def _locate(path):
    """(absolute main-tree path, binary-view path) of a shmfs object."""
    path = os.path.abspath(os.fspath(path))
    root = mount_root(path)
    rel = os.path.relpath(os.path.realpath(path), root)
    if rel == '.raw' or rel.startswith('.raw' + os.sep):   # given the twin
        rel = rel[5:]
    return os.path.join(root, rel), os.path.join(root, '.raw', rel)


_libc = ctypes.CDLL(None, use_errno=True)
_RENAME_NOREPLACE = 1
_SYS_RENAMEAT2 = {'x86_64': 316, 'aarch64': 276, 'riscv64': 276,
                  'ppc64le': 357, 's390x': 347}


def _rename_noreplace(old, new):
    """rename(2) that fails with FileExistsError instead of replacing."""
    at = ctypes.c_int(-100)                       # AT_FDCWD
    args = (at, ctypes.c_char_p(os.fsencode(old)),
            at, ctypes.c_char_p(os.fsencode(new)), ctypes.c_uint(_RENAME_NOREPLACE))
    fn = getattr(_libc, 'renameat2', None)
    if fn is not None:
        rc = fn(*args)
    else:
        rc = _libc.syscall(ctypes.c_long(_SYS_RENAMEAT2[os.uname().machine]), *args)
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old, None, new)


def _existing_spec(path):
    """The type of the object at path, '' if untyped, None if absent."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    try:
        return os.getxattr(path, TYPE_XATTR).decode()
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        if e.errno == errno.ENODATA:
            return ''
        raise


# ---- the lock ----------------------------------------------------------------

class ObjectLock:
    """The daemon's lock of one object, reentrant, shared by the objects of a
    process that map the same file.  See the module's documentation."""

    _registry = weakref.WeakValueDictionary()   # (st_dev, st_ino) -> lock
    _registry_lock = threading.Lock()

    @classmethod
    def of(cls, fd):
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        with cls._registry_lock:
            lock = cls._registry.get(key)
            if lock is None:
                lock = cls._registry[key] = cls(fd)
            return lock

    def __init__(self, fd):
        self._fd = os.open(f'/proc/self/fd/{fd}', os.O_RDONLY | os.O_CLOEXEC)
        self._pid = os.getpid()
        self._mutex = threading.RLock()
        self._depth = 0        # the owning thread's nesting; under _mutex

    def _check_fork(self):
        """A forked child gets a lock of its own: a new open file description
        (an flock lock belongs to one; the parent's hold stays the parent's)
        and no holder."""
        if self._pid == os.getpid():
            return
        with ObjectLock._registry_lock:
            if self._pid == os.getpid():
                return
            old = self._fd
            self._fd = os.open(f'/proc/self/fd/{old}', os.O_RDONLY | os.O_CLOEXEC)
            os.close(old)
            self._mutex = threading.RLock()
            self._depth = 0
            self._pid = os.getpid()

    def acquire(self, block=True, timeout=None):
        self._check_fork()
        deadline = None
        if not block:
            got = self._mutex.acquire(False)
        elif timeout is None:
            got = self._mutex.acquire()
        else:
            deadline = time.monotonic() + max(timeout, 0)
            got = self._mutex.acquire(True, max(timeout, 0))
        if not got:
            return False
        if self._depth:
            self._depth += 1
            return True
        try:
            if block and deadline is None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            elif not self._try_flock(deadline):
                self._mutex.release()
                return False
        except BaseException:
            self._mutex.release()
            raise
        self._depth = 1
        return True

    def _try_flock(self, deadline):
        delay = 0.0005
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if deadline is None or time.monotonic() >= deadline:
                    return False
            time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
            delay = min(delay * 2, 0.02)

    def release(self):
        if self._pid != os.getpid() or self._depth == 0:
            raise RuntimeError('cannot release un-acquired lock')
        self._depth -= 1
        if self._depth == 0:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                self._mutex.release()
        else:
            self._mutex.release()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        try:
            os.close(self._fd)
        except (OSError, AttributeError):
            pass

    def __repr__(self):
        return f'<shmfs.ObjectLock fd={self._fd} depth={self._depth}>'


def _reinit_after_fork():
    global _GET_OBJ_LOCK, _BUILT_LOCK
    ObjectLock._registry_lock = threading.Lock()
    _GET_OBJ_LOCK = threading.Lock()
    _BUILT_LOCK = threading.RLock()


os.register_at_fork(after_in_child=_reinit_after_fork)


class _BadLock(TypeError, AttributeError):
    """lock= that is no lock: a TypeError, and the AttributeError that
    multiprocessing raises."""


def _check_lock(lock):
    if not isinstance(lock, bool) and lock is not None and not (
            hasattr(lock, 'acquire') and hasattr(lock, 'release')):
        raise _BadLock(f'lock must be True, None, False or a lock with acquire() '
                       f'and release(), not {lock!r}')
    return lock


# ---- atomic operations (include/shmfs/ioctl.h) --------------------------------------

_ATOMIC = struct.Struct('=IIQ8s8s8sII')      # struct shmfs_atomic, 48 bytes
_LOAD, _ADD, _SUB, _XCHG, _CAS = range(5)
_ATOMIC_FLOAT = 0x1
_ATOMIC_FIELD = 0x2


def _ioc(direction, kind, nr, size):
    return (direction << 30) | (size << 16) | (ord(kind) << 8) | nr


SHMFS_IOC_ATOMIC = _ioc(3, 'S', 1, _ATOMIC.size)     # _IOWR('S', 1, ...)
SHMFS_IOC_NOTIFY = _ioc(0, 'S', 2, 0)                # _IO('S', 2)


def _checked_index(index, n):
    """index as a position among n items (negative ones count from the end):
    a TypeError for a non-integer, an IndexError out of range."""
    try:
        i = operator.index(index)
    except TypeError:
        raise TypeError('indices must be integers') from None
    if i < 0:
        i += n
    if not 0 <= i < n:
        raise IndexError('index out of range')
    return i


class CasResult(NamedTuple):
    """What cas() did: true (as a whole) when it swapped."""
    swapped: bool
    previous: object

    def __bool__(self):
        return self.swapped


def _operand(t, op, v):
    """The 8 bytes of an ioctl operand for an element of t.  Narrow integer
    and bool elements are range-checked by the daemon (ERANGE, as
    OverflowError); what it cannot see (beyond 64 bits, f32 overflow) is
    checked here."""
    if t.elem.kind == 'float':
        return struct.pack('d', _to_number(t, v))
    if t.elem.kind == 'bool':
        _reject_text(v)
        v = int(bool(v)) if isinstance(v, bool) else operator.index(v)
    else:
        v = operator.index(v)
    if op in (_XCHG, _CAS) and t.elem.size == 8:
        _to_number(t, v)
    if -(1 << 63) <= v < 0:
        return struct.pack('q', v)
    if 0 <= v < (1 << 64):
        return struct.pack('Q', v)
    raise OverflowError(f'{v} does not fit in 64 bits')


def _atomic_check(t, op):
    if t.elem.kind == 'char':
        raise TypeError(f'no atomic operations on {t.spec}')
    if t.elem.kind == 'bool' and op in (_ADD, _SUB):
        raise TypeError('add and sub need a number, not bool')


def _atomic_op(fd, path, t, op, x, i, expected=None, field=None):
    """One SHMFS_IOC_ATOMIC on the element of t (a number or bool) at index
    i of the object open as fd; on a record, at byte offset field of the
    record (SHMFS_ATOMIC_FIELD).  Returns the previous value, or a
    CasResult."""
    _atomic_check(t, op)
    kind = t.elem.kind
    flags = _ATOMIC_FLOAT if kind == 'float' else 0
    if field is not None:
        flags |= _ATOMIC_FIELD
    zero = bytes(8)
    buf = bytearray(_ATOMIC.pack(
        op, flags, i,
        zero if x is None else _operand(t, op, x),
        zero if expected is None else _operand(t, op, expected),
        zero, 0, field or 0))
    try:
        fcntl.ioctl(fd, SHMFS_IOC_ATOMIC, buf, True)
    except OSError as e:
        if e.errno == errno.ERANGE:
            raise OverflowError(f'{x!r} is out of range for {t.elem.name}'
                                f' ({path})') from e
        raise
    _, _, _, _, _, result, swapped, _ = _ATOMIC.unpack(buf)
    previous = struct.unpack('d' if kind == 'float' else
                             'q' if kind == 'int' else 'Q', result)[0]
    if kind == 'bool':
        previous = bool(previous)
    return CasResult(bool(swapped), previous) if op == _CAS else previous


def _numpy_view(fd, mm):
    """A zero-copy numpy array over mm, the mapping of the object open as
    fd: dtype from user.shmfs.dtype (a JSON object for records), shape from
    user.shmfs.shape."""
    import numpy as np
    text = os.getxattr(fd, 'user.shmfs.dtype').decode()
    dtype = np.dtype(json.loads(text) if text.startswith('{') else text)
    shape_text = os.getxattr(fd, 'user.shmfs.shape').decode()
    shape = tuple(int(d) for d in re.findall(r'[0-9]+', shape_text))
    count = 1
    for d in shape:
        count *= d
    return np.frombuffer(mm, dtype=dtype, count=count).reshape(shape)


# ---- objects -------------------------------------------------------------------

class _Described:
    """What an object is, from its _Type: typecode, shape and size."""

    @property
    def typecode(self):
        """The canonical shmfs type, e.g. 'f64' or 'i32[5]'."""
        return self._type.spec

    @property
    def shape(self):
        return self._type.shape

    @property
    def nbytes(self):
        return self._type.nbytes


class _Mapped(_Described):
    """A mapped shmfs object without a lock: the base of RawSharedValue and
    RawSharedArray.  What users get of these are ctypes objects over the
    mapping (see _map), so they have the buffer protocol; the methods here
    read and store through a memoryview of the same mapping."""

    def _init(self, path, raw_path, t, fd, mm):
        self._fd = fd                      # first: __del__ closes it
        self.path = path
        self.raw_path = raw_path
        self._type = t
        self._mmap = mm
        self._view = memoryview(mm).cast('c' if t.elem.kind == 'char' else t.elem.fmt)

    # -- element access
    def _index(self, index):
        return _checked_index(index, self._type.count)

    def _get(self, i):
        t = self._type
        if t.strlen is None:
            return self._view[i]
        item = self._mmap[i * t.strlen:(i + 1) * t.strlen]
        return item.split(b'\0', 1)[0]

    def _set(self, i, x):
        """Stores x at element i, converted first (nothing stored on error)."""
        t = self._type
        if t.strlen is None:
            self._view[i] = _to_number(t, x)
        else:
            self._mmap[i * t.strlen:(i + 1) * t.strlen] = _to_string(t, x)

    # -- atomic operations
    def _atomic(self, op, x, index, expected=None):
        _atomic_check(self._type, op)
        return _atomic_op(self._fd, self.path, self._type, op, x, self._index(index),
                          expected)

    def add(self, x, index=0):
        """Atomically adds x to an element; returns its previous value."""
        return self._atomic(_ADD, x, index)

    def sub(self, x, index=0):
        """Atomically subtracts x from an element; returns its previous value."""
        return self._atomic(_SUB, x, index)

    def xchg(self, x, index=0):
        """Atomically stores x in an element; returns its previous value."""
        return self._atomic(_XCHG, x, index)

    def cas(self, expected, new, index=0):
        """Stores new if the element equals expected, atomically; returns
        CasResult(swapped, previous), true when it swapped."""
        return self._atomic(_CAS, new, index, expected)

    def load(self, index=0):
        """An element read by the daemon, atomically."""
        return self._atomic(_LOAD, None, index)

    def notify(self):
        """Wakes poll(2)ers of the text view after stores through the mapping."""
        fcntl.ioctl(self._fd, SHMFS_IOC_NOTIFY)

    # -- numpy
    def numpy(self):
        """A zero-copy numpy array over the mapping (0-d for a Value)."""
        return _numpy_view(self._fd, self._mmap)

    # -- life
    def close(self):
        """Closes the object's file and unmaps it; reads and stores through
        it then fail.  What still uses the mapping keeps it until it goes:
        numpy views, and a ctypes object over it -- which a RawSharedValue
        or RawSharedArray is itself."""
        if self._fd < 0:
            return
        self._view.release()
        try:
            self._mmap.close()
        except BufferError:
            pass                           # unmapped when the last user goes
        os.close(self._fd)
        self._fd = -1

    def unlink(self):
        """Removes the object's name, as rm would; mappings stay valid."""
        os.unlink(self.path)

    def __del__(self):
        try:
            if self._fd >= 0:
                self._view.release()
                os.close(self._fd)
        except (AttributeError, OSError):
            pass

    def __reduce__(self):
        return (_reattach, (self.path, isinstance(self, RawSharedArray), False))


class RawSharedValue(_Mapped):
    """A typed scalar without a lock, like multiprocessing.RawValue: a ctypes
    object (c_double, c_int32, ..., c_char for Value('c')) over the mapping,
    with shmfs's checked stores and atomic operations; see the module doc."""

    @property
    def value(self):
        if self._type.strlen:
            return self._mmap[0:1]                # Value('c'): one byte
        return self._view[0]

    @value.setter
    def value(self, x):
        if self._type.strlen:
            self._mmap[0:1] = _to_char(x)
        else:
            self._view[0] = _to_number(self._type, x)

    def _shown(self):
        return self._mmap[0:1] if self._type.strlen else self._view[0]

    def __repr__(self):
        return f'<shmfs.RawSharedValue {self._type.spec} {self.path!r}: {self._shown()!r}>'


class RawSharedArray(_Mapped):
    """A fixed-size typed array without a lock, like multiprocessing.RawArray:
    a ctypes array over the mapping (c_int32 * 5; (c_int32 * 3) * 2 for
    i32[2][3], whose items index flat here), with shmfs's checked stores and
    atomic operations.  A char[N] object (Array('c', N)) is one byte string:
    items are 1-byte bytes, slices bytes, and .value/.raw as for ctypes char
    arrays.  See the module doc."""

    def __len__(self):
        t = self._type
        return t.strlen if t.is_string else t.count

    def _item_index(self, index):
        if not self._type.is_string:
            return self._index(index)
        return _checked_index(index, self._type.strlen)

    def __getitem__(self, key):
        t = self._type
        if isinstance(key, slice):
            if t.is_string:
                return self._view[key].tobytes()
            if t.strlen is None:
                return self._view[key].tolist()
            return [self._get(i) for i in range(*key.indices(len(self)))]
        i = self._item_index(key)
        if t.is_string:
            return self._mmap[i:i + 1]
        return self._get(i)

    def __setitem__(self, key, value):
        t = self._type
        if not isinstance(key, slice):
            i = self._item_index(key)
            if t.is_string:
                self._mmap[i:i + 1] = _to_char(value)
            else:
                self._set(i, value)
            return
        idx = range(*key.indices(len(self)))
        items = list(value)
        if len(items) != len(idx):
            raise ValueError('Can only assign sequence of same size')
        # Everything converted before the first store: all or nothing.
        if t.is_string:
            size, chunks = 1, [_to_char(x) for x in items]
        elif t.strlen is None:
            size = t.elem.size
            chunks = [struct.pack(t.elem.fmt, _to_number(t, x)) for x in items]
        else:
            size, chunks = t.strlen, [_to_string(t, x) for x in items]
        if not chunks:
            return
        if idx.step == 1:
            self._mmap[idx.start * size:idx.stop * size] = b''.join(chunks)
        else:
            for i, chunk in zip(idx, chunks):
                self._mmap[i * size:(i + 1) * size] = chunk

    def __iter__(self):
        items = self[:]                          # one consistent snapshot
        if self._type.is_string:
            return (items[i:i + 1] for i in range(len(items)))
        return iter(items)

    def tolist(self):
        return self[:]

    # ctypes-style char arrays
    def _need_string(self):
        if not self._type.is_string:
            raise AttributeError('.value and .raw are for char arrays (Array("c", N))')

    @property
    def value(self):
        """The bytes up to the first NUL."""
        self._need_string()
        return self._mmap[:].split(b'\0', 1)[0]

    @value.setter
    def value(self, x):
        self._need_string()
        if not isinstance(x, (bytes, bytearray)):
            raise TypeError(f'bytes expected instead of {type(x).__name__} instance')
        if len(x) > self._type.strlen:
            raise ValueError('byte string too long')
        data = bytes(x) + (b'\0' if len(x) < self._type.strlen else b'')
        self._mmap[:len(data)] = data

    @property
    def raw(self):
        """All the bytes."""
        self._need_string()
        return self._mmap[:]

    @raw.setter
    def raw(self, x):
        self._need_string()
        if not isinstance(x, (bytes, bytearray, memoryview)):
            raise TypeError(f'bytes expected instead of {type(x).__name__} instance')
        x = bytes(x)
        if len(x) > self._type.strlen:
            raise ValueError('byte string too long')
        self._mmap[:len(x)] = x

    def _shown(self):
        t = self._type
        if t.nbytes > 256:
            return f'<{len(self)} items>'
        if t.is_string:
            return self._mmap[:]
        if t.strlen is None:
            return self._view.tolist()
        return [self._get(i) for i in range(len(self))]

    def __repr__(self):
        return f'<shmfs.RawSharedArray {self._type.spec} {self.path!r}: {self._shown()!r}>'


_RAW_CLASSES = {}


def _raw_class(t, array):
    """RawSharedValue or RawSharedArray joined with t's ctypes type."""
    key = (t.spec, array)
    cls = _RAW_CLASSES.get(key)
    if cls is None:
        base = RawSharedArray if array else RawSharedValue
        cls = type(base.__name__, (base, t.ctype(array)), {'__module__': __name__})
        cls = _RAW_CLASSES.setdefault(key, cls)
    return cls


class _Synchronized(_Described):
    """A mapped object and a lock, like multiprocessing's synchronized
    wrappers: the base of SharedValue and SharedArray.  Reads and stores
    hold the lock; `with obj:` holds it too."""

    def __init__(self, m, lock):
        self._m = m                # a plain RawSharedValue or RawSharedArray
        self._obj = None           # get_obj()'s ctypes object, once made
        self._lockarg = lock
        self._lock = ObjectLock.of(m._fd) if lock is True or lock is None else lock
        self.path = m.path
        self.raw_path = m.raw_path
        self._type = m._type

    def _open_m(self):
        if self._m._fd < 0:
            raise ValueError(f'I/O operation on closed shmfs object {self.path!r}')
        return self._m

    # -- the lock and the object
    def get_lock(self):
        if self._lock is None:             # closed
            self._open_m()
        return self._lock

    def get_obj(self):
        """The object without its lock, as RawValue()/RawArray() give it: a
        RawSharedValue or RawSharedArray, which is a ctypes object over a
        mapping of the same file (buffer protocol included); the same one
        each time."""
        m = self._open_m()
        with _GET_OBJ_LOCK:
            if self._obj is None:
                self._obj = _map(self.path, self.raw_path, self._type, os.dup(m._fd),
                                 isinstance(self, SharedArray), True)
            return self._obj

    def acquire(self, *args, **kw):
        return self.get_lock().acquire(*args, **kw)

    def release(self):
        return self.get_lock().release()

    def __enter__(self):
        return self.get_lock().__enter__()

    def __exit__(self, *exc):
        return self.get_lock().__exit__(*exc)

    # -- what needs no lock
    def add(self, x, index=0):
        """Atomically adds x to an element; returns its previous value."""
        return self._open_m().add(x, index)

    def sub(self, x, index=0):
        """Atomically subtracts x from an element; returns its previous value."""
        return self._open_m().sub(x, index)

    def xchg(self, x, index=0):
        """Atomically stores x in an element; returns its previous value."""
        return self._open_m().xchg(x, index)

    def cas(self, expected, new, index=0):
        """Stores new if the element equals expected, atomically; returns
        CasResult(swapped, previous), true when it swapped."""
        return self._open_m().cas(expected, new, index)

    def load(self, index=0):
        """An element read by the daemon, atomically."""
        return self._open_m().load(index)

    def notify(self):
        """Wakes poll(2)ers of the text view after stores through the mapping."""
        self._open_m().notify()

    def numpy(self):
        """A zero-copy numpy array over the mapping (0-d for a Value)."""
        return self._open_m().numpy()

    # -- life
    def close(self):
        """Unmaps and closes the object, and what get_obj() returned, and
        lets go of its lock; numpy views and ctypes objects in use keep
        their mapping until they go."""
        if self._obj is not None:
            self._obj.close()
            self._obj = None
        self._m.close()
        self._lock = None                  # its own fd closes with its last user

    def unlink(self):
        """Removes the object's name, as rm would; mappings stay valid."""
        os.unlink(self.path)

    def __reduce__(self):
        # A lock of the user's travels along, where it pickles (a
        # multiprocessing lock, to a child being started).
        lock = True if self._lockarg is None else self._lockarg
        return (_reattach, (self.path, isinstance(self, SharedArray), lock))

    def __repr__(self):
        shown = self._m._shown() if self._m._fd >= 0 else '<closed>'
        return f'<shmfs.{type(self).__name__} {self._type.spec} {self.path!r}: {shown!r}>'


_GET_OBJ_LOCK = threading.Lock()


class SharedValue(_Synchronized):
    """A typed scalar with a lock, like multiprocessing.Value; see the
    module doc."""

    @property
    def value(self):
        with self.get_lock():
            return self._m.value

    @value.setter
    def value(self, x):
        with self.get_lock():
            self._m.value = x


class SharedArray(_Synchronized):
    """A fixed-size typed array with a lock, like multiprocessing.Array; see
    RawSharedArray and the module doc."""

    def __len__(self):
        return len(self._open_m())

    def __getitem__(self, key):
        with self.get_lock():
            return self._m[key]

    def __setitem__(self, key, value):
        with self.get_lock():
            self._m[key] = value

    def __iter__(self):
        with self.get_lock():
            return iter(self._m)               # one consistent snapshot

    def tolist(self):
        return self[:]

    @property
    def value(self):
        """A char array's bytes up to the first NUL."""
        self._open_m()._need_string()
        with self.get_lock():
            return self._m.value

    @value.setter
    def value(self, x):
        self._open_m()._need_string()
        with self.get_lock():
            self._m.value = x

    @property
    def raw(self):
        """All the bytes of a char array."""
        self._open_m()._need_string()
        with self.get_lock():
            return self._m.raw

    @raw.setter
    def raw(self, x):
        self._open_m()._need_string()
        with self.get_lock():
            self._m.raw = x


# ---- records (docs/contract.md, "Records") ---------------------------------------

_FIELD_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
_FIELD_ELEM = re.compile(r'(i8|u8|i16|u16|i32|u32|i64|u64|f32|f64|bool|char)'
                         r'(?![A-Za-z0-9_])')
_FIELD_DIMS = re.compile(r'[ \t\n]*\[[ \t\n]*([0-9]+(?:[ \t\n]*,[ \t\n]*[0-9]+)*)'
                         r'[ \t\n]*\]')
# What a synchronized record keeps in its own attributes: no field may be
# named so (every other name is a field's first).
_RESERVED_FIELDS = frozenset(('_m', '_obj', '_lock', '_lockarg', '_type', '_shmfs_'))


class _RecField(NamedTuple):
    name: str
    offset: int
    t: object          # a _Type (an element or an array of one) or a _Rec


def _align_of(t):
    if isinstance(t, _Rec):
        return t.align
    return 1 if t.elem.kind in ('bool', 'char') else t.elem.size


class _Rec:
    """A record type, {name:TYPE, ...}: its fields at C's natural offsets
    (each at the next multiple of its alignment; the size rounded up to the
    largest), as a C compiler and ctypes.Structure lay them out."""

    def __init__(self, fields):
        offset, align, out = 0, 1, []
        for name, t in fields:
            a = _align_of(t)
            offset = -(-offset // a) * a
            out.append(_RecField(name, offset, t))
            offset += t.nbytes
            align = max(align, a)
        self.fields = out
        self.by_name = {f.name: f for f in out}
        self.align = align
        self.nbytes = -(-offset // align) * align
        self.spec = '{' + ', '.join(f'{f.name}:{f.t.spec}' for f in out) + '}'


class _SpecParser:
    """Reads a record spec as the daemon does: blanks around braces, names,
    colons and commas ignored, ELEM[3,4] as ELEM[3][4]."""

    def __init__(self, text):
        self.s, self.i = text, 0

    def fail(self, what):
        raise TypeError(f'bad shmfs record type {self.s!r}: {what} at offset {self.i}')

    def blank(self):
        while self.i < len(self.s) and self.s[self.i] in ' \t\n':
            self.i += 1

    def expect(self, c):
        self.blank()
        if not self.s.startswith(c, self.i):
            self.fail(f'{c!r} expected')
        self.i += 1

    def dims(self):
        dims = []
        while True:
            m = _FIELD_DIMS.match(self.s, self.i)
            if not m:
                break
            dims += [int(d) for d in re.findall(r'[0-9]+', m.group(1))]
            self.i = m.end()
        if 0 in dims:
            self.fail('a dimension of 0')
        return tuple(dims)

    def record(self, depth=0):
        if depth >= 16:
            self.fail('records nested over 16 deep')
        self.expect('{')
        fields, names = [], set()
        while True:
            self.blank()
            m = _FIELD_NAME.match(self.s, self.i)
            if not m:
                self.fail('a field name expected')
            name = m.group()
            if name in names:
                self.fail(f'a second field {name!r}')
            names.add(name)
            self.i = m.end()
            self.expect(':')
            self.blank()
            if self.s.startswith('{', self.i):
                t = self.record(depth + 1)
                if self.dims():
                    self.fail(f'field {name!r} is an array of records, which a '
                              f'record cannot hold')
            else:
                m = _FIELD_ELEM.match(self.s, self.i)
                if not m:
                    self.fail(f'a type expected for field {name!r}')
                self.i = m.end()
                dims = self.dims()
                if m.group(1) == 'char' and not dims:
                    self.fail('char needs a length: char[N]')
                t = _Type(m.group(1) + ''.join(f'[{d}]' for d in dims))
            fields.append((name, t))
            self.blank()
            if self.s.startswith(',', self.i):
                self.i += 1
                continue
            self.expect('}')
            return _Rec(fields)


_BUILT_CLASSES = {}
_BUILT_LOCK = threading.RLock()


def _field_ctype(t):
    return _record_class(t) if isinstance(t, _Rec) else t.ctype(True)


def _record_class(rec):
    """A ctypes.Structure class with rec's fields, made once per spec: what
    attaching to a record without a class of one's own gives."""
    with _BUILT_LOCK:
        cls = _BUILT_CLASSES.get(rec.spec)
        if cls is None:
            cls = type('Record', (ctypes.Structure,), {
                '_fields_': [(f.name, _field_ctype(f.t)) for f in rec.fields],
                '__module__': __name__,
                '__doc__': f'The shmfs record {rec.spec}.'})
            assert ctypes.sizeof(cls) == rec.nbytes, rec.spec
            _BUILT_CLASSES[rec.spec] = cls
            _CLASS_RECS[cls] = rec
        return cls


_CLASS_RECS = weakref.WeakKeyDictionary()      # ctypes class -> its _Rec
_OTHER_ORDER = (ctypes.BigEndianStructure if sys.byteorder == 'little'
                else ctypes.LittleEndianStructure)


def _field_type(ftype, where):
    """The shmfs type (a _Type or a _Rec) of a ctypes field type."""
    if isinstance(ftype, type) and issubclass(ftype, ctypes.Structure):
        return _class_rec(ftype)
    if isinstance(ftype, type) and issubclass(ftype, ctypes.Union):
        raise TypeError(f'{where}: {ftype.__name__} is a ctypes.Union; shmfs has no unions')
    if isinstance(ftype, type) and issubclass(ftype, ctypes.Array):
        dims, base = [], ftype
        while isinstance(base, type) and issubclass(base, ctypes.Array):
            dims.append(base._length_)
            base = base._type_
        if issubclass(base, (ctypes.Structure, ctypes.Union)):
            raise TypeError(f'{where}: an array of {base.__name__} as a field is not '
                            f'supported by shmfs (a record holds no array of records); '
                            f'name its elements as fields, or make the object an '
                            f'Array of records')
        if 0 in dims:
            raise TypeError(f'{where}: an array of 0 items (shmfs has no empty arrays)')
        name = _field_elem(base, where)
        if name == 'char[1]':                        # c_char * N: char[N]
            name, dims = f'char[{dims[-1]}]', dims[:-1]
        return _Type(name + ''.join(f'[{d}]' for d in dims))
    return _Type(_field_elem(ftype, where))


def _field_elem(ctype, where):
    try:
        return _ctype_elem(ctype)
    except TypeError as e:
        raise TypeError(f'{where}: {e}') from None


def _class_rec(cls):
    """The record type of a ctypes.Structure class (default packing, native
    byte order, no bitfields, fields of shmfs elements, arrays of them and
    Structures); a TypeError naming what shmfs cannot hold otherwise."""
    rec = _CLASS_RECS.get(cls)
    if rec is not None:
        return rec
    if not (isinstance(cls, type) and issubclass(cls, ctypes.Structure)):
        raise TypeError(f'{cls!r} is not a ctypes.Structure class')
    name = cls.__name__
    if getattr(cls, '_pack_', 0):
        raise TypeError(f'{name}: _pack_ = {cls._pack_}; shmfs records have C\'s '
                        f'natural layout (default packing) only')
    if issubclass(cls, _OTHER_ORDER):
        raise TypeError(f'{name}: shmfs stores records in the host\'s byte order')
    entries = []
    for klass in reversed(cls.__mro__):            # a base Structure's fields first
        entries += list(vars(klass).get('_fields_', ()))
    if not entries:
        raise TypeError(f'{name} has no fields (a shmfs record has at least one)')
    fields = []
    for entry in entries:
        fname = entry[0]
        where = f'{name}.{fname}'
        if len(entry) != 2:
            raise TypeError(f'{where} is a bitfield; shmfs records have none')
        if not _FIELD_NAME.fullmatch(fname):
            raise TypeError(f'{where}: a shmfs field name matches [A-Za-z_][A-Za-z0-9_]*')
        fields.append((fname, _field_type(entry[1], where)))
    rec = _Rec(fields)
    if len(rec.spec) > 4095:
        raise TypeError(f'{name}: its type spec is over 4095 bytes')
    # ctypes' own layout must be that one (it is, unless _layout_ or the
    # like changed it).
    for f in rec.fields:
        got = getattr(cls, f.name).offset
        if got != f.offset:
            raise TypeError(f'{where}: ctypes puts field {f.name} at offset {got}, '
                            f'not at {f.offset} as C\'s natural layout does')
    if ctypes.sizeof(cls) != rec.nbytes:
        raise TypeError(f'{name}: ctypes makes it {ctypes.sizeof(cls)} bytes, '
                        f'not the {rec.nbytes} of C\'s natural layout')
    _CLASS_RECS[cls] = rec
    return rec


def _layout_difference(want, have, prefix=''):
    """How record type want (a class's) differs from have (an object's):
    the first differing field, its offset and type in each; None if equal."""
    for i in range(max(len(want.fields), len(have.fields))):
        a = want.fields[i] if i < len(want.fields) else None
        b = have.fields[i] if i < len(have.fields) else None
        if a is None:
            return (f'field {prefix}{b.name}: the object has {b.name}:{b.t.spec} at '
                    f'offset {b.offset}, the class has no field there')
        if b is None:
            return (f'field {prefix}{a.name}: the class has {a.name}:{a.t.spec} at '
                    f'offset {a.offset}, the object has no field there')
        if a.name == b.name and a.offset == b.offset and \
                isinstance(a.t, _Rec) and isinstance(b.t, _Rec):
            inner = _layout_difference(a.t, b.t, f'{prefix}{a.name}.')
            if inner:
                return inner
        elif (a.name, a.offset, a.t.spec) != (b.name, b.offset, b.t.spec):
            return (f'field {prefix}{a.name}: the class has {a.name}:{a.t.spec} at '
                    f'offset {a.offset}, the object has {b.name}:{b.t.spec} at '
                    f'offset {b.offset}')
    if want.nbytes != have.nbytes:
        return f'the class is {want.nbytes} bytes, the object\'s records {have.nbytes}'
    return None


class _RecordType:
    """The type of a record object: a record or an array of them, and the
    ctypes.Structure class its records are seen through (the user's, whose
    layout was checked, or one made from the spec)."""

    strlen = None
    elem = None

    def __init__(self, spec, cls=None):
        p = _SpecParser(spec)
        self.rec = p.record()
        self.shape = p.dims()
        p.blank()
        if p.i != len(spec):
            p.fail('trailing text')
        self.spec = self.rec.spec + ''.join(f'[{d}]' for d in self.shape)
        self.count = 1
        for d in self.shape:
            self.count *= d
        self.itemsize = self.rec.nbytes
        self.nbytes = self.count * self.itemsize
        self.given_class = cls is not None
        if cls is not None:
            diff = _layout_difference(_class_rec(cls), self.rec)
            if diff:
                raise TypeError(f'{cls.__name__} does not match the record '
                                f'{self.rec.spec}: {diff}')
        self.cls = cls if cls is not None else _record_class(self.rec)

    is_scalar = property(lambda self: not self.shape)

    def ctype(self, array):
        c = self.cls
        for d in reversed(self.shape):
            c = c * d
        return c


def _is_record_class(x):
    return isinstance(x, type) and issubclass(x, ctypes.Structure)


def _is_record_spec(x):
    return isinstance(x, str) and x.lstrip(' \t\n').startswith('{')


def _record_type_of(typecode, dims=()):
    """(canonical spec, class or None) of a record typecode: a
    ctypes.Structure class or a record spec string, with dims."""
    if _is_record_class(typecode):
        rec, cls = _class_rec(typecode), typecode
    else:
        rt = _RecordType(typecode)
        if rt.shape:
            raise TypeError(f'{typecode!r}: give the dimensions of an Array of records '
                            f'with size_or_initializer or shape=')
        rec, cls = rt.rec, None
    return rec.spec + ''.join(f'[{d}]' for d in dims), cls


# -- checked conversion: values to the bytes of a field or record

def _flat_items(x, shape, what):
    """The items of the nested sequence x of the given shape, in C order."""
    if isinstance(x, (str, bytes, bytearray, memoryview)) or not hasattr(x, '__len__'):
        raise TypeError(f'{what}: a sequence of {shape[0]} items expected, '
                        f'not {type(x).__name__}')
    if len(x) != shape[0]:
        raise ValueError(f'{what}: {shape[0]} items expected, not {len(x)}')
    if len(shape) == 1:
        return list(x)
    return [y for item in x for y in _flat_items(item, shape[1:], what)]


def _leaf_bytes(t, x, what):
    """The bytes of x as a field of type t (an element or an array of one),
    checked: OverflowError out of range, TypeError or ValueError otherwise."""
    if not t.shape:
        if t.strlen is not None:
            return _to_string(t, x)
        return struct.pack('=' + t.elem.fmt, _to_number(t, x))
    items = _flat_items(x, t.shape, what)
    if t.strlen is not None:
        return b''.join(_to_string(t, v) for v in items)
    return struct.pack(f'={len(items)}{t.elem.fmt}', *[_to_number(t, v) for v in items])


def _encode(t, x, offset, what):
    """[(offset, bytes)]: what storing x as a field of type t at offset
    changes, every value converted and checked before anything is stored."""
    if isinstance(t, _Rec):
        return _encode_record(t, x, offset, what)
    try:
        return [(offset, _leaf_bytes(t, x, what))]
    except (TypeError, ValueError, OverflowError) as e:
        if str(e).startswith(what):
            raise
        raise type(e)(f'{what} ({t.spec}): {e}') from None


def _encode_record(rec, x, offset, what='record'):
    """A record from a ctypes Structure of its layout (all its bytes), a
    dict of some fields (those only), or a tuple or list of the first
    fields' values, as ctypes' constructor takes them (the others zero)."""
    if isinstance(x, ctypes.Structure):
        diff = _layout_difference(_class_rec(type(x)), rec)
        if diff:
            raise TypeError(f'{what}: {type(x).__name__} does not match {rec.spec}: {diff}')
        return [(offset, ctypes.string_at(ctypes.addressof(x), rec.nbytes))]
    if isinstance(x, dict):
        patches = []
        for k, v in x.items():
            f = rec.by_name.get(k)
            if f is None:
                raise TypeError(f'{what}: no field {k!r} in {rec.spec}')
            patches += _encode(f.t, v, offset + f.offset, f'{what}.{k}' if what != 'record' else k)
        return patches
    if isinstance(x, (tuple, list)):
        if len(x) > len(rec.fields):
            raise TypeError(f'{what}: too many initializers ({len(x)} for the '
                            f'{len(rec.fields)} fields of {rec.spec})')
        buf = bytearray(rec.nbytes)
        for f, v in zip(rec.fields, x):
            for o, b in _encode(f.t, v, f.offset, f'{what}.{f.name}' if what != 'record' else f.name):
                buf[o:o + len(b)] = b
        return [(offset, bytes(buf))]
    raise TypeError(f'{what} ({rec.spec}) takes a ctypes.Structure, a dict or a tuple, '
                    f'not {type(x).__name__}')


def _store(mm, patches):
    for o, b in patches:
        mm[o:o + len(b)] = b


def _record_data(rt, items):
    """The bytes of all records of rt, from one initializer per record."""
    buf = bytearray(rt.nbytes)
    for i, x in enumerate(items):
        _store(buf, _encode_record(rt.rec, x, i * rt.itemsize,
                                   'record' if rt.is_scalar else f'item {i}'))
    return bytes(buf)


def _decode(t, mm, offset):
    """Plain Python values of a field: numbers, bool, bytes, lists, dicts."""
    if isinstance(t, _Rec):
        return {f.name: _decode(f.t, mm, offset + f.offset) for f in t.fields}
    raw = mm[offset:offset + t.nbytes]
    if t.strlen is not None:
        items = [raw[i:i + t.strlen].split(b'\0', 1)[0]
                 for i in range(0, len(raw), t.strlen)]
    else:
        items = list(struct.unpack(f'={t.count}{t.elem.fmt}', raw))
    if not t.shape:
        return items[0]
    for d in reversed(t.shape[1:]):
        items = [items[i:i + d] for i in range(0, len(items), d)]
    return items


_FIELD_PATH = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[\s*(-?[0-9]+)\s*\]')


def _field_at(rec, field):
    """(byte offset, element _Type) of the number or bool that field names:
    'x', 'q.b', 'v[2]', 'm[1][0]' (a field array's item, every index given)."""
    if not isinstance(field, str):
        raise TypeError(f'a field is named by a str such as "x", "q.b" or "v[2]", '
                        f'not {type(field).__name__}')
    t, offset, pos, first = rec, 0, 0, True
    while pos < len(field):
        m = _FIELD_PATH.match(field, pos)
        if not m or (first and field.startswith('.')):
            raise KeyError(f'bad field {field!r}')
        first = False
        pos = m.end()
        if m.group(1) is not None:
            if not isinstance(t, _Rec):
                raise KeyError(f'{field!r}: {t.spec} has no fields')
            f = t.by_name.get(m.group(1))
            if f is None:
                raise KeyError(f'no field {field!r} in {rec.spec}')
            t, offset = f.t, offset + f.offset
        else:
            if isinstance(t, _Rec) or not t.shape:
                raise KeyError(f'{field!r}: {t.spec} is no array')
            d = t.shape[0]
            i = _checked_index(int(m.group(2)), d)
            sub = _Type((t.elem.name if t.strlen is None else f'char[{t.strlen}]')
                        + ''.join(f'[{x}]' for x in t.shape[1:]))
            t, offset = sub, offset + i * sub.nbytes
    if isinstance(t, _Rec) or t.shape or t.strlen is not None:
        raise TypeError(f'{field!r} is {t.spec}: atomic operations apply to a number '
                        f'or bool (name a field array\'s item, e.g. "v[0]")')
    return offset, t


class _RecordMapped:
    """A mapped record object: its file, mapping and ctypes views.  What a
    SharedRecord holds, and what a raw record keeps in its _shmfs_."""

    def __init__(self, path, raw_path, t, fd, mm):
        self._fd = fd
        self.path = path
        self.raw_path = raw_path
        self._type = t
        self._mmap = mm
        self._ct = t.cls.from_buffer(mm) if t.is_scalar else None
        self._flat = None if t.is_scalar else (t.cls * t.count).from_buffer(mm)

    def _need_open(self):
        if self._fd < 0:
            raise ValueError(f'I/O operation on closed shmfs object {self.path!r}')
        return self

    # -- fields and items
    def set_field(self, name, x):
        f = self._type.rec.by_name[name]
        _store(self._need_open()._mmap, _encode(f.t, x, f.offset, name))

    def item_index(self, index):
        return _checked_index(index, self._type.count)

    def get_item(self, key):
        self._need_open()
        if isinstance(key, slice):
            return self._flat[key]
        return self._flat[self.item_index(key)]

    def encode_items(self, key, value):
        t = self._type
        if not isinstance(key, slice):
            i = self.item_index(key)
            return _encode_record(t.rec, value, i * t.itemsize, f'item {i}')
        idx = range(*key.indices(t.count))
        items = list(value)
        if len(items) != len(idx):
            raise ValueError('Can only assign sequence of same size')
        return [p for i, x in zip(idx, items)
                for p in _encode_record(t.rec, x, i * t.itemsize, f'item {i}')]

    def set_item(self, key, value):
        _store(self._need_open()._mmap, self.encode_items(key, value))

    def todict(self, index=0):
        self._need_open()
        t = self._type
        return _decode(t.rec, self._mmap, self.item_index(index) * t.itemsize)

    def tolist(self):
        return [self.todict(i) for i in range(self._type.count)]

    # -- atomic operations
    def atomic(self, op, field, x, index, expected=None):
        self._need_open()
        offset, t = _field_at(self._type.rec, field)
        _atomic_check(t, op)
        return _atomic_op(self._fd, self.path, t, op, x, self.item_index(index),
                          expected, offset)

    def notify(self):
        fcntl.ioctl(self._need_open()._fd, SHMFS_IOC_NOTIFY)

    def numpy(self):
        return _numpy_view(self._need_open()._fd, self._mmap)

    def shown(self):
        if self._fd < 0:
            return '<closed>'
        if self._type.is_scalar:
            return self.todict()
        if self._type.nbytes > 1024:
            return f'<{self._type.count} records>'
        return self.tolist()

    def close(self):
        if self._fd < 0:
            return
        self._ct = self._flat = None
        try:
            self._mmap.close()
        except BufferError:
            pass                           # unmapped when the last user goes
        os.close(self._fd)
        self._fd = -1

    def __del__(self):
        try:
            if self._fd >= 0:
                os.close(self._fd)
        except (AttributeError, OSError):
            pass


class _RecordOps:
    """The operations of every record object, addressing fields by name
    ('x', 'q.b', 'v[2]') and, in an Array of records, records by index."""

    def add(self, field, x, index=0):
        """Atomically adds x to a field; returns its previous value."""
        return self._rm().atomic(_ADD, field, x, index)

    def sub(self, field, x, index=0):
        """Atomically subtracts x from a field; returns its previous value."""
        return self._rm().atomic(_SUB, field, x, index)

    def xchg(self, field, x, index=0):
        """Atomically stores x in a field; returns its previous value."""
        return self._rm().atomic(_XCHG, field, x, index)

    def cas(self, field, expected, new, index=0):
        """Stores new in a field if it equals expected, atomically; returns
        CasResult(swapped, previous), true when it swapped."""
        return self._rm().atomic(_CAS, field, new, index, expected)

    def load(self, field, index=0):
        """A field read by the daemon, atomically."""
        return self._rm().atomic(_LOAD, field, None, index)

    def notify(self):
        """Wakes poll(2)ers of the text view after stores through the mapping."""
        self._rm().notify()

    def numpy(self):
        """A zero-copy numpy view with the record's structured dtype (0-d for
        a Value): fields by name, a['x']."""
        return self._rm().numpy()

    def unlink(self):
        """Removes the object's name, as rm would; mappings stay valid."""
        os.unlink(self._rm().path)


class RawSharedRecord(_RecordOps):
    """A record without a lock, like multiprocessing.RawValue(Structure): an
    instance of the Structure class itself over the mapping.  Its fields'
    stores are checked (see the module doc); the methods address fields by
    name.  A field named like a method hides that method here."""

    def _rm(self):
        return self.__dict__['_shmfs_']._need_open()

    path = property(lambda self: self.__dict__['_shmfs_'].path)
    raw_path = property(lambda self: self.__dict__['_shmfs_'].raw_path)
    typecode = property(lambda self: self.__dict__['_shmfs_']._type.spec)
    shape = property(lambda self: self.__dict__['_shmfs_']._type.shape)
    nbytes = property(lambda self: self.__dict__['_shmfs_']._type.nbytes)

    def todict(self):
        """The record's fields as plain values (numbers, bool, bytes, lists,
        dicts), read without the lock."""
        return self._rm().todict()

    def close(self):
        """Closes the object's file; this ctypes object keeps the mapping
        until it goes, and its methods fail from now on."""
        self.__dict__['_shmfs_'].close()

    # Put into each raw record class itself, ahead of ctypes' own:
    def __setattr__(self, name, x):
        st = self.__dict__.get('_shmfs_')
        if st is not None and name in st._type.rec.by_name:
            st.set_field(name, x)
        else:
            object.__setattr__(self, name, x)

    def __reduce__(self):
        st = self.__dict__['_shmfs_']
        return (_reattach_record, (st.path, False, st._type.cls if st._type.given_class
                                   else None))

    def __repr__(self):
        st = self.__dict__['_shmfs_']
        return f'<shmfs.RawSharedRecord {st._type.spec} {st.path!r}: {st.shown()!r}>'


class RawSharedRecordArray(_RecordOps):
    """An array of records without a lock, like multiprocessing.RawArray(
    Structure, n): a ctypes array of the Structure class over the mapping,
    indexed flat in C order whatever its shape.  Items are Structures over
    the mapping; storing one (a Structure, dict or tuple) is checked."""

    _rm = RawSharedRecord._rm
    path = RawSharedRecord.path
    raw_path = RawSharedRecord.raw_path
    typecode = RawSharedRecord.typecode
    shape = RawSharedRecord.shape
    nbytes = RawSharedRecord.nbytes
    close = RawSharedRecord.close

    def tolist(self):
        """Every record's fields as plain values (dicts), flat."""
        return self._rm().tolist()

    def todict(self, index):
        return self._rm().todict(index)

    # Put into each raw record array class itself, ahead of ctypes' own:
    def __len__(self):
        return self.__dict__['_shmfs_']._type.count

    def __getitem__(self, key):
        return self._rm().get_item(key)

    def __setitem__(self, key, value):
        self._rm().set_item(key, value)

    def __iter__(self):
        return iter(self._rm().get_item(slice(None)))

    def __reduce__(self):
        st = self.__dict__['_shmfs_']
        return (_reattach_record, (st.path, False, st._type.cls if st._type.given_class
                                   else None))

    def __repr__(self):
        st = self.__dict__['_shmfs_']
        return f'<shmfs.RawSharedRecordArray {st._type.spec} {st.path!r}: {st.shown()!r}>'


_OWN_DUNDERS = {
    RawSharedRecord: ('__setattr__', '__reduce__', '__repr__'),
    RawSharedRecordArray: ('__len__', '__getitem__', '__setitem__', '__iter__',
                           '__reduce__', '__repr__')}
_RAW_RECORD_CLASSES = weakref.WeakKeyDictionary()    # (cls) -> {(shape): class}


def _raw_record_class(t):
    """The Structure class (or array of it) joined with RawSharedRecord(Array):
    the Structure's fields first, then the methods."""
    per_class = _RAW_RECORD_CLASSES.setdefault(t.cls, {})
    cls = per_class.get(t.shape)
    if cls is None:
        base = RawSharedRecord if t.is_scalar else RawSharedRecordArray
        ns = {k: vars(base)[k] for k in _OWN_DUNDERS[base]}
        ns.update(__module__=__name__, __doc__=base.__doc__)
        name = t.cls.__name__ if t.is_scalar else f'{t.cls.__name__}_Array'
        cls = per_class.setdefault(t.shape, type(name, (t.ctype(True), base), ns))
    return cls


def _map_record(path, raw_path, t, fd):
    """The raw record (or array of them) over fd, which it takes over."""
    try:
        mm = mmap.mmap(fd, t.nbytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        obj = _raw_record_class(t).from_buffer(mm)
    except BaseException:
        os.close(fd)
        raise
    obj.__dict__['_shmfs_'] = _RecordMapped(path, raw_path, t, fd, mm)
    return obj


class _SynchronizedRecord(_Synchronized):
    """The base of SharedRecord and SharedRecordArray: a mapped record
    object and a lock.  Its state lives in attributes no field may have."""

    def __init__(self, m, lock):
        d = self.__dict__
        d['_m'] = m
        d['_obj'] = None
        d['_lockarg'] = lock
        d['_lock'] = ObjectLock.of(m._fd) if lock is True or lock is None else lock
        d['_type'] = m._type
        d['path'] = m.path                 # a field named path hides these
        d['raw_path'] = m.raw_path

    def _rm(self):
        return self._open_m()

    def get_obj(self):
        """The object without its lock, as RawValue()/RawArray() give it: a
        RawSharedRecord, an instance of the Structure class over a mapping of
        the same file (or a RawSharedRecordArray); the same one each time."""
        m = self._open_m()
        with _GET_OBJ_LOCK:
            if self._obj is None:
                self.__dict__['_obj'] = _map_record(m.path, m.raw_path, m._type,
                                                    os.dup(m._fd))
            return self._obj

    def close(self):
        """Unmaps and closes the object and what get_obj() returned, and lets
        go of its lock; ctypes and numpy views in use keep their mapping."""
        if self._obj is not None:
            self._obj.close()
            self.__dict__['_obj'] = None
        self._m.close()
        self.__dict__['_lock'] = None

    def unlink(self):
        os.unlink(self._m.path)

    def __reduce__(self):
        t = self._m._type
        lock = True if self._lockarg is None else self._lockarg
        return (_reattach_record, (self._m.path, lock, t.cls if t.given_class else None))

    def __repr__(self):
        return (f'<shmfs.{type(self).__name__} {self._m._type.spec} {self._m.path!r}: '
                f'{self._m.shown()!r}>')


for _name in ('add', 'sub', 'xchg', 'cas', 'load', 'notify', 'numpy'):
    setattr(_SynchronizedRecord, _name, vars(_RecordOps)[_name])
del _name


class SharedRecord(_SynchronizedRecord):
    """A record with a lock, like multiprocessing.Value(Structure, ...): each
    field an attribute whose reads and stores hold the lock (a subclass per
    Structure class has them, as multiprocessing's make_property makes
    them); see the module doc."""

    def todict(self):
        """The record's fields as plain values, one consistent snapshot."""
        with self.get_lock():
            return self._open_m().todict()


class SharedRecordArray(_SynchronizedRecord):
    """An array of records with a lock, like multiprocessing.Array(Structure,
    n): items index flat, in C order; reads and stores hold the lock."""

    def __len__(self):
        return self._open_m()._type.count

    def __getitem__(self, key):
        with self.get_lock():
            return self._open_m().get_item(key)

    def __setitem__(self, key, value):
        m = self._open_m()
        patches = m.encode_items(key, value)        # checked before the lock
        with self.get_lock():
            _store(m._need_open()._mmap, patches)

    def __iter__(self):
        with self.get_lock():
            return iter(self._open_m().get_item(slice(None)))

    def todict(self, index):
        with self.get_lock():
            return self._open_m().todict(index)

    def tolist(self):
        """Every record's fields as plain values (dicts), one snapshot."""
        with self.get_lock():
            return self._open_m().tolist()


def _field_property(name):
    def fget(self):
        m = self._open_m()
        with self.get_lock():
            return getattr(m._ct, name)

    def fset(self, x):
        m = self._open_m()
        f = m._type.rec.by_name[name]
        patches = _encode(f.t, x, f.offset, name)    # checked before the lock
        with self.get_lock():
            _store(m._need_open()._mmap, patches)

    return property(fget, fset, doc=f'field {name}, read and stored holding the lock')


_SHARED_RECORD_CLASSES = weakref.WeakKeyDictionary()


def _shared_record_class(cls):
    sync = _SHARED_RECORD_CLASSES.get(cls)
    if sync is None:
        names = [f.name for f in _class_rec(cls).fields]
        bad = _RESERVED_FIELDS.intersection(names)
        if bad:
            raise TypeError(f'{cls.__name__}: a field may not be named {sorted(bad)[0]} '
                            f'(the synchronized wrapper\'s own); use lock=False')
        ns = {n: _field_property(n) for n in names}
        ns.update(__module__=__name__, __doc__=SharedRecord.__doc__)
        sync = _SHARED_RECORD_CLASSES.setdefault(
            cls, type(f'Synchronized{cls.__name__}', (SharedRecord,), ns))
    return sync


def _record_object(path, raw_path, t, fd, lock):
    """The object over fd, which it takes over: a RawSharedRecord(Array)
    (lock=False), else a SharedRecord(Array)."""
    if lock is False:
        return _map_record(path, raw_path, t, fd)
    try:
        mm = mmap.mmap(fd, t.nbytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    except BaseException:
        os.close(fd)
        raise
    m = _RecordMapped(path, raw_path, t, fd, mm)
    sync = _shared_record_class(t.cls) if t.is_scalar else SharedRecordArray
    return sync(m, lock)


def _reattach_record(path, lock, cls):
    """Unpickling: the record object at path, through cls when it was given."""
    path, raw_path = _locate(path)
    spec = _existing_spec(path)
    if not spec:
        raise FileNotFoundError(errno.ENOENT, 'no typed shmfs object', path)
    return _open(path, raw_path, spec, None, lock, cls)


def copy(obj, *, path, mode=0o600):
    """A new raw object at path holding a copy of obj, a ctypes object (a
    Structure, a simple type or an array of one), as
    multiprocessing.sharedctypes.copy makes one."""
    if isinstance(obj, ctypes.Structure):
        return RawValue(type(obj), obj, path=path, mode=mode)
    if isinstance(obj, ctypes._SimpleCData):
        return RawValue(type(obj), obj.value, path=path, mode=mode)
    if isinstance(obj, ctypes.Array) and not issubclass(obj._type_, ctypes.Array):
        if obj._type_ is ctypes.c_char:
            return RawArray('c', obj.raw, path=path, mode=mode)
        return RawArray(obj._type_, list(obj), path=path, mode=mode)
    raise TypeError(f'cannot copy {type(obj).__name__} to shmfs')


# ---- opening and creating ------------------------------------------------------

def _map(path, raw_path, t, fd, array, ctype):
    """A RawSharedValue or RawSharedArray over fd, which it takes over: a
    ctypes object over the mapping, or (ctype=False) a plain one, which a
    synchronized object holds so that close() can unmap it."""
    try:
        mm = mmap.mmap(fd, t.nbytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        if ctype:
            obj = _raw_class(t, array).from_buffer(mm)
        else:
            obj = object.__new__(RawSharedArray if array else RawSharedValue)
    except BaseException:
        os.close(fd)
        raise
    obj._init(path, raw_path, t, fd, mm)
    return obj


def _object(path, raw_path, t, fd, array, lock):
    """The object over fd, which it takes over: a RawSharedValue or
    RawSharedArray (lock=False), else a SharedValue or SharedArray; for a
    record, their record counterparts."""
    if isinstance(t, _RecordType):
        return _record_object(path, raw_path, t, fd, lock)
    if lock is False:
        return _map(path, raw_path, t, fd, array, True)
    m = _map(path, raw_path, t, fd, array, False)
    return (SharedArray if array else SharedValue)(m, lock)


def _make_type(spec, cls=None):
    """The _Type or _RecordType of a canonical spec; cls, a Structure class,
    is checked against a record's layout (TypeError naming the first field
    that differs)."""
    if _is_record_spec(spec):
        return _RecordType(spec, cls)
    if cls is not None:
        raise TypeError(f'the object is {spec}, not a record of {cls.__name__}')
    return _Type(spec)


def _open(path, raw_path, spec, array, lock, cls=None):
    t = _make_type(spec, cls)
    fd = os.open(raw_path, os.O_RDWR | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size != t.nbytes:
            raise OSError(errno.EIO, f'{raw_path} is {size} bytes, '
                          f'not the {t.nbytes} of {spec}')
    except BaseException:
        os.close(fd)
        raise
    return _object(path, raw_path, t, fd, array, lock)


def attach(path, typecode=None, *, lock=True):
    """Opens the existing object at path: a SharedValue for a scalar (or
    char[1]), else a SharedArray; with lock=False a RawSharedValue or
    RawSharedArray.  With typecode, its element type must be that one
    (TypeError otherwise); Array typecodes give the element only.  A record
    (or an array of them) gives a SharedRecord or SharedRecordArray (or their
    raw forms), seen through typecode when it is a ctypes.Structure class,
    whose layout must be the record's (TypeError naming the first field that
    differs), else through a Structure class made from the type."""
    _check_lock(lock)
    path, raw_path = _locate(path)
    spec = _existing_spec(path)
    if spec is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    if spec == '':
        raise TypeError(f'{path} has no type yet')
    if _is_record_spec(spec) or _is_record_class(typecode) or _is_record_spec(typecode):
        cls = None
        if _is_record_class(typecode):
            cls = typecode
        elif _is_record_spec(typecode):
            want, have = _RecordType(typecode).rec, _RecordType(spec).rec if \
                _is_record_spec(spec) else None
            if have is None or want.spec != have.spec:
                raise TypeError(f'{path} is {spec}, not of {want.spec}')
        elif typecode is not None:
            raise TypeError(f'{path} is {spec}, a record: attach it with its '
                            f'ctypes.Structure class, or with no type')
        if not _is_record_spec(spec):
            raise TypeError(f'{path} is {spec}, not a record of {typecode.__name__}')
        try:
            return _open(path, raw_path, spec, None, lock, cls)
        except TypeError as e:
            raise TypeError(f'{path}: {e}') from None
    t = _Type(spec)
    if typecode is not None:
        want = _elem_name(typecode)
        have = t.elem.name if t.strlen is None else f'char[{t.strlen}]'
        if want != have and not (want == 'char[1]' and t.strlen):
            name = typecode.__name__ if isinstance(typecode, type) else repr(typecode)
            raise TypeError(f'{path} is {spec}, not of {name} ({want})')
    return _open(path, raw_path, spec, not t.is_scalar, lock)


def _reattach(path, array, lock):
    """Unpickling: the object at path, a Value or an Array as it was."""
    path, raw_path = _locate(path)
    spec = _existing_spec(path)
    if not spec:
        raise FileNotFoundError(errno.ENOENT, 'no typed shmfs object', path)
    return _open(path, raw_path, spec, array, lock)


def _create(path, spec, data, array, lock, mode, cls=None):
    """Creates path as spec holding the bytes data, atomically, or attaches
    to an object of the same type already there (cls: a record's Structure
    class)."""
    _check_lock(lock)
    path, raw_path = _locate(path)
    while True:
        have = _existing_spec(path)
        if have is not None:
            if have != spec:
                detail = ''
                if _is_record_spec(have) and _is_record_spec(spec):
                    a, b = _RecordType(spec), _RecordType(have)
                    diff = _layout_difference(a.rec, b.rec)
                    if diff:
                        detail = f' ({diff})'
                    elif a.shape != b.shape:
                        detail = f' (shape {b.shape}, not {a.shape})'
                raise FileExistsError(
                    errno.EEXIST, f'exists as {have or "an untyped object"}, '
                    f'not {spec}{detail}', path)
            try:
                return _open(path, raw_path, spec, array, lock, cls)
            except FileNotFoundError:
                continue                           # removed meanwhile: create

        d, base = os.path.split(path)
        tmp = os.path.join(d, f'.{base}.shmfs-tmp.{os.getpid()}.{os.urandom(4).hex()}')
        raw_tmp = os.path.join(os.path.dirname(raw_path), os.path.basename(tmp))
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        raw_fd = -1
        try:
            try:
                os.setxattr(fd, TYPE_XATTR, spec.encode())
            except OSError as e:
                if e.errno == errno.EINVAL:
                    raise ValueError(f'shmfs refuses the type {spec}') from e
                raise
            raw_fd = os.open(raw_tmp, os.O_RDWR | os.O_CLOEXEC)
            if data is not None:
                done = 0
                while done < len(data):
                    done += os.pwrite(raw_fd, data[done:], done)
            try:
                _rename_noreplace(tmp, path)
            except FileExistsError:
                os.unlink(tmp)
                os.close(raw_fd)
                raw_fd = -1
                continue                           # lost a race: attach
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if raw_fd >= 0:
                os.close(raw_fd)
            raise
        finally:
            os.close(fd)
        return _object(path, raw_path, _make_type(spec, cls), raw_fd, array, lock)


def _pack(t, values):
    """The bytes of values (all items of t), converted and checked first."""
    if t.strlen is None:
        conv = [_to_number(t, v) for v in values]
        return struct.pack(f'={len(conv)}{t.elem.fmt}', *conv)
    return b''.join(_to_string(t, v) for v in values)


def Value(typecode, *args, path, lock=True, mode=0o600):
    """Creates (or attaches to) the shmfs Value at path; see the module doc.
    Value(typecode, value=0, ...) for a number, bool or char;
    Value(StructureClass, *initial, ...) for a record, initial as the
    Structure's constructor takes them (the first fields' values, the
    others zero), or one Structure or dict."""
    if _is_record_class(typecode) or _is_record_spec(typecode):
        spec, cls = _record_type_of(typecode)
        rt = _RecordType(spec, cls)
        if len(args) == 1 and isinstance(args[0], (ctypes.Structure, dict)):
            init = args[0]
        else:
            init = tuple(args)
        data = _record_data(rt, [init]) if args else None
        return _create(path, spec, data, False, lock, mode, cls)
    if len(args) > 1:
        raise TypeError(f'Value({typecode!r}, ...) takes one value, not {len(args)}')
    value = args[0] if args else 0
    spec = _value_spec(typecode)
    t = _Type(spec)
    data = _to_char(value) if t.strlen else _pack(t, [value])
    return _create(path, spec, data, False, lock, mode)


def _dims(shape):
    try:
        dims = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f'shape must be a sequence of integers, not {shape!r}') from None
    if not dims:
        raise ValueError('shape needs at least one dimension')
    return dims


def Array(typecode, size_or_initializer=None, *, shape=None, path, lock=True,
          mode=0o600):
    """Creates (or attaches to) the shmfs Array at path; see the module doc.
    With a Structure class (or a record spec), an array of records: the
    initializer gives one Structure, dict or tuple per record."""
    record = _is_record_class(typecode) or _is_record_spec(typecode)
    if record:
        _record_type_of(typecode)
    else:
        _elem_name(typecode)
    if size_or_initializer is None or isinstance(size_or_initializer, int):
        n, init = size_or_initializer, None
    else:
        init = list(size_or_initializer)
        n = len(init)
    if shape is None:
        if n is None:
            raise TypeError('Array() needs a size, an initializer or shape=')
        dims = (operator.index(n),)
    else:
        dims = _dims(shape)
    if min(dims) <= 0:
        what = f'{n} items' if shape is None else f'shape {dims}'
        raise ValueError(f'no Array of {what}: shmfs holds no empty arrays '
                         f'(each dimension of a type is at least 1)')
    if record:
        spec, cls = _record_type_of(typecode, dims)
        rt = _RecordType(spec, cls)
        if n is not None and n != rt.count:
            raise ValueError(f'{"an initializer of " if init is not None else "size "}'
                             f'{n} for the {rt.count} records of shape {dims}')
        data = None if init is None else _record_data(rt, init)
        return _create(path, spec, data, True, lock, mode, cls)
    spec = _array_spec(typecode, dims)
    t = _Type(spec)
    items = t.strlen if t.is_string else t.count
    if n is not None and n != items:
        raise ValueError(f'{"an initializer of " if init is not None else "size "}'
                         f'{n} for the {items} items of shape {dims}')
    if init is None:
        data = None                                # typing zero-fills
    elif t.is_string:                              # Array('c', b'...')
        data = b''.join(_to_char(x) for x in init)
    else:
        data = _pack(t, init)
    return _create(path, spec, data, True, lock, mode)


def RawValue(typecode, *args, path, mode=0o600):
    """Value(..., lock=False): a RawSharedValue (a RawSharedRecord for a
    Structure class)."""
    return Value(typecode, *args, path=path, lock=False, mode=mode)


def RawArray(typecode, size_or_initializer=None, *, shape=None, path, mode=0o600):
    """Array(..., lock=False): a RawSharedArray."""
    return Array(typecode, size_or_initializer, shape=shape, path=path, lock=False,
                 mode=mode)
