"""Record types (docs/contract.md, "Records"): {name:TYPE, ...} parsed as
the daemon parses it, laid out as C lays it out; ctypes.Structure classes
as record types and record types as Structure classes; the layout check
of a class against an object's type."""

import ctypes
import os
import re
import sys
import threading
import weakref
from typing import NamedTuple

from ._element_types import _Type, _ctype_elem

_FIELD_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
_FIELD_ELEM = re.compile(r'(i8|u8|i16|u16|i32|u32|i64|u64|f32|f64|bool|char)'
                         r'(?![A-Za-z0-9_])')
_FIELD_DIMS = re.compile(r'[ \t\n]*\[[ \t\n]*([0-9]+(?:[ \t\n]*,[ \t\n]*[0-9]+)*)'
                         r'[ \t\n]*\]')


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
                '__module__': __package__,
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



def _reinit_after_fork():
    global _BUILT_LOCK
    _BUILT_LOCK = threading.RLock()


os.register_at_fork(after_in_child=_reinit_after_fork)
