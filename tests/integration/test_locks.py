"""flock(2) and fcntl(2) locks kept by the daemon: one lock per object
whichever view and whichever kind, so shell `flock MNT/x`, Python flock and
lockf on MNT/.raw/x and `shmfs add` (which waits for an exclusive holder)
all exclude one another.  Blocking requests queue without holding up other
requests; locks go with the holder's close or death; an interrupted waiter
goes away; F_GETLK names the holder."""

import errno
import fcntl
import os
import select
import signal
import struct
import subprocess
import time

import pytest

import util

# -- helpers ----------------------------------------------------------------

HOLDER = r'''
import fcntl, os, sys
path, kind = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR)
{'flock': lambda: fcntl.flock(fd, fcntl.LOCK_EX),
 'flock-sh': lambda: fcntl.flock(fd, fcntl.LOCK_SH),
 'lockf': lambda: fcntl.lockf(fd, fcntl.LOCK_EX),
 'lockf-sh': lambda: fcntl.lockf(fd, fcntl.LOCK_SH)}[kind]()
print('locked', flush=True)
if sys.stdin.readline().strip() == 'close':
    os.close(fd)
    print('closed', flush=True)
    sys.stdin.read()
'''


def read_line(proc, timeout):
    """A line of proc's stdout within timeout, else None."""
    fd = proc.stdout.fileno()
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return None
    return proc.stdout.readline()


class Holder:
    """A process holding a lock on path until close() (it closes its fd and
    stays alive) or stop()/kill()."""

    def __init__(self, path, kind='flock'):
        self.proc = subprocess.Popen(
            [util.PYTHON, '-c', HOLDER, path, kind], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = read_line(self.proc, 10)
        if line != 'locked\n':
            self.kill()
            raise AssertionError(f'holder did not lock {path} ({kind}): '
                                 f'{line!r} {self.proc.stderr.read()}')

    @property
    def pid(self):
        return self.proc.pid

    def close(self):
        """Closes the locked fd; the process stays."""
        self.proc.stdin.write('close\n')
        self.proc.stdin.flush()
        assert read_line(self.proc, 10) == 'closed\n'

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            util.reap(self.proc)
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()
        if not self.proc.stdin.closed:
            self.proc.stdin.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def flock_cmd(path, *opts, command='true'):
    return ['flock', *opts, path, '-c', command]


def spawn(args):
    return subprocess.Popen(args, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def still_waiting(proc, secs=0.4):
    time.sleep(secs)
    return proc.poll() is None


def kill_all(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate()


@pytest.fixture
def x(shmfs):
    return util.new_object(shmfs, 'x', 'i64', '0\n')


# -- the test: four kinds of incrementer, one exact count ------------

SHELL_INCREMENTER = (
    'i=0; while [ $i -lt "$N" ]; do '
    'flock "$X" -c \'v=$(cat "$X"); echo $((v+1)) > "$X"\' || exit 1; '
    'i=$((i+1)); done')

PY_INCREMENTER = r'''
import fcntl, os, struct, sys
raw, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(raw, os.O_RDWR)
lock, unlock = {
    'flock': (lambda: fcntl.flock(fd, fcntl.LOCK_EX),
              lambda: fcntl.flock(fd, fcntl.LOCK_UN)),
    'lockf': (lambda: fcntl.lockf(fd, fcntl.LOCK_EX),
              lambda: fcntl.lockf(fd, fcntl.LOCK_UN)),
}[kind]
for _ in range(n):
    lock()
    v = struct.unpack('=q', os.pread(fd, 8, 0))[0]
    os.pwrite(fd, struct.pack('=q', v + 1), 0)
    unlock()
os.close(fd)
'''

CLI_INCREMENTER = (
    'i=0; while [ $i -lt "$N" ]; do '
    '"$SHMFS" add "$X" 1 >/dev/null || exit 1; i=$((i+1)); done')


@util.both_modes
def test_mixed_incrementers_exact(shmfs, x):
    n_shell, n_py, n_cli = 40, 150, 40
    env = dict(os.environ, X=x, SHMFS=util.SHMFS_BIN)
    procs = []
    try:
        for _ in range(2):
            procs.append(subprocess.Popen(
                ['sh', '-c', SHELL_INCREMENTER], env=dict(env, N=str(n_shell)),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True))
            procs.append(subprocess.Popen(
                ['sh', '-c', CLI_INCREMENTER], env=dict(env, N=str(n_cli)),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True))
            for kind in ('flock', 'lockf'):
                procs.append(spawn([util.PYTHON, '-c', PY_INCREMENTER,
                                    shmfs.r('x'), kind, str(n_py)]))
        for p in procs:
            rc, _, err = util.finish(p, 90)
            assert rc == 0, f'{p.args}: {err}'
    finally:
        kill_all(procs)
    want = 2 * (n_shell + n_cli + 2 * n_py)
    assert util.read_text(x) == f'{want}\n'
    assert struct.unpack('=q', util.read_bytes(shmfs.r('x')))[0] == want


# -- conflicts ---------------------------------------------------------------

@util.both_modes
@pytest.mark.parametrize('kind', ['flock', 'lockf'])
@pytest.mark.parametrize('held_view', ['text', 'raw'])
def test_nonblocking_conflict(shmfs, x, kind, held_view):
    held = x if held_view == 'text' else shmfs.r('x')
    with Holder(held, kind):
        for path in (x, shmfs.r('x')):
            r = subprocess.run(flock_cmd(path, '-n'), timeout=10)
            assert r.returncode == 1, f'flock -n {path} while held'
            r = subprocess.run(flock_cmd(path, '-s', '-n'), timeout=10)
            assert r.returncode == 1, f'flock -s -n {path} while held'
            with util.opened(path) as fd:
                e = util.errno_of(fcntl.flock, fd,
                                  fcntl.LOCK_EX | fcntl.LOCK_NB)
                assert e == errno.EWOULDBLOCK, util.ename(e)
                e = util.errno_of(fcntl.lockf, fd,
                                  fcntl.LOCK_EX | fcntl.LOCK_NB)
                assert e in (errno.EAGAIN, errno.EACCES), util.ename(e)
        # another object is not locked
        y = util.new_object(shmfs, 'y', 'i64', '0\n')
        assert subprocess.run(flock_cmd(y, '-n'), timeout=10).returncode == 0
    # released with the holder
    assert subprocess.run(flock_cmd(x, '-n'), timeout=10).returncode == 0


@util.both_modes
@pytest.mark.parametrize('kind', ['flock-sh', 'lockf-sh'])
def test_shared_locks(shmfs, x, kind):
    with Holder(shmfs.r('x'), kind):
        assert subprocess.run(flock_cmd(x, '-s', '-n'),
                              timeout=10).returncode == 0
        assert subprocess.run(flock_cmd(x, '-n'), timeout=10).returncode == 1
    assert subprocess.run(flock_cmd(x, '-n'), timeout=10).returncode == 0


# -- waiters -----------------------------------------------------------------

WAITER_LOCKF = r'''
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
print('granted', flush=True)
'''


@util.both_modes
@pytest.mark.parametrize('kind', ['flock', 'lockf'])
@pytest.mark.parametrize('waiter', ['flock(1)', 'lockf'])
def test_waiter_granted_when_holder_closes(shmfs, x, kind, waiter):
    with Holder(shmfs.r('x'), kind) as holder:
        if waiter == 'flock(1)':
            w = spawn(flock_cmd(x, command='echo granted'))
        else:
            w = spawn([util.PYTHON, '-c', WAITER_LOCKF, x])
        try:
            assert still_waiting(w), 'the waiter got a held lock'
            t0 = time.monotonic()
            holder.close()
            rc, out, err = util.finish(w, 5)
        finally:
            kill_all([w])
        assert (rc, out) == (0, 'granted\n'), err
        assert time.monotonic() - t0 < 3


@util.both_modes
@pytest.mark.parametrize('kind', ['flock', 'lockf'])
def test_killed_holder_releases(shmfs, x, kind):
    with Holder(x, kind) as holder:
        w = spawn(flock_cmd(shmfs.r('x'), command='echo granted'))
        try:
            assert still_waiting(w)
            holder.kill(signal.SIGKILL)
            rc, out, err = util.finish(w, 5)
        finally:
            kill_all([w])
        assert (rc, out) == (0, 'granted\n'), err
    assert subprocess.run(flock_cmd(x, '-n'), timeout=10).returncode == 0


@util.both_modes
@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT],
                         ids=['SIGTERM', 'SIGINT'])
def test_interrupted_waiter_goes_away(shmfs, x, sig):
    with Holder(shmfs.r('x'), 'flock') as holder:
        w = spawn(flock_cmd(x, command='echo granted'))
        try:
            assert still_waiting(w)
            w.send_signal(sig)
            rc, out, _ = util.finish(w, 5)
        finally:
            kill_all([w])
        assert rc == -sig and out == ''
        # the daemon still serves, the holder still holds
        assert util.cat(x) == '0\n'
        assert util.echo(x, '5').returncode == 0
        assert subprocess.run(flock_cmd(x, '-n'), timeout=10).returncode == 1
        holder.close()
        # no ghost holder: the interrupted request was not granted later
        r = subprocess.run(flock_cmd(x, '-n'), timeout=10)
        assert r.returncode == 0, 'lock still held after holder closed'
    assert shmfs.alive()


EINTR_WAITER = r'''
import fcntl, os, signal, sys
class Interrupted(Exception):
    pass
def handler(signum, frame):
    raise Interrupted()
signal.signal(signal.SIGUSR1, handler)
fd = os.open(sys.argv[1], os.O_RDWR)
print('waiting', flush=True)
try:
    {'flock': lambda: fcntl.flock(fd, fcntl.LOCK_EX),
     'lockf': lambda: fcntl.lockf(fd, fcntl.LOCK_EX)}[sys.argv[2]]()
    print('granted', flush=True)
except Interrupted:
    print('interrupted', flush=True)
# the fd still works and the lock is still held by the other process
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print('got it', flush=True)
except BlockingIOError:
    print('still held', flush=True)
'''


@util.both_modes
@pytest.mark.parametrize('kind', ['flock', 'lockf'])
def test_waiter_with_handler_gets_eintr(shmfs, x, kind):
    """A signal with a handler interrupts the blocked request (the daemon
    answers EINTR) and the process goes on."""
    with Holder(x, 'flock') as holder:
        w = subprocess.Popen([util.PYTHON, '-c', EINTR_WAITER, shmfs.r('x'),
                              kind], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            assert read_line(w, 10) == 'waiting\n'
            assert still_waiting(w)
            w.send_signal(signal.SIGUSR1)
            rc, out, err = util.finish(w, 5)
        finally:
            kill_all([w])
        assert (rc, out) == (0, 'interrupted\nstill held\n'), err
        holder.close()
        assert subprocess.run(flock_cmd(x, '-n'), timeout=10).returncode == 0


@util.both_modes
def test_queued_waiters_do_not_block_other_requests(shmfs, x):
    y = util.new_object(shmfs, 'y', 'i64', '1\n')
    waiters = []
    with Holder(x, 'flock') as holder:
        try:
            # more waiters than libfuse's default of 10 worker threads
            for i in range(8):
                waiters.append(spawn(flock_cmd(
                    x if i % 2 else shmfs.r('x'), command='true')))
                waiters.append(spawn([util.PYTHON, '-c', WAITER_LOCKF,
                                      shmfs.r('x') if i % 2 else x]))
            time.sleep(0.5)
            assert all(w.poll() is None for w in waiters)

            t0 = time.monotonic()
            assert util.cat(y) == '1\n'
            assert util.echo(y, '2').returncode == 0
            assert util.cat(y) == '2\n'
            assert util.cat(x) == '0\n'
            assert util.echo(x, '3').returncode == 0
            assert util.cat(x) == '3\n'
            assert util.read_bytes(shmfs.r('x')) == struct.pack('=q', 3)
            assert util.xattr(x, 'user.shmfs.type') == 'i64'
            assert sorted(os.listdir(shmfs.path)) == ['x', 'y']
            r = subprocess.run([util.SHMFS_BIN, 'add', y, '1'],
                               stdout=subprocess.PIPE, text=True, timeout=10)
            assert (r.returncode, r.stdout) == (0, '3\n')
            assert subprocess.run(flock_cmd(y, '-n'),
                                  timeout=10).returncode == 0
            util.new_object(shmfs, 'z', 'f64', '1.5\n')
            assert util.cat(shmfs.p('z')) == '1.5\n'
            elapsed = time.monotonic() - t0
            assert elapsed < 3, f'other requests took {elapsed:.1f} s'

            holder.close()
            for w in waiters:
                rc, _, err = util.finish(w, 10)
                assert rc == 0, err
        finally:
            kill_all(waiters)
    assert util.cat(x) == '3\n'


# -- F_GETLK ---------------------------------------------------------------

FLOCK_STRUCT = 'hhxxxxqqi4x'     # struct flock on 64-bit Linux


def getlk(path, l_type):
    with util.opened(path, os.O_RDWR) as fd:
        arg = struct.pack(FLOCK_STRUCT, l_type, os.SEEK_SET, 0, 0, 0)
        res = fcntl.fcntl(fd, fcntl.F_GETLK, arg)
    l_type, _, _, _, l_pid = struct.unpack(FLOCK_STRUCT, res)
    return l_type, l_pid


@util.both_modes
@pytest.mark.parametrize('held_view,query_view',
                         [('raw', 'text'), ('text', 'raw'), ('raw', 'raw')])
def test_getlk_reports_holder_pid(shmfs, x, held_view, query_view):
    held = x if held_view == 'text' else shmfs.r('x')
    query = x if query_view == 'text' else shmfs.r('x')
    assert getlk(query, fcntl.F_WRLCK)[0] == fcntl.F_UNLCK
    with Holder(held, 'lockf') as holder:
        assert getlk(query, fcntl.F_WRLCK) == (fcntl.F_WRLCK, holder.pid)
        assert getlk(query, fcntl.F_RDLCK) == (fcntl.F_WRLCK, holder.pid)
    with Holder(held, 'lockf-sh') as holder:
        assert getlk(query, fcntl.F_RDLCK)[0] == fcntl.F_UNLCK
        assert getlk(query, fcntl.F_WRLCK) == (fcntl.F_RDLCK, holder.pid)
    assert getlk(query, fcntl.F_WRLCK)[0] == fcntl.F_UNLCK


@util.both_modes
def test_getlk_sees_flock_holder(shmfs, x):
    """One lock per object whichever kind: an flock holder conflicts with a
    record lock, and F_GETLK names it."""
    with Holder(shmfs.r('x'), 'flock') as holder:
        l_type, l_pid = getlk(x, fcntl.F_WRLCK)
        assert l_type != fcntl.F_UNLCK
        assert l_pid == holder.pid
