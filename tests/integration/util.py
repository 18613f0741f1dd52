"""Helpers for the shmfs integration tests: running the daemon, file I/O that
reports errnos, child processes, xattrs and renameat2.

The daemon is run with G_DEBUG=fatal-warnings, the way $SHMFS_LAUNCH says:
  foreground  (default) `shmfs -f ARGS MNT`, stdout/stderr captured to a log
              file that teardown reads;
  background  `shmfs ARGS MNT`, as tools/setup.sh and users run it: the
              command returns once mounted and the daemon lives on detached,
              its output gone to /dev/null (libfuse's fuse_daemonize);
  mount       `mount -t fuse 'SHMFS_BIN#shmfs' MNT -o OPTS`, as an fstab
              line does (mount.fuse3 runs the daemon, which detaches).
A detached daemon is reaped all the same: the test process is a child
subreaper (PR_SET_CHILD_SUBREAPER), so the daemon becomes its child when the
command that started it exits, and its exit status is checked as in the
foreground.  With no output to read, its sanitizer reports go to files
(log_path) and the kernel log is searched for a crash of its pid.

A mount is never leaked: every started daemon is remembered until it has
been stopped, and an atexit hook unmounts whatever is left (e.g. after a
second Ctrl-C).
"""

import atexit
import contextlib
import ctypes
import errno
import mmap
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SHMFS_BIN = os.environ.get('SHMFS_BIN') or os.path.join(
    HERE, '..', '..', 'build', 'fs', 'shmfs')
PYTHON = sys.executable
EXAMPLES = os.path.realpath(os.path.join(HERE, '..', '..', 'examples'))

_INCREMENTER = '''
import sys
import shmfs

path, how, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
v = shmfs.attach(path)
for _ in range(n):
    if how == 'lock':
        with v.get_lock():
            v.value += 1
    else:
        v.add(1)
'''


def finish(proc, timeout):
    """Waits for proc; returns (returncode, stdout, stderr); kills it and
    fails when it does not end in time."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f'{proc.args} did not finish in {timeout} s')
    return proc.returncode, out, err


def finish_all(procs, timeout):
    """Waits for every proc, each of which must exit 0; returns their
    stdouts.  Kills them all when one does not end in time."""
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError(f'{p.args} did not finish')
        assert p.returncode == 0, f'{p.args} failed: {err}'
        outs.append(out)
    return outs


def reap(proc, timeout=10):
    """Closes proc's stdin (its cue to end) and waits for it; kills it if it
    lingers."""
    proc.stdin.close()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_shmfs(args, timeout=10, prefix=()):
    """Runs shmfs to completion (no mount expected); returns (rc, out, err)."""
    return finish(subprocess.Popen(list(prefix) + [SHMFS_BIN] + list(args),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True,
                                   env=dict(os.environ, G_DEBUG='fatal-warnings')),
                  timeout)


def python_incrementer(tmp_path):
    """Writes a script, run as `SCRIPT PATH lock|add N`, that adds 1 N times
    to the object at PATH through the Python client: under get_lock() (a
    read-modify-write of .value) or with the atomic add().  Returns its path."""
    script = tmp_path / 'incrementer.py'
    script.write_text(_INCREMENTER)
    return str(script)


# A daemon line matching this fails the test unless the test expected it.
SUSPICIOUS = re.compile(
    r'error|warning|crash|^==[0-9]+==|runtime error|AddressSanitizer',
    re.IGNORECASE)
REJECTED = re.compile(r'^shmfs: rejected')

TYPE = 'user.shmfs.type'
XATTRS = ('user.shmfs.type', 'user.shmfs.dtype', 'user.shmfs.shape',
          'user.shmfs.nbytes', 'user.shmfs.version')

LAUNCH = os.environ.get('SHMFS_LAUNCH', 'foreground')
assert LAUNCH in ('foreground', 'background', 'mount'), LAUNCH

MODES = ('cached', 'passthrough')
# Runs a test once per coherence mode (DESIGN.md section 6).
both_modes = pytest.mark.parametrize(
    'shmfs', [('-o', f'mode={m}') for m in MODES], ids=MODES, indirect=True)

_live = set()


def _emergency_cleanup():
    for daemon in list(_live):
        daemon.force_stop()


atexit.register(_emergency_cleanup)


def fusermount_u(mnt, lazy=False):
    cmd = ['fusermount3', '-u'] + (['-z'] if lazy else []) + [mnt]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30)


_PR_SET_CHILD_SUBREAPER = 36


class Detached:
    """A daemon that detached from the command that started it, reaped by
    this process as its subreaper; quacks like the Popen of a -f daemon."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def _status(self, status):
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self._status(status)
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f'shmfs[{self.pid}]', timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, sig):
        if self.returncode is None:
            os.kill(self.pid, sig)

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)


def _children_named(name):
    """Pids of this process's children whose command name is name."""
    me, found = os.getpid(), []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index('(') + 1:stat.rindex(')')]
        ppid = int(stat[stat.rindex(')') + 2:].split()[1])
        if ppid == me and comm == name:
            found.append(int(entry))
    return found


class Daemon:
    """One shmfs process mounted on its own mountpoint."""

    prefix = []              # runs the daemon as: prefix + [shmfs, ...]
    comm = 'shmfs'           # the detached daemon's process name

    def __init__(self, mnt, log_path, args=()):
        self.path = mnt
        self.raw = os.path.join(mnt, '.raw')
        self.log_path = log_path
        self.args = list(args)
        self.proc = None
        self.expected = []
        self.launch = LAUNCH if not self.prefix else 'foreground'
        self.sanitizer_log = log_path + '.sanitizer'

    # -- life cycle ---------------------------------------------------------
    def start(self):
        env = dict(os.environ, G_DEBUG='fatal-warnings')
        if self.launch == 'foreground':
            with open(self.log_path, 'wb') as log:
                self.proc = subprocess.Popen(
                    self.prefix + [SHMFS_BIN, '-f'] + self.args + [self.path],
                    stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, env=env)
            _live.add(self)
            return
        self._start_detached(env)

    def _launch_command(self):
        if self.launch == 'background':
            return [SHMFS_BIN] + self.args + [self.path]
        opts, args = [], list(self.args)
        while args:
            a = args.pop(0)
            assert a == '-o' and args, \
                f'mount -t fuse passes -o options only, not {a!r}'
            opts.append(args.pop(0))
        return (['mount', '-t', 'fuse', f'{SHMFS_BIN}#shmfs', self.path]
                + (['-o', ','.join(opts)] if opts else []))

    def _start_detached(self, env):
        # The kernel log keeps lines of earlier processes, whose pids come
        # back: only what is logged from now on can be this daemon's.
        with open('/proc/uptime') as f:
            self.started_uptime = float(f.read().split()[0])
        for name in ('ASAN_OPTIONS', 'UBSAN_OPTIONS'):
            env[name] = ':'.join(filter(None, [
                env.get(name), f'log_path={self.sanitizer_log}']))
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, \
            os.strerror(ctypes.get_errno())
        before = set(_children_named(self.comm))
        with open(self.log_path, 'wb') as log:
            r = subprocess.run(self._launch_command(), stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT, env=env,
                               timeout=30)
        pids = set(_children_named(self.comm)) - before
        if len(pids) == 1:
            self.proc = Detached(pids.pop())
            _live.add(self)
        elif pids:
            raise AssertionError(f'several daemons detached: {pids}')
        if r.returncode != 0 or self.proc is None or not self.mounted():
            if self.proc is not None:
                self.force_stop()
            elif self.mounted():
                fusermount_u(self.path, lazy=True)
            raise AssertionError(
                f'{self._launch_command()} exited {r.returncode}, daemon '
                f'{"found" if self.proc else "not found"}, mounted: '
                f'{self.mounted()}:\n{self.log()}')

    def mounted(self):
        # From mountinfo: os.path.ismount misses a mount whose daemon died
        # (stat fails with ENOTCONN), which teardown must still unmount.
        with open('/proc/self/mountinfo') as f:
            return any(line.split()[4] == self.path for line in f)

    def unmount(self):
        """fusermount3 -u; returns what went wrong, or None."""
        r = fusermount_u(self.path)
        if r.returncode != 0:
            return 'fusermount3 -u failed: ' + r.stderr.decode(errors='replace').strip()
        return None

    def wait_for_mount(self, timeout=10):
        deadline = time.monotonic() + timeout
        while not self.mounted():
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(
                    f'shmfs exited with {rc} before mounting:\n{self.log()}')
            if time.monotonic() > deadline:
                raise AssertionError(
                    f'shmfs did not mount within {timeout} s:\n{self.log()}')
            time.sleep(0.1)

    def stop(self):
        """Unmounts and reaps the daemon; returns a list of problems."""
        problems = []
        if self.mounted():
            problem = self.unmount()
            if problem:
                problems.append(problem)
                fusermount_u(self.path, lazy=True)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            problems.append('shmfs did not exit after unmount')
            self.proc.terminate()
            try:
                rc = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
        _live.discard(self)
        if self.mounted():
            problems.append('mountpoint still mounted after teardown')
            fusermount_u(self.path, lazy=True)
        if rc != 0:
            problems.append(f'shmfs exited with status {rc}')
        problems += [f'unexpected daemon output: {line!r}'
                     for line in self.suspicious_lines()]
        if self.launch != 'foreground':
            problems += self.crash_reports()
        return problems

    def crash_reports(self):
        """What a detached daemon left of a crash: sanitizer report files
        and kernel log lines naming its pid (traps, segfaults)."""
        found = []
        folder, base = os.path.split(self.sanitizer_log)
        for name in sorted(os.listdir(folder)):
            if name.startswith(base):
                with open(os.path.join(folder, name), errors='replace') as f:
                    found.append(f'sanitizer report {name}:\n{f.read()}')
        r = subprocess.run(['dmesg'], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True,
                           errors='replace')
        found += [f'kernel log: {line}' for line in r.stdout.splitlines()
                  if f'shmfs[{self.proc.pid}]' in line and
                  _kernel_time(line) >= getattr(self, 'started_uptime', 0) - 1]
        return found

    def take_down(self):
        """Stops the daemon if it was started, prints its output, removes the
        mountpoint; returns a list of problems (as stop())."""
        problems = self.stop() if self.proc else []
        log = self.log()
        if log:
            print(f'--- shmfs output ({self.log_path}) ---\n{log}')
        try:
            os.rmdir(self.path)
        except OSError as e:
            problems.append(f'cannot remove mountpoint {self.path}: {e}')
        return problems

    def force_stop(self):
        if self.mounted():
            fusermount_u(self.path, lazy=True)
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _live.discard(self)

    # -- output ---------------------------------------------------------------
    def expect_output(self, pattern):
        """Registers a regex for daemon lines this test expects to be
        suspicious-looking (matched with re.search, case-insensitive)."""
        self.expected.append(re.compile(pattern, re.IGNORECASE))

    def log(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode(errors='replace')
        except FileNotFoundError:
            return ''

    def suspicious_lines(self):
        return [line for line in self.log().splitlines()
                if SUSPICIOUS.search(line)
                and not any(p.search(line) for p in self.expected)]

    def rejected_count(self):
        return sum(1 for line in self.log().splitlines()
                   if REJECTED.match(line))

    def wait_rejected(self, before, timeout=2):
        """True once the log holds more "shmfs: rejected" lines than before.
        A detached daemon logs nothing (its output is /dev/null): True."""
        if self.launch != 'foreground':
            return True
        deadline = time.monotonic() + timeout
        while self.rejected_count() <= before:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    # -- state --------------------------------------------------------------
    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None and self.mounted()

    def mode(self):
        """The coherence mode in force, from the root's user.shmfs.mode."""
        return os.getxattr(self.path, 'user.shmfs.mode').decode()

    def p(self, name):
        return os.path.join(self.path, name)

    def r(self, name):
        return os.path.join(self.raw, name)

    def memfd_count(self):
        """Memfds the daemon holds, by an fd or by a mapping."""
        seen = set()
        for kind in ('fd', 'map_files'):
            where = f'/proc/{self.pid}/{kind}'
            for entry in os.listdir(where):
                link = os.path.join(where, entry)
                try:
                    if not os.readlink(link).startswith('/memfd:'):
                        continue
                    st = os.stat(link)
                except OSError:         # closed or unmapped meanwhile
                    continue
                seen.add((st.st_dev, st.st_ino))
        return len(seen)


def _kernel_time(line):
    """The seconds since boot a dmesg line starts with ([ 123.456789])."""
    m = re.match(r'\[\s*(\d+\.\d+)\]', line)
    return float(m.group(1)) if m else float('inf')


def make_mountpoint():
    """A fresh empty directory that every user can traverse."""
    d = tempfile.mkdtemp(prefix='shmfs-mnt-', dir='/tmp')
    os.chmod(d, 0o755)
    return d


# -- errno-reporting file I/O -------------------------------------------------

def errno_of(fn, *args, **kw):
    """Runs fn; returns 0 or the errno of the OSError it raised."""
    try:
        fn(*args, **kw)
    except OSError as e:
        return e.errno
    return 0


def ename(e):
    return errno.errorcode.get(e, str(e)) if e else 'success'


def _b(data):
    """Text as bytes; what is not UTF-8 (lone surrogates) as the bytes
    surrogateescape stands for."""
    return data.encode('utf-8', 'surrogateescape') if isinstance(data, str) else data


def write_text(path, data, create=False):
    """Writes data in one write(2) on a fresh O_WRONLY|O_TRUNC open, like
    `echo` does; raises OSError from write or close."""
    data = _b(data)
    flags = os.O_WRONLY | os.O_TRUNC | (os.O_CREAT if create else 0)
    fd = os.open(path, flags, 0o644)
    try:
        n = os.write(fd, data)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    os.close(fd)
    assert n == len(data), f'short text write {n} of {len(data)} to {path}'


def try_write_text(path, data):
    """One write(2) then close; returns (errno of write, errno of close)."""
    data = _b(data)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    werr = 0
    try:
        n = os.write(fd, data)
        assert n == len(data), f'short text write {n} of {len(data)}'
    except OSError as e:
        werr = e.errno
    cerr = errno_of(os.close, fd)
    return werr, cerr


def read_bytes(path):
    with open(path, 'rb', buffering=0) as f:
        chunks = []
        while True:
            b = f.read(1 << 20)
            if not b:
                return b''.join(chunks)
            chunks.append(b)


def read_text(path):
    return read_bytes(path).decode()


def set_type(path, spec):
    os.setxattr(path, TYPE, _b(spec))


def xattr(path, name):
    return os.getxattr(path, name).decode()


def new_object(mount, name, spec, text=None):
    """Creates MNT/name, types it and optionally writes its first value."""
    path = mount.p(name)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    set_type(path, spec)
    if text is not None:
        write_text(path, text)
    return path


@contextlib.contextmanager
def mapped(path, length=None, prot=mmap.PROT_READ | mmap.PROT_WRITE):
    """MAP_SHARED mapping of path (its whole size by default)."""
    flags = os.O_RDWR if prot & mmap.PROT_WRITE else os.O_RDONLY
    fd = os.open(path, flags)
    try:
        if length is None:
            length = os.fstat(fd).st_size
        m = mmap.mmap(fd, length, mmap.MAP_SHARED, prot)
    finally:
        os.close(fd)
    try:
        yield m
    finally:
        m.close()


@contextlib.contextmanager
def opened(path, flags=os.O_RDWR):
    """An fd for the with block; close() errors raise unless the block did."""
    fd = os.open(path, flags)
    try:
        yield fd
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    os.close(fd)


def pread_all(fd, size):
    out = bytearray()
    while len(out) < size:
        b = os.pread(fd, size - len(out), len(out))
        if not b:
            break
        out += b
    return bytes(out)


# -- processes ----------------------------------------------------------------

def sh(cmd, cwd=None, input=None, timeout=60, user=None):
    """Runs a shell command line; returns CompletedProcess with str output."""
    return subprocess.run(['sh', '-c', cmd], cwd=cwd,
                          input='' if input is None else input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, errors='surrogateescape', timeout=timeout,
                          user=user)


def sh_args(script, *args, user=None):
    """Runs `sh -c script sh ARGS...` (arguments as $1, $2 ...)."""
    return subprocess.run(['sh', '-c', script, 'sh'] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, errors='surrogateescape', timeout=60,
                          user=user)


def echo(path, value):
    """`printf '%s\\n' VALUE > PATH`: echo without escape handling."""
    return sh_args('printf "%s\\n" "$1" > "$2"', value, path)


def cat(path):
    r = sh_args('cat "$1"', path)
    assert r.returncode == 0, f'cat {path}: {r.stderr.strip()}'
    return r.stdout


def sh_ok(cmd, cwd=None, input=None):
    r = sh(cmd, cwd=cwd, input=input)
    assert r.returncode == 0, \
        f'`{cmd}` failed ({r.returncode}): {r.stderr.strip()}'
    return r.stdout


def child(code, *args, input=None, timeout=60):
    """Runs python code in a separate process; returns its stdout (str).
    The code sees its arguments in sys.argv[1:]."""
    r = subprocess.run([PYTHON, '-c', code] + [str(a) for a in args],
                       input='' if input is None else input,
                       stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    assert r.returncode == 0, \
        f'child process failed ({r.returncode}):\n{r.stderr}'
    return r.stdout


# -- renameat2 ----------------------------------------------------------------

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_SYS_renameat2 = {'x86_64': 316, 'aarch64': 276}
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(old, new, flags):
    """renameat2(2) through libc's syscall(), as glibc < 2.28 lacks it."""
    nr = _SYS_renameat2[os.uname().machine]
    at = ctypes.c_int(_AT_FDCWD)
    if _libc.syscall(ctypes.c_long(nr),
                     at, ctypes.c_char_p(os.fsencode(old)),
                     at, ctypes.c_char_p(os.fsencode(new)),
                     ctypes.c_uint(flags)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old, None, new)


def poll_until(predicate, timeout=2.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
