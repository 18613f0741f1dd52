"""shmfs element types: the specs of numbers, bools and strings ('f64',
'i32[5]', 'char[16][4]'), Python typecodes and ctypes types as shmfs
elements, and values and indices checked for an element."""

import ctypes
import math
import operator
import re
import struct
import sys
from typing import NamedTuple


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
