"""What the remote-mount tests (test_remote*.py) share: several daemons
mounting one Redis (a server or a Cluster) under one key prefix, taken down
and checked on the way out as the shmfs fixture checks one; and the helpers
they use on such mounts: listings, errnos, exact adds from other processes,
flock held by another process, and the check that a flock on one mount
excludes one on the other."""

import contextlib
import errno
import fcntl
import itertools
import os
import signal
import subprocess
import threading
import time

import pytest

import redis_util
import util

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2

_prefixes = itertools.count()


def unique_prefix(tag):
    """A key prefix no other test of this run uses."""
    return f'{tag}{os.getpid()}-{next(_prefixes)}'


class Mounts:
    """n daemons mounting one Redis under one prefix, checked on the way
    out as the shmfs fixture checks one."""

    def __init__(self, tmp_path, url, prefix, args=()):
        self.tmp_path = tmp_path
        self.url = url
        self.prefix = prefix
        self.args = tuple(args)
        self.daemons = []

    def mount(self, args=()):
        mnt = util.make_mountpoint()
        d = util.Daemon(mnt, str(self.tmp_path / f'shmfs{len(self.daemons)}.log'),
                        ('-o', f'remote={self.url}', '-o', f'remote_prefix={self.prefix}')
                        + self.args + tuple(args))
        self.daemons.append(d)
        d.start()
        d.wait_for_mount()
        return d

    def kill(self, d):
        """kill -9 of d, as a host dies; its mount is then taken down."""
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(timeout=10)
        d.force_stop()
        self.daemons.remove(d)
        os.rmdir(d.path)

    def close(self):
        """Takes every daemon down; returns the problems found."""
        return [p for d in self.daemons for p in d.take_down()]


@contextlib.contextmanager
def mounted(tmp_path, url, prefix, args=()):
    """Mounts for the with block, checked on the way out as the shmfs
    fixture checks one."""
    m = Mounts(tmp_path, url, prefix, args)
    try:
        yield m
    finally:
        problems = m.close()
    if problems:
        pytest.fail('shmfs teardown:\n  ' + '\n  '.join(problems), pytrace=False)


# Fixtures of the files that mount a single server: import them by name
# (`from remote_mounts import redis, mounts, pair`); PREFIX_TAG in the
# importing module names its keys.

@pytest.fixture(scope='module')
def redis():
    with redis_util.RedisServer() as server:
        yield server


@pytest.fixture
def mounts(request, redis, tmp_path):
    tag = getattr(request.module, 'PREFIX_TAG', 'test')
    with mounted(tmp_path, redis.url, unique_prefix(tag)) as m:
        yield m


@pytest.fixture
def pair(mounts):
    return mounts.mount(), mounts.mount()


def entries(path):
    return sorted(os.listdir(path))


def assert_errno(err, fn, *args):
    assert util.errno_of(fn, *args) == err, f'{fn.__name__}{args}'


def start_adder(path, count, flt=False):
    """A process adding 1 to the object at path count times, atomically."""
    code = f'''
import os, sys
sys.path.insert(0, {os.path.dirname(__file__)!r})
from test_atomic import ADD, CAS, SUB, XCHG, atomic, cli
fd = os.open({path!r}, os.O_RDWR)
for _ in range({count}):
    atomic(fd, 1, 1.0 if {flt} else 1, flt={flt})
'''
    return subprocess.Popen(['/usr/bin/python3', '-c', code])


HOLD = '''
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print('held', flush=True)
sys.stdin.readline()
'''


def hold_lock(path):
    """A process holding flock(LOCK_EX) on path until its stdin closes."""
    p = subprocess.Popen(['/usr/bin/python3', '-c', HOLD, path], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == 'held\n'
    return p


def release(p):
    p.stdin.close()
    assert p.wait(timeout=30) == 0


def try_flock(path, op):
    with util.opened(path) as fd:
        return util.errno_of(fcntl.flock, fd, op | fcntl.LOCK_NB)


def check_flock_excludes(a, b, name, while_held=lambda: None):
    """A new object name, locked (LOCK_EX) by a process through mount a:
    flock through either view of b is refused, while_held() is then run,
    and a blocking lock on b waits, granted soon after the release."""
    util.new_object(a, name, 'i64', '0')
    holder = hold_lock(a.p(name))
    try:
        assert try_flock(b.p(name), fcntl.LOCK_EX) == errno.EWOULDBLOCK
        assert try_flock(b.r(name), fcntl.LOCK_SH) == errno.EWOULDBLOCK
        while_held()
        got = []

        def wait_lock():
            with util.opened(b.p(name)) as fd:
                fcntl.flock(fd, fcntl.LOCK_EX)
                got.append(time.monotonic())

        t = threading.Thread(target=wait_lock)
        t.start()
        time.sleep(0.3)
        assert not got
        released = time.monotonic()
        release(holder)
        holder = None
        t.join(timeout=10)
        assert got and got[0] - released < 1.0, got
    finally:
        if holder:
            release(holder)
