"""Records (contract.md section 2 "Records", sections 4 and 4a), through the
file interfaces only: setfattr/getxattr, the text view, pread/pwrite/mmap of
.raw and the atomic ioctl.  Every test runs in cached and in passthrough mode.

- layout: hundreds of seeded random records (every element type, char[N],
  field arrays of 1-3 dimensions, nested records up to depth 3, arrays of
  records as objects) against ctypes.Structure: .raw size, the dtype JSON
  (offsets and itemsize, recursively, and numpy's align=True), the canonical
  type (aliases and odd blanks canonicalize; the canonical form re-parses to
  itself), random bytes through .raw read back as JSON field by field (floats
  bit-exact and shortest, NaN/Infinity, strings up to the first NUL with
  non-UTF-8 bytes as \\udcXX), the text written back storing the same bytes,
  and a field-atomic load of every scalar at its offset;
- text merges: only the named fields' bytes change (padding included), nested
  merges, arrays of records as lines, one JSON array or nested arrays, `{}`
  keeping an element, bool and string forms;
- bad input: type specs (EINVAL, the object stays untyped) and JSON writes
  (EINVAL or ERANGE from the write itself, nothing changes in either view),
  the daemon alive and each rejection logged;
- 100 000 records written in many writes (JSON lines in odd-sized chunks
  split anywhere, a line per write, one JSON array, nested arrays);
- mapped stores seen by the text view, and a text merge of one field never
  undoing another process's mapped stores to another field;
- field atomics from several processes racing text merges of other fields:
  exact totals; bad field offsets are EINVAL.

numpy and ctypes are used directly (not the Python client)."""

import ctypes
import errno
import fcntl
import json
import math
import mmap
import os
import random
import re
import select
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import util

EINVAL, ERANGE = errno.EINVAL, errno.ERANGE

# A sanitized daemon is several times slower: the heavy parts scale down
# where their counts are not part of what they test.
SANITIZED = 'ASAN_OPTIONS' in os.environ

# -- the type model -----------------------------------------------------------

# element name -> (ctypes type, struct format, typecode aliases)
NUMS = {
    'i8': (ctypes.c_int8, 'b', ['b']),
    'u8': (ctypes.c_uint8, 'B', ['B']),
    'i16': (ctypes.c_int16, 'h', ['h']),
    'u16': (ctypes.c_uint16, 'H', ['H']),
    'i32': (ctypes.c_int32, 'i', ['i']),
    'u32': (ctypes.c_uint32, 'I', ['I']),
    'i64': (ctypes.c_int64, 'q', ['q', 'l']),
    'u64': (ctypes.c_uint64, 'Q', ['Q', 'L']),
    'f32': (ctypes.c_float, 'f', ['f']),
    'f64': (ctypes.c_double, 'd', ['d']),
    'bool': (ctypes.c_bool, '?', ['?']),
}
INTS = [n for n in NUMS if n[0] in 'iu']


def int_range(name):
    bits = int(name[1:])
    if name[0] == 'i':
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


class Num:
    kind = 'num'

    def __init__(self, name):
        self.name = name
        self.ctype, fmt, _ = NUMS[name]
        self.fmt = '=' + fmt
        self.size = self.align = struct.calcsize(self.fmt)

    def canon(self):
        return self.name

    def np(self):
        return np.dtype(self.fmt)

    @property
    def is_float(self):
        return self.name[0] == 'f'


class Char:
    kind = 'char'

    def __init__(self, n):
        self.n = self.size = n
        self.align = 1
        self.ctype = ctypes.c_char * n

    def canon(self):
        return f'char[{self.n}]'

    def np(self):
        return np.dtype(f'S{self.n}')


_RESERVED = set(dir(ctypes.Structure))


class Rec:
    kind = 'rec'

    def __init__(self, fields):
        self.fields = list(fields)          # [(name, Ty)]
        self.ctype = type('R', (ctypes.Structure,),
                          {'_fields_': [(n, t.ctype) for n, t in self.fields]})
        self.size = ctypes.sizeof(self.ctype)
        self.align = ctypes.alignment(self.ctype)
        self.offsets = [getattr(self.ctype, n).offset for n, _ in self.fields]

    def canon(self):
        return '{' + ', '.join(f'{n}:{t.canon()}' for n, t in self.fields) + '}'

    def offset(self, name):
        return self.offsets[[n for n, _ in self.fields].index(name)]

    def field(self, name):
        return dict(self.fields)[name]


class Ty:
    """A base (Num, Char, Rec) with dimensions (C order)."""

    def __init__(self, base, dims=()):
        self.base, self.dims = base, tuple(dims)
        ct = base.ctype
        for d in reversed(self.dims):
            ct = ct * d
        self.ctype = ct
        self.count = math.prod(self.dims)
        self.size = base.size * self.count

    def canon(self):
        return self.base.canon() + ''.join(f'[{d}]' for d in self.dims)

    def shape(self):
        if not self.dims:
            return '()'
        if len(self.dims) == 1:
            return f'({self.dims[0]},)'
        return '(' + ', '.join(map(str, self.dims)) + ')'


class _SpecParser:
    """Parses canonical specs (the test's own shorthand for models)."""

    def __init__(self, s):
        self.s, self.i = s, 0

    def peek(self):
        while self.i < len(self.s) and self.s[self.i] in ' \t':
            self.i += 1
        return self.s[self.i:self.i + 1]

    def take(self, c):
        assert self.peek() == c, (self.s, self.i, c)
        self.i += 1

    def number(self):
        m = re.compile(r'\d+').match(self.s, self.i)
        self.i = m.end()
        return int(m.group())

    def dims(self):
        out = []
        while self.peek() == '[':
            self.take('[')
            out.append(self.number())
            self.take(']')
        return out

    def ty(self):
        if self.peek() == '{':
            self.take('{')
            fields = []
            while True:
                m = re.compile(r'\s*([A-Za-z_]\w*)\s*:').match(self.s, self.i)
                self.i = m.end()
                fields.append((m.group(1), self.ty()))
                if self.peek() == '}':
                    self.take('}')
                    break
                self.take(',')
            return Ty(Rec(fields), self.dims())
        m = re.compile(r'[a-z0-9]+').match(self.s, self.i)
        self.i = m.end()
        if m.group() == 'char':
            self.take('[')
            base = Char(self.number())
            self.take(']')
        else:
            base = Num(m.group())
        return Ty(base, self.dims())


def parse(spec):
    p = _SpecParser(spec)
    t = p.ty()
    assert p.peek() == '', spec
    return t


def leaves(ty, off=0):
    """(base, absolute offset) of every scalar (number, bool, string) of one
    element of ty ... of all its elements, in C order."""
    step = ty.base.size
    for k in range(ty.count):
        at = off + k * step
        if ty.base.kind == 'rec':
            for (_, t), o in zip(ty.base.fields, ty.base.offsets):
                yield from leaves(t, at + o)
        else:
            yield ty.base, at


def decode(ty, buf, off=0, dims=None):
    """The value at off as Python data: what the JSON text should say."""
    dims = ty.dims if dims is None else dims
    if dims:
        step = ty.base.size * math.prod(dims[1:])
        return [decode(ty, buf, off + i * step, dims[1:])
                for i in range(dims[0])]
    b = ty.base
    if b.kind == 'num':
        if b.name == 'bool':
            return buf[off] != 0
        return struct.unpack_from(b.fmt, buf, off)[0]
    if b.kind == 'char':
        return bytes(buf[off:off + b.n]).split(b'\0')[0].decode(
            'utf-8', 'surrogateescape')
    return {n: decode(t, buf, off + o) for (n, t), o in zip(b.fields, b.offsets)}


def encode(ty, value, buf, off=0, dims=None):
    """Stores value (a full or partial JSON-like value) at off the way a text
    merge should: only what value names."""
    dims = ty.dims if dims is None else dims
    if dims:
        assert len(value) == dims[0]
        step = ty.base.size * math.prod(dims[1:])
        for i, v in enumerate(value):
            encode(ty, v, buf, off + i * step, dims[1:])
        return
    b = ty.base
    if b.kind == 'num':
        if b.name == 'bool':
            buf[off] = 1 if value else 0
        else:
            struct.pack_into(b.fmt, buf, off, value)
    elif b.kind == 'char':
        data = value.encode('utf-8', 'surrogateescape')
        assert len(data) <= b.n
        buf[off:off + b.n] = data.ljust(b.n, b'\0')
    else:
        for (n, t), o in zip(b.fields, b.offsets):
            if n in value:
                encode(t, value[n], buf, off + o)


# -- JSON reading with the tokens kept ------------------------------------------

class IntTok(str):
    pass


class FloatTok(str):
    pass


class ConstTok(str):
    pass


def loads_tokens(line):
    """json.loads keeping numbers as their text, objects as pair lists (so a
    repeated key or the field order shows)."""
    return json.loads(line, parse_int=IntTok, parse_float=FloatTok,
                      parse_constant=ConstTok, object_pairs_hook=list)


_G_NUMBER = re.compile(r'-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[+-][0-9]{2,3})?')


def sig_digits(text):
    mantissa = text.lstrip('-').split('e')[0].replace('.', '')
    return mantissa.lstrip('0').rstrip('0')


def shortest_digits(raw, f32):
    v = np.frombuffer(raw, np.float32 if f32 else np.float64)[0]
    return sig_digits(np.format_float_scientific(v, unique=True))


def check_tokens(ty, j, buf, off, where, dims=None):
    """Compares the token-kept JSON j with the bytes of buf at off."""
    dims = ty.dims if dims is None else dims
    if dims:
        assert isinstance(j, list) and len(j) == dims[0], (where, j)
        step = ty.base.size * math.prod(dims[1:])
        for i, item in enumerate(j):
            check_tokens(ty, item, buf, off + i * step, f'{where}[{i}]',
                         dims[1:])
        return
    b = ty.base
    if b.kind == 'rec':
        assert isinstance(j, list) and [k for k, _ in j] == \
            [n for n, _ in b.fields], (where, j)
        for (n, t), o, (_, v) in zip(b.fields, b.offsets, j):
            check_tokens(t, v, buf, off + o, f'{where}.{n}')
    elif b.kind == 'char':
        want = bytes(buf[off:off + b.n]).split(b'\0')[0]
        assert isinstance(j, str) and not isinstance(j, (IntTok, FloatTok,
                                                         ConstTok)), (where, j)
        assert j.encode('utf-8', 'surrogateescape') == want, (where, j, want)
        assert j == want.decode('utf-8', 'surrogateescape'), (where, j, want)
    elif b.name == 'bool':
        assert j is (buf[off] != 0), (where, j, buf[off])
    elif not b.is_float:
        want = struct.unpack_from(b.fmt, buf, off)[0]
        assert type(j) is IntTok and int(j) == want, (where, j, want)
    else:
        raw = bytes(buf[off:off + b.size])
        x = struct.unpack(b.fmt, raw)[0]
        if math.isnan(x):
            assert type(j) is ConstTok and j == 'NaN', (where, j, raw.hex())
        elif math.isinf(x):
            assert type(j) is ConstTok and \
                j == ('Infinity' if x > 0 else '-Infinity'), (where, j)
        else:
            assert type(j) in (IntTok, FloatTok), (where, j)
            assert _G_NUMBER.fullmatch(j), (where, j)
            assert struct.pack(b.fmt, float(j)) == raw, \
                (where, j, raw.hex(), 'not bit-exact')
            assert len(sig_digits(j)) == len(shortest_digits(raw, b.size == 4)), \
                (where, j, 'not the shortest', raw.hex())


# -- generated records --------------------------------------------------------

def gen_name(rng, taken):
    first = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_'
    rest = first + '0123456789'
    while True:
        r = rng.random()
        if r < 0.1:
            name = rng.choice(list(NUMS) + ['char', 'c', 'x', 'X', '_', 'f'])
        else:
            name = rng.choice(first) + ''.join(
                rng.choice(rest) for _ in range(rng.choice([0, 1, 2, 5, 12])))
        if name not in taken and name not in _RESERVED:
            taken.add(name)
            return name


def gen_dims(rng, p):
    if rng.random() >= p:
        return ()
    return tuple(rng.randint(1, 4) for _ in range(rng.randint(1, 3)))


def gen_record(rng, depth=1):
    taken, fields = set(), []
    for _ in range(rng.randint(1, 7 if depth == 1 else 4)):
        name = gen_name(rng, taken)
        r = rng.random()
        if depth < 3 and r < 0.15:
            t = Ty(gen_record(rng, depth + 1))
        elif r < 0.3:
            t = Ty(Char(rng.choice([1, 1, 2, 3, 5, 7, 8, 16, rng.randint(1, 40)])),
                   gen_dims(rng, 0.25))
        else:
            t = Ty(Num(rng.choice(list(NUMS))), gen_dims(rng, 0.4))
        fields.append((name, t))
    return Rec(fields)


def fancy(ty, rng):
    """An equivalent input spec: typecode aliases, `c`, `[3,4]`, leading
    zeros, blanks around braces, names, colons and commas."""
    def ws():
        return rng.choice(['', '', ' ', '  ', '\t', ' \t '])
    b = ty.base
    if b.kind == 'num':
        s = rng.choice([b.name] + NUMS[b.name][2])
    elif b.kind == 'char':
        if b.n == 1 and not ty.dims and rng.random() < 0.5:
            s = 'c'
        else:
            s = rng.choice(['char', 'c']) + f'[{b.n}]'
    else:
        s = '{' + ','.join(ws() + n + ws() + ':' + ws() + fancy(t, rng) + ws()
                           for n, t in b.fields) + '}'
    dims = ty.dims
    if len(dims) >= 2 and b.kind != 'char' and rng.random() < 0.4:
        return s + '[' + ','.join(map(str, dims)) + ']'
    return s + ''.join(f'[{d:03d}]' if rng.random() < 0.1 else f'[{d}]'
                       for d in dims)


def np_aligned(rec):
    """numpy's own align=True dtype for the same fields."""
    def fmt(t):
        base = np_aligned(t.base) if t.base.kind == 'rec' else t.base.np()
        return (base, t.dims) if t.dims else base
    return np.dtype([(n, fmt(t)) for n, t in rec.fields], align=True)


def check_dtype(dt, rec, where):
    assert dt.names == tuple(n for n, _ in rec.fields), where
    assert dt.itemsize == rec.size, (where, dt.itemsize, rec.size)
    for (n, t), off in zip(rec.fields, rec.offsets):
        sub, o = dt.fields[n][:2]
        assert o == off, (where, n, o, off)
        assert sub.shape == t.dims, (where, n, sub.shape, t.dims)
        if t.base.kind == 'rec':
            check_dtype(sub.base, t.base, f'{where}.{n}')
        else:
            assert sub.base == t.base.np(), (where, n, sub.base)


# -- I/O helpers ------------------------------------------------------------------

def create(shmfs, name, spec):
    path = shmfs.p(name)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    os.setxattr(path, util.TYPE, spec.encode() if isinstance(spec, str) else spec)
    return path


def write_once(path, data):
    """One write(2), then close; returns (write errno, close errno)."""
    return util.try_write_text(path, data)


def write_ok(path, data):
    werr, cerr = write_once(path, data)
    assert (werr, cerr) == (0, 0), (util.ename(werr), util.ename(cerr), data[:200])


def read_lines(path):
    """The text view as a list of lines (each had its '\\n')."""
    text = util.read_bytes(path).decode('utf-8')       # JSON is UTF-8
    assert text.endswith('\n'), text[-100:]
    return text[:-1].split('\n')


def read_objects(path):
    return [json.loads(line) for line in read_lines(path)]


def pwrite_all(path, data, off=0):
    with util.opened(path, os.O_WRONLY) as fd:
        assert os.pwrite(fd, data, off) == len(data)


def jdump(value):
    """JSON as the contract writes it (Python's json: NaN, Infinity, \\udcXX)."""
    return json.dumps(value)


# -- the atomic ioctl ---------------------------------------------------------------

ATOMIC_FMT = '=IIQ8s8s8sII'
assert struct.calcsize(ATOMIC_FMT) == 48
SHMFS_IOC_ATOMIC = (3 << 30) | (48 << 16) | (ord('S') << 8) | 1
LOAD, ADD, SUB, XCHG, CAS = range(5)
FLOAT, FIELD = 0x1, 0x2


def _val(v, flt):
    if flt:
        return struct.pack('=d', v)
    return struct.pack('=q', v) if v < 0 else struct.pack('=Q', v)


def atomic(fd, op, field=0, index=0, operand=0, expected=0, flags=FIELD,
           kind='i'):
    """One SHMFS_IOC_ATOMIC; returns (result, swapped).  flags FLOAT marks a
    double operand; kind reads the result: 'i', 'u' or 'f'."""
    flt = bool(flags & FLOAT)
    buf = bytearray(struct.pack(ATOMIC_FMT, op, flags, index, _val(operand, flt),
                                _val(expected, flt), b'\0' * 8, 0, field))
    fcntl.ioctl(fd, SHMFS_IOC_ATOMIC, buf, True)
    out = struct.unpack(ATOMIC_FMT, bytes(buf))
    return struct.unpack({'i': '=q', 'u': '=Q', 'f': '=d'}[kind], out[5])[0], out[6]


def kind_of(num):
    if num.is_float:
        return 'f'
    return 'i' if num.name[0] == 'i' else 'u'


def assert_alive(shmfs):
    assert shmfs.alive(), 'the daemon died:\n' + shmfs.log()[-3000:]


# -- 1. layout against ctypes, for generated records ----------------------------

N_LAYOUTS = 520
N_LOAD_CHECKED = 60       # of them, every field offset tried with the ioctl

SPECIAL_F64 = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, -3.5, 100.0,
               0.1, 0.3, 1e-5, 1e15, 1e16, 123456789012345.0, 2.0 ** 53,
               5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
               -1e-300, 3.1415926]
SPECIAL_F32 = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, -3.5, 100.0,
               0.1, 1e-5, 16777216.0, 16777217.0, 3.4028234663852886e38,
               1.401298464324817e-45, 1.1754943508222875e-38, 3.1415926, 1e10]
SPECIAL_STRINGS = [b'', b'\0', b'A' * 64, 'é'.encode() * 40,
                   bytes(range(0x80, 0x100)), b'"\\/\b\f\n\r\t\x01\x1f\x7f',
                   '\U0001F600'.encode() * 5, b'\xf0\x9f\x98', b'\xed\xa0\x80',
                   b'\xed\xb3\xbf', b'\xc0\xaf', b'\xe0\x80\x80', b'\xf4\x90\x80\x80',
                   b'ab\0cd', 'ü€'.encode(), b'\\u0041', b'</script>']


def sprinkle(ty, buf, rng):
    """Puts special values into some scalars of random bytes."""
    for base, off in leaves(ty):
        if rng.random() > 0.3:
            continue
        if base.kind == 'char':
            s = rng.choice(SPECIAL_STRINGS)[:base.n]
            buf[off:off + len(s)] = s
            if len(s) < base.n:
                buf[off + len(s)] = 0
        elif base.name == 'bool':
            buf[off] = rng.choice([0, 1, 2, 0x80, 0xff])
        elif base.is_float:
            struct.pack_into(base.fmt, buf, off, rng.choice(
                SPECIAL_F32 if base.size == 4 else SPECIAL_F64))
        else:
            lo, hi = int_range(base.name)
            struct.pack_into(base.fmt, buf, off,
                             rng.choice([lo, hi, 0, -1 if lo else 1, lo + 1]))


def normalize(ty, buf):
    """The bytes a text round trip reproduces: bool 0/1, no NaN (its bits
    are the daemon's choice), strings NUL-padded after their first NUL."""
    for base, off in leaves(ty):
        if base.kind == 'char':
            cut = bytes(buf[off:off + base.n]).find(b'\0')
            if cut >= 0:
                buf[off + cut:off + base.n] = bytes(base.n - cut)
        elif base.name == 'bool':
            buf[off] = 1 if buf[off] else 0
        elif base.is_float and math.isnan(struct.unpack_from(base.fmt, buf, off)[0]):
            struct.pack_into(base.fmt, buf, off, 1.5)


def scramble_fields(ty, buf, rng):
    """Random bytes in every scalar, padding kept."""
    for base, off in leaves(ty):
        buf[off:off + base.size] = rng.randbytes(base.size)


def check_layout(shmfs, path, raw, ty, where):
    rec = ty.base
    assert util.xattr(path, util.TYPE) == ty.canon(), where
    assert util.xattr(path, 'user.shmfs.shape') == ty.shape(), where
    assert int(util.xattr(path, 'user.shmfs.nbytes')) == ty.size, where
    assert os.stat(raw).st_size == ty.size == ctypes.sizeof(ty.ctype), where
    dt = np.dtype(json.loads(util.xattr(path, 'user.shmfs.dtype')))
    check_dtype(dt, rec, where)
    check_dtype(np_aligned(rec), rec, where + ' (numpy align=True)')
    assert dt == np_aligned(rec), where


def check_text_matches(path, ty, buf, where):
    lines = read_lines(path)
    assert len(lines) == ty.count, (where, len(lines))
    one = Ty(ty.base)
    for k, line in enumerate(lines):
        try:
            j = loads_tokens(line)
        except ValueError as e:
            raise AssertionError(f'{where} element {k}: not JSON ({e}): {line!r}')
        check_tokens(one, j, buf, k * one.size, f'{where} element {k}')


def check_field_loads(raw, ty, buf, where):
    """LOAD through SHMFS_ATOMIC_FIELD at every scalar's offset returns it;
    every other offset (padding, inside a number, strings, past the end) is
    EINVAL."""
    one = Ty(ty.base)
    valid = {off: base for base, off in leaves(one) if base.kind == 'num'}
    with util.opened(raw, os.O_RDONLY) as fd:
        for k in sorted({0, ty.count - 1}):
            for off, base in valid.items():
                got = atomic(fd, LOAD, field=off, index=k, kind=kind_of(base))[0]
                at = k * one.size + off
                want = buf[at] if base.name == 'bool' else \
                    struct.unpack_from(base.fmt, buf, at)[0]
                assert got == want, (where, k, off, got, want)
        for off in list(range(one.size + 2)) + [one.size + 7, 1 << 31, (1 << 32) - 1]:
            if off in valid:
                continue
            e = util.errno_of(atomic, fd, LOAD, field=off, index=ty.count - 1)
            assert e == EINVAL, (where, 'offset', off, util.ename(e))
        e = util.errno_of(atomic, fd, LOAD, field=min(valid, default=0),
                          index=ty.count)
        assert e == EINVAL, (where, 'index past the end', util.ename(e))


@util.both_modes
def test_layout_generated(shmfs):
    rng = random.Random(0x5EC0D)
    seen = set()
    started = time.monotonic()
    for i in range(N_LAYOUTS):
        rec = gen_record(rng)
        r = rng.random()
        dims = () if r < 0.6 else (rng.randint(1, 5),) if r < 0.85 else \
            (rng.randint(1, 4), rng.randint(1, 4))
        ty = Ty(rec, dims)
        spec = fancy(ty, rng) if i % 3 else ty.canon()
        if rng.random() < 0.2:
            spec = rng.choice([' ', '\t', '  ']) + spec + rng.choice(['', ' ', '\t'])
        seen.add(ty.canon())
        where = f'#{i} {spec!r} ({ty.canon()})'
        name = f'g{i}'
        try:
            path = create(shmfs, name, spec)
        except OSError as e:
            raise AssertionError(f'{where}: setxattr: {e}')
        raw = shmfs.r(name)
        check_layout(shmfs, path, raw, ty, where)
        # the canonical form types an object the same way
        again = create(shmfs, name + 'c', ty.canon())
        assert util.xattr(again, util.TYPE) == ty.canon(), where
        assert util.xattr(again, 'user.shmfs.dtype') == \
            util.xattr(path, 'user.shmfs.dtype'), where
        os.unlink(again)
        # random bytes, stored through a ctypes object, read as JSON
        buf = bytearray(rng.randbytes(ty.size))
        sprinkle(ty, buf, rng)
        obj = ty.ctype.from_buffer_copy(buf)
        pwrite_all(raw, bytes(obj))
        assert util.read_bytes(raw) == bytes(buf), where
        check_text_matches(path, ty, buf, where)
        # ctypes reads what the text says, for the first element's numbers
        first = (obj[0] if dims and len(dims) == 1 else
                 obj[0][0] if dims else obj)
        j0 = json.loads(read_lines(path)[0])
        for n, t in rec.fields:
            if t.base.kind == 'num' and not t.dims and not t.base.is_float:
                assert j0[n] == getattr(first, n), (where, n)
        # the text written back stores the same bytes, padding untouched
        normalize(ty, buf)
        pwrite_all(raw, bytes(buf))
        text = util.read_bytes(path)
        check_text_matches(path, ty, buf, where)
        other = bytearray(buf)
        scramble_fields(ty, other, rng)
        pwrite_all(raw, bytes(other))
        write_ok(path, text)
        got = util.read_bytes(raw)
        assert got == bytes(buf), (where, 'text round trip', got.hex(), buf.hex())
        if i < N_LOAD_CHECKED:
            check_field_loads(raw, ty, buf, where)
        os.unlink(path)
    assert len(seen) >= N_LAYOUTS * 0.95
    assert_alive(shmfs)
    print(f'{N_LAYOUTS} records in {time.monotonic() - started:.1f} s')


# -- 2. text round trip and merge ---------------------------------------------------

REC2 = ('{x:f64, y:i32, id:u32, tag:char[6], v:f32[3], ok:bool, '
        'p:{a:i16, b:{c:u8, d:f32[2]}, s:char[3]}, m:i8[2][2]}')

# (text written in one write, the merge it stands for: what encode() applies)
MERGES = [
    ('{"y": 5}\n', {'y': 5}),
    ('{"y": 6}', {'y': 6}),
    ('  {  "y" :\t7 }  \n', {'y': 7}),
    ('{"y":8}\r\n', {'y': 8}),
    ('{"y": -0}', {'y': 0}),
    ('{"x": -0.0}', {'x': -0.0}),
    ('{"x": 12}', {'x': 12.0}),
    ('{"x": 1E+2}', {'x': 100.0}),
    ('{"x": -1.5e-7}', {'x': -1.5e-7}),
    ('{"x": 5e-324}', {'x': 5e-324}),
    ('{"x": 1.7976931348623157e308, "y": -2147483648, "id": 4294967295}',
     {'x': 1.7976931348623157e308, 'y': -2147483648, 'id': 4294967295}),
    ('{"\\u0078": 2.5}', {'x': 2.5}),
    ('{"id": 0, "y": 2147483647}', {'id': 0, 'y': 2147483647}),
    ('{"tag": "abcdef"}', {'tag': 'abcdef'}),
    ('{"tag": "ab"}', {'tag': 'ab'}),
    ('{"tag": ""}', {'tag': ''}),
    ('{"tag": "\u00e9\u20ac"}', {'tag': 'é€'}),
    ('{"tag": "\\u00e9\\u20ac"}', {'tag': 'é€'}),
    ('{"tag": "\\udcff\\udc80x"}', {'tag': '\udcff\udc80x'}),
    ('{"tag": "\\"\\\\\\/\\b\\f"}', {'tag': '"\\/\b\f'}),
    ('{"tag": "\\n\\r\\t\\u0001\\u001f\\u007f"}', {'tag': '\n\r\t\x01\x1f\x7f'}),
    ('{"tag": "\\ud83d\\ude00"}', {'tag': '\U0001F600'}),
    ('{"tag": "\\uD83D\\uDE00ab"}', {'tag': '\U0001F600ab'}),
    ('{"v": [1, 2, 3.5]}', {'v': [1.0, 2.0, 3.5]}),
    ('{"v": [0.1, -1e-45, 3.4028234663852886e38]}',
     {'v': [0.1, -1e-45, 3.4028234663852886e38]}),
    ('{"v":[ 7 ,8,\t9 ]}', {'v': [7.0, 8.0, 9.0]}),
    ('{"ok": true}', {'ok': True}),
    ('{"ok": false}', {'ok': False}),
    ('{"ok": 1}', {'ok': True}),
    ('{"ok": 0}', {'ok': False}),
    ('{"p": {"a": -7}}', {'p': {'a': -7}}),
    ('{"p": {"b": {"c": 255}}}', {'p': {'b': {'c': 255}}}),
    ('{"p": {"b": {"d": [1.5, -2]}, "s": "xyz"}}',
     {'p': {'b': {'d': [1.5, -2.0]}, 's': 'xyz'}}),
    ('{"p": {"s": "q"}, "y": 1}', {'p': {'s': 'q'}, 'y': 1}),
    ('{"p": {}}', {}),
    ('{"p": {"b": {}}}', {}),
    ('{}', {}),
    ('{}\n', {}),
    ('{"m": [[1, -2], [127, -128]]}', {'m': [[1, -2], [127, -128]]}),
    ('{"m" : [ [0,0] , [0 , 0] ] }', {'m': [[0, 0], [0, 0]]}),
    ('{"x": 3.25, "y": 3, "id": 3, "tag": "t3", "v": [3, 3, 3], "ok": true, '
     '"p": {"a": 3, "b": {"c": 3, "d": [3, 3]}, "s": "333"}, '
     '"m": [[3, 3], [3, 3]]}',
     {'x': 3.25, 'y': 3, 'id': 3, 'tag': 't3', 'v': [3.0, 3.0, 3.0],
      'ok': True, 'p': {'a': 3, 'b': {'c': 3, 'd': [3.0, 3.0]}, 's': '333'},
      'm': [[3, 3], [3, 3]]}),
    ('{\n  "y": 11,\n  "p": {\n    "a": 12\n  }\n}\n', {'y': 11, 'p': {'a': 12}}),
]


def check_views(path, raw, ty, buf, where):
    got = util.read_bytes(raw)
    assert got == bytes(buf), (where, 'raw', got.hex(), bytes(buf).hex())
    check_text_matches(path, ty, buf, where)
    assert os.stat(path).st_size == len(util.read_bytes(path)), where


def version(path):
    return int(util.xattr(path, 'user.shmfs.version'))


@util.both_modes
def test_merge_record(shmfs):
    ty = parse(REC2)
    assert ty.canon() == REC2
    path = create(shmfs, 'r', REC2)
    raw = shmfs.r('r')
    assert util.xattr(path, util.TYPE) == REC2
    rng = random.Random(2)
    buf = bytearray(rng.randbytes(ty.size))      # padding too: never touched
    normalize(ty, buf)
    pwrite_all(raw, bytes(buf))
    check_views(path, raw, ty, buf, 'initial')
    for text, merge in MERGES:
        v0 = version(path)
        write_ok(path, text)
        encode(ty, merge, buf)
        check_views(path, raw, ty, buf, repr(text))
        assert version(path) > v0, text
    # the text as read, written back, is the same value
    before = util.read_bytes(path)
    write_ok(path, before)
    check_views(path, raw, ty, buf, 'round trip')
    # non-finite floats
    write_ok(path, '{"x": NaN, "v": [Infinity, -Infinity, NaN], '
                   '"p": {"b": {"d": [NaN, -Infinity]}}}\n')
    j = json.loads(read_lines(path)[0])
    assert math.isnan(j['x']) and j['v'][:2] == [math.inf, -math.inf]
    assert math.isnan(j['v'][2]) and math.isnan(j['p']['b']['d'][0])
    assert j['p']['b']['d'][1] == -math.inf
    got = bytearray(util.read_bytes(raw))
    for name in ('x', 'v', 'p'):
        o = ty.base.offset(name)
        buf[o:o + ty.base.field(name).size] = got[o:o + ty.base.field(name).size]
    assert got == buf, 'a NaN merge changed other bytes'
    assert math.isnan(struct.unpack_from('=d', got, 0)[0])
    assert_alive(shmfs)


def element_merges(ty, rng, count):
    """count random partial objects of ty's record (some {})."""
    out = []
    for k in range(count):
        m = {}
        if rng.random() < 0.75:
            for n, t in ty.base.fields:
                if rng.random() < 0.4:
                    m[n] = random_value(t, rng)
        out.append(m)
    return out


def random_value(t, rng, dims=None):
    """A random JSON value for a field (full for arrays, partial records)."""
    dims = t.dims if dims is None else dims
    if dims:
        return [random_value(t, rng, dims[1:]) for _ in range(dims[0])]
    b = t.base
    if b.kind == 'rec':
        return {n: random_value(ft, rng) for n, ft in b.fields if rng.random() < 0.6}
    if b.kind == 'char':
        alphabet = 'az"\\\n\t\x01é€\udcff\udc80 ~'
        while True:
            s = ''.join(rng.choice(alphabet) for _ in range(rng.randint(0, b.n)))
            if len(s.encode('utf-8', 'surrogateescape')) <= b.n:
                return s
    if b.name == 'bool':
        return rng.choice([True, False])
    if b.is_float:
        x = rng.choice([rng.uniform(-1e6, 1e6), rng.random(), float(rng.randint(-99, 99))])
        return struct.unpack(b.fmt, struct.pack(b.fmt, x))[0]
    lo, hi = int_range(b.name)
    return rng.choice([lo, hi, rng.randint(lo, hi), 0])


def nest(items, dims):
    """Flat list -> nested lists of shape dims (what tolist() gives)."""
    if len(dims) == 1:
        return list(items)
    step = math.prod(dims[1:])
    return [nest(items[i * step:(i + 1) * step], dims[1:]) for i in range(dims[0])]


@util.both_modes
@pytest.mark.parametrize('dims', [(4,), (2, 3)], ids=['4', '2x3'])
def test_merge_record_array(shmfs, dims):
    spec = REC2 + ''.join(f'[{d}]' for d in dims)
    ty = parse(spec)
    one = Ty(ty.base)
    path = create(shmfs, 'a', spec)
    raw = shmfs.r('a')
    assert util.xattr(path, 'user.shmfs.shape') == ty.shape()
    rng = random.Random(sum(dims))
    buf = bytearray(rng.randbytes(ty.size))
    normalize(ty, buf)
    pwrite_all(raw, bytes(buf))
    check_views(path, raw, ty, buf, 'initial')
    forms = ['lines', 'lines-no-final-newline', 'array', 'array-indented',
             'nested', 'keep-all']
    for round_ in range(3):
        for form in forms:
            merges = element_merges(ty, rng, ty.count)
            if form == 'keep-all':
                merges = [{}] * ty.count
            objs = [jdump(m) for m in merges]
            if form == 'lines' or form == 'keep-all':
                text = ''.join(o + '\n' for o in objs)
            elif form == 'lines-no-final-newline':
                text = '\n'.join(objs)
            elif form == 'array':
                text = '[' + ', '.join(objs) + ']\n'
            elif form == 'array-indented':
                text = json.dumps(merges, indent=1)
            else:
                if len(dims) == 1:
                    continue
                text = jdump(nest(merges, dims))
            for k, m in enumerate(merges):
                encode(one, m, buf, k * one.size)
            write_ok(path, text)
            check_views(path, raw, ty, buf, f'{form} round {round_}: {text[:300]!r}')
    # the text as read, written back, changes nothing
    write_ok(path, util.read_bytes(path))
    check_views(path, raw, ty, buf, 'round trip')
    assert_alive(shmfs)


# -- 3. bad input ---------------------------------------------------------------------

def nested_spec(depth):
    """depth records inside each other: {a:{a:...{a:i8}...}}."""
    return '{a:' * (depth - 1) + '{a:i8}' + '}' * (depth - 1)


def spec_of_length(n):
    """A canonical record spec of exactly n bytes (u8 fields)."""
    fields = []
    while len('{' + ', '.join(fields + ['f:u8']) + '}') < n - 12:
        fields.append(f'f{len(fields)}:u8')
    pad = n - len('{' + ', '.join(fields + ['z:u8']) + '}')
    spec = '{' + ', '.join(fields + ['z' + 'z' * pad + ':u8']) + '}'
    assert len(spec) == n
    return spec


GOOD_EDGE_SPECS = [
    ('{x:i8, X:u8}', '{x:i8, X:u8}'),
    ('{_:i8,_1:c, A:?}', '{_:i8, _1:char[1], A:bool}'),
    ('{i8:i8, char:c[2], bool:?, c:l, f64:d}',
     '{i8:i8, char:char[2], bool:bool, c:i64, f64:f64}'),
    ('{x:i8[1][1][1][1][1][1][1][1]}', '{x:i8[1][1][1][1][1][1][1][1]}'),
    ('{x:i8}[1][1][1][1][1][1][1][1]', '{x:i8}[1][1][1][1][1][1][1][1]'),
    ('{x:char[4][2]}', '{x:char[4][2]}'),
    ('{x:i8[2,3]}', '{x:i8[2][3]}'),
    ('{x:u8}[2,3]', '{x:u8}[2][3]'),
    (nested_spec(16), nested_spec(16)),
    (spec_of_length(4095), spec_of_length(4095)),
    ('{' + 'n' * 200 + ':u8}', '{' + 'n' * 200 + ':u8}'),
]

BAD_SPECS = [
    '{}', '{ }', '{\t}', '{}[3]',
    '{x:i8, x:i8}', '{a:i8, b:u8, a:f64}', '{x:i8, y:{z:u8, z:u8}}',
    '{x}', '{x:}', '{:i8}', '{x:i8, y}', '{x::i8}', '{x:i8, :u8}',
    '{x:i9}', '{x:foo}', '{x:float}', '{x:I8}', '{x:char}', '{x:char[0]}',
    '{x:c[0]}', '{x:{}}', '{x:i8, y:{}}',
    '{x:i8', 'x:i8}', '{x:i8}}', '{{x:i8}', '{x:{y:i8}', '{x:i8}{y:i8}',
    '{x:i8]', '{x:i8)', '{x:i8[2}', '(x:i8)',
    '{x:i8[0]}', '{x:i8[2][0]}', '{x:i8}[0]', '{x:i8}[2][0]', '{x:i8[]}',
    '{x:i8}[]', '{x:i8[-1]}', '{x:i8[2,]}', '{x:i8}[2', '{x:i8}[a]',
    '{p:{x:f64}[2]}', '{p:{x:f64}[1]}', '{q:{p:{x:f64}[2]}}', '{p:{x:f64}[2,2]}',
    '{1x:i8}', '{x-y:i8}', '{x y:i8}', '{"x":i8}', '{\u00e9:i8}', '{x.y:i8}',
    '{x$:i8}', '{9:i8}',
    '{x:i8,}', '{,x:i8}', '{x:i8,,y:i8}', '{x:i8 y:i8}', '{x;i8}',
    '{x:i8;y:i8}', '{x=i8}',
    nested_spec(17), nested_spec(40),
    spec_of_length(4096), spec_of_length(6000),
    '{x:u8[1099511627777]}', '{x:u8[1099511627776]}[2]',
    '{x:u8}[1099511627777]',
    # sizes whose products overflow 64 bits, or pass 1 TiB only with padding
    '{x:u8[4294967296][4294967296]}', '{x:u64[2305843009213693952]}',
    '{x:u8[18446744073709551615]}', '{x:u8[18446744073709551616]}',
    '{a:u8[1099511627776], b:u8}', '{a:u8[1099511627776], b:u8[1099511627776]}',
    '{a:{b:u64[2305843009213693952]}}', '{a:u8}[4294967296][4294967296]',
    '{a:u64}[2305843009213693952]', '{a:u8[2305843009213693952], b:u64}',
    '{a:u8[1099511627775], b:u64}',
    '{x:i8[1][1][1][1][1][1][1][1][1]}', '{x:i8}[1][1][1][1][1][1][1][1][1]',
    '{x:i8}x', '{x:i8}\0', '{x:i8\0}', '{x:i8}[2]x', '{x:f64}{',
]


def assert_untyped(shmfs, path, raw):
    assert util.errno_of(os.getxattr, path, util.TYPE) == errno.ENODATA
    assert os.stat(raw).st_size == 0
    assert util.read_bytes(path) == b''


@util.both_modes
def test_spec_edges(shmfs):
    for i, (spec, canon) in enumerate(GOOD_EDGE_SPECS):
        path = create(shmfs, f'e{i}', spec)
        assert util.xattr(path, util.TYPE) == canon, spec
        ty = parse(canon)
        assert os.stat(shmfs.r(f'e{i}')).st_size == ty.size
        assert np.dtype(json.loads(util.xattr(path, 'user.shmfs.dtype'))).itemsize \
            == ty.base.size
        lines = read_lines(path)
        assert len(lines) == ty.count
        json.loads(lines[0])
    # the deepest record reads and merges
    deep = shmfs.p('e8')
    write_ok(deep, '{"a": ' * 15 + '{"a": -5}' + '}' * 15)
    assert read_lines(deep) == ['{"a": ' * 15 + '{"a": -5}' + '}' * 15]
    assert_alive(shmfs)


@util.both_modes
def test_bad_specs(shmfs):
    problems = []
    for i, spec in enumerate(BAD_SPECS):
        path = shmfs.p(f'u{i}')
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
        logged = shmfs.rejected_count()
        e = util.errno_of(os.setxattr, path, util.TYPE,
                          spec.encode('utf-8', 'surrogateescape'))
        if e != EINVAL:
            try:
                got = util.xattr(path, util.TYPE)
            except OSError:
                got = None
            problems.append(f'{spec[:80]!r}: {util.ename(e)}, type {got!r}')
            continue
        if not shmfs.wait_rejected(logged):
            problems.append(f'{spec[:80]!r}: no "rejected" log line')
        assert_untyped(shmfs, path, shmfs.r(f'u{i}'))
        assert_alive(shmfs)
        util.set_type(path, '{ok:u8}')            # still untyped: typable
        assert read_lines(path) == ['{"ok": 0}']
        os.unlink(path)
    assert not problems, f'{len(problems)} of {len(BAD_SPECS)} bad specs ' \
        'not EINVAL:\n' + '\n'.join(problems)


R3 = ('{x:f64, f:f32, i8:i8, u8:u8, i16:i16, u16:u16, i32:i32, u32:u32, '
      'i64:i64, u64:u64, b:bool, s:char[4], v:i32[3], m:u8[2][2], '
      'n:{a:i16, t:char[2]}}')
R3_INIT = {'x': 1.25, 'f': -2.5, 'i8': -8, 'u8': 8, 'i16': -16, 'u16': 16,
           'i32': -32, 'u32': 32, 'i64': -64, 'u64': 64, 'b': True, 's': 'abc',
           'v': [1, 2, 3], 'm': [[4, 5], [6, 7]], 'n': {'a': -9, 't': 'tt'}}

# Each bad text also changes x (or a first element) before the bad part: all
# or nothing means x stays.
P = '{"x": 99.5, '
BAD_JSON = [
    # unknown, repeated, empty field names
    (P + '"nope": 1}', EINVAL),
    (P + '"X": 1}', EINVAL),
    (P + '"x": 1}', EINVAL),
    (P + '"": 1}', EINVAL),
    (P + '"x\\u0000": 1}', EINVAL),
    (P + '"n": {"a": 1, "a": 2}}', EINVAL),
    (P + '"n": {"zz": 1}}', EINVAL),
    (P + '"n": {"a": 1}, "n": {"t": "z"}}', EINVAL),
    (P + '"n": {"a": 1, "x": 1}}', EINVAL),
    # wrong JSON type for a float
    ('{"x": "1.5"}', EINVAL),
    ('{"x": true}', EINVAL),
    ('{"x": null}', EINVAL),
    ('{"x": [1]}', EINVAL),
    ('{"x": {}}', EINVAL),
    (P + '"f": "NaN"}', EINVAL),
    # wrong JSON type for an integer
    (P + '"i32": 1.5}', EINVAL),
    (P + '"i32": 1e2}', EINVAL),
    (P + '"i32": 1.0}', EINVAL),
    (P + '"i32": 1E0}', EINVAL),
    (P + '"i32": -0.0}', EINVAL),
    (P + '"u64": 1e19}', EINVAL),
    (P + '"i32": "1"}', EINVAL),
    (P + '"i32": true}', EINVAL),
    (P + '"i32": null}', EINVAL),
    (P + '"i32": NaN}', EINVAL),
    (P + '"u8": Infinity}', EINVAL),
    (P + '"i64": -Infinity}', EINVAL),
    (P + '"i32": [1]}', EINVAL),
    (P + '"i32": {}}', EINVAL),
    # wrong JSON type for a bool
    (P + '"b": "true"}', EINVAL),
    (P + '"b": null}', EINVAL),
    (P + '"b": [true]}', EINVAL),
    (P + '"b": True}', EINVAL),
    (P + '"b": yes}', EINVAL),
    (P + '"b": 2}', (EINVAL, ERANGE)),
    (P + '"b": -1}', (EINVAL, ERANGE)),
    # wrong JSON type for a string
    (P + '"s": 5}', EINVAL),
    (P + '"s": null}', EINVAL),
    (P + '"s": ["a"]}', EINVAL),
    (P + '"s": {}}', EINVAL),
    (P + '"s": true}', EINVAL),
    # field arrays: the item count and shape
    (P + '"v": 5}', EINVAL),
    (P + '"v": [1, 2]}', EINVAL),
    (P + '"v": [1, 2, 3, 4]}', EINVAL),
    (P + '"v": []}', EINVAL),
    (P + '"v": [[1], [2], [3]]}', EINVAL),
    (P + '"v": [1, 2, "3"]}', EINVAL),
    (P + '"v": [1, 2, 3.5]}', EINVAL),
    (P + '"v": [1, 2, null]}', EINVAL),
    (P + '"v": {"0": 1}}', EINVAL),
    (P + '"m": [[1, 2], [3]]}', EINVAL),
    (P + '"m": [[1, 2], [3, 4, 5]]}', EINVAL),
    (P + '"m": [[1, 2], [3, 4], [5, 6]]}', EINVAL),
    (P + '"m": [[1, 2], 3]}', EINVAL),
    (P + '"m": [[[1], 2], [3, 4]]}', EINVAL),
    (P + '"m": [[1, 2]]}', EINVAL),
    # nested records
    (P + '"n": 5}', EINVAL),
    (P + '"n": []}', EINVAL),
    (P + '"n": [{"a": 1}]}', EINVAL),
    (P + '"n": null}', EINVAL),
    (P + '"n": "ab"}', EINVAL),
    # integers out of range, per width
    (P + '"i8": 128}', ERANGE),
    (P + '"i8": -129}', ERANGE),
    (P + '"u8": 256}', ERANGE),
    (P + '"u8": -1}', ERANGE),
    (P + '"i16": 32768}', ERANGE),
    (P + '"i16": -32769}', ERANGE),
    (P + '"u16": 65536}', ERANGE),
    (P + '"u16": -1}', ERANGE),
    (P + '"i32": 2147483648}', ERANGE),
    (P + '"i32": -2147483649}', ERANGE),
    (P + '"u32": 4294967296}', ERANGE),
    (P + '"u32": -1}', ERANGE),
    (P + '"i64": 9223372036854775808}', ERANGE),
    (P + '"i64": -9223372036854775809}', ERANGE),
    (P + '"i64": 1000000000000000000000000000000}', ERANGE),
    (P + '"u64": 18446744073709551616}', ERANGE),
    (P + '"u64": -1}', ERANGE),
    (P + '"u64": -18446744073709551615}', ERANGE),
    (P + '"v": [1, 2, 2147483648]}', ERANGE),
    (P + '"m": [[1, 2], [3, 256]]}', ERANGE),
    (P + '"n": {"a": 40000}}', ERANGE),
    # floats out of range
    (P + '"f": 1e39}', ERANGE),
    (P + '"f": -1e39}', ERANGE),
    (P + '"f": 3.5e38}', ERANGE),
    (P + '"f": 1e999}', ERANGE),
    ('{"f": 1.5, "x": 1e999}', ERANGE),
    ('{"f": 1.5, "x": -1e999}', ERANGE),
    ('{"f": 1.5, "x": 1e309}', ERANGE),
    # strings
    (P + '"s": "abcde"}', EINVAL),
    (P + '"s": "\u00e9\u00e9\u00e9"}', EINVAL),
    (P + '"s": "\\u00e9\\u00e9\\u00e9"}', EINVAL),
    (P + '"s": "\\udcff\\udcff\\udcff\\udcff\\udcff"}', EINVAL),
    (P + '"s": "\\ud83d\\ude00a"}', EINVAL),
    (P + '"n": {"t": "abc"}}', EINVAL),
    (P + '"s": "ab\\u0000"}', EINVAL),
    (P + '"s": "\\u0000"}', EINVAL),
    (P + '"s": "\\ud800"}', EINVAL),
    (P + '"s": "\\ud800x"}', EINVAL),
    (P + '"s": "\\ud83d\\u0041"}', EINVAL),
    (P + '"s": "\\ud83d\\ud83d"}', EINVAL),
    (P + '"s": "\\ude00"}', EINVAL),
    (P + '"s": "\\udc41"}', EINVAL),
    (P + '"s": "\\x41"}', EINVAL),
    (P + '"s": "\\u12"}', EINVAL),
    (P + '"s": "\\u12g4"}', EINVAL),
    (P + '"s": "\\a"}', EINVAL),
    (P + '"s": "a\x01"}', EINVAL),
    (P + '"s": "a\nb"}', EINVAL),
    (P + '"s": "a\tb"}', EINVAL),
    (P + '"s": \'ab\'}', EINVAL),
    (P + '"s": ab}', EINVAL),
    # malformed JSON
    ('{"x" 99.5}', EINVAL),
    ('{x: 99.5}', EINVAL),
    ("{'x': 99.5}", EINVAL),
    ('{"x": 99.5,}', EINVAL),
    ('{"x": 99.5} x', EINVAL),
    ('{"x": 99.5}}', EINVAL),
    ('{"x": 99.5}]', EINVAL),
    ('{"x": 99.5} {}', EINVAL),
    ('{"x": 99.5}\n{}\n', EINVAL),
    ('[{"x": 99.5}, {}]', EINVAL),
    ('5', EINVAL),
    ('"x"', EINVAL),
    ('null', EINVAL),
    ('true', EINVAL),
    ('{,}', EINVAL),
    (P + ', "i8": 1}', EINVAL),
    ('{"x": 99.5 "i8": 1}', EINVAL),
    ('{"x": 99.5: 1}', EINVAL),
    ('{"x": 01}', EINVAL),
    (P + '"i32": 01}', EINVAL),
    (P + '"i32": -01}', EINVAL),
    (P + '"i32": +1}', EINVAL),
    ('{"x": .5}', EINVAL),
    ('{"x": 1.}', EINVAL),
    ('{"x": 1.e3}', EINVAL),
    (P + '"i32": 0x10}', EINVAL),
    (P + '"i32": 1_000}', EINVAL),
    (P + '"i32": 1,000}', EINVAL),
    (P + '"i8": 0b1}', EINVAL),
    (P + '"i8": -}', EINVAL),
    ('{"x": nan}', EINVAL),
    ('{"x": inf}', EINVAL),
    ('{"x": -nan}', EINVAL),
    ('{"x": infinity}', EINVAL),
    ('{"x": NAN}', EINVAL),
    ('{"x": -NaN}', EINVAL),
    ('{"x": +Infinity}', EINVAL),
    ('{"x": 1e}', EINVAL),
    ('{"x": 1e+}', EINVAL),
    ('{"x": --1}', EINVAL),
    ('{"x": 1 2}', EINVAL),
    ('{"x": 99.5}\0', EINVAL),
    ('\0{"x": 99.5}', EINVAL),
    (P + '"i8": 1}garbage', EINVAL),
    ('{"x": 99.5} // comment', EINVAL),
    (P + '/* c */ "i8": 1}', EINVAL),
    (P + '"i8": tru}', EINVAL),
    (P + '"i8": 1} \xff', EINVAL),
    ('x=1', EINVAL),
]

# Text that may be the start of a longer one: EINVAL from the write or, left
# incomplete, from close; nothing changes either way.
INCOMPLETE_JSON = [
    '{"x": 99.5', '{"x": 99.5,', '{"x": ', '{', '\n', '   ', '{"x": 99.5, "s": "ab',
    P + '"n": {"a": 1}', P + '"v": [1, 2', '[]',
    P + '"s": "\\"}',          # the string goes on: its quote is escaped
]

RA_BAD = [
    ('{"x": 99.5}\n{}\n{}\n{}\n', EINVAL),
    ('[{"x": 99.5}, {}, {}, {}]', EINVAL),
    ('{"x": 99.5}\n{}\n{"i8": 300}\n', ERANGE),
    ('{"x": 99.5}\n{}\n{"nope": 1}\n', EINVAL),
    ('{"x": 99.5}\n{}\n{"x": 1, "x": 2}\n', EINVAL),
    ('[{"x": 99.5}, 5, {}]', EINVAL),
    ('[{"x": 99.5}, [], {}]', EINVAL),
    ('[{"x": 99.5}, null, {}]', EINVAL),
    ('{"x": 99.5}\n[]\n{}\n', EINVAL),
    ('{"x": 99.5}\n5\n{}\n', EINVAL),
    ('[{"x": 99.5}, {}, {}]]', EINVAL),
    ('[{"x": 99.5}, {}, {}] {}', EINVAL),
    ('[{"x": 99.5}, {}, {},]', EINVAL),
    ('[{"x": 99.5}, {}, {}, ]', EINVAL),
    ('[{"x": 99.5},, {}, {}]', EINVAL),
    ('[{"x": 99.5} {} {}]', EINVAL),
    ('[{"x": 99.5}, {}, {"s": "abcde"}]', EINVAL),
    ('[{"x": 99.5}, {}, {"f": 1e39}]', ERANGE),
    ('[{"x": 99.5}, {}, {"u64": -1}]', ERANGE),
    ('{"x": 99.5}\n{}\n{}\n{"x": 1}\n', EINVAL),
]
RA_SHORT = [
    '{"x": 99.5}\n{}\n',
    '[{"x": 99.5}, {}]',
    '[{"x": 99.5}, {}, {}',
    '{"x": 99.5}\n{}',
    '[{"x": 99.5}]\n',
]
RB_BAD = [      # {R3}[2][2]
    ('[[{"x": 99.5}, {}], [{}, {}, {}]]', EINVAL),
    ('[[{"x": 99.5}, {}], [{}, {}], [{}, {}]]', EINVAL),
    ('[[{"x": 99.5}, {}], [{}, {"i16": 99999}]]', ERANGE),
    ('[[{"x": 99.5}, {}], [{}, 7]]', EINVAL),
    ('[{"x": 99.5}, {}, {}, {}, {}]', EINVAL),
]
RB_SHORT = [
    '[[{"x": 99.5}, {}], [{}]]',
    '[[{"x": 99.5}], [{}, {}]]',
]
NEIGHBOUR = bytes(range(100, 164))


class Rejects:
    """Writes bad text to objects and collects every deviation from the
    contract: the errno, a change in either view, a missing log line, a dead
    daemon or a harmed neighbour."""

    def __init__(self, shmfs):
        self.shmfs = shmfs
        self.problems = []
        self.count = 0
        util.new_object(shmfs, 'nb', 'u8[64]')
        pwrite_all(shmfs.r('nb'), NEIGHBOUR)

    def check(self, name, data, errs, maybe_at_close=False):
        shmfs = self.shmfs
        path, raw = shmfs.p(name), shmfs.r(name)
        errs = errs if isinstance(errs, tuple) else (errs,)
        text0, raw0 = util.read_bytes(path), util.read_bytes(raw)
        logged = shmfs.rejected_count()
        self.count += 1
        werr, cerr = write_once(path, data)
        what = f'{name} {data[:120]!r}: write {util.ename(werr)}, ' \
            f'close {util.ename(cerr)}'
        if maybe_at_close:
            ok = EINVAL in (werr, cerr) and werr in (0, EINVAL) and cerr in (0, EINVAL)
            want = 'EINVAL from write or close'
        else:
            ok = werr in errs and cerr in (0, EINVAL)
            want = '/'.join(map(util.ename, errs)) + ' from write'
        if not ok:
            self.problems.append(f'{what}; want {want}')
        if not shmfs.alive():
            raise AssertionError(f'{what}: the daemon died\n{shmfs.log()[-3000:]}')
        text1, raw1 = util.read_bytes(path), util.read_bytes(raw)
        if text1 != text0:
            self.problems.append(f'{what}: text view changed to {text1[:300]!r}')
        if raw1 != raw0:
            self.problems.append(f'{what}: .raw bytes changed')
        if (werr or cerr) and not shmfs.wait_rejected(logged):
            self.problems.append(f'{what}: no "rejected" log line')
        if text1 != text0 or raw1 != raw0:      # put it back for the next
            pwrite_all(raw, raw0)

    def finish(self):
        assert util.read_bytes(self.shmfs.r('nb')) == NEIGHBOUR
        assert_alive(self.shmfs)
        assert not self.problems, f'{len(self.problems)} of {self.count} bad ' \
            'writes not rejected as the contract says:\n' + '\n'.join(self.problems)


@util.both_modes
def test_bad_json_record(shmfs):
    create(shmfs, 'r', R3)
    write_ok(shmfs.p('r'), jdump(R3_INIT))
    assert json.loads(read_lines(shmfs.p('r'))[0]) == R3_INIT
    rej = Rejects(shmfs)
    for data, err in BAD_JSON:
        rej.check('r', data, err)
    for data in INCOMPLETE_JSON:
        rej.check('r', data, EINVAL, maybe_at_close=True)
    assert rej.count >= 150
    rej.finish()
    assert json.loads(read_lines(shmfs.p('r'))[0]) == R3_INIT


@util.both_modes
def test_bad_json_record_array(shmfs):
    create(shmfs, 'ra', R3 + '[3]')
    create(shmfs, 'rb', R3 + '[2][2]')
    for name, n in (('ra', 3), ('rb', 4)):
        write_ok(shmfs.p(name), ''.join(jdump(R3_INIT) + '\n' for _ in range(n)))
    rej = Rejects(shmfs)
    for data, err in RA_BAD:
        rej.check('ra', data, err)
    for data in RA_SHORT:
        rej.check('ra', data, EINVAL, maybe_at_close=True)
    for data, err in RB_BAD:
        rej.check('rb', data, err)
    for data in RB_SHORT:
        rej.check('rb', data, EINVAL, maybe_at_close=True)
    rej.finish()
    for name, n in (('ra', 3), ('rb', 4)):
        assert read_objects(shmfs.p(name)) == [R3_INIT] * n


# -- 4. a record array of 100 000 elements, in many writes --------------------------------

BIG = 100_000
BIG_REC = '{id:u32, x:f64, tag:char[7], ok:bool, v:i16[2]}'
TAGS = ['', 'a', 'abcdefg', 't\u00e9\u20ac', '\udcff\udc80', 'q"\\\n', '\U0001F600ab',
        '\t\x01']


class BigValues:
    """The expected content of a big record array, as numpy columns."""

    def __init__(self, n, seed):
        g = np.random.default_rng(seed)
        self.id = g.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
        self.x = g.standard_normal(n) * 10.0 ** g.integers(-300, 300, n)
        self.x[::97] = -0.0
        self.tag = g.integers(0, len(TAGS), n)
        self.ok = g.integers(0, 2, n).astype(bool)
        self.v = g.integers(-32768, 32768, (n, 2)).astype(np.int16)

        self._lists = None

    def line(self, k, fields=('id', 'x', 'tag', 'ok', 'v')):
        if self._lists is None:         # numpy scalars format slowly
            self._lists = (self.id.tolist(), self.x.tolist(), self.tag.tolist(),
                           self.ok.tolist(), self.v.tolist())
        ids, xs, tags, oks, vs = self._lists
        parts = []
        for f in fields:
            if f == 'id':
                parts.append(f'"id": {ids[k]}')
            elif f == 'x':
                parts.append(f'"x": {xs[k]!r}')
            elif f == 'tag':
                tag = TAGS[tags[k]]
                # raw UTF-8 in odd elements where the string allows it
                raw_utf8 = k % 2 == 1 and not re.search('[\udc80-\udcff]', tag)
                parts.append('"tag": ' + json.dumps(tag, ensure_ascii=not raw_utf8))
            elif f == 'ok':
                parts.append('"ok": ' + ('true' if oks[k] else 'false'))
            else:
                parts.append(f'"v": [{vs[k][0]}, {vs[k][1]}]')
        return '{' + ', '.join(parts) + '}'


def check_big(shmfs, name, want, n):
    path, raw = shmfs.p(name), shmfs.r(name)
    dt = np.dtype(json.loads(util.xattr(path, 'user.shmfs.dtype')))
    a = np.frombuffer(util.read_bytes(raw), dt)
    assert a.shape == (n,)
    bad = np.nonzero(a['id'] != want.id)[0]
    assert not len(bad), f'id differs at {bad[:10]}: {a["id"][bad[:10]]}'
    bad = np.nonzero(a['x'].view(np.uint64) != want.x.view(np.uint64))[0]
    assert not len(bad), f'x differs at {bad[:10]}'
    tags = np.array([t.encode('utf-8', 'surrogateescape') for t in TAGS], dtype='S7')
    bad = np.nonzero(a['tag'] != tags[want.tag])[0]
    assert not len(bad), f'tag differs at {bad[:10]}'
    bad = np.nonzero(a['ok'] != want.ok)[0]
    assert not len(bad), f'ok differs at {bad[:10]}'
    bad = np.nonzero((a['v'] != want.v).any(axis=1))[0]
    assert not len(bad), f'v differs at {bad[:10]}'


def chunked_write(path, data, rng, forced=()):
    """data in writes of 1 to 8191 bytes (4 KiB on average), split also at
    the forced offsets; every write takes all it is given, close is clean."""
    cuts = set(forced)
    at = 0
    while at < len(data):
        at += rng.randint(1, 8191)
        cuts.add(at)
    cuts = sorted(c for c in cuts if 0 < c < len(data)) + [len(data)]
    fd = os.open(path, os.O_WRONLY)
    try:
        start = 0
        for c in cuts:
            n = os.write(fd, data[start:c])
            assert n == c - start, (start, c, n)
            start = c
    finally:
        os.close(fd)
    return len(cuts)


def awkward_cuts(data):
    """Offsets inside an escape, a UTF-8 sequence, a number, a key, right
    after '{' and right before and after a newline."""
    out = []
    for needle, into in ((b'\\udcff', 3), (b'\\n', 1), ('\u00e9'.encode(), 1),
                         ('\U0001F600'.encode(), 2), (b'"tag"', 2),
                         (b'{"id"', 1), (b'}\n{', 1), (b'}\n{', 2), (b'e-', 1),
                         (b'true', 2), (b'[-', 1)):
        for start in (0, len(data) // 2):
            i = data.find(needle, start)
            if i >= 0:
                out.append(i + into)
    assert len(out) >= 15
    return out


@util.both_modes
def test_big_record_array(shmfs):
    rng = random.Random(100)
    path = create(shmfs, 'big', f'{BIG_REC}[{BIG}]')
    assert os.stat(shmfs.r('big')).st_size == BIG * 32
    started = time.monotonic()

    # JSON lines in odd-sized chunks split anywhere
    want = BigValues(BIG, 1)
    text = ''.join(want.line(k) + '\n' for k in range(BIG)).encode('utf-8', 'surrogateescape')
    writes = chunked_write(path, text, rng, awkward_cuts(text))
    assert writes > len(text) // 8192
    check_big(shmfs, 'big', want, BIG)
    t_lines = time.monotonic() - started

    # a line per write, merging: {} keeps an element, partial objects
    new = BigValues(BIG, 2)
    fields_of = [('x',), ('id', 'tag'), (), ('ok', 'v'), ('id', 'x', 'tag', 'ok', 'v')]
    fd = os.open(path, os.O_WRONLY)
    try:
        for k in range(BIG):
            fields = fields_of[k % len(fields_of)]
            line = (new.line(k, fields) + '\n').encode('utf-8', 'surrogateescape')
            assert os.write(fd, line) == len(line)
            for f in fields:
                getattr(want, f)[k] = getattr(new, f)[k]
    finally:
        os.close(fd)
    want._lists = None
    check_big(shmfs, 'big', want, BIG)
    t_per_line = time.monotonic() - started - t_lines

    # one JSON array, in chunks
    want = BigValues(BIG, 3)
    text = ('[' + ',\n '.join(want.line(k) for k in range(BIG)) + ']').encode(
        'utf-8', 'surrogateescape')
    chunked_write(path, text, rng, awkward_cuts(text))
    check_big(shmfs, 'big', want, BIG)

    # the text view reads back what was written
    lines = read_lines(path)
    assert len(lines) == BIG
    for k in list(range(0, BIG, 997)) + [BIG - 1]:
        assert json.loads(lines[k]) == json.loads(want.line(k)), k
    print(f'lines in chunks {t_lines:.1f} s, a line per write {t_per_line:.1f} s, '
          f'all {time.monotonic() - started:.1f} s')
    assert_alive(shmfs)


@util.both_modes
def test_big_record_array_nested(shmfs):
    """A [250][400] array of records as nested JSON arrays (what tolist()
    gives), in chunks."""
    rng = random.Random(250)
    path = create(shmfs, 'big2', f'{BIG_REC}[250][400]')
    want = BigValues(BIG, 4)
    rows = ['[' + ', '.join(want.line(r * 400 + c) for c in range(400)) + ']'
            for r in range(250)]
    text = ('[' + ',\n'.join(rows) + ']\n').encode('utf-8', 'surrogateescape')
    chunked_write(path, text, rng, awkward_cuts(text) + [text.find(b']') + 1])
    check_big(shmfs, 'big2', want, BIG)
    assert len(read_lines(path)) == BIG
    assert_alive(shmfs)


# -- 5. mapped stores and the text view -------------------------------------------------

_MAPPED_STORER = textwrap.dedent('''
    import mmap, os, struct, sys
    path, size = sys.argv[1], int(sys.argv[2])
    fd = os.open(path, os.O_RDWR)
    m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)
    for line in sys.stdin:              # "offset fmt value" lines, then exit
        off, fmt, value = line.split()
        struct.pack_into(fmt, m, int(off), float(value) if fmt[-1] in 'fd' else int(value))
    m.close()
''')


@util.both_modes
def test_mapped_stores_seen_in_text(shmfs):
    spec = REC2 + '[5]'
    ty = parse(spec)
    one = Ty(ty.base)
    path = create(shmfs, 'mm', spec)
    raw = shmfs.r('mm')
    rng = random.Random(5)
    with util.mapped(raw) as m:
        arr = (one.ctype * 5).from_buffer(m)
        try:
            for round_ in range(40):
                k = rng.randrange(5)
                e = arr[k]
                which = round_ % 6
                if which == 0:
                    e.y = rng.randint(-2 ** 31, 2 ** 31 - 1)
                    e.x = rng.choice([math.nan, -0.0, 1e300, rng.random()])
                elif which == 1:
                    e.tag = bytes([rng.randint(1, 255) for _ in range(rng.randint(0, 6))])
                elif which == 2:
                    e.p.b.c = rng.randint(0, 255)
                    e.p.b.d[1] = rng.uniform(-10, 10)
                    e.p.s = b'\xff\x00z'
                elif which == 3:
                    e.v[rng.randrange(3)] = rng.choice([math.inf, 0.5, -3.0])
                    e.ok = rng.choice([True, False])
                elif which == 4:
                    e.m[1][0] = rng.randint(-128, 127)
                    e.id = rng.randint(0, 2 ** 32 - 1)
                else:                    # a text merge, seen by the mapping
                    write_ok(path, ''.join(
                        ('{"y": %d, "p": {"a": -3}}' % round_ if i == k else '{}') + '\n'
                        for i in range(5)))
                    assert e.y == round_ and e.p.a == -3
                check_text_matches(path, ty, bytes(m), f'round {round_}')
        finally:
            del arr, e
    # stores by another process, which then exits without msync
    stores = [(2 * one.size + one.base.offset('y'), '=i', -77),
              (4 * one.size + one.base.offset('id'), '=I', 4000000000),
              (0 * one.size + one.base.offset('x'), '=d', 2.5)]
    util.child(_MAPPED_STORER, raw, ty.size,
               input=''.join(f'{o} {f} {v}\n' for o, f, v in stores))
    objs = read_objects(path)
    assert objs[2]['y'] == -77 and objs[4]['id'] == 4000000000 and objs[0]['x'] == 2.5
    assert_alive(shmfs)


_Y_STORER = textwrap.dedent('''
    import mmap, os, struct, sys, time
    path, size, rec, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    spots = [(int(o), f) for o, f in (s.split(':') for s in sys.argv[5].split(','))]
    fd = os.open(path, os.O_RDWR)
    m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)
    where = [(k * rec + o, f, (1 << (8 * struct.calcsize(f))) - 1)
             for k in range(size // rec) for o, f in spots]
    c, undone, first = 0, 0, None
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        c += 1
        for at, f, mask in where:
            struct.pack_into(f, m, at, c & mask)
        for at, f, mask in where:
            got = struct.unpack_from(f, m, at)[0]
            if got != c & mask:
                undone += 1
                first = first or (at, got, c & mask)
    print(c, undone, first)
    m.close()
''')


@util.both_modes
def test_merge_never_undoes_mapped_stores(shmfs):
    """Another process stores y through a mapping in a loop (and checks each
    store stays); meanwhile text merges set the fields around y.  No store to
    y is ever undone, and every merge stays."""
    seconds = 3.0
    objs = {
        # y between two merged fields, on both sides
        'A': ('{x:f64, y:i64, s:char[5], z:u16}', 64, [('y', '=q')],
              lambda r: {'x': r + 0.5, 's': f's{r % 1000}', 'z': r % 65536}),
        # byte neighbours: y and w stored by the mapping, a and b merged
        'B': ('{a:u8, y:u8, b:u8, w:u8}', 256, [('y', '=B'), ('w', '=B')],
              lambda r: {'a': r % 256, 'b': (r * 7) % 256}),
    }
    procs, last = {}, {}
    for name, (rec, n, mapped_fields, _) in objs.items():
        ty = parse(f'{rec}[{n}]')
        create(shmfs, name, f'{rec}[{n}]')
        spots = ','.join(f'{ty.base.offset(f)}:{fmt}' for f, fmt in mapped_fields)
        procs[name] = subprocess.Popen(
            [util.PYTHON, '-c', _Y_STORER, shmfs.r(name), str(ty.size),
             str(ty.base.size), str(seconds), spots],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
    r = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r += 1
        for name, (rec, n, _, merge) in objs.items():
            k = r % n            # one element left out each round ({})
            write_ok(shmfs.p(name), ''.join(
                ('{}' if i == k else jdump(merge(r))) + '\n' for i in range(n)))
            last[name] = r
    assert r > 20, f'only {r} merges'
    for name, (rec, n, mapped_fields, merge) in objs.items():
        rc, out, err = util.finish(procs[name], 60)
        assert rc == 0, err
        c, undone, first = out.split(maxsplit=2)
        print(f'{name}: {c} rounds of mapped stores, {r} text merges')
        assert int(undone) == 0, \
            f'{name}: {undone} mapped stores undone by text merges (first: {first})'
        values = read_objects(shmfs.p(name))
        lr = last[name]
        for i, v in enumerate(values):
            for f, fmt in mapped_fields:
                mask = (1 << (8 * struct.calcsize(fmt))) - 1
                assert v[f] == int(c) & mask, (name, i, f, v[f], c)
            # the last merge, or for the element it left out the one before
            want = merge(lr if i != lr % n else lr - 1)
            for f, x in want.items():
                assert v[f] == x, (name, i, f, v[f], x, 'a merge was lost')
    assert_alive(shmfs)


# -- 6. field atomics -----------------------------------------------------------------

R6 = ('{tag:char[3], cnt:i64, w:u8, f:f64, v:i32[4], z:u16, s:f32, '
      'nb:{k:i16, q:u32}, flag:bool, t2:{c:char[2], n:u8}}')
R6_N = 8
R6_K = 5          # the element the atomics hit
WORKERS = 4
ITERATIONS = 150 if SANITIZED else 400


def _forked(fn):
    """Runs fn() in a forked child; returns its pid.  The child exits 0 when
    fn returns, 1 (with the exception on stderr) when it raises."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        except BaseException as e:
            os.write(2, f'child {os.getpid()}: {e!r}\n'.encode())
        finally:
            os._exit(code)
    return pid


def _wait_ok(pid, timeout=300):
    deadline = time.monotonic() + timeout
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            assert os.waitstatus_to_exitcode(status) == 0, f'child {pid} failed'
            return
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError(f'child {pid} did not finish')
        time.sleep(0.01)


@util.both_modes
def test_field_atomics_exact_under_concurrency(shmfs):
    ty = parse(f'{R6}[{R6_N}]')
    rec = ty.base
    path = create(shmfs, 'at', f'{R6}[{R6_N}]')
    raw = shmfs.r('at')
    off = rec.offset
    v_off, q_off = off('v'), off('nb') + rec.field('nb').base.offset('q')
    init = {'cnt': 0, 'w': 250, 'f': 0.5, 'v': [0, 0, 0, 0], 'nb': {'k': 0, 'q': 10}}
    write_ok(path, ''.join(jdump(init) + '\n' for _ in range(R6_N)))

    # per iteration: cnt += 1, w += 1 (wraps), f += 1.0, v[j] += j + 1, nb.q += 3
    ops = [(off('cnt'), 1, 0), (off('w'), 1, 0), (off('f'), 1.0, FLOAT)] + \
        [(v_off + 4 * j, j + 1, 0) for j in range(4)] + [(q_off, 3, 0)]

    def worker(n):
        view = raw if n % 2 == 0 else path      # either view takes the ioctl
        fd = os.open(view, os.O_RDWR)
        for _ in range(ITERATIONS):
            for field, operand, flt in ops:
                atomic(fd, ADD, field=field, index=R6_K, operand=operand,
                       flags=FIELD | flt)
        os.close(fd)

    stop_r, stop_w = os.pipe()
    last_r, last_w = os.pipe()

    def merger():
        os.close(stop_w)
        r = 0
        while not select.select([stop_r], [], [], 0)[0] or r < 3:
            r += 1
            lines = []
            for i in range(R6_N):
                if i == R6_K:        # only fields no atomic touches
                    m = {'tag': f't{r % 10}', 'z': r % 65536, 's': r / 2,
                         'nb': {'k': -(r % 1000)}, 'flag': r % 2 == 1,
                         't2': {'c': 'ab'[r % 2], 'n': r % 256}}
                else:
                    m = {'cnt': r, 'w': r % 256, 'f': r * 0.25,
                         'v': [r, -r, r, -r], 'z': r % 65536, 'nb': {'q': r}}
                lines.append(jdump(m) + '\n')
            write_ok(path, ''.join(lines))
        os.write(last_w, f'{r}\n'.encode())

    started = time.monotonic()
    merger_pid = _forked(merger)
    os.close(stop_r)
    pids = [_forked(lambda n=n: worker(n)) for n in range(WORKERS)]
    for pid in pids:
        _wait_ok(pid)
    os.close(stop_w)
    _wait_ok(merger_pid)
    os.close(last_w)
    r = int(os.read(last_r, 64))
    os.close(last_r)
    elapsed = time.monotonic() - started

    total = WORKERS * ITERATIONS
    objs = read_objects(path)
    e = objs[R6_K]
    assert e['cnt'] == total, e
    assert e['w'] == (250 + total) % 256, e
    assert e['f'] == 0.5 + total, e
    assert e['v'] == [(j + 1) * total for j in range(4)], e
    assert e['nb'] == {'k': -(r % 1000), 'q': 10 + 3 * total}, e
    assert (e['tag'], e['z'], e['s'], e['flag'], e['t2']) == \
        (f't{r % 10}', r % 65536, r / 2, r % 2 == 1, {'c': 'ab'[r % 2], 'n': r % 256}), e
    for i, o in enumerate(objs):
        if i != R6_K:
            assert (o['cnt'], o['w'], o['f'], o['v'], o['z'], o['nb']['q']) == \
                (r, r % 256, r * 0.25, [r, -r, r, -r], r % 65536, r), (i, o)
    # .raw agrees with the text
    buf = util.read_bytes(raw)
    assert struct.unpack_from('=q', buf, R6_K * rec.size + off('cnt'))[0] == total
    assert struct.unpack_from('=4i', buf, R6_K * rec.size + v_off) == \
        tuple((j + 1) * total for j in range(4))
    print(f'{total * len(ops)} field atomics and {r} text merges in {elapsed:.1f} s')
    assert_alive(shmfs)


@util.both_modes
def test_field_atomics_ops_and_bad_offsets(shmfs):
    ty = parse(f'{R6}[{R6_N}]')
    rec = ty.base
    off = rec.offset
    path = create(shmfs, 'at', f'{R6}[{R6_N}]')
    raw = shmfs.r('at')
    write_ok(path, ''.join(jdump({'cnt': i, 'w': 250, 'f': 1.5, 's': -2.5,
                                  'flag': True, 'z': 7, 'tag': 'abc',
                                  'nb': {'k': -3, 'q': 9}}) + '\n'
                           for i in range(R6_N)))
    nb_q = off('nb') + rec.field('nb').base.offset('q')
    nb_k = off('nb')
    t2_n = off('t2') + rec.field('t2').base.offset('n')
    with util.opened(raw) as fd:
        # every operation on fields, values checked in the text view
        assert atomic(fd, LOAD, field=off('cnt'), index=3) == (3, 0)
        assert atomic(fd, ADD, field=off('w'), index=3, operand=10, kind='u')[0] == 250
        assert atomic(fd, SUB, field=nb_k, index=3, operand=5)[0] == -3
        assert atomic(fd, XCHG, field=off('s'), index=3, operand=0.25, flags=FIELD | FLOAT,
                      kind='f')[0] == -2.5
        assert atomic(fd, CAS, field=off('z'), index=3, operand=8, expected=6,
                      kind='u') == (7, 0)
        assert atomic(fd, CAS, field=off('z'), index=3, operand=8, expected=7,
                      kind='u') == (7, 1)
        assert atomic(fd, XCHG, field=off('flag'), index=3, operand=0, kind='u')[0] == 1
        assert atomic(fd, ADD, field=off('v') + 12, index=7, operand=-4)[0] == 0
        assert atomic(fd, ADD, field=nb_q, index=0, operand=(1 << 32) - 10, kind='u')[0] == 9
        assert atomic(fd, ADD, field=t2_n, index=1, operand=300, kind='u')[0] == 0
        assert atomic(fd, ADD, field=off('f'), index=2, operand=0.25,
                      flags=FIELD | FLOAT, kind='f')[0] == 1.5
        objs = read_objects(path)
        assert (objs[3]['w'], objs[3]['nb']['k'], objs[3]['s'], objs[3]['z'],
                objs[3]['flag']) == (4, -8, 0.25, 8, False)
        assert objs[7]['v'] == [0, 0, 0, -4]
        assert objs[0]['nb']['q'] == (9 + (1 << 32) - 10) % (1 << 32)
        assert objs[1]['t2']['n'] == 300 % 256
        assert objs[2]['f'] == 1.75
        text0, raw0 = util.read_bytes(path), util.read_bytes(raw)

        bad = [
            ('a char field', dict(op=LOAD, field=off('tag'))),
            ('a char field, add', dict(op=ADD, field=off('tag'), operand=1)),
            ('the second byte of a char field', dict(op=LOAD, field=1)),
            ('padding after tag', dict(op=ADD, field=3, operand=1)),
            ('padding before cnt', dict(op=ADD, field=7, operand=1)),
            ('inside cnt', dict(op=ADD, field=off('cnt') + 1, operand=1)),
            ('inside cnt, aligned 4', dict(op=ADD, field=off('cnt') + 4, operand=1)),
            ('padding after w', dict(op=ADD, field=off('w') + 1, operand=1)),
            ('inside f', dict(op=ADD, field=off('f') + 4, operand=1.0, flags=FIELD | FLOAT)),
            ('inside v[0]', dict(op=ADD, field=off('v') + 2, operand=1)),
            ('inside z', dict(op=ADD, field=off('z') + 1, operand=1)),
            ('inside nb.q', dict(op=ADD, field=nb_q + 2, operand=1)),
            ('nested char t2.c', dict(op=LOAD, field=off('t2'))),
            ('t2 itself (starts with a char)', dict(op=ADD, field=off('t2'), operand=1)),
            ('trailing padding', dict(op=ADD, field=rec.size - 1, operand=1)),
            ('the record size', dict(op=ADD, field=rec.size, operand=1)),
            ('past the record', dict(op=ADD, field=rec.size + 8, operand=1)),
            ('2**31', dict(op=LOAD, field=1 << 31)),
            ('2**32-1', dict(op=LOAD, field=(1 << 32) - 1)),
            ('no FIELD flag on a record', dict(op=ADD, field=0, operand=1, flags=0)),
            ('no FIELD flag, field set', dict(op=ADD, field=off('cnt'), operand=1, flags=0)),
            ('FLOAT alone on a record', dict(op=ADD, field=off('f'), operand=1.0,
                                             flags=FLOAT)),
            ('FLOAT on an integer field', dict(op=ADD, field=off('cnt'), operand=1.0,
                                               flags=FIELD | FLOAT)),
            ('add on a bool field', dict(op=ADD, field=off('flag'), operand=1)),
            ('sub on a bool field', dict(op=SUB, field=off('flag'), operand=1)),
            ('unknown flag', dict(op=ADD, field=off('cnt'), operand=1, flags=FIELD | 4)),
            ('unknown op', dict(op=9, field=off('cnt'), operand=1)),
            ('index past the end', dict(op=ADD, field=off('cnt'), operand=1, index=R6_N)),
            ('index 2**63', dict(op=LOAD, field=off('cnt'), index=1 << 63)),
        ]
        erange = [
            ('xchg u8 field 300', dict(op=XCHG, field=off('w'), operand=300)),
            ('xchg u8 field -1', dict(op=XCHG, field=off('w'), operand=-1)),
            ('cas i16 field 40000', dict(op=CAS, field=nb_k, operand=40000, expected=-3)),
            ('xchg bool field 2', dict(op=XCHG, field=off('flag'), operand=2)),
            ('xchg u32 field 2**32', dict(op=XCHG, field=nb_q, operand=1 << 32)),
            ('xchg f32 field 1e39', dict(op=XCHG, field=off('s'), operand=1e39,
                                         flags=FIELD | FLOAT)),
        ]
        problems = []
        for what, req in [(w, r) for w, r in bad] + [(w, r) for w, r in erange]:
            want = ERANGE if (what, req) in erange else EINVAL
            req.setdefault('index', 6)
            e = util.errno_of(atomic, fd, **req)
            if e != want:
                problems.append(f'{what} ({req}): {util.ename(e)}, want {util.ename(want)}')
            if util.read_bytes(raw) != raw0:
                problems.append(f'{what} ({req}): the value changed to '
                                f'{read_objects(path)[6]}')
                pwrite_all(raw, raw0)
            assert_alive(shmfs)
        assert util.read_bytes(path) == text0 and util.read_bytes(raw) == raw0
        assert not problems, '\n'.join(problems)
    # a change needs a descriptor opened for writing; a load does not
    with util.opened(raw, os.O_RDONLY) as fd:
        assert atomic(fd, LOAD, field=off('cnt'), index=4)[0] == 4
        assert util.errno_of(atomic, fd, ADD, field=off('cnt'), index=4,
                             operand=1) == errno.EBADF
    # SHMFS_ATOMIC_FIELD on objects that are not records
    for i, (spec, text) in enumerate((('i64', '5'), ('i64[4]', '1 2 3 4'),
                                      ('char[8]', 'abc'), ('f64', '1.5'))):
        p = util.new_object(shmfs, f'plain{i}', spec, text + '\n')
        with util.opened(p) as fd:
            for field in (0, 1, 8):
                e = util.errno_of(atomic, fd, LOAD, field=field)
                assert e == EINVAL, (spec, field, util.ename(e))
                e = util.errno_of(atomic, fd, ADD, field=field, operand=1)
                assert e == EINVAL, (spec, field, util.ename(e))
        assert util.read_text(p) == text + '\n'
    assert_alive(shmfs)


@util.both_modes
def test_one_big_record_in_pieces(shmfs):
    """One record whose text is larger than a write: cat's 128 KiB pieces,
    the first cut inside the object, commit when the object closes."""
    create(shmfs, 'big', '{x:i32, v:f64[20000]}')
    value = {'x': 7, 'v': [i / 3 for i in range(20000)]}
    text = json.dumps(value).encode()
    assert len(text) > 2 * 131072
    fd = os.open(shmfs.p('big'), os.O_WRONLY)
    try:
        for off in range(0, len(text), 131072):
            assert os.write(fd, text[off:off + 131072]) == len(text[off:off + 131072])
    finally:
        os.close(fd)
    assert json.loads(read_lines(shmfs.p('big'))[0]) == value
