"""Objects bound to a process (DESIGN.md section 7, docs/semantics.md "Lifetimes"): the
xattr user.shmfs.lifetime = pid:N or process binds an object; it is removed,
as by rm, within a second of that process exiting (kill -9 included), while
unbound objects and objects of other processes stay.  Reading gives pid:N,
removing the xattr unbinds, a thread id is taken to its process, a missing
process is ESRCH and anything else malformed EINVAL."""

import contextlib
import errno
import os
import signal
import struct
import subprocess

import pytest

import util
import util_store

LIFETIME = 'user.shmfs.lifetime'

# Binds each path in argv[1:] to itself (unless argv[1] is '-'), reports its
# pid and the values it reads back, then waits for EOF on stdin.
HOLDER = r'''
import os, sys
paths = [p for p in sys.argv[1:] if p != '-']
for p in paths:
    os.setxattr(p, 'user.shmfs.lifetime', b'process')
print(os.getpid(), *[os.getxattr(p, 'user.shmfs.lifetime').decode()
                     for p in paths], flush=True)
sys.stdin.read()
'''


class Holder:
    """A child process, optionally binding objects to itself."""

    def __init__(self, *paths):
        self.proc = subprocess.Popen(
            [util.PYTHON, '-c', HOLDER] + (list(paths) or ['-']),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        words = self.proc.stdout.readline().split()
        assert words, 'holder failed to start'
        self.pid = int(words[0])
        self.read_back = words[1:]

    def kill9(self):
        """SIGKILL, not reaped: a zombie has exited too."""
        os.kill(self.pid, signal.SIGKILL)

    def exit(self):
        self.proc.stdin.close()
        assert self.proc.wait(timeout=10) == 0

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def holders():
    made = []

    def make(*paths):
        h = Holder(*paths)
        made.append(h)
        return h
    yield make
    for h in made:
        h.close()


def assert_removed(mount, name, timeout=1.0):
    took = util_store.wait_gone(mount.p(name), timeout)
    assert took is not None, f'{name} still there {timeout} s after its ' \
        'process exited'
    assert util.errno_of(os.stat, mount.r(name)) == errno.ENOENT
    assert os.path.basename(name) not in os.listdir(
        os.path.dirname(mount.p(name)))
    return took


def assert_kept(mount, name, text):
    assert util.read_text(mount.p(name)) == text, name


def binding(path):
    return os.getxattr(path, LIFETIME).decode()


def unbound(path):
    return util.errno_of(os.getxattr, path, LIFETIME) == errno.ENODATA


@util.both_modes
def test_process_binding_removed_on_kill9(shmfs, holders):
    mine = util.new_object(shmfs, 'mine', 'i64', '1\n')
    util.new_object(shmfs, 'free', 'i64', '2\n')
    other = util.new_object(shmfs, 'other', 'f64[2]', '3 4\n')
    untyped = shmfs.p('untyped')
    os.close(os.open(untyped, os.O_CREAT | os.O_WRONLY, 0o644))
    h = holders(mine, untyped)
    assert h.read_back == [f'pid:{h.pid}', f'pid:{h.pid}']
    keeper = holders(other)
    assert binding(mine) == f'pid:{h.pid}'
    assert binding(shmfs.r('mine')) == f'pid:{h.pid}'     # one lifetime
    assert binding(other) == f'pid:{keeper.pid}'
    assert unbound(shmfs.p('free'))

    h.kill9()
    took = assert_removed(shmfs, 'mine')
    assert_removed(shmfs, 'untyped')
    print(f'removed {took * 1000:.1f} ms after kill -9')
    assert sorted(os.listdir(shmfs.path)) == ['free', 'other']
    assert_kept(shmfs, 'free', '2\n')
    assert_kept(shmfs, 'other', '3 4\n')
    assert binding(other) == f'pid:{keeper.pid}'
    # the name is free again, and a new object there is not bound
    util.new_object(shmfs, 'mine', 'i64', '5\n')
    assert unbound(mine)

    keeper.exit()                    # a normal exit counts the same
    assert_removed(shmfs, 'other')
    assert sorted(os.listdir(shmfs.path)) == ['free', 'mine']
    assert_kept(shmfs, 'mine', '5\n')


@util.both_modes
def test_pid_binding_by_another_process(shmfs, holders):
    h = holders()
    x = util.new_object(shmfs, 'x', 'u8[3]', '1 2 3\n')
    os.setxattr(x, LIFETIME, f'pid:{h.pid}'.encode())
    assert binding(x) == f'pid:{h.pid}'
    assert LIFETIME in os.listxattr(x)
    # the binding is not a change of the value
    assert_kept(shmfs, 'x', '1 2 3\n')
    h.kill9()
    assert_removed(shmfs, 'x')


@util.both_modes
def test_bind_through_raw_view(shmfs, holders):
    h = holders()
    util.new_object(shmfs, 'x', 'i32', '7\n')
    os.setxattr(shmfs.r('x'), LIFETIME, f'pid:{h.pid}'.encode())
    assert binding(shmfs.p('x')) == f'pid:{h.pid}'
    h.exit()
    assert_removed(shmfs, 'x')


@util.both_modes
def test_removexattr_unbinds(shmfs, holders):
    h = holders()
    x = util.new_object(shmfs, 'x', 'i64', '9\n')
    y = util.new_object(shmfs, 'y', 'i64', '10\n')
    for p in (x, y):
        os.setxattr(p, LIFETIME, f'pid:{h.pid}'.encode())
    os.removexattr(x, LIFETIME)
    assert unbound(x)
    assert LIFETIME not in os.listxattr(x)
    assert util.errno_of(os.removexattr, x, LIFETIME) == errno.ENODATA
    h.kill9()
    assert_removed(shmfs, 'y')
    assert_kept(shmfs, 'x', '9\n')
    assert os.listdir(shmfs.path) == ['x']


@util.both_modes
def test_rebinding_replaces(shmfs, holders):
    a, b = holders(), holders()
    x = util.new_object(shmfs, 'x', 'i64', '1\n')
    os.setxattr(x, LIFETIME, f'pid:{a.pid}'.encode())
    os.setxattr(x, LIFETIME, f'pid:{b.pid}'.encode())
    assert binding(x) == f'pid:{b.pid}'
    a.kill9()
    a.proc.wait()
    assert util_store.wait_gone(x, 0.5) is None, 'removed with the old binding'
    b.kill9()
    assert_removed(shmfs, 'x')


THREADED = r'''
import os, sys, threading
def run():
    print(os.getpid(), threading.get_native_id(), flush=True)
    sys.stdin.read()
t = threading.Thread(target=run)
t.start()
t.join()
'''


@util.both_modes
def test_thread_id_taken_to_its_process(shmfs):
    proc = subprocess.Popen([util.PYTHON, '-c', THREADED],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        pid, tid = map(int, proc.stdout.readline().split())
        assert pid != tid
        x = util.new_object(shmfs, 'x', 'i64', '1\n')
        os.setxattr(x, LIFETIME, f'pid:{tid}'.encode())
        assert binding(x) == f'pid:{pid}'
        os.kill(pid, signal.SIGKILL)
        assert_removed(shmfs, 'x')
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()


@util.both_modes
def test_binding_follows_the_object_not_the_name(shmfs, holders):
    os.mkdir(shmfs.p('d'))
    a = util.new_object(shmfs, 'a', 'i64', '1\n')
    b = util.new_object(shmfs, 'b', 'i64', '2\n')
    h = holders(a, b)
    os.rename(a, shmfs.p('d/renamed'))
    os.unlink(b)
    util.new_object(shmfs, 'b', 'i64', '3\n')      # a new object, unbound
    util.new_object(shmfs, 'a', 'i64', '4\n')
    h.kill9()
    assert_removed(shmfs, 'd/renamed')
    assert os.listdir(shmfs.p('d')) == []
    assert sorted(os.listdir(shmfs.path)) == ['a', 'b', 'd']
    assert_kept(shmfs, 'a', '4\n')
    assert_kept(shmfs, 'b', '3\n')


@util.both_modes
def test_mapping_outlives_the_removal(shmfs, holders):
    x = util.new_object(shmfs, 'x', 'i64[512]')
    h = holders(x)
    with util.mapped(shmfs.r('x')) as m:
        struct.pack_into('q', m, 0, 1234)
        h.kill9()
        assert_removed(shmfs, 'x')
        assert struct.unpack_from('q', m, 0)[0] == 1234
        struct.pack_into('q', m, 8, -5)
        assert struct.unpack_from('2q', m, 0) == (1234, -5)


@util.both_modes
def test_many_objects_many_processes(shmfs, holders):
    groups = []
    for g in range(3):
        paths = [util.new_object(shmfs, f'g{g}-{i}', 'i64', f'{g}{i}\n')
                 for i in range(20)]
        groups.append(holders(*paths))
    util.new_object(shmfs, 'free', 'i64', '0\n')
    for g in (1, 0, 2):
        groups[g].kill9()
        for i in range(20):
            assert_removed(shmfs, f'g{g}-{i}')
        left = sorted(os.listdir(shmfs.path))
        for other in range(3):
            names = [n for n in left if n.startswith(f'g{other}-')]
            if other == g or groups[other].proc.poll() is not None:
                assert names == [], (g, other, names)
            else:
                assert len(names) == 20, (g, other, names)
    assert os.listdir(shmfs.path) == ['free']


def test_shell_setfattr(shmfs):
    """docs/semantics.md: from a shell, bind to $$; `-v process` binds to setfattr
    itself, which exits at once."""
    x = util.new_object(shmfs, 'x', 'i64', '1\n')
    y = util.new_object(shmfs, 'y', 'i64', '2\n')
    proc = subprocess.Popen(
        ['sh', '-c', 'setfattr -n user.shmfs.lifetime -v "pid:$$" "$1" && '
         'echo bound && exec sleep 60', 'sh', x],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == 'bound\n'
        r = util.sh_args('getfattr --only-values -n user.shmfs.lifetime "$1"',
                         x)
        assert r.stdout == f'pid:{proc.pid}', r
        util.sh_ok(f'setfattr -n user.shmfs.lifetime -v process {y}')
        assert_removed(shmfs, 'y')
        assert_kept(shmfs, 'x', '1\n')
        proc.kill()
        assert_removed(shmfs, 'x')
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


# -- bad input ----------------------------------------------------------------

BAD_VALUES = [b'', b'pid:', b'pid', b'pid:abc', b'pid:-1', b'pid:0',
              b'pid:1x', b'pid: 5', b'pid:+5', b'pid:0x10', b'pid:1.5',
              b'pid:99999999999999999999', b'pid:4294967297', b'proc',
              b'Process', b'processes', b'process:1', b'PID:1', b'1',
              b'pid:1 pid:2', b'\xff\xfe', b'pid:\x001']


def dead_pid():
    p = subprocess.Popen(['true'])
    p.wait()
    return p.pid


@pytest.mark.parametrize('value', BAD_VALUES, ids=repr)
def test_bad_lifetime_values(shmfs, holders, value):
    h = holders()
    x = util.new_object(shmfs, 'x', 'i64', '42\n')
    y = util.new_object(shmfs, 'y', 'i64', '43\n')
    os.setxattr(y, LIFETIME, f'pid:{h.pid}'.encode())
    before = shmfs.rejected_count()
    assert util.errno_of(os.setxattr, x, LIFETIME, value) == errno.EINVAL
    assert util.errno_of(os.setxattr, y, LIFETIME, value) == errno.EINVAL
    assert shmfs.wait_rejected(before)
    assert unbound(x)
    assert binding(y) == f'pid:{h.pid}'        # unchanged
    assert_kept(shmfs, 'x', '42\n')
    assert shmfs.alive()
    h.kill9()
    assert_removed(shmfs, 'y')
    assert_kept(shmfs, 'x', '42\n')


@util.both_modes
def test_missing_process_is_esrch(shmfs, holders):
    h = holders()
    x = util.new_object(shmfs, 'x', 'i64', '42\n')
    os.setxattr(x, LIFETIME, f'pid:{h.pid}'.encode())
    with open('/proc/sys/kernel/pid_max') as f:
        pid_max = int(f.read())
    for pid in (dead_pid(), pid_max, pid_max + 1, 2 ** 31 - 1):
        e = util.errno_of(os.setxattr, x, LIFETIME, f'pid:{pid}'.encode())
        assert e == errno.ESRCH, (pid, util.ename(e))
        assert binding(x) == f'pid:{h.pid}'
    z = util.new_object(shmfs, 'z', 'i64', '1\n')
    assert util.errno_of(os.setxattr, z, LIFETIME,
                         f'pid:{dead_pid()}'.encode()) == errno.ESRCH
    assert unbound(z)
    assert shmfs.alive()
    assert_kept(shmfs, 'z', '1\n')


def test_directories_cannot_be_bound(shmfs, holders):
    h = holders()
    os.mkdir(shmfs.p('d'))
    util.new_object(shmfs, 'd/x', 'i64', '1\n')
    for path in (shmfs.path, shmfs.p('d'), shmfs.raw):
        e = util.errno_of(os.setxattr, path, LIFETIME,
                          f'pid:{h.pid}'.encode())
        assert e != 0, f'{path} was bound'
    h.kill9()
    h.proc.wait()
    assert util_store.wait_gone(shmfs.p('d/x'), 0.5) is None
    assert os.path.isdir(shmfs.p('d'))
    assert_kept(shmfs, 'd/x', '1\n')


def test_removexattr_of_unbound_object(shmfs):
    x = util.new_object(shmfs, 'x', 'i64', '1\n')
    assert util.errno_of(os.removexattr, x, LIFETIME) == errno.ENODATA
    assert util.errno_of(os.getxattr, x, LIFETIME) == errno.ENODATA
    assert_kept(shmfs, 'x', '1\n')
