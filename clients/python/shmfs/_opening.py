"""Opening and creating objects: Value, Array, RawValue, RawArray,
attach and copy; creation under a temporary name renamed into place; and
the unpickling of objects sent to other processes."""

import ctypes
import errno
import operator
import os
import struct

from ._element_types import (_Type, _array_spec, _elem_name, _to_char, _to_number,
                             _to_string, _value_spec)
from ._files import TYPE_XATTR, _existing_spec, _locate, _rename_noreplace
from ._object_lock import _check_lock
from ._record_codec import _record_data
from ._record_types import (_RecordType, _is_record_class, _is_record_spec,
                            _layout_difference, _record_type_of)
from ._records import _record_object
from ._values import SharedArray, SharedValue, _map


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
