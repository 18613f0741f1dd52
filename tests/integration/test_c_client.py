"""libshmfs, the C client (include/shmfs/shmfs.h), and examples/c/counter.c.

Exact totals under contention: in passthrough mode, C processes doing
__atomic_fetch_add on their mappings while this process (and the CLI) add
through the atomic-operation ioctl; in either mode, a C process doing a
plain read-modify-write of its mapping under shmfs_lock() while a shell
increments through the text view under `flock`.  Then the library itself,
called through ctypes: shmfs_map's type, shape and bytes, shmfs_create,
locks against other processes, the atomic operations, a record's fields
and the atomic operations on them, and bad input -- a path outside any
shmfs mount, an untyped object, a directory, an index past the end, a
field that is no number; and, built with LeakSanitizer, no leak.  For
remote mounts, which cannot map: shmfs_open's unmapped handle, read and
written with shmfs_read and shmfs_write (bounds checked), with the same
type, lock, atomic and field calls, a locked counter of C processes
through them counting exactly, and the message of shmfs_map's -ENODEV.

The programs: $SHMFS_COUNTER (build/examples/counter) and
$SHMFS_CLIENT_LIB (build/clients/c/libshmfs.so) when meson sets them,
otherwise both are compiled here from the sources with gcc and glib's
pkg-config."""

import ctypes
import errno
import fcntl
import json
import os
import shutil
import struct
import subprocess
import time

import pytest

import util

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, '..', '..'))
SHMFS_CLI = util.SHMFS_BIN

PASSTHROUGH = pytest.mark.parametrize(
    'shmfs', [('-o', 'mode=passthrough')], ids=['passthrough'], indirect=True)

# struct shmfs_atomic (include/shmfs/ioctl.h): op, flags, index, operand,
# expected, result, swapped, field -- 48 bytes, no padding.
ATOMIC = struct.Struct('=IIQqqqII')
SHMFS_ATOMIC_ADD = 1
_IOC_WRITE, _IOC_READ = 1, 2
SHMFS_IOC_ATOMIC = ((_IOC_READ | _IOC_WRITE) << 30) | (ATOMIC.size << 16) \
    | (ord('S') << 8) | 1


# -- building -------------------------------------------------------------

def _gcc(out, *args, shared=False):
    if shutil.which('gcc') is None:
        pytest.skip('gcc is needed to build the client (or set SHMFS_COUNTER '
                    'and SHMFS_CLIENT_LIB)')
    glib = subprocess.run(['pkg-config', '--cflags', '--libs', 'glib-2.0'],
                          stdout=subprocess.PIPE, text=True, check=True)
    cmd = (['gcc', '-std=gnu11', '-D_GNU_SOURCE', '-O2', '-Wall', '-Werror']
           + (['-shared', '-fPIC'] if shared else [])
           + ['-I' + os.path.join(SRC, d) for d in ('include/shmfs', 'include', 'core', 'fs')]
           + ['-o', out] + [os.path.join(SRC, a) for a in args]
           + glib.stdout.split())
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    assert r.returncode == 0, f'{" ".join(cmd)}\n{r.stdout}'
    return out


LIB_SOURCES = ('clients/c/shmfs-client.c', 'core/shm-type.c')


@pytest.fixture(scope='session')
def counter(tmp_path_factory):
    """The counter example's path."""
    built = os.environ.get('SHMFS_COUNTER')
    if built:
        return built
    out = str(tmp_path_factory.mktemp('client') / 'counter')
    return _gcc(out, 'examples/c/counter.c', *LIB_SOURCES)


class Lib:
    """libshmfs through ctypes; each call returns what the C call does."""

    def __init__(self, path):
        c = self.c = ctypes.CDLL(path, use_errno=True)
        P, I, Z = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
        I64, D = ctypes.c_int64, ctypes.c_double
        protos = {
            'shmfs_map': (I, [ctypes.c_char_p, I, ctypes.POINTER(P)]),
            'shmfs_open': (I, [ctypes.c_char_p, I, ctypes.POINTER(P)]),
            'shmfs_read': (I, [P, Z, ctypes.c_char_p, Z]),
            'shmfs_write': (I, [P, Z, ctypes.c_char_p, Z]),
            'shmfs_unmap': (None, [P]),
            'shmfs_map_data': (P, [P]),
            'shmfs_map_nbytes': (Z, [P]),
            'shmfs_map_count': (Z, [P]),
            'shmfs_map_elem': (I, [P]),
            'shmfs_map_elem_size': (Z, [P]),
            'shmfs_map_ndim': (ctypes.c_uint, [P]),
            'shmfs_map_shape': (ctypes.POINTER(Z), [P]),
            'shmfs_map_type': (ctypes.c_char_p, [P]),
            'shmfs_map_fd': (I, [P]),
            'shmfs_create': (I, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]),
            'shmfs_lock': (I, [P, ctypes.c_bool]),
            'shmfs_trylock': (I, [P, ctypes.c_bool]),
            'shmfs_unlock': (I, [P]),
            'shmfs_notify': (I, [P]),
            'shmfs_strerror': (ctypes.c_char_p, [I]),
            'shmfs_atomic_load': (I, [P, Z, ctypes.POINTER(I64)]),
            'shmfs_atomic_add': (I, [P, Z, I64, ctypes.POINTER(I64)]),
            'shmfs_atomic_sub': (I, [P, Z, I64, ctypes.POINTER(I64)]),
            'shmfs_atomic_xchg': (I, [P, Z, I64, ctypes.POINTER(I64)]),
            'shmfs_atomic_cas': (I, [P, Z, I64, I64, ctypes.POINTER(I64)]),
            'shmfs_atomic_load_f64': (I, [P, Z, ctypes.POINTER(D)]),
            'shmfs_atomic_add_f64': (I, [P, Z, D, ctypes.POINTER(D)]),
            'shmfs_atomic_sub_f64': (I, [P, Z, D, ctypes.POINTER(D)]),
            'shmfs_atomic_xchg_f64': (I, [P, Z, D, ctypes.POINTER(D)]),
            'shmfs_atomic_cas_f64': (I, [P, Z, D, D, ctypes.POINTER(D)]),
            'shmfs_map_n_fields': (ctypes.c_uint, [P]),
            'shmfs_map_field': (I, [P, ctypes.c_uint, ctypes.POINTER(ctypes.c_char_p),
                                    ctypes.POINTER(Z), ctypes.POINTER(ctypes.c_char_p)]),
            'shmfs_map_field_offset': (I, [P, ctypes.c_char_p, ctypes.POINTER(Z),
                                           ctypes.POINTER(I), ctypes.POINTER(Z)]),
        }
        for op, args in (('load', []), ('add', [I64]), ('sub', [I64]), ('xchg', [I64]),
                         ('cas', [I64, I64])):
            protos[f'shmfs_atomic_field_{op}'] = (I, [P, Z, Z] + args + [ctypes.POINTER(I64)])
            protos[f'shmfs_atomic_field_{op}_f64'] = (
                I, [P, Z, Z] + [D] * len(args) + [ctypes.POINTER(D)])
        for name, (res, args) in protos.items():
            fn = getattr(c, name)
            fn.restype, fn.argtypes = res, args

    def map(self, path, flags=0):
        """(0, map) or (-errno, None)."""
        m = ctypes.c_void_p()
        err = self.c.shmfs_map(os.fsencode(path), flags, ctypes.byref(m))
        return err, (m if err == 0 else None)

    def open(self, path, flags=0):
        """(0, map) or (-errno, None) of shmfs_open: not mapped."""
        m = ctypes.c_void_p()
        err = self.c.shmfs_open(os.fsencode(path), flags, ctypes.byref(m))
        return err, (m if err == 0 else None)

    def read(self, m, off, n):
        """(return value, the n bytes read) of shmfs_read."""
        buf = ctypes.create_string_buffer(b'\xee' * n, n)
        return self.c.shmfs_read(m, off, buf, n), buf.raw

    def atomic(self, name, m, index, *args, f64=False):
        """(return value, old value) of shmfs_atomic_NAME[_f64]."""
        old = (ctypes.c_double if f64 else ctypes.c_int64)(-12345)
        fn = getattr(self.c, f'shmfs_atomic_{name}' + ('_f64' if f64 else ''))
        return fn(m, index, *args, ctypes.byref(old)), old.value

    def field_atomic(self, name, m, index, field, *args, f64=False):
        """(return value, old value) of shmfs_atomic_field_NAME[_f64]."""
        old = (ctypes.c_double if f64 else ctypes.c_int64)(-12345)
        fn = getattr(self.c, f'shmfs_atomic_field_{name}' + ('_f64' if f64 else ''))
        return fn(m, index, field, *args, ctypes.byref(old)), old.value

    def field(self, m, i):
        """(return value, name, offset, type) of shmfs_map_field."""
        name, type_, off = ctypes.c_char_p(), ctypes.c_char_p(), ctypes.c_size_t(99)
        err = self.c.shmfs_map_field(m, i, ctypes.byref(name), ctypes.byref(off),
                                     ctypes.byref(type_))
        return (err, name.value and name.value.decode(), off.value,
                type_.value and type_.value.decode())

    def field_offset(self, m, path):
        """(return value, offset, elem, size) of shmfs_map_field_offset."""
        off, elem, size = ctypes.c_size_t(99), ctypes.c_int(-1), ctypes.c_size_t(99)
        err = self.c.shmfs_map_field_offset(m, os.fsencode(path), ctypes.byref(off),
                                            ctypes.byref(elem), ctypes.byref(size))
        return err, off.value, elem.value, size.value

    def strerror(self, err):
        return self.c.shmfs_strerror(err).decode()


@pytest.fixture(scope='session')
def lib(tmp_path_factory):
    # A sanitized build's library cannot be loaded into an unsanitized
    # Python: build a plain one from the same sources then.
    built = None if 'ASAN_OPTIONS' in os.environ else os.environ.get('SHMFS_CLIENT_LIB')
    if not built:
        out = str(tmp_path_factory.mktemp('client') / 'libshmfs.so')
        built = _gcc(out, *LIB_SOURCES, shared=True)
    return Lib(built)


def run_counter(counter, *args):
    return subprocess.Popen([counter] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc, timeout=120):
    rc, out, err = util.finish(proc, timeout)
    assert rc == 0, (proc.args, out, err)
    return out


def ioctl_add(fd, delta, index=0):
    buf = bytearray(ATOMIC.pack(SHMFS_ATOMIC_ADD, 0, index, delta, 0, 0, 0, 0))
    fcntl.ioctl(fd, SHMFS_IOC_ATOMIC, buf, True)
    return ATOMIC.unpack(buf)[5]


def value(shmfs, name):
    return int(util.cat(shmfs.p(name)))


# -- exact totals under contention ----------------------------------------

CLI_ADDS = 'for i in $(seq "$2"); do "$3" add "$1" 1 >/dev/null || exit 1; done'


@PASSTHROUGH
def test_mmap_atomics_compose_with_the_ioctl(shmfs, counter):
    """Two C counters (__atomic_fetch_add on their own mappings; whichever
    comes first creates the object), one doing shmfs_atomic_add, a shell
    running `shmfs add`, and this process doing the ioctl on the text view
    for as long as they run: not one increment is lost."""
    assert shmfs.mode() == 'passthrough'
    path = shmfs.p('count')
    n_cpu, n_ioctl, n_cli = 2_000_000, 2000, 50
    procs = [run_counter(counter, path, n_cpu) for _ in range(2)]
    procs.append(run_counter(counter, '--ioctl', path, n_ioctl))
    assert util.poll_until(lambda: os.path.exists(path), 10)
    shell = subprocess.Popen(['sh', '-c', CLI_ADDS, 'sh', path, str(n_cli), SHMFS_CLI],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mine = 0
    deadline = time.monotonic() + 120
    # Add while any of them runs (and at least 500 times), so that the
    # kinds of atomics really interleave.
    with util.opened(path) as fd:
        while mine < 500 or any(p.poll() is None for p in procs + [shell]):
            ioctl_add(fd, 1)
            mine += 1
            assert time.monotonic() < deadline, 'the counters did not finish'
    outs = [finish(p) for p in procs + [shell]]
    total = 2 * n_cpu + n_ioctl + n_cli + mine
    assert value(shmfs, 'count') == total
    assert sum('with mmap atomics' in o for o in outs) == 2
    assert sum(o.startswith('counter: created ' + path) for o in outs) == 1
    with util.mapped(shmfs.r('count')) as m:
        assert struct.unpack('=q', m[:8])[0] == total


SHELL_INCREMENTS = '''
i=0
while [ $i -lt "$2" ]; do
    flock "$1" sh -c 'v=$(cat "$1"); echo $((v + 1)) > "$1"' sh "$1" || exit 1
    i=$((i + 1))
done
'''


@util.both_modes
def test_lock_composes_with_shell_flock(shmfs, counter):
    """A plain (non-atomic) increment of the mapping under shmfs_lock in C,
    against `flock PATH sh -c 'v=$(cat PATH); echo $((v+1)) > PATH'`: the
    daemon's one lock per object makes both exact, and each side sees the
    other's stores at once (mapping vs text view)."""
    path = shmfs.p('count')
    assert util.sh_ok(f'"{SHMFS_CLI}" new "{path}" i64') == ''
    n_c, n_sh = 3000, 200
    shells = [subprocess.Popen(['sh', '-c', SHELL_INCREMENTS, 'sh', path, str(n_sh)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for _ in range(2)]
    # The shells are under way before the counters start.
    assert util.poll_until(lambda: util.cat(path) != '0\n', 10)
    procs = [run_counter(counter, '--lock', path, n_c) for _ in range(2)]
    outs = [finish(p) for p in procs]
    for s in shells:
        out, err = s.communicate(timeout=120)
        assert s.returncode == 0, err
    assert all('under the object\'s lock' in o for o in outs)
    assert value(shmfs, 'count') == 2 * n_c + 2 * n_sh


@util.both_modes
def test_counter_refuses_bad_objects(shmfs, counter, tmp_path):
    shmfs.expect_output(r'^shmfs: rejected')
    outside = tmp_path / 'plain'
    outside.write_text('0\n')
    util.new_object(shmfs, 'f', 'f64')
    os.close(os.open(shmfs.p('untyped'), os.O_CREAT | os.O_WRONLY, 0o644))
    os.mkdir(shmfs.p('dir'))
    for path, message in [
            (str(outside), f'counter: {outside}: not inside a shmfs mount'),
            (shmfs.p('untyped'), 'the object has no type yet'),
            (shmfs.p('dir'), 'Is a directory'),
            (shmfs.p('f'), 'has type f64, not i64'),
            (shmfs.p('nodir/x'), 'No such file or directory')]:
        p = run_counter(counter, path, 1)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 1, (path, out, err)
        assert message in err, (path, err)
    assert util.read_bytes(shmfs.p('f')) == b'0\n'   # untouched
    p = run_counter(counter, shmfs.p('f'), 'many')
    assert p.communicate(timeout=60)[1].endswith('not a count\n')
    assert p.returncode == 2


# -- the library through ctypes -------------------------------------------

@util.both_modes
def test_map_reports_type_and_shares_bytes(shmfs, lib):
    path = util.new_object(shmfs, 'm', 'i32[3,4]')
    err, m = lib.map(path)
    assert err == 0, lib.strerror(err)
    try:
        c = lib.c
        assert c.shmfs_map_type(m) == b'i32[3][4]'
        assert c.shmfs_map_nbytes(m) == 48
        assert c.shmfs_map_count(m) == 12
        assert c.shmfs_map_elem(m) == 4            # SHMFS_ELEM_I32
        assert c.shmfs_map_elem_size(m) == 4
        assert c.shmfs_map_ndim(m) == 2
        shape = c.shmfs_map_shape(m)
        assert (shape[0], shape[1]) == (3, 4)
        data = (ctypes.c_int32 * 12).from_address(c.shmfs_map_data(m))
        assert list(data) == [0] * 12
        # A text write shows in the mapping, a store in the mapping in cat.
        util.write_text(path, ' '.join(str(i) for i in range(12)) + '\n')
        assert list(data) == list(range(12))
        data[11] = -7
        assert util.cat(path).split()[-1] == '-7'
        assert lib.c.shmfs_notify(m) == 0
        fd = c.shmfs_map_fd(m)
        assert os.fstat(fd).st_size == 48
        os.fsync(fd)
    finally:
        lib.c.shmfs_unmap(m)

    # The binary view's path maps the same object; read-only maps read.
    err, m = lib.map(shmfs.r('m'), 1)                # SHMFS_MAP_READONLY
    assert err == 0, lib.strerror(err)
    data = (ctypes.c_int32 * 12).from_address(lib.c.shmfs_map_data(m))
    assert data[11] == -7
    lib.c.shmfs_unmap(m)
    # A scalar: rank 0, one element.
    err, m = lib.map(util.new_object(shmfs, 's', 'char[16]'))
    assert err == 0
    assert (lib.c.shmfs_map_ndim(m), lib.c.shmfs_map_count(m),
            lib.c.shmfs_map_elem_size(m), lib.c.shmfs_map_elem(m)) == (0, 1, 16, 11)
    lib.c.shmfs_unmap(m)
    lib.c.shmfs_unmap(None)


@util.both_modes
def test_map_bad_paths(shmfs, lib, tmp_path):
    outside = tmp_path / 'plain'
    outside.write_bytes(b'\0' * 8)
    err, m = lib.map(outside)
    assert (err, m) == (-errno.ENOTSUP, None)
    assert lib.strerror(err) == 'not inside a shmfs mount'
    assert lib.map(tmp_path)[0] == -errno.EISDIR
    assert lib.map('/')[0] == -errno.EISDIR
    assert lib.map(shmfs.p('absent'))[0] == -errno.ENOENT
    assert lib.map(shmfs.path)[0] == -errno.EISDIR
    assert lib.map(shmfs.raw)[0] == -errno.EISDIR
    os.close(os.open(shmfs.p('untyped'), os.O_CREAT | os.O_WRONLY, 0o644))
    err, m = lib.map(shmfs.p('untyped'))
    assert (err, m) == (-errno.ENODATA, None)
    assert lib.strerror(err) == 'the object has no type yet'
    assert lib.map(shmfs.r('untyped'))[0] == -errno.ENODATA
    util.new_object(shmfs, 'ok', 'u8')
    assert lib.map(shmfs.p('ok'), 0x100)[0] == -errno.EINVAL
    assert lib.strerror(-errno.ENOENT) == os.strerror(errno.ENOENT)


@util.both_modes
def test_create(shmfs, lib, tmp_path):
    os.mkdir(shmfs.p('d'))
    path = shmfs.p('d/v')
    assert lib.c.shmfs_create(os.fsencode(path), b'f64[2]', 0o640) == 0
    assert util.xattr(path, util.TYPE) == 'f64[2]'
    assert util.cat(path) == '0 0\n'
    assert os.stat(path).st_mode & 0o777 == 0o640 & ~_umask()
    assert lib.c.shmfs_create(os.fsencode(path), b'i8', 0o644) == -errno.EEXIST
    assert util.xattr(path, util.TYPE) == 'f64[2]'
    assert lib.c.shmfs_create(os.fsencode(shmfs.p('bad')), b'i9', 0o644) == -errno.EINVAL
    assert lib.c.shmfs_create(os.fsencode(str(tmp_path / 'x')), b'i8', 0o644) \
        == -errno.ENOTSUP
    assert lib.c.shmfs_create(os.fsencode(shmfs.p('nodir/x')), b'i8', 0o644) \
        == -errno.ENOENT
    assert not os.path.exists(tmp_path / 'x')
    # Nothing left behind: no temporary names, no untyped 'bad'.
    assert sorted(os.listdir(shmfs.p('d'))) == ['v']
    assert sorted(os.listdir(shmfs.path)) == ['d']


def _umask():
    old = os.umask(0)
    os.umask(old)
    return old


@util.both_modes
def test_lock_excludes_other_processes(shmfs, lib):
    path = util.new_object(shmfs, 'l', 'i64')
    err, m = lib.map(path)
    assert err == 0
    try:
        # Another process holds it (on the text view): we may not.
        holder = subprocess.Popen(['flock', path, 'sh', '-c', 'echo held; read x'],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        assert holder.stdout.readline() == 'held\n'
        assert lib.c.shmfs_trylock(m, True) == -errno.EWOULDBLOCK
        assert lib.c.shmfs_trylock(m, False) == -errno.EWOULDBLOCK
        holder.communicate('\n', timeout=30)
        assert holder.returncode == 0
        assert lib.c.shmfs_trylock(m, True) == 0
        # Now we hold it: flock -n on either view fails, for others.
        r = util.sh(f'flock -n "{path}" true; echo $?')
        assert r.stdout.strip() == '1'
        r = util.sh(f'flock -n "{shmfs.r("l")}" true; echo $?')
        assert r.stdout.strip() == '1'
        assert lib.c.shmfs_unlock(m) == 0
        assert util.sh(f'flock -n "{path}" true; echo $?').stdout.strip() == '0'
        # Shared locks share.
        assert lib.c.shmfs_lock(m, False) == 0
        assert util.sh(f'flock -s -n "{path}" true; echo $?').stdout.strip() == '0'
        assert util.sh(f'flock -n "{path}" true; echo $?').stdout.strip() == '1'
        assert lib.c.shmfs_unlock(m) == 0
    finally:
        lib.c.shmfs_unmap(m)


@util.both_modes
def test_atomics(shmfs, lib):
    shmfs.expect_output(r'^shmfs: rejected')
    ints = util.new_object(shmfs, 'i', 'i16[3]', '1 2 3')
    err, m = lib.map(ints)
    assert err == 0
    try:
        assert lib.atomic('load', m, 2) == (0, 3)
        assert lib.atomic('add', m, 0, 10) == (0, 1)
        assert lib.atomic('sub', m, 1, 5) == (0, 2)
        assert lib.atomic('xchg', m, 2, -300) == (0, 3)
        assert lib.atomic('cas', m, 2, 0, 9) == (0, -300)        # not swapped
        assert lib.atomic('cas', m, 2, -300, 9) == (1, -300)     # swapped
        assert lib.atomic('add', m, 0, 32767) == (0, 11)         # wraps
        assert util.cat(ints) == '-32758 -3 9\n'
        # Bad input: errnos, nothing changed.
        assert lib.atomic('add', m, 3, 1) == (-errno.EINVAL, -12345)   # index == count
        assert lib.atomic('load', m, 1 << 40) == (-errno.EINVAL, -12345)
        assert lib.atomic('add', m, 0, 1.0, f64=True)[0] == -errno.EINVAL
        assert lib.atomic('xchg', m, 0, 1 << 20)[0] == -errno.ERANGE
        assert util.cat(ints) == '-32758 -3 9\n'
    finally:
        lib.c.shmfs_unmap(m)

    floats = util.new_object(shmfs, 'f', 'f64', '1.5')
    err, m = lib.map(floats)
    assert err == 0
    try:
        assert lib.atomic('add', m, 0, 0.25, f64=True) == (0, 1.5)
        assert lib.atomic('sub', m, 0, 1.0, f64=True) == (0, 1.75)
        assert lib.atomic('xchg', m, 0, 3.1415926, f64=True) == (0, 0.75)
        assert lib.atomic('cas', m, 0, 1.0, 2.0, f64=True) == (0, 3.1415926)
        assert lib.atomic('cas', m, 0, 3.1415926, 2.0, f64=True) == (1, 3.1415926)
        assert lib.atomic('load', m, 0, f64=True) == (0, 2.0)
        assert lib.atomic('add', m, 0, 1)[0] == -errno.EINVAL      # integer variant
        assert lib.atomic('load', m, 1, f64=True)[0] == -errno.EINVAL
        assert util.cat(floats) == '2\n'
    finally:
        lib.c.shmfs_unmap(m)

    util.new_object(shmfs, 'b', 'bool', 'true')
    err, m = lib.map(shmfs.p('b'))
    assert err == 0
    try:
        assert lib.atomic('xchg', m, 0, 0) == (0, 1)
        assert lib.atomic('add', m, 0, 1)[0] == -errno.EINVAL
        assert lib.atomic('xchg', m, 0, 2)[0] == -errno.ERANGE
    finally:
        lib.c.shmfs_unmap(m)
    u = util.new_object(shmfs, 'u', 'u64', '18446744073709551615')
    err, m = lib.map(u)
    assert err == 0
    try:   # an unsigned element's value is its bits
        assert lib.atomic('add', m, 0, 2) == (0, -1)
        assert util.cat(u) == '1\n'
    finally:
        lib.c.shmfs_unmap(m)


# -- records ----------------------------------------------------------------

REC = '{x:f64, id:u32, tag:char[6], v:f32[3], q:{a:u8, b:i64}}'
F64, U32, CHAR, F32, U8, I64, RECORD = 9, 5, 11, 8, 1, 6, 12     # ShmfsElem


@util.both_modes
def test_record_fields(shmfs, lib):
    path = shmfs.p('p')
    assert lib.c.shmfs_create(os.fsencode(path), REC.encode(), 0o644) == 0
    err, m = lib.map(path)
    assert err == 0, lib.strerror(err)
    try:
        c = lib.c
        assert (c.shmfs_map_elem(m), c.shmfs_map_elem_size(m), c.shmfs_map_count(m)) == \
            (RECORD, 48, 1)
        assert c.shmfs_map_type(m) == REC.encode()
        assert c.shmfs_map_n_fields(m) == 5
        assert [lib.field(m, i) for i in range(5)] == [
            (0, 'x', 0, 'f64'), (0, 'id', 8, 'u32'), (0, 'tag', 12, 'char[6]'),
            (0, 'v', 20, 'f32[3]'), (0, 'q', 32, '{a:u8, b:i64}')]
        assert lib.field(m, 5)[0] == -errno.EINVAL
        assert c.shmfs_map_field(m, 0, None, None, None) == 0
        assert lib.field_offset(m, 'x') == (0, 0, F64, 8)
        assert lib.field_offset(m, 'tag') == (0, 12, CHAR, 6)
        assert lib.field_offset(m, 'v') == (0, 20, F32, 12)
        assert lib.field_offset(m, 'v[2]') == (0, 28, F32, 4)
        assert lib.field_offset(m, 'q') == (0, 32, RECORD, 16)
        assert lib.field_offset(m, 'q.b') == (0, 40, I64, 8)
        for bad in ('nope', 'q.c', 'v[3]', 'x.y', '', 'v[', '.x'):
            assert lib.field_offset(m, bad)[0] == -errno.EINVAL, bad
        assert c.shmfs_map_field_offset(m, None, None, None, None) == -errno.EINVAL
        assert c.shmfs_map_field_offset(m, b'q.a', None, None, None) == 0
        # The mapping is the C struct those offsets describe.
        util.write_text(path, '{"x": 2.5, "q": {"b": -3}}\n')
        data = ctypes.string_at(c.shmfs_map_data(m), 48)
        assert struct.unpack_from('=d', data, 0)[0] == 2.5
        assert struct.unpack_from('=q', data, 40)[0] == -3
    finally:
        lib.c.shmfs_unmap(m)
    # Not a record: no fields.
    err, m = lib.map(util.new_object(shmfs, 'f', 'f64[2]'))
    assert err == 0
    assert lib.c.shmfs_map_n_fields(m) == 0
    assert lib.field(m, 0)[0] == -errno.EINVAL
    assert lib.field_offset(m, 'x')[0] == -errno.EINVAL
    assert lib.field_atomic('load', m, 0, 0, f64=True)[0] == -errno.EINVAL
    lib.c.shmfs_unmap(m)


@util.both_modes
def test_field_atomics(shmfs, lib):
    shmfs.expect_output(r'^shmfs: rejected')
    path = shmfs.p('r')
    assert lib.c.shmfs_create(os.fsencode(path),
                              b'{c:i32, f:f64, b:bool, v:u16[3], s:char[4], in:{k:u64}}[2]',
                              0o644) == 0
    # offsets: c 0, f 8, b 16, v 18 (v[2] 22), s 24, in.k 32; 40 bytes
    err, m = lib.map(path)
    assert err == 0
    try:
        fa = lib.field_atomic
        assert fa('add', m, 1, 0, 5) == (0, 0)
        assert fa('sub', m, 1, 0, 7) == (0, 5)
        assert fa('load', m, 1, 0) == (0, -2)
        assert fa('xchg', m, 0, 16, 1) == (0, 0)                  # bool
        assert fa('sub', m, 0, 22, 1) == (0, 0)                   # v[2] wraps
        assert fa('cas', m, 0, 32, 1, 2) == (0, 0)                # not swapped
        assert fa('cas', m, 0, 32, 0, 2) == (1, 0)
        assert fa('add', m, 1, 8, 0.5, f64=True) == (0, 0.0)
        assert fa('xchg', m, 1, 8, 4.0, f64=True) == (0, 0.5)
        assert fa('cas', m, 1, 8, 4.0, 8.0, f64=True) == (1, 4.0)
        assert fa('load', m, 1, 8, f64=True) == (0, 8.0)
        before = util.read_bytes(shmfs.r('r'))
        assert [json.loads(l) for l in util.cat(path).splitlines()] == [
            {'c': 0, 'f': 0, 'b': True, 'v': [0, 0, 65535], 's': '', 'in': {'k': 2}},
            {'c': -2, 'f': 8, 'b': False, 'v': [0, 0, 0], 's': '', 'in': {'k': 0}}]
        # Bad input: -EINVAL (or -ERANGE), nothing changed.
        for args, kw, want in [
                (('add', m, 0, 24, 1), {}, -errno.EINVAL),          # a string
                (('add', m, 0, 4, 1), {}, -errno.EINVAL),           # padding
                (('add', m, 0, 1, 1), {}, -errno.EINVAL),           # inside c
                (('add', m, 0, 40, 1), {}, -errno.EINVAL),          # past the record
                (('add', m, 0, 1 << 40, 1), {}, -errno.EINVAL),
                (('add', m, 2, 0, 1), {}, -errno.EINVAL),           # index == count
                (('add', m, 0, 8, 1), {}, -errno.EINVAL),           # int op, f64 field
                (('add', m, 0, 0, 1.0), {'f64': True}, -errno.EINVAL),
                (('add', m, 0, 16, 1), {}, -errno.EINVAL),          # add on bool
                (('xchg', m, 0, 18, 1 << 16), {}, -errno.ERANGE),
                (('add', m, 0, 0, 1), {}, None)]:                   # whole-element op
            if want is None:   # the element-wide variant refuses a record
                assert lib.atomic('add', m, 0, 1) == (-errno.EINVAL, -12345)
                continue
            assert fa(*args, **kw) == (want, -12345 if not kw else -12345.0), args
        assert util.read_bytes(shmfs.r('r')) == before
    finally:
        lib.c.shmfs_unmap(m)


FIELD_ADDER = '''
import ctypes, sys
c = ctypes.CDLL(sys.argv[1])
m = ctypes.c_void_p()
assert c.shmfs_map(sys.argv[2].encode(), 0, ctypes.byref(m)) == 0
for _ in range(int(sys.argv[3])):
    assert c.shmfs_atomic_field_add(m, ctypes.c_size_t(1), ctypes.c_size_t(8),
                                    ctypes.c_int64(1), None) == 0
c.shmfs_unmap(m)
'''


@util.both_modes
def test_field_atomics_exact_under_concurrency(shmfs, lib):
    """Processes add to one field of element 1 with shmfs_atomic_field_add
    while this one merges other fields of that element through the text
    view: the count is exact and the other fields hold what was written."""
    path = shmfs.p('r')
    assert lib.c.shmfs_create(os.fsencode(path), b'{x:f64, n:u64, s:char[8]}[2]', 0o644) == 0
    libpath = lib.c._name
    procs = [subprocess.Popen([util.PYTHON, '-c', FIELD_ADDER, libpath, path, '3000'],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    writes = 0
    while writes < 50 or any(p.poll() is None for p in procs):
        util.write_text(path, '{"s": "a"}\n' + json.dumps({'x': writes, 's': f'w{writes}'}) + '\n')
        writes += 1
    for p in procs:
        finish(p)
    last = writes - 1
    assert [json.loads(l) for l in util.cat(path).splitlines()] == [
        {'x': 0, 'n': 0, 's': 'a'}, {'x': last, 'n': 9000, 's': f'w{last}'}]


LEAK_CHECK = r'''
#include <stdio.h>
#include <shmfs.h>
int main (int argc, char **argv)
{
  char path[4096];
  for (int i = 0; i < 20; i++)
    {
      ShmfsMap *m;
      size_t off;
      snprintf (path, sizeof path, "%s/r%d", argv[1], i);
      if (shmfs_create (path, "{a:{b:{c:i8}}, v:f32[3], s:char[4]}[2]", 0644) < 0
          || shmfs_create (path, "{x:f64}", 0644) != -17
          || shmfs_create (path, "{x:f64, x:f64}", 0644) != -22
          || shmfs_map (path, 0, &m) < 0)
        return 1;
      if (shmfs_map_n_fields (m) != 3 || shmfs_map_field_offset (m, "a.b.c", &off, NULL, NULL) < 0
          || shmfs_atomic_field_add (m, 1, off, 1, NULL) < 0)
        return 2;
      shmfs_unmap (m);
      if (shmfs_open (path, 0, &m) < 0 || shmfs_map_n_fields (m) != 3)
        return 3;
      shmfs_unmap (m);
    }
  return 0;
}
'''


@util.both_modes
def test_no_leaks(shmfs, tmp_path):
    """Every record the library parses is freed: a program built with
    AddressSanitizer (LeakSanitizer at exit) creates, maps, opens and
    unmaps records."""
    src = tmp_path / 'leaks.c'
    src.write_text(LEAK_CHECK)
    exe = str(tmp_path / 'leaks')
    if shutil.which('gcc') is None:
        pytest.skip('gcc is needed')
    glib = subprocess.run(['pkg-config', '--cflags', '--libs', 'glib-2.0'],
                          stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    r = subprocess.run(['gcc', '-std=gnu11', '-D_GNU_SOURCE', '-g', '-fsanitize=address',
                        '-I' + os.path.join(SRC, 'include/shmfs'), '-I' + os.path.join(SRC, 'include'),
                        '-I' + os.path.join(SRC, 'core'), '-o', exe, str(src)]
                       + [os.path.join(SRC, f) for f in LIB_SOURCES] + glib,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0 and 'asan' in r.stdout.lower():
        pytest.skip('no AddressSanitizer: ' + r.stdout)
    assert r.returncode == 0, r.stdout
    env = dict(os.environ, ASAN_OPTIONS='detect_leaks=1')
    r = subprocess.run([exe, shmfs.path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=120, env=env)
    assert (r.returncode, r.stderr) == (0, '')


# -- without a mapping (remote mounts) ------------------------------------------

@util.both_modes
def test_open_reads_and_writes_without_mapping(shmfs, lib):
    path = util.new_object(shmfs, 'm', 'i32[3,4]')
    err, m = lib.open(path)
    assert err == 0, lib.strerror(err)
    c = lib.c
    try:
        assert c.shmfs_map_data(m) is None                      # NULL: not mapped
        assert (c.shmfs_map_type(m), c.shmfs_map_nbytes(m), c.shmfs_map_count(m),
                c.shmfs_map_elem(m), c.shmfs_map_ndim(m)) == (b'i32[3][4]', 48, 12, 4, 2)
        assert c.shmfs_write(m, 0, struct.pack('=12i', *range(12)), 48) == 0
        assert util.cat(path) == '0 1 2 3\n4 5 6 7\n8 9 10 11\n'
        util.write_text(path, ' '.join(str(-i) for i in range(12)) + '\n')
        assert lib.read(m, 0, 48) == (0, struct.pack('=12i', *(-i for i in range(12))))
        assert c.shmfs_write(m, 44, struct.pack('=i', 77), 4) == 0
        assert lib.read(m, 40, 8) == (0, struct.pack('=2i', -10, 77))
        # A range past the end is refused before anything is read or written.
        small = ctypes.create_string_buffer(4)
        for off, n in ((0, 49), (44, 8), (48, 1), (49, 0), (1 << 63, 1), (8, (1 << 64) - 4)):
            assert c.shmfs_read(m, off, small, n) == -errno.EINVAL, (off, n)
            assert c.shmfs_write(m, off, b'\1\2\3\4', n) == -errno.EINVAL, (off, n)
        assert lib.read(m, 48, 0) == (0, b'')
        assert c.shmfs_write(m, 48, None, 0) == 0
        assert c.shmfs_read(None, 0, None, 0) == -errno.EINVAL
        assert c.shmfs_read(m, 0, None, 4) == -errno.EINVAL
        assert util.cat(path).split()[-4:] == ['-8', '-9', '-10', '77']
        # Atomics, the lock and notify work as on a mapping.
        assert lib.atomic('add', m, 11, 3) == (0, 77)
        assert lib.read(m, 44, 4) == (0, struct.pack('=i', 80))
        assert c.shmfs_trylock(m, True) == 0
        assert util.sh(f'flock -n "{path}" true; echo $?').stdout.strip() == '1'
        assert c.shmfs_unlock(m) == 0
        assert util.sh(f'flock -n "{path}" true; echo $?').stdout.strip() == '0'
        assert c.shmfs_notify(m) == 0
    finally:
        c.shmfs_unmap(m)
    # Read-only: reads, and writes fail with EBADF.
    err, m = lib.open(shmfs.r('m'), 1)                          # SHMFS_MAP_READONLY
    assert err == 0
    assert lib.read(m, 44, 4) == (0, struct.pack('=i', 80))
    assert c.shmfs_write(m, 0, b'\0' * 4, 4) == -errno.EBADF
    c.shmfs_unmap(m)
    # On a mapping, shmfs_read and shmfs_write see the mapped bytes.
    err, m = lib.map(path)
    assert err == 0
    data = (ctypes.c_int32 * 12).from_address(c.shmfs_map_data(m))
    assert c.shmfs_write(m, 0, struct.pack('=i', 5), 4) == 0 and data[0] == 5
    data[1] = 6
    assert lib.read(m, 4, 4) == (0, struct.pack('=i', 6))
    c.shmfs_unmap(m)


@util.both_modes
def test_open_records_and_bad_paths(shmfs, lib, tmp_path):
    path = shmfs.p('p')
    assert lib.c.shmfs_create(os.fsencode(path), REC.encode(), 0o644) == 0
    err, m = lib.open(path)
    assert err == 0
    try:
        assert lib.c.shmfs_map_n_fields(m) == 5
        assert lib.field_offset(m, 'q.b') == (0, 40, I64, 8)
        assert lib.c.shmfs_write(m, 40, struct.pack('=q', -3), 8) == 0
        assert lib.field_atomic('add', m, 0, 40, 1) == (0, -3)
        assert lib.field_atomic('add', m, 0, 0, 0.5, f64=True) == (0, 0.0)
        err, rec = lib.read(m, 0, 48)
        assert err == 0
        assert (struct.unpack_from('=d', rec, 0)[0], struct.unpack_from('=q', rec, 40)[0]) \
            == (0.5, -2)
    finally:
        lib.c.shmfs_unmap(m)
    outside = tmp_path / 'plain'
    outside.write_bytes(b'\0' * 8)
    assert lib.open(outside) == (-errno.ENOTSUP, None)
    assert lib.open(shmfs.p('absent'))[0] == -errno.ENOENT
    assert lib.open(shmfs.path)[0] == -errno.EISDIR
    os.close(os.open(shmfs.p('untyped'), os.O_CREAT | os.O_WRONLY, 0o644))
    assert lib.open(shmfs.p('untyped')) == (-errno.ENODATA, None)
    assert lib.open(path, 0x100)[0] == -errno.EINVAL


def test_enodev_says_what_to_do(lib):
    """shmfs_map fails with -ENODEV on a remote mount: the message names the
    calls that work there."""
    assert lib.strerror(-errno.ENODEV) == (
        'the object lives on a remote mount and cannot be mapped; '
        'use shmfs_open, shmfs_read and shmfs_write')


LOCKED_COUNTER = r'''
#include <err.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <shmfs.h>
/* Adds 1 N times to the i64 at PATH, reading and writing it under its lock:
 * `locked_counter PATH N map` maps it where the mount can (else opens it,
 * as on a remote mount), `... open` only opens it. */
int main (int argc, char **argv)
{
  ShmfsMap *m;
  int err = -EINVAL;

  if (argc == 4)
    {
      err = argv[3][0] == 'm' ? shmfs_map (argv[1], 0, &m) : -ENODEV;
      if (err == -ENODEV)
        err = shmfs_open (argv[1], 0, &m);
    }
  if (err < 0)
    errx (1, "%s: %s", argc > 1 ? argv[1] : "usage", shmfs_strerror (err));
  for (long i = atol (argv[2]); i > 0; i--)
    {
      int64_t n;

      if ((err = shmfs_lock (m, true)) < 0 || (err = shmfs_read (m, 0, &n, sizeof n)) < 0)
        errx (1, "read: %s", shmfs_strerror (err));
      n++;
      if ((err = shmfs_write (m, 0, &n, sizeof n)) < 0 || (err = shmfs_unlock (m)) < 0)
        errx (1, "write: %s", shmfs_strerror (err));
    }
  shmfs_unmap (m);
  return 0;
}
'''


@util.both_modes
def test_locked_counter_through_read_and_write_is_exact(shmfs, tmp_path):
    """Four C processes add 1 under the lock with shmfs_read and shmfs_write
    (two on shmfs_open's handle, two on a mapping), a shell adds through the
    text view under flock: no increment is lost."""
    src = tmp_path / 'locked_counter.c'
    src.write_text(LOCKED_COUNTER)
    exe = _gcc(str(tmp_path / 'locked_counter'), str(src), *LIB_SOURCES)
    path = util.new_object(shmfs, 'count', 'i64', '0')
    n = 300
    procs = [run_counter(exe, path, n, how) for how in ('open', 'map') * 2]
    shell = subprocess.Popen(
        ['sh', '-c', 'for i in $(seq "$2"); do flock "$1" sh -c '
         '\'echo $(( $(cat "$1") + 1 )) > "$1"\' sh "$1" || exit 1; done', 'sh', path, str(n)])
    for p in procs:
        finish(p)
    assert shell.wait(timeout=300) == 0
    assert value(shmfs, 'count') == 5 * n
