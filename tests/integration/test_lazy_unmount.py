"""Lazy unmount (`fusermount3 -u -z`) while a process still uses an object:
the mount leaves the namespace at once, the process keeps working -- its
mapping, its fds on both views and its working directory behave as before,
coherent with each other -- and once the last user is gone the daemon exits
with status 0.  The daemon is run by the test, not the fixture, since the
test does the unmounting."""

import contextlib
import os
import subprocess
import time

import pytest

import util
import util_store
from util_store import mounts  # noqa: F401  (fixture)

N = 1024                                   # i64[1024]: 8 KiB, two pages

# A user of MNT/x: maps .raw/x and keeps fds on both views (what it holds is
# argv[2]), then obeys one command a line:
#   set I V      store V into element I through the mapping
#   get I        load element I from the mapping
#   pread I      element I read with pread on .raw
#   pwrite I V   write element I with pwrite on .raw
#   text         the text view read at offset 0 (first 3 numbers)
#   settext V    write "V V ... V" to the text view
#   cwdtext      the text view read through a path relative to the cwd
#   release      unmap and close everything
USER = r'''
import mmap, os, struct, sys
path, raw, holds = sys.argv[1], sys.argv[2], sys.argv[3].split(',')
n = int(sys.argv[4])
m = rawfd = textfd = None
fd = os.open(raw, os.O_RDWR)
if 'map' in holds:
    m = mmap.mmap(fd, n * 8, mmap.MAP_SHARED)
if 'fds' in holds:
    rawfd = fd
    textfd = os.open(path, os.O_RDWR)
else:
    os.close(fd)
if 'cwd' in holds:
    os.chdir(os.path.dirname(path))
print('ready', flush=True)
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == 'set':
        struct.pack_into('q', m, int(args[0]) * 8, int(args[1]))
        out = 'ok'
    elif cmd == 'get':
        out = struct.unpack_from('q', m, int(args[0]) * 8)[0]
    elif cmd == 'pread':
        out = struct.unpack('q', os.pread(rawfd, 8, int(args[0]) * 8))[0]
    elif cmd == 'pwrite':
        out = os.pwrite(rawfd, struct.pack('q', int(args[1])),
                        int(args[0]) * 8)
    elif cmd == 'text':
        out = os.pread(textfd, 1 << 16, 0).decode()
        out = ' '.join(out.split()[:3])
    elif cmd == 'settext':
        text = (' '.join([args[0]] * n) + '\n').encode()
        out = os.pwrite(textfd, text, 0) == len(text)
    elif cmd == 'cwdtext':
        with open(os.path.basename(path)) as f:
            out = ' '.join(f.read().split()[:3])
    elif cmd == 'release':
        if m is not None:
            m.close()
        for f in (rawfd, textfd):
            if f is not None:
                os.close(f)
        if 'cwd' in holds:
            os.chdir('/')
        out = 'released'
    else:
        out = 'unknown command'
    print(out, flush=True)
'''


class User:
    def __init__(self, mount, name, holds):
        self.proc = subprocess.Popen(
            [util.PYTHON, '-c', USER, mount.p(name), mount.r(name), holds,
             str(N)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        assert self.proc.stdout.readline() == 'ready\n'

    def __call__(self, *words):
        self.proc.stdin.write(' '.join(map(str, words)) + '\n')
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f'user process died on {words}: {self.proc.poll()}'
        return line.rstrip('\n')

    def finish(self):
        self.proc.stdin.close()
        rc = self.proc.wait(timeout=10)
        self.proc.stdout.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


def lazy_unmount(d):
    r = util.fusermount_u(d.path, lazy=True)
    assert r.returncode == 0, r.stderr
    assert not util_store.mounted(d.path)
    assert os.listdir(d.path) == []


def wait_exit(d, timeout=5.0):
    try:
        return d.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f'shmfs still running {timeout} s after its '
                             'last user went away') from None


def first3(v):
    return f'{v} {v} {v}'


@pytest.mark.parametrize('holds', ['map', 'fds', 'map,fds', 'cwd'])
@pytest.mark.parametrize('mode', util.MODES)
def test_user_keeps_working_after_lazy_unmount(mounts, mode, holds):
    d = mounts.start('-o', f'mode={mode}')
    if holds == 'cwd':
        os.mkdir(d.p('dir'))
        name = 'dir/x'
    else:
        name = 'x'
    util.new_object(d, name, f'i64[{N}]', ' '.join(['1'] * N) + '\n')
    user = User(d, name, holds)
    try:
        if 'map' in holds:
            assert user('get', 0) == '1'
        lazy_unmount(d)
        time.sleep(0.2)
        assert d.proc.poll() is None, 'daemon exited while still in use'

        if 'map' in holds:
            assert user('set', 0, 77) == 'ok'
            assert user('set', N - 1, -77) == 'ok'           # second page
            assert user('get', 0) == '77'
            assert user('get', N - 1) == '-77'
        if 'fds' in holds:
            if 'map' in holds:
                # a store to the mapping shows to pread and to the text view
                assert user('pread', N - 1) == '-77'
                assert user('text') == '77 1 1'
            assert user('pwrite', 1, 5) == '8'
            assert user('pread', 1) == '5'
            assert user('settext', 9) == 'True'
            assert user('pread', 0) == '9'
            assert user('pread', N - 1) == '9'
            assert user('text') == first3(9)
            if 'map' in holds:
                assert user('get', 0) == '9'
                assert user('get', N - 1) == '9'
                assert user('set', 2, 123) == 'ok'
                assert user('pread', 2) == '123'
                assert user('text') == '9 9 123'
        if holds == 'cwd':
            assert user('cwdtext') == first3(1)

        assert d.proc.poll() is None, 'daemon exited while still in use'
        assert user('release') == 'released'
        assert wait_exit(d) == 0, d.log()
        assert user.finish() == 0
    finally:
        user.kill()
    mounts.stop(d)          # checks the exit status and the output again


@pytest.mark.parametrize('mode', util.MODES)
def test_user_exit_ends_the_daemon(mounts, mode):
    """The last user does not release anything by itself: it just exits
    (kill -9), with its mapping and fds still held."""
    d = mounts.start('-o', f'mode={mode}')
    util.new_object(d, 'x', f'i64[{N}]')
    user = User(d, 'x', 'map,fds')
    try:
        assert user('set', 3, 33) == 'ok'
        lazy_unmount(d)
        assert user('pread', 3) == '33'
        time.sleep(0.2)
        assert d.proc.poll() is None, 'daemon exited while still in use'
    finally:
        user.kill()
    assert wait_exit(d) == 0, d.log()
    mounts.stop(d)


@pytest.mark.parametrize('mode', util.MODES)
def test_lazy_unmount_without_users(mounts, mode):
    d = mounts.start('-o', f'mode={mode}')
    util.new_object(d, 'x', 'i64', '1\n')
    with util.mapped(d.r('x')):
        pass
    lazy_unmount(d)
    assert wait_exit(d) == 0, d.log()
    mounts.stop(d)


@pytest.mark.parametrize('mode', util.MODES)
def test_two_users_last_one_ends_it(mounts, mode):
    d = mounts.start('-o', f'mode={mode}')
    util.new_object(d, 'x', f'i64[{N}]')
    util.new_object(d, 'y', f'i64[{N}]')
    a = User(d, 'x', 'map,fds')
    b = User(d, 'y', 'map')
    try:
        lazy_unmount(d)
        assert a('set', 0, 1) == 'ok' and b('set', 0, 2) == 'ok'
        assert a.finish() == 0
        time.sleep(0.3)
        assert d.proc.poll() is None, 'daemon exited while b still maps y'
        assert b('get', 0) == '2'
        assert b('set', N - 1, 3) == 'ok'
        assert b('get', N - 1) == '3'
        assert b.finish() == 0
        assert wait_exit(d) == 0, d.log()
    finally:
        a.kill()
        b.kill()
    mounts.stop(d)


def test_lazy_unmount_of_nothing_mounted(tmp_path):
    """Bad input: fusermount3 -u -z of a directory that is not a shmfs mount
    fails and harms nothing."""
    mnt = util.make_mountpoint()
    try:
        r = util.fusermount_u(mnt, lazy=True)
        assert r.returncode != 0
        assert os.path.isdir(mnt)
    finally:
        os.rmdir(mnt)
