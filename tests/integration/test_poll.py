"""poll(2), select(2) and epoll on the text view wake with POLLPRI|POLLERR
once the value changed after this open file's last read at offset 0 (as
sysfs_notify does): on a text write, write(2) on .raw, an atomic operation,
typing, and a mapped store made known by fsync(2) or SHMFS_IOC_NOTIFY; and
`shmfs watch` prints each new value."""

import fcntl
import os
import select
import signal
import struct
import subprocess
import time

import pytest

import util

WAKE = 3.0       # a change must wake a poller within this many seconds
QUIET = 0.2      # how long a poller with nothing to report is watched


def rearm(fd):
    """Reads the text from offset 0, as a poller must after each wakeup."""
    return os.pread(fd, 4096, 0).decode()


def poll_pri(fd, timeout):
    """poll(2) for POLLPRI; returns the revents (0 on timeout)."""
    p = select.poll()
    p.register(fd, select.POLLPRI)
    events = p.poll(timeout * 1000)
    return events[0][1] if events else 0


def woke(revents):
    return revents & select.POLLPRI and revents & select.POLLERR


@pytest.fixture
def x(shmfs):
    return util.new_object(shmfs, 'x', 'i64', '1\n')


def cli(*args):
    return subprocess.run([util.SHMFS_BIN] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=30)


# -- what wakes a poller ----------------------------------------------------

def change_text(shmfs, x):
    util.write_text(x, '2\n')


def change_raw_pwrite(shmfs, x):
    with util.opened(shmfs.r('x')) as fd:
        os.pwrite(fd, struct.pack('=q', 2), 0)


def change_cli_add(shmfs, x):
    r = cli('add', x, 1)
    assert (r.returncode, r.stdout) == (0, '2\n'), r.stderr


def change_cli_set(shmfs, x):
    r = cli('set', x, 2)
    assert r.returncode == 0, r.stderr


def _mapped_store(shmfs, tell):
    """Stores 2 through a mapping of .raw/x in another process, which then
    tells the daemon: fsync on the raw fd, fsync on a text fd, or
    SHMFS_IOC_NOTIFY on either."""
    code = r'''
import fcntl, mmap, os, struct, sys
raw, text, tell = sys.argv[1:4]
fd = os.open(raw, os.O_RDWR)
m = mmap.mmap(fd, 8, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
struct.pack_into('=q', m, 0, 2)
if tell == 'fsync-raw':
    os.fsync(fd)
elif tell == 'fsync-text':
    t = os.open(text, os.O_RDONLY); os.fsync(t); os.close(t)
elif tell == 'notify-raw':
    fcntl.ioctl(fd, (ord('S') << 8) | 2)
elif tell == 'notify-text':
    t = os.open(text, os.O_RDONLY); fcntl.ioctl(t, (ord('S') << 8) | 2)
    os.close(t)
m.close()
os.close(fd)
'''
    util.child(code, shmfs.r('x'), shmfs.p('x'), tell)


def change_map_fsync_raw(shmfs, x):
    _mapped_store(shmfs, 'fsync-raw')


def change_map_fsync_text(shmfs, x):
    _mapped_store(shmfs, 'fsync-text')


def change_map_notify_raw(shmfs, x):
    _mapped_store(shmfs, 'notify-raw')


def change_map_notify_text(shmfs, x):
    _mapped_store(shmfs, 'notify-text')


CHANGES = [change_text, change_raw_pwrite, change_cli_add, change_cli_set,
           change_map_fsync_raw, change_map_fsync_text, change_map_notify_raw,
           change_map_notify_text]


@util.both_modes
@pytest.mark.parametrize('change', CHANGES,
                         ids=[c.__name__[len('change_'):] for c in CHANGES])
def test_poll_wakes_on_change(shmfs, x, change):
    with util.opened(x, os.O_RDONLY) as fd:
        assert rearm(fd) == '1\n'
        assert poll_pri(fd, QUIET) == 0, 'woke with nothing changed'
        t0 = time.monotonic()
        change(shmfs, x)
        revents = poll_pri(fd, WAKE)
        assert woke(revents), f'revents {revents:#x} after {change.__name__}'
        assert time.monotonic() - t0 < WAKE
        # stays ready until read at 0, then quiet again
        assert woke(poll_pri(fd, 0))
        assert rearm(fd) == '2\n'
        assert poll_pri(fd, QUIET) == 0, 'woke again without a new change'


@util.both_modes
def test_poller_blocked_before_change(shmfs, x):
    """A poller already sleeping in poll(2) is woken by another process."""
    code = r'''
import os, select, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
os.pread(fd, 4096, 0)
p = select.poll(); p.register(fd, select.POLLPRI)
print('polling', flush=True)
t0 = time.monotonic()
ev = p.poll(10000)
print(ev[0][1] if ev else 0, round(time.monotonic() - t0, 2), flush=True)
print(os.pread(fd, 4096, 0).decode(), end='', flush=True)
'''
    proc = subprocess.Popen([util.PYTHON, '-c', code, x],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline() == 'polling\n'
        time.sleep(0.5)
        assert proc.poll() is None
        assert cli('add', x, 41).returncode == 0
        out, err = proc.communicate(timeout=WAKE + 2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    first, value = out.splitlines()
    revents, elapsed = first.split()
    assert woke(int(revents)), (out, err)
    assert float(elapsed) < 0.5 + WAKE
    assert value == '42'


@util.both_modes
@pytest.mark.parametrize('op', ['ioctl-add', 'ioctl-xchg'])
def test_poll_wakes_on_atomic_ioctl(shmfs, x, op):
    # struct shmfs_atomic: op, flags, index, operand, expected, result, ...
    req = (3 << 30) | (48 << 16) | (ord('S') << 8) | 1
    opn = {'ioctl-add': 1, 'ioctl-xchg': 3}[op]
    with util.opened(x, os.O_RDONLY) as fd, \
            util.opened(shmfs.r('x')) as other:
        rearm(fd)
        buf = bytearray(struct.pack('=IIQqqqII', opn, 0, 0, 5, 0, 0, 0, 0))
        fcntl.ioctl(other, req, buf, True)
        assert woke(poll_pri(fd, WAKE))
        assert rearm(fd) == {'ioctl-add': '6\n', 'ioctl-xchg': '5\n'}[op]


@util.both_modes
def test_poll_wakes_on_typing(shmfs):
    path = shmfs.p('u')
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
    with util.opened(path, os.O_RDONLY) as fd:
        assert rearm(fd) == ''
        assert poll_pri(fd, QUIET) == 0
        util.set_type(path, 'u16[2]')
        assert woke(poll_pri(fd, WAKE))
        assert rearm(fd) == '0 0\n'


@util.both_modes
def test_no_wake_without_change(shmfs, x):
    with util.opened(x, os.O_RDONLY) as fd:
        # a change before the last read at 0 does not count
        util.write_text(x, '7\n')
        assert rearm(fd) == '7\n'
        assert poll_pri(fd, QUIET) == 0
        # reading other objects, stat, getxattr and loads change nothing
        y = util.new_object(shmfs, 'y', 'i64', '0\n')
        util.write_text(y, '9\n')
        os.stat(x)
        util.xattr(x, 'user.shmfs.version')
        assert util.read_text(x) == '7\n'
        assert util.read_bytes(shmfs.r('x')) == struct.pack('=q', 7)
        assert cli('get', x).stdout == '7\n'
        assert poll_pri(fd, QUIET) == 0


@util.both_modes
def test_raw_writes_that_returned_are_accounted(shmfs, x):
    """A write(2) on .raw that has returned counts before the next read at 0
    (no late wakeup for a value already read) and is seen by an immediate
    poll (passthrough writes bypass the daemon: it must not lag behind)."""
    with util.opened(x, os.O_RDONLY) as fd, util.opened(shmfs.r('x')) as raw:
        for i in range(200):
            os.pwrite(raw, struct.pack('=q', i), 0)
            version = int(util.xattr(x, 'user.shmfs.version'))
            assert rearm(fd) == f'{i}\n'
            assert poll_pri(fd, 0) == 0, f'late wakeup for write {i}'
            os.pwrite(raw, struct.pack('=q', -i), 0)
            assert int(util.xattr(x, 'user.shmfs.version')) > version
            assert woke(poll_pri(fd, 0)), f'write {i} not seen at once'
        assert rearm(fd) == '-199\n'
        assert poll_pri(fd, QUIET) == 0


@util.both_modes
def test_each_open_file_rearms_separately(shmfs, x):
    with util.opened(x, os.O_RDONLY) as a, util.opened(x, os.O_RDONLY) as b:
        rearm(a)
        rearm(b)
        util.write_text(x, '2\n')
        assert woke(poll_pri(a, WAKE))
        assert woke(poll_pri(b, WAKE))
        assert rearm(a) == '2\n'
        assert poll_pri(a, QUIET) == 0
        assert woke(poll_pri(b, 0)), 'reading a re-armed b'


@util.both_modes
def test_select_exceptional(shmfs, x):
    with util.opened(x, os.O_RDONLY) as fd:
        rearm(fd)
        assert select.select([], [], [fd], QUIET) == ([], [], [])
        util.write_text(x, '3\n')
        assert select.select([], [], [fd], WAKE)[2] == [fd]
        assert rearm(fd) == '3\n'
        assert select.select([], [], [fd], QUIET) == ([], [], [])


@util.both_modes
def test_epoll_pri(shmfs, x):
    with util.opened(x, os.O_RDONLY) as fd:
        ep = select.epoll()
        try:
            rearm(fd)
            ep.register(fd, select.EPOLLPRI)
            assert ep.poll(QUIET) == []
            r = cli('add', x, 2)
            assert r.returncode == 0, r.stderr
            events = ep.poll(WAKE)
            assert len(events) == 1 and events[0][0] == fd
            assert events[0][1] & select.EPOLLPRI
            assert events[0][1] & select.EPOLLERR
            assert rearm(fd) == '3\n'
            assert ep.poll(QUIET) == []
            # a second change wakes the same registration again
            util.write_text(x, '4\n')
            assert ep.poll(WAKE)[0][1] & select.EPOLLPRI
        finally:
            ep.close()


# -- shmfs watch --------------------------------------------------------------

class LineReader:
    """Lines from a pipe, each waited for with a timeout."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b''

    def line(self, timeout):
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return line.decode()

    def rest(self, timeout):
        """Whatever arrives within timeout (to check nothing extra came)."""
        if select.select([self.fd], [], [], timeout)[0]:
            self.buf += os.read(self.fd, 4096)
        out, self.buf = self.buf, b''
        return out.decode()


@util.both_modes
@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM],
                         ids=['SIGINT', 'SIGTERM'])
def test_watch_prints_each_value(shmfs, x, sig):
    proc = subprocess.Popen([util.SHMFS_BIN, 'watch', x],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out = LineReader(proc.stdout)
        assert out.line(5) == '1'
        assert out.rest(QUIET) == '', 'printed without a change'
        for value in ('5', '-3', '12'):
            time.sleep(0.2)
            util.write_text(x, value + '\n')
            assert out.line(WAKE) == value
        time.sleep(0.2)
        assert cli('add', x, 30).returncode == 0
        assert out.line(WAKE) == '42'
        time.sleep(0.2)
        # a store through a mapping, made known by fsync: the value is
        # printed (the writeback and the fsync may each wake the watcher,
        # so it may come twice)
        change_map_fsync_raw(shmfs, x)
        assert out.line(WAKE) == '2'
        assert set(out.rest(QUIET).splitlines()) <= {'2'}
        proc.send_signal(sig)
        rc = proc.wait(timeout=5)
        err = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert rc == 0, err
    assert err == ''


@util.both_modes
def test_watch_array(shmfs):
    path = util.new_object(shmfs, 'a', 'i32[3]', '1 2 3\n')
    proc = subprocess.Popen([util.SHMFS_BIN, 'watch', path],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out = LineReader(proc.stdout)
        assert out.line(5) == '1 2 3'
        time.sleep(0.2)
        r = cli('add', path, '--index', 1, 5)
        assert r.returncode == 0, r.stderr
        assert out.line(WAKE) == '1 7 3'
        time.sleep(0.2)
        util.write_text(path, '4 5 6\n')
        assert out.line(WAKE) == '4 5 6'
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_watch_missing_path(shmfs):
    r = cli('watch', shmfs.p('nope'))
    assert r.returncode == 2
    assert r.stdout == ''
    assert len(r.stderr.splitlines()) == 1
