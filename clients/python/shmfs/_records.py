"""Record objects: RawSharedRecord and RawSharedRecordArray (the
Structure class itself over the mapping, checked field stores, field
atomics) and their synchronized wrappers SharedRecord and SharedRecordArray
(a class per Structure, each field a property holding the lock).  Where the
mount cannot map an object (a remote mount), fields and records are read
and stored through pread/pwrite, and a raw record is a RawSharedRecord with
a property per field instead of a Structure over the mapping."""

import fcntl
import os
import weakref

from . import _values
from ._element_types import _checked_index
from ._files import _is_mapped, _map_object, _numpy_view, _release_mapping
from ._ioctl import (SHMFS_IOC_NOTIFY, _ADD, _CAS, _LOAD, _SUB, _XCHG, _atomic_check,
                     _atomic_op)
from ._object_lock import ObjectLock
from ._record_codec import _decode, _encode, _encode_record, _field_at, _store
from ._record_types import _class_rec
from ._values import _Synchronized

# What a synchronized record keeps in its own attributes: no field may be
# named so (every other name is a field's first).
_RESERVED_FIELDS = frozenset(('_m', '_obj', '_lock', '_lockarg', '_type', '_shmfs_'))


class _RecordMapped:
    """A mapped record object: its file, mapping and ctypes views.  What a
    SharedRecord holds, and what a raw record keeps in its _shmfs_.  Without
    a mapping (mm a PreadBuffer) there are no views: reads make copies."""

    def __init__(self, path, raw_path, t, fd, mm):
        self._fd = fd
        self.path = path
        self.raw_path = raw_path
        self._type = t
        self._mmap = mm
        mapped = _is_mapped(mm)
        self._ct = t.cls.from_buffer(mm) if mapped and t.is_scalar else None
        self._flat = (t.cls * t.count).from_buffer(mm) if mapped and not t.is_scalar \
            else None

    def _need_open(self):
        if self._fd < 0:
            raise ValueError(f'I/O operation on closed shmfs object {self.path!r}')
        return self

    # -- fields and items
    def get_field(self, name):
        """A record's field as ctypes reads it: over the mapping, or (not
        mapped) from a copy of the field's bytes, read in one go."""
        self._need_open()
        if self._ct is not None:
            return getattr(self._ct, name)
        f = self._type.rec.by_name[name]
        buf = bytearray(self._type.itemsize)
        buf[f.offset:f.offset + f.t.nbytes] = self._mmap[f.offset:f.offset + f.t.nbytes]
        return getattr(self._type.cls.from_buffer(buf), name)

    def set_field(self, name, x):
        f = self._type.rec.by_name[name]
        _store(self._need_open()._mmap, _encode(f.t, x, f.offset, name))

    def item_index(self, index):
        return _checked_index(index, self._type.count)

    def get_item(self, key):
        """Records as ctypes gives them: Structures over the mapping, or
        (not mapped) copies of their bytes, read in one go."""
        self._need_open()
        if self._flat is not None:
            if isinstance(key, slice):
                return self._flat[key]
            return self._flat[self.item_index(key)]
        t = self._type
        if not isinstance(key, slice):
            i = self.item_index(key)
            return t.cls.from_buffer_copy(self._mmap[i * t.itemsize:(i + 1) * t.itemsize])
        idx = range(*key.indices(t.count))
        if not idx:
            return []
        lo, hi = min(idx), max(idx) + 1
        copies = (t.cls * (hi - lo)).from_buffer_copy(
            self._mmap[lo * t.itemsize:hi * t.itemsize])
        return copies[::idx.step]        # a negative step starts at idx[0], the end

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
        at = self.item_index(index) * t.itemsize
        return _decode(t.rec, self._mmap[at:at + t.itemsize], 0)     # one read

    def tolist(self):
        self._need_open()
        t = self._type
        data = self._mmap[:t.nbytes]                                   # one read
        return [_decode(t.rec, data, i * t.itemsize) for i in range(t.count)]

    # -- atomic operations
    def atomic(self, op, field, x, index, expected=None):
        self._need_open()
        offset, t = _field_at(self._type.rec, field)
        _atomic_check(t, op)
        return _atomic_op(self._fd, self.path, t, op, x, self.item_index(index),
                          expected, offset)

    def notify(self):
        fcntl.ioctl(self._need_open()._fd, SHMFS_IOC_NOTIFY)

    def numpy(self, copy=False):
        return _numpy_view(self._need_open()._fd, self._mmap, self.path, copy)

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
        _release_mapping(self._mmap, self._fd)
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

    def numpy(self, copy=False):
        """A zero-copy numpy view with the record's structured dtype (0-d for
        a Value): fields by name, a['x'].  copy=True: a snapshot of its own.
        On a remote mount there is no mapping: io.UnsupportedOperation
        (errno ENODEV) unless copy=True."""
        return self._rm().numpy(copy)

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
        from ._opening import _reattach_record     # the opener is above this module
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

    __reduce__ = RawSharedRecord.__reduce__

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
        ns.update(__module__=__package__, __doc__=base.__doc__)
        name = t.cls.__name__ if t.is_scalar else f'{t.cls.__name__}_Array'
        cls = per_class.setdefault(t.shape, type(name, (t.ctype(True), base), ns))
    return cls


_UNMAPPED_RECORD_CLASSES = weakref.WeakKeyDictionary()      # (cls) -> class


def _unmapped_field(name):
    def fget(self):
        return self.__dict__['_shmfs_'].get_field(name)
    return property(fget, doc=f'field {name}, read in one pread')


def _unmapped_record_class(t):
    """What a raw record is where its mount cannot map it: a RawSharedRecord
    (not a Structure: one would be over a private copy) with a property per
    field, read through pread; an array of records is a RawSharedRecordArray."""
    if not t.is_scalar:
        return RawSharedRecordArray
    cls = _UNMAPPED_RECORD_CLASSES.get(t.cls)
    if cls is None:
        ns = {f.name: _unmapped_field(f.name) for f in t.rec.fields}
        ns.update(__module__=__package__, __doc__=RawSharedRecord.__doc__)
        cls = _UNMAPPED_RECORD_CLASSES.setdefault(
            t.cls, type(t.cls.__name__, (RawSharedRecord,), ns))
    return cls


def _map_record(path, raw_path, t, fd):
    """The raw record (or array of them) over fd, which it takes over."""
    try:
        mm = _map_object(fd, t.nbytes)
        if _is_mapped(mm):
            obj = _raw_record_class(t).from_buffer(mm)
        else:
            obj = object.__new__(_unmapped_record_class(t))
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
        with _values._GET_OBJ_LOCK:
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
        from ._opening import _reattach_record     # the opener is above this module
        t = self._m._type
        lock = True if self._lockarg is None else self._lockarg
        return (_reattach_record, (self._m.path, lock, t.cls if t.given_class else None))

    def __repr__(self):
        return (f'<shmfs.{type(self).__name__} {self._m._type.spec} {self._m.path!r}: '
                f'{self._m.shown()!r}>')


for _name in ('add', 'sub', 'xchg', 'cas', 'load', 'notify'):
    setattr(_SynchronizedRecord, _name, vars(_RecordOps)[_name])
del _name


def _synchronized_numpy(self, copy=False):
    if copy:
        with self.get_lock():                     # a snapshot under the lock
            return self._rm().numpy(copy)
    return self._rm().numpy()


_synchronized_numpy.__doc__ = _RecordOps.numpy.__doc__
_SynchronizedRecord.numpy = _synchronized_numpy


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
            return m.get_field(name)

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
        ns.update(__module__=__package__, __doc__=SharedRecord.__doc__)
        sync = _SHARED_RECORD_CLASSES.setdefault(
            cls, type(f'Synchronized{cls.__name__}', (SharedRecord,), ns))
    return sync


def _record_object(path, raw_path, t, fd, lock):
    """The object over fd, which it takes over: a RawSharedRecord(Array)
    (lock=False), else a SharedRecord(Array)."""
    if lock is False:
        return _map_record(path, raw_path, t, fd)
    try:
        mm = _map_object(fd, t.nbytes)
    except BaseException:
        os.close(fd)
        raise
    m = _RecordMapped(path, raw_path, t, fd, mm)
    sync = _shared_record_class(t.cls) if t.is_scalar else SharedRecordArray
    return sync(m, lock)
