"""Unlinked while open or mapped (DESIGN.md section 1): the object keeps
working for whoever holds it, its name is free at once (a new object with the
same name has its own bytes), and its memory -- one memfd in the daemon -- is
released after the last close/munmap."""

import contextlib
import errno
import os
import subprocess

import numpy as np
import pytest

import util

SPEC = 'f64[8192]'                       # 64 KiB, 16 pages
N = 8192
PATTERN = (np.arange(N) * 0.5 + 1).tobytes()
OTHER = (-np.arange(N) * 2.0 - 3).tobytes()
NBYTES = N * 8


def make(shmfs, name, data=PATTERN):
    path = util.new_object(shmfs, name, SPEC)
    with util.opened(shmfs.r(name), os.O_WRONLY) as fd:
        assert os.pwrite(fd, data, 0) == len(data)
    return path


def wait_memfds(shmfs, want, timeout=2.0):
    ok = util.poll_until(lambda: shmfs.memfd_count() == want, timeout)
    assert ok, f'daemon holds {shmfs.memfd_count()} memfds, expected {want}'


def assert_gone(shmfs, name):
    assert util.errno_of(os.stat, shmfs.p(name)) == errno.ENOENT, name
    assert util.errno_of(os.stat, shmfs.r(name)) == errno.ENOENT, \
        '.raw/' + name


@pytest.mark.parametrize('how', ['unlink', 'rm', 'rename-over'])
@util.both_modes
def test_mapped_object_outlives_its_name(shmfs, how):
    x = make(shmfs, 'x')
    if how == 'rename-over':
        make(shmfs, 'y', OTHER)
    base = shmfs.memfd_count()
    with util.mapped(shmfs.r('x')) as m:
        assert m[:] == PATTERN
        if how == 'unlink':
            os.unlink(x)
        elif how == 'rm':
            util.sh_ok('rm x', cwd=shmfs.path)
        else:
            os.rename(shmfs.p('y'), x)
        if how == 'rename-over':
            assert util.read_bytes(shmfs.r('x')) == OTHER
        else:
            assert_gone(shmfs, 'x')
        assert shmfs.memfd_count() == base     # still held by the mapping
        # the mapping keeps working, for loads and stores
        assert m[:] == PATTERN
        m[:NBYTES // 2] = OTHER[:NBYTES // 2]
        assert m[:] == OTHER[:NBYTES // 2] + PATTERN[NBYTES // 2:]
        if how != 'rename-over':
            # the name is free: a new object there has its own bytes
            new = util.new_object(shmfs, 'x', SPEC)
            assert util.read_bytes(shmfs.r('x')) == bytes(NBYTES)
            util.write_text(new, ' '.join(['4'] * N) + '\n')
            assert m[:] == OTHER[:NBYTES // 2] + PATTERN[NBYTES // 2:]
            assert shmfs.memfd_count() == base + 1
        m[-8:] = b'\xff' * 8
        kept = util.read_bytes(shmfs.r('x'))
        assert kept != m[:]
    wait_memfds(shmfs, base - 1 if how == 'rename-over' else base)
    assert util.read_bytes(shmfs.r('x')) == kept


@util.both_modes
def test_open_fds_outlive_the_name(shmfs):
    x = make(shmfs, 'x')
    base = shmfs.memfd_count()
    raw = os.open(shmfs.r('x'), os.O_RDWR)
    text = os.open(x, os.O_RDWR)
    try:
        os.unlink(x)
        assert_gone(shmfs, 'x')
        assert util.pread_all(raw, NBYTES) == PATTERN
        assert os.pwrite(raw, OTHER[:8], 0) == 8
        assert util.pread_all(raw, NBYTES)[:8] == OTHER[:8]
        first = os.pread(text, 64, 0).split()[0]
        assert float(first) == np.frombuffer(OTHER[:8])[0]
        value = ' '.join(['2.5'] * N) + '\n'
        assert os.pwrite(text, value.encode(), 0) == len(value)
        assert util.pread_all(raw, NBYTES) == np.full(N, 2.5).tobytes()
        assert os.pread(text, 8, 0) == b'2.5 2.5 '
        assert shmfs.memfd_count() == base
    finally:
        os.close(raw)
        os.close(text)
    wait_memfds(shmfs, base - 1)


@util.both_modes
def test_unlink_without_users_releases(shmfs):
    make(shmfs, 'keep')
    base = shmfs.memfd_count()
    for i in range(5):
        make(shmfs, f'o{i}')
    assert shmfs.memfd_count() == base + 5
    util.sh_ok('rm o0 o1 o2 o3 o4', cwd=shmfs.path)
    wait_memfds(shmfs, base)
    assert util.read_bytes(shmfs.r('keep')) == PATTERN


@util.both_modes
def test_many_mapped_then_unlinked(shmfs):
    base = shmfs.memfd_count()
    with contextlib.ExitStack() as maps:
        for i in range(20):
            make(shmfs, f'o{i}', np.full(N, float(i)).tobytes())
            maps.enter_context(util.mapped(shmfs.r(f'o{i}')))
        assert shmfs.memfd_count() == base + 20
        for i in range(20):
            os.unlink(shmfs.p(f'o{i}'))
        assert os.listdir(shmfs.path) == []
        assert shmfs.memfd_count() == base + 20
    wait_memfds(shmfs, base)


CHILD_HOLDER = r'''
import mmap, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, int(sys.argv[2]), mmap.MAP_SHARED)
os.close(fd)
print('mapped', flush=True)
sys.stdin.readline()                       # the parent has unlinked it
first = struct.unpack_from('d', m, 0)[0]
struct.pack_into('d', m, 0, -99.5)
print(first, struct.unpack_from('d', m, 0)[0], flush=True)
sys.stdin.readline()
'''


@util.both_modes
def test_mapped_in_another_process(shmfs):
    x = make(shmfs, 'x')
    base = shmfs.memfd_count()
    proc = subprocess.Popen([util.PYTHON, '-c', CHILD_HOLDER, shmfs.r('x'),
                             str(NBYTES)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == 'mapped\n'
        os.unlink(x)
        make(shmfs, 'x', OTHER)
        proc.stdin.write('\n')
        proc.stdin.flush()
        assert proc.stdout.readline().split() == ['1.0', '-99.5']
        assert util.read_bytes(shmfs.r('x')) == OTHER
        assert shmfs.memfd_count() == base + 1
        proc.stdin.write('\n')
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wait_memfds(shmfs, base)


# -- races between the last close of an unlinked object and other users -----

RACER = r'''
import errno, mmap, os, sys, time
path, raw, what, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
seen = {'ok': 0, 'gone': 0}
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        if what == 'stat':
            os.stat(path)
        else:
            fd = os.open(raw, os.O_RDWR)
            try:
                # An open that succeeded holds the object: all 8 bytes, the
                # value written before the name was published, and a mapping
                # that never faults.
                size = os.fstat(fd).st_size
                data = os.pread(fd, 8, 0)
                assert size == 8 and data == (1234).to_bytes(8, 'little'), \
                    (size, data)
                m = mmap.mmap(fd, 8)
                assert m[:8] == data
                m.close()
            finally:
                os.close(fd)
        seen['ok'] += 1
    except FileNotFoundError:
        seen['gone'] += 1
print(seen['ok'], seen['gone'])
'''


@util.both_modes
@pytest.mark.parametrize('what', ['stat', 'open'])
def test_use_racing_the_last_close(shmfs, what):
    """stat of the text view, and open+pread+mmap of the binary view, while
    another process keeps creating the object, closing and unlinking it: the
    daemon never touches freed bytes (it crashed on the stat), and an open
    either fails with ENOENT or gets the whole object (an open that lost the
    race to the unlink used to get an empty object, and its mapping SIGBUS)."""
    path, raw = shmfs.p('x'), shmfs.r('x')
    racer = subprocess.Popen([util.PYTHON, '-c', RACER, path, raw, what, '3'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    rounds = 0
    deadline = util.time.monotonic() + 3
    while util.time.monotonic() < deadline:
        tmp = shmfs.p('tmp')
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        util.set_type(tmp, 'i64')
        os.write(fd, b'1234\n')
        os.rename(tmp, path)
        with util.opened(raw) as rfd:         # a handle: its close is the last
            os.unlink(path)
        os.close(fd)
        rounds += 1
    rc, out, err = util.finish(racer, 30)
    assert rc == 0, err
    ok, gone = map(int, out.split())
    assert rounds > 20 and ok + gone > 20, (rounds, out)
    assert shmfs.alive()
