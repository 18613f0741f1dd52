"""Atomic operations by ioctl(fd, SHMFS_IOC_ATOMIC) (include/shmfs/ioctl.h) on
either view: load, add, sub, xchg and cas on every element type, wrapping at
the element's width; each bad request's errno with the value unchanged; and
exact totals when atomics race with other writers -- flock-based
read-modify-write in both modes, CPU atomics on a mapping in passthrough
mode."""

import errno
import fcntl
import os
import struct
import subprocess
import threading
import time

import pytest

import util

# struct shmfs_atomic: op, flags, index, operand, expected, result, swapped,
# reserved -- 48 bytes.
ATOMIC_FMT = '=IIQ8s8s8sII'
ATOMIC_SIZE = struct.calcsize(ATOMIC_FMT)
assert ATOMIC_SIZE == 48


def _ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (ord('S') << 8) | nr


SHMFS_IOC_ATOMIC = _ioc(3, 1, ATOMIC_SIZE)       # _IOWR('S', 1, ...)

LOAD, ADD, SUB, XCHG, CAS = range(5)
FLOAT = 0x1

SIGNED = {'i8': 8, 'i16': 16, 'i32': 32, 'i64': 64}
UNSIGNED = {'u8': 8, 'u16': 16, 'u32': 32, 'u64': 64}


def _pack_value(v, flt):
    if flt:
        return struct.pack('=d', v)
    return struct.pack('=q', v) if v < 0 else struct.pack('=Q', v)


def atomic(fd, op, operand=0, index=0, expected=0, flt=False, flags=None,
           kind='i'):
    """One SHMFS_IOC_ATOMIC; returns (result, swapped).  kind says how to
    read the result: 'i' signed, 'u' unsigned (and bool), 'f' double."""
    buf = bytearray(struct.pack(
        ATOMIC_FMT, op, (FLOAT if flt else 0) if flags is None else flags,
        index, _pack_value(operand, flt), _pack_value(expected, flt),
        b'\0' * 8, 0, 0))
    fcntl.ioctl(fd, SHMFS_IOC_ATOMIC, buf, True)
    fields = struct.unpack(ATOMIC_FMT, bytes(buf))
    result = struct.unpack({'i': '=q', 'u': '=Q', 'f': '=d'}[kind],
                           fields[5])[0]
    return result, fields[6]


def kind_of(spec):
    if spec.startswith('f'):
        return 'f'
    return 'i' if spec.startswith('i') else 'u'


def cli(*args, timeout=30):
    return subprocess.run([util.SHMFS_BIN] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def view_path(shmfs, name, view):
    return shmfs.p(name) if view == 'text' else shmfs.r(name)


views = pytest.mark.parametrize('view', ['text', 'raw'])


# -- integers at their wrap boundaries --------------------------------------

def _boundaries(spec):
    if spec in SIGNED:
        bits = SIGNED[spec]
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << UNSIGNED[spec]) - 1


@util.both_modes
@views
@pytest.mark.parametrize('spec', list(SIGNED) + list(UNSIGNED))
def test_integer_wraps(shmfs, view, spec):
    lo, hi = _boundaries(spec)
    kind = kind_of(spec)
    path = util.new_object(shmfs, 'x', spec, f'{hi}\n')
    with util.opened(view_path(shmfs, 'x', view)) as fd:
        # add to max wraps to min
        assert atomic(fd, ADD, 1, kind=kind) == (hi, 0)
        assert util.read_text(path) == f'{lo}\n'
        # sub from min wraps to max
        assert atomic(fd, SUB, 1, kind=kind) == (lo, 0)
        assert util.read_text(path) == f'{hi}\n'
        # load changes nothing
        assert atomic(fd, LOAD, kind=kind)[0] == hi
        assert util.read_text(path) == f'{hi}\n'
        # xchg to min, then a plain add and sub
        assert atomic(fd, XCHG, lo, kind=kind)[0] == hi
        assert atomic(fd, ADD, 5, kind=kind)[0] == lo
        assert atomic(fd, SUB, 2, kind=kind)[0] == lo + 5
        assert util.read_text(path) == f'{lo + 3}\n'
        # adding -1 (all ones) is subtracting 1, at every width
        util.write_text(path, '0\n')
        minus_one = -1 if kind == 'i' else (1 << 64) - 1
        assert atomic(fd, ADD, minus_one, kind=kind)[0] == 0
        assert util.read_text(path) == f'{-1 if kind == "i" else hi}\n'
        # the binary view agrees
    raw = util.read_bytes(shmfs.r('x'))
    size = {8: 'b', 16: 'h', 32: 'i', 64: 'q'}[SIGNED.get(spec) or
                                              UNSIGNED[spec]]
    fmt = '=' + (size if kind == 'i' else size.upper())
    assert struct.unpack(fmt, raw)[0] == (-1 if kind == 'i' else hi)


@util.both_modes
@pytest.mark.parametrize('spec', list(SIGNED) + list(UNSIGNED))
def test_integer_wraps_cli(shmfs, spec):
    lo, hi = _boundaries(spec)
    path = util.new_object(shmfs, 'x', spec, f'{hi}\n')
    r = cli('add', path, 1)
    assert (r.returncode, r.stdout, r.stderr) == (0, f'{lo}\n', '')
    r = cli('sub', path, 1)
    assert (r.returncode, r.stdout, r.stderr) == (0, f'{hi}\n', '')
    assert util.read_text(path) == f'{hi}\n'


# -- floats -------------------------------------------------------------------

@util.both_modes
@views
@pytest.mark.parametrize('spec', ['f64', 'f32'])
def test_float_ops(shmfs, view, spec):
    path = util.new_object(shmfs, 'x', spec, '1.25\n')
    with util.opened(view_path(shmfs, 'x', view)) as fd:
        assert atomic(fd, ADD, 0.5, flt=True, kind='f') == (1.25, 0)
        assert util.read_text(path) == '1.75\n'
        assert atomic(fd, SUB, 0.25, flt=True, kind='f') == (1.75, 0)
        assert util.read_text(path) == '1.5\n'
        assert atomic(fd, LOAD, kind='f')[0] == 1.5
        assert atomic(fd, XCHG, -2.5, flt=True, kind='f')[0] == 1.5
        assert util.read_text(path) == '-2.5\n'
        assert atomic(fd, CAS, 3.0, expected=-2.5, flt=True, kind='f') \
            == (-2.5, 1)
        assert util.read_text(path) == '3\n'
        assert atomic(fd, CAS, 9.0, expected=-2.5, flt=True, kind='f') \
            == (3.0, 0)
        assert util.read_text(path) == '3\n'
    fmt = '=d' if spec == 'f64' else '=f'
    assert struct.unpack(fmt, util.read_bytes(shmfs.r('x')))[0] == 3.0


@util.both_modes
@pytest.mark.parametrize('spec', ['f64', 'f32'])
def test_float_cli(shmfs, spec):
    path = util.new_object(shmfs, 'x', spec, '1.25\n')
    r = cli('add', path, '0.5')
    assert (r.returncode, r.stdout) == (0, '1.75\n'), r.stderr
    r = cli('sub', path, '2')
    assert (r.returncode, r.stdout) == (0, '-0.25\n'), r.stderr
    assert util.read_text(path) == '-0.25\n'


# -- cas, xchg, load, arrays ----------------------------------------------------

@util.both_modes
@views
def test_cas_xchg_load(shmfs, view):
    path = util.new_object(shmfs, 'x', 'i32', '5\n')
    with util.opened(view_path(shmfs, 'x', view)) as fd:
        assert atomic(fd, CAS, 9, expected=5) == (5, 1)
        assert util.read_text(path) == '9\n'
        assert atomic(fd, CAS, 1, expected=5) == (9, 0)
        assert util.read_text(path) == '9\n'
        assert atomic(fd, XCHG, -7) == (9, 0)
        assert util.read_text(path) == '-7\n'
        # a negative expected matches a narrow negative element
        assert atomic(fd, CAS, 4, expected=-7) == (-7, 1)
        assert atomic(fd, LOAD) == (4, 0)
    assert util.read_text(path) == '4\n'


@util.both_modes
@views
def test_bool(shmfs, view):
    path = util.new_object(shmfs, 'b', 'bool', 'false\n')
    with util.opened(view_path(shmfs, 'b', view)) as fd:
        assert atomic(fd, XCHG, 1, kind='u') == (0, 0)
        assert util.read_text(path) == '1\n'
        assert atomic(fd, CAS, 0, expected=1, kind='u') == (1, 1)
        assert atomic(fd, LOAD, kind='u') == (0, 0)
    assert util.read_text(path) == '0\n'


@util.both_modes
@views
def test_array_index(shmfs, view):
    path = util.new_object(shmfs, 'a', 'i32[5]', '0 1 2 3 4\n')
    with util.opened(view_path(shmfs, 'a', view)) as fd:
        assert atomic(fd, ADD, 10, index=3) == (3, 0)
        assert atomic(fd, SUB, 1, index=0) == (0, 0)
        assert atomic(fd, XCHG, 40, index=4) == (4, 0)
        assert atomic(fd, CAS, 20, index=2, expected=2) == (2, 1)
        assert atomic(fd, CAS, 99, index=1, expected=2) == (1, 0)
        assert atomic(fd, LOAD, index=3) == (13, 0)
    assert util.read_text(path) == '-1 1 20 13 40\n'
    assert struct.unpack('=5i', util.read_bytes(shmfs.r('a'))) == \
        (-1, 1, 20, 13, 40)


@util.both_modes
def test_array_index_2d_and_cli(shmfs):
    path = util.new_object(shmfs, 'm', 'f64[2][3]', '0 1 2\n3 4 5\n')
    # C order: index 4 is row 1, column 1
    r = cli('add', path, '--index', 4, '0.5')
    assert (r.returncode, r.stdout) == (0, '4.5\n'), r.stderr
    r = cli('xchg', path, '--index', 5, '-1')
    assert (r.returncode, r.stdout) == (0, '5\n'), r.stderr
    r = cli('cas', path, '--index', 0, '0', '7')
    assert (r.returncode, r.stdout) == (0, '0\n'), r.stderr
    r = cli('cas', path, '--index', 0, '0', '8')
    assert (r.returncode, r.stdout) == (1, '7\n'), r.stderr
    r = cli('sub', path, '--index', 1, '3')
    assert (r.returncode, r.stdout) == (0, '-2\n'), r.stderr
    assert util.read_text(path).split() == \
        ['7', '-2', '2', '3', '4.5', '-1']


# -- bad requests: an errno and nothing changes ------------------------------

BAD = [
    # id, type, value text, request, errno
    ('float-operand-on-int', 'i32', '5', dict(op=ADD, operand=0.5, flt=True),
     'EINVAL'),
    ('float-xchg-on-u8', 'u8', '5', dict(op=XCHG, operand=1.0, flt=True),
     'EINVAL'),
    ('bool-add', 'bool', 'true', dict(op=ADD, operand=1), 'EINVAL'),
    ('bool-sub', 'bool', 'true', dict(op=SUB, operand=1), 'EINVAL'),
    ('bool-xchg-2', 'bool', 'true', dict(op=XCHG, operand=2), 'ERANGE'),
    ('char-load', 'char[8]', 'hello', dict(op=LOAD), 'EINVAL'),
    ('char-add', 'char[8]', 'hello', dict(op=ADD, operand=1), 'EINVAL'),
    ('char-xchg', 'char[8]', 'hello', dict(op=XCHG, operand=65), 'EINVAL'),
    ('index-past-end', 'i32[5]', '0 1 2 3 4', dict(op=ADD, operand=1,
                                                   index=5), 'EINVAL'),
    ('index-huge', 'i32[5]', '0 1 2 3 4', dict(op=LOAD, index=1 << 63),
     'EINVAL'),
    ('index-on-scalar', 'i64', '5', dict(op=XCHG, operand=1, index=1),
     'EINVAL'),
    ('xchg-u8-300', 'u8', '5', dict(op=XCHG, operand=300), 'ERANGE'),
    ('cas-u8-300', 'u8', '5', dict(op=CAS, operand=300, expected=5),
     'ERANGE'),
    ('xchg-u8-minus-1', 'u8', '5', dict(op=XCHG, operand=-1), 'ERANGE'),
    ('xchg-i8-minus-129', 'i8', '5', dict(op=XCHG, operand=-129), 'ERANGE'),
    ('xchg-i16-32768', 'i16', '5', dict(op=XCHG, operand=32768), 'ERANGE'),
    ('xchg-u32-2**32', 'u32', '5', dict(op=XCHG, operand=1 << 32), 'ERANGE'),
    ('op-5', 'i64', '5', dict(op=5, operand=1), 'EINVAL'),
    ('op-99', 'i64', '5', dict(op=99, operand=1), 'EINVAL'),
    ('op-max', 'i64', '5', dict(op=0xffffffff, operand=1), 'EINVAL'),
    ('unknown-flag', 'i64', '5', dict(op=ADD, operand=1, flags=2), 'EINVAL'),
    ('float-and-unknown-flag', 'f64', '5', dict(op=ADD, operand=1.0, flt=True,
                                               flags=1 | 4), 'EINVAL'),
]


@util.both_modes
@views
@pytest.mark.parametrize('spec,text,req,err', [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_request(shmfs, view, spec, text, req, err):
    path = util.new_object(shmfs, 'x', spec, text + '\n')
    before_text = util.read_text(path)
    before_raw = util.read_bytes(shmfs.r('x'))
    before_version = util.xattr(path, 'user.shmfs.version')
    with util.opened(view_path(shmfs, 'x', view)) as fd:
        e = util.errno_of(atomic, fd, **req)
    assert util.ename(e) == err
    assert util.read_text(path) == before_text
    assert util.read_bytes(shmfs.r('x')) == before_raw
    assert util.xattr(path, 'user.shmfs.version') == before_version
    assert shmfs.alive()


@util.both_modes
@views
def test_untyped_is_enodata(shmfs, view):
    path = shmfs.p('u')
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
    for op in (LOAD, ADD, XCHG, CAS):
        with util.opened(view_path(shmfs, 'u', view)) as fd:
            assert util.ename(util.errno_of(atomic, fd, op, 1)) == 'ENODATA'
    # still untyped and empty
    assert util.errno_of(util.xattr, path, util.TYPE) != 0
    assert util.read_bytes(path) == b''


# -- races: exact totals -----------------------------------------------------

FLOCK_INCREMENTER = r'''
import fcntl, os, struct, sys
raw, text, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(raw, os.O_RDWR)
lk = os.open(text, os.O_RDONLY)      # lock the other view than the one written
for _ in range(n):
    fcntl.flock(lk, fcntl.LOCK_EX)
    v = struct.unpack('=q', os.pread(fd, 8, 0))[0]
    os.pwrite(fd, struct.pack('=q', v + 1), 0)
    fcntl.flock(lk, fcntl.LOCK_UN)
'''

IOCTL_INCREMENTER = r'''
import fcntl, os, struct, sys
path, n = sys.argv[1], int(sys.argv[2])
req = (3 << 30) | (48 << 16) | (ord('S') << 8) | 1
fd = os.open(path, os.O_RDWR)
for _ in range(n):
    buf = bytearray(struct.pack('=IIQqqqII', 1, 0, 0, 1, 0, 0, 0, 0))
    fcntl.ioctl(fd, req, buf, True)
'''


def _cli_loop(path, n):
    return subprocess.Popen(
        ['sh', '-c', 'i=0; while [ $i -lt "$2" ]; do '
         '"$0" add "$1" 1 >/dev/null || exit 1; i=$((i+1)); done',
         util.SHMFS_BIN, path, str(n)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


@util.both_modes
def test_atomics_with_flock_increments(shmfs):
    """ioctl adds (in processes of their own and from the CLI) interleaved
    with flock-protected pread/pwrite increments: no update is lost."""
    path = util.new_object(shmfs, 'x', 'i64', '0\n')
    n_lock, n_ioctl, n_cli = 300, 400, 40
    procs = [subprocess.Popen([util.PYTHON, '-c', FLOCK_INCREMENTER,
                               shmfs.r('x'), path, str(n_lock)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    procs += [subprocess.Popen([util.PYTHON, '-c', IOCTL_INCREMENTER, p,
                                str(n_ioctl)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
              for p in (path, shmfs.r('x'))]
    procs.append(_cli_loop(path, n_cli))
    util.finish_all(procs, 90)
    assert util.read_text(path) == f'{2 * n_lock + 2 * n_ioctl + n_cli}\n'


MAPPED_ADDER_C = r'''
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main (int argc, char **argv)
{
  long n = atol (argv[2]);
  int fd = open (argv[1], O_RDWR);
  if (fd < 0) { perror ("open"); return 1; }
  int64_t *p = mmap (NULL, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) { perror ("mmap"); return 1; }
  close (fd);
  for (long i = 0; i < n; i++)
    __atomic_fetch_add (p, 1, __ATOMIC_SEQ_CST);
  return munmap (p, 8);
}
'''


@pytest.mark.parametrize('shmfs', [('-o', 'mode=passthrough')],
                         ids=['passthrough'], indirect=True)
def test_cpu_atomics_with_ioctl_adds(shmfs, tmp_path):
    """Passthrough: the daemon's atomics and __atomic_fetch_add on a mapping
    of .raw/x touch the same memory; the total is exact."""
    assert shmfs.mode() == 'passthrough'
    src = tmp_path / 'adder.c'
    exe = tmp_path / 'adder'
    src.write_text(MAPPED_ADDER_C)
    r = subprocess.run(['gcc', '-O2', '-o', str(exe), str(src)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    path = util.new_object(shmfs, 'x', 'i64', '0\n')
    n_mapped, n_ioctl, n_cli = 2_000_000, 1500, 40
    procs = [subprocess.Popen([str(exe), shmfs.r('x'), str(n_mapped)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    procs += [subprocess.Popen([util.PYTHON, '-c', IOCTL_INCREMENTER, p,
                                str(n_ioctl)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
              for p in (path, shmfs.r('x'))]
    procs.append(_cli_loop(path, n_cli))

    # the test process adds through its own fd too, meanwhile
    errors = []

    def own_adds():
        try:
            with util.opened(shmfs.r('x')) as fd:
                for _ in range(n_ioctl):
                    atomic(fd, ADD, 1)
        except Exception as e:
            errors.append(e)
    t = threading.Thread(target=own_adds)
    t.start()
    util.finish_all(procs, 90)
    t.join()
    assert not errors, errors
    want = 2 * n_mapped + 3 * n_ioctl + n_cli
    assert util.read_text(path) == f'{want}\n'
    assert struct.unpack('=q', util.read_bytes(shmfs.r('x')))[0] == want


@util.both_modes
def test_many_waiting_atomics_hold_no_worker(shmfs):
    """More atomic operations wait for a held lock than the daemon has
    worker threads (64): the daemon still answers everything else, the
    holder can let go, and every one of them then completes."""
    path = util.new_object(shmfs, 'x', 'i64', '0\n')
    other = util.new_object(shmfs, 'y', 'i64', '5\n')
    n = 100
    with util.opened(path, os.O_RDONLY) as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        adders = [subprocess.Popen([util.SHMFS_BIN, 'add', path, '1'],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
                  for _ in range(n)]
        try:
            time.sleep(1)
            assert all(p.poll() is None for p in adders), 'an add ran inside the lock'
            # other requests, this object's included, are still served
            assert cli('get', other).stdout == '5\n'
            assert util.read_text(path) == '0\n'
            util.write_text(other, '6\n')
            assert cli('add', other, 1).stdout == '7\n'
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)
        for p in adders:
            assert p.wait(timeout=60) == 0, p.stderr.read()
    assert util.read_text(path) == f'{n}\n'


@util.both_modes
def test_waiting_atomic_interrupted(shmfs):
    """A waiting atomic add killed by a signal goes away and adds nothing;
    the lock and the daemon are unharmed."""
    path = util.new_object(shmfs, 'x', 'i64', '0\n')
    with util.opened(path, os.O_RDONLY) as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        p = subprocess.Popen([util.SHMFS_BIN, 'add', path, '1'],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        time.sleep(0.5)
        assert p.poll() is None
        p.kill()
        assert p.wait(timeout=10) == -9
        fcntl.flock(lk, fcntl.LOCK_UN)
    assert cli('add', path, 2).stdout == '2\n'
    assert util.read_text(path) == '2\n'


@util.both_modes
@views
def test_change_needs_a_writable_open(shmfs, view):
    """Every operation but a load changes the value: on a read-only open it
    is EBADF, as write(2) is, and the value stays."""
    path = util.new_object(shmfs, 'x', 'i64', '5\n')
    with util.opened(view_path(shmfs, 'x', view), os.O_RDONLY) as fd:
        assert atomic(fd, LOAD) == (5, 0)
        for op, kw in ((ADD, {}), (SUB, {}), (XCHG, {}), (CAS, {'expected': 5})):
            with pytest.raises(OSError) as e:
                atomic(fd, op, 1, **kw)
            assert e.value.errno == errno.EBADF, op
    assert util.read_text(path) == '5\n'
    assert shmfs.alive()


@util.both_modes
def test_ioctl_on_a_directory_is_enotty(shmfs):
    """A directory has no ioctls: ENOTTY, and the daemon goes on."""
    os.mkdir(shmfs.p('d'))
    for d in (shmfs.path, shmfs.p('d'), shmfs.raw):
        with util.opened(d, os.O_RDONLY) as fd:
            with pytest.raises(OSError) as e:
                atomic(fd, LOAD)
            assert e.value.errno == errno.ENOTTY, d
            with pytest.raises(OSError) as e:
                fcntl.ioctl(fd, (ord('S') << 8) | 2)           # SHMFS_IOC_NOTIFY
            assert e.value.errno == errno.ENOTTY, d
    assert shmfs.alive()
    assert os.listdir(shmfs.path) == ['d']


@util.both_modes
@views
def test_unknown_ioctl_is_enotty(shmfs, view):
    """An ioctl shmfs does not define is ENOTTY and changes nothing."""
    path = util.new_object(shmfs, 'x', 'i64', '5\n')
    with util.opened(view_path(shmfs, 'x', view)) as fd:
        for req in ((ord('S') << 8) | 9, (3 << 30) | (48 << 16) | (ord('T') << 8) | 1):
            with pytest.raises(OSError) as e:
                fcntl.ioctl(fd, req, bytearray(48))
            assert e.value.errno == errno.ENOTTY, hex(req)
    assert util.read_text(path) == '5\n'
    assert shmfs.alive()
