"""Checked conversion between values and a record's bytes: a record or
field from a Structure, dict, tuple or list, every value checked before
anything is stored; a record read back as plain values; the offset and
type of a field named 'x', 'q.b' or 'v[2]'."""

import ctypes
import re
import struct

from ._element_types import _Type, _checked_index, _to_number, _to_string
from ._record_types import _Rec, _class_rec, _layout_difference

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
    """Stores [(offset, bytes)], adjacent ones in one go (one pwrite where
    the object is not mapped)."""
    start, run = None, b''
    for o, b in patches:
        if start is not None and o == start + len(run):
            run += b
            continue
        if start is not None:
            mm[start:start + len(run)] = run
        start, run = o, b
    if start is not None:
        mm[start:start + len(run)] = run


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
