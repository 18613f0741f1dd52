"""Value and Array objects of numbers, bools and strings: RawSharedValue
and RawSharedArray (ctypes objects over the mapping, checked stores,
atomic operations) and their synchronized wrappers SharedValue and
SharedArray."""

import fcntl
import os
import struct
import threading

from ._element_types import _checked_index, _to_char, _to_number, _to_string
from ._files import _is_mapped, _items_view, _map_object, _numpy_view, _release_mapping
from ._ioctl import (SHMFS_IOC_NOTIFY, _ADD, _CAS, _LOAD, _SUB, _XCHG, _atomic_check,
                     _atomic_op)
from ._object_lock import ObjectLock

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
    read and store through a memoryview of the same mapping -- or, where
    the mount cannot map the object (a remote mount), through pread/pwrite,
    and then users get plain objects of these classes, without a buffer."""

    def _init(self, path, raw_path, t, fd, mm):
        self._fd = fd                      # first: __del__ closes it
        self.path = path
        self.raw_path = raw_path
        self._type = t
        self._mmap = mm
        self._view = _items_view(mm, 'c' if t.elem.kind == 'char' else t.elem.fmt)

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
    def numpy(self, copy=False):
        """A zero-copy numpy array over the mapping (0-d for a Value);
        copy=True: a snapshot of its own.  On a remote mount there is no
        mapping: io.UnsupportedOperation (errno ENODEV) unless copy=True."""
        return _numpy_view(self._fd, self._mmap, self.path, copy)

    # -- life
    def close(self):
        """Closes the object's file and unmaps it; reads and stores through
        it then fail.  What still uses the mapping keeps it until it goes:
        numpy views, and a ctypes object over it -- which a RawSharedValue
        or RawSharedArray is itself."""
        if self._fd < 0:
            return
        self._view.release()
        _release_mapping(self._mmap, self._fd)
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
        from ._opening import _reattach     # the opener is above this module
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
            return self._strings(range(*key.indices(len(self))))
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

    def _strings(self, idx):
        """The strings of a char[N][M] array at the positions idx, read in
        one go (a consistent snapshot)."""
        if not idx:
            return []
        n, lo = self._type.strlen, min(idx)
        data = self._mmap[lo * n:(max(idx) + 1) * n]
        return [data[(i - lo) * n:(i - lo + 1) * n].split(b'\0', 1)[0] for i in idx]

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
        return self._strings(range(len(self)))

    def __repr__(self):
        return f'<shmfs.RawSharedArray {self._type.spec} {self.path!r}: {self._shown()!r}>'


_RAW_CLASSES = {}


def _raw_class(t, array):
    """RawSharedValue or RawSharedArray joined with t's ctypes type."""
    key = (t.spec, array)
    cls = _RAW_CLASSES.get(key)
    if cls is None:
        base = RawSharedArray if array else RawSharedValue
        cls = type(base.__name__, (base, t.ctype(array)), {'__module__': __package__})
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

    def numpy(self, copy=False):
        """A zero-copy numpy array over the mapping (0-d for a Value);
        copy=True: a snapshot of its own.  On a remote mount there is no
        mapping: io.UnsupportedOperation (errno ENODEV) unless copy=True."""
        if copy:
            with self.get_lock():
                return self._open_m().numpy(copy)
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
        from ._opening import _reattach     # the opener is above this module
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



def _reinit_after_fork():
    global _GET_OBJ_LOCK
    _GET_OBJ_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reinit_after_fork)


def _map(path, raw_path, t, fd, array, ctype):
    """A RawSharedValue or RawSharedArray over fd, which it takes over: a
    ctypes object over the mapping, or (ctype=False) a plain one, which a
    synchronized object holds so that close() can unmap it.  An object its
    mount cannot map (ENODEV) is a plain one over pread/pwrite either way:
    a ctypes object would be over a private copy."""
    try:
        mm = _map_object(fd, t.nbytes)
        if ctype and _is_mapped(mm):
            obj = _raw_class(t, array).from_buffer(mm)
        else:
            obj = object.__new__(RawSharedArray if array else RawSharedValue)
    except BaseException:
        os.close(fd)
        raise
    obj._init(path, raw_path, t, fd, mm)
    return obj
