"""The daemon's ioctls (include/shmfs/ioctl.h): struct shmfs_atomic and
the atomic operations on one element, and the notify that wakes pollers.
test_abi.py compares _ATOMIC and the ioctl numbers with the header."""

import errno
import fcntl
import operator
import struct
from typing import NamedTuple

from ._element_types import _reject_text, _to_number

_ATOMIC = struct.Struct('=IIQ8s8s8sII')      # struct shmfs_atomic, 48 bytes
_LOAD, _ADD, _SUB, _XCHG, _CAS = range(5)
_ATOMIC_FLOAT = 0x1
_ATOMIC_FIELD = 0x2


def _ioc(direction, kind, nr, size):
    return (direction << 30) | (size << 16) | (ord(kind) << 8) | nr


SHMFS_IOC_ATOMIC = _ioc(3, 'S', 1, _ATOMIC.size)     # _IOWR('S', 1, ...)
SHMFS_IOC_NOTIFY = _ioc(0, 'S', 2, 0)                # _IO('S', 2)


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
