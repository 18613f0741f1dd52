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
  TypeError: c_char_p, c_void_p, c_wchar, c_longdouble, pointers, and
  ctypes.Structure and Union, as shmfs has no records yet.
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
"""

import ctypes
import errno
import fcntl
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
           'ObjectLock', 'CasResult']

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
    if issubclass(ctype, (ctypes.Structure, ctypes.Union)):
        raise TypeError(f'{ctype.__name__}: shmfs records (ctypes.Structure and '
                        f'Union) are planned but not implemented yet')
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
    global _GET_OBJ_LOCK
    ObjectLock._registry_lock = threading.Lock()
    _GET_OBJ_LOCK = threading.Lock()


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
    def _operand(self, op, v):
        """The 8 bytes of an ioctl operand.  Narrow integer and bool elements
        are range-checked by the daemon (ERANGE, as OverflowError); what it
        cannot see (beyond 64 bits, f32 overflow) is checked here."""
        t = self._type
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

    def _atomic(self, op, x, index, expected=None):
        t = self._type
        if t.elem.kind == 'char':
            raise TypeError(f'no atomic operations on {t.spec}')
        if t.elem.kind == 'bool' and op in (_ADD, _SUB):
            raise TypeError('add and sub need a number, not bool')
        i = self._index(index)
        zero = bytes(8)
        buf = bytearray(_ATOMIC.pack(
            op, _ATOMIC_FLOAT if t.elem.kind == 'float' else 0, i,
            zero if x is None else self._operand(op, x),
            zero if expected is None else self._operand(op, expected),
            zero, 0, 0))
        try:
            fcntl.ioctl(self._fd, SHMFS_IOC_ATOMIC, buf, True)
        except OSError as e:
            if e.errno == errno.ERANGE:
                raise OverflowError(f'{x!r} is out of range for {t.elem.name}'
                                    f' ({self.path})') from e
            raise
        _, _, _, _, _, result, swapped, _ = _ATOMIC.unpack(buf)
        kind = t.elem.kind
        previous = struct.unpack('d' if kind == 'float' else
                                 'q' if kind == 'int' else 'Q', result)[0]
        if kind == 'bool':
            previous = bool(previous)
        return CasResult(bool(swapped), previous) if op == _CAS else previous

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
        import numpy as np
        dtype = np.dtype(os.getxattr(self._fd, 'user.shmfs.dtype').decode())
        shape_text = os.getxattr(self._fd, 'user.shmfs.shape').decode()
        shape = tuple(int(d) for d in re.findall(r'[0-9]+', shape_text))
        count = 1
        for d in shape:
            count *= d
        return np.frombuffer(self._mmap, dtype=dtype, count=count).reshape(shape)

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
    RawSharedArray (lock=False), else a SharedValue or SharedArray."""
    if lock is False:
        return _map(path, raw_path, t, fd, array, True)
    m = _map(path, raw_path, t, fd, array, False)
    return (SharedArray if array else SharedValue)(m, lock)


def _open(path, raw_path, spec, array, lock):
    t = _Type(spec)
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
    (TypeError otherwise); Array typecodes give the element only."""
    _check_lock(lock)
    path, raw_path = _locate(path)
    spec = _existing_spec(path)
    if spec is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    if spec == '':
        raise TypeError(f'{path} has no type yet')
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


def _create(path, spec, data, array, lock, mode):
    """Creates path as spec holding the bytes data, atomically, or attaches
    to an object of the same type already there."""
    _check_lock(lock)
    path, raw_path = _locate(path)
    while True:
        have = _existing_spec(path)
        if have is not None:
            if have != spec:
                raise FileExistsError(
                    errno.EEXIST, f'exists as {have or "an untyped object"}, '
                    f'not {spec}', path)
            try:
                return _open(path, raw_path, spec, array, lock)
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
        return _object(path, raw_path, _Type(spec), raw_fd, array, lock)


def _pack(t, values):
    """The bytes of values (all items of t), converted and checked first."""
    if t.strlen is None:
        conv = [_to_number(t, v) for v in values]
        return struct.pack(f'={len(conv)}{t.elem.fmt}', *conv)
    return b''.join(_to_string(t, v) for v in values)


def Value(typecode, value=0, *, path, lock=True, mode=0o600):
    """Creates (or attaches to) the shmfs Value at path; see the module doc."""
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
    """Creates (or attaches to) the shmfs Array at path; see the module doc."""
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


def RawValue(typecode, value=0, *, path, mode=0o600):
    """Value(..., lock=False): a RawSharedValue."""
    return Value(typecode, value, path=path, lock=False, mode=mode)


def RawArray(typecode, size_or_initializer=None, *, shape=None, path, mode=0o600):
    """Array(..., lock=False): a RawSharedArray."""
    return Array(typecode, size_or_initializer, shape=shape, path=path, lock=False,
                 mode=mode)
