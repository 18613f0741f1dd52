"""An unprivileged mount (docs/running.md "Running the daemon"): shmfs run as nobody
mounts through the system's setuid fusermount3, picks cached mode under
mode=auto, keeps text, raw and mmap coherent for its user, refuses
mode=passthrough at start, and unmounts with `fusermount3 -u` run by nobody,
exiting 0.  Only the mounting user sees the mount (root included, without
allow_other).

/dev/fuse is 0600 on this machine (Debian ships 0666): each test that needs
an unprivileged mount makes it 0666 for its duration and restores the
original mode afterwards."""

import contextlib
import errno
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

import util
import util_store

NOBODY = 65534
AS_NOBODY = ['setpriv', f'--reuid={NOBODY}', f'--regid={NOBODY}',
             '--clear-groups']
DEV_FUSE = '/dev/fuse'


@contextlib.contextmanager
def dev_fuse_mode(mode):
    """/dev/fuse at mode for the with block, then back as it was."""
    orig = stat.S_IMODE(os.stat(DEV_FUSE).st_mode)
    try:
        os.chmod(DEV_FUSE, mode)
        yield orig
    finally:
        os.chmod(DEV_FUSE, orig)
        assert stat.S_IMODE(os.stat(DEV_FUSE).st_mode) == orig


@pytest.fixture
def open_dev_fuse():
    with dev_fuse_mode(0o666) as orig:
        yield orig


def nobody_run(cmd, input=None, timeout=60):
    """Runs cmd (a list) as nobody; returns CompletedProcess (text)."""
    return subprocess.run(AS_NOBODY + list(cmd), input=input or '',
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)


def nobody_sh(script, *args):
    return nobody_run(['sh', '-c', script, 'sh'] + [str(a) for a in args])


def nobody_python(code, *args):
    r = nobody_run([util.PYTHON, '-c', code] + [str(a) for a in args])
    assert r.returncode == 0, f'python as nobody failed:\n{r.stderr}'
    return r.stdout


def mountinfo(mnt):
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split()
            if fields[4] == mnt:
                return line
    return None


def nobody_mountpoint():
    mnt = util.make_mountpoint()
    os.chown(mnt, NOBODY, NOBODY)
    return mnt


class NobodyDaemon(util.Daemon):
    """util.Daemon run as nobody.  Root cannot stat a mount it does not own
    (no allow_other), so mounts are found in /proc/self/mountinfo, and nobody
    unmounts with fusermount3 -u."""

    prefix = AS_NOBODY

    def mounted(self):
        return mountinfo(self.path) is not None

    def unmount(self):
        r = nobody_run(['fusermount3', '-u', self.path], timeout=30)
        if r.returncode != 0:
            return 'fusermount3 -u as nobody failed: ' + r.stderr.strip()
        return None


@pytest.fixture
def nobody_mounts(open_dev_fuse, tmp_path):
    """Starts NobodyDaemons; stops (as nobody) whatever is left at the end and
    fails the test on any problem."""
    started = []

    def start(*args):
        d = NobodyDaemon(nobody_mountpoint(),
                         str(tmp_path / f'shmfs-{len(started)}.log'), args)
        started.append(d)
        d.start()
        d.wait_for_mount()
        return d
    problems = []
    try:
        yield start
    finally:
        for d in started:
            if d.proc is not None and d.proc.returncode is None:
                problems += d.stop()
            log = d.log()
            if log:
                print(f'--- shmfs output ({d.log_path}) ---\n{log}')
            try:
                os.rmdir(d.path)
            except OSError as e:
                problems.append(f'cannot remove mountpoint {d.path}: {e}')
    if problems:
        pytest.fail('shmfs teardown:\n  ' + '\n  '.join(problems),
                    pytrace=False)


def stop_ok(d):
    problems = d.stop()
    assert not problems, '\n'.join(problems) + '\n' + d.log()
    assert d.proc.returncode == 0


# -- tests --------------------------------------------------------------------

def test_auto_is_cached_for_nobody(nobody_mounts):
    d = nobody_mounts()
    line = mountinfo(d.path)
    assert ' fuse.shmfs ' in line, line
    assert 'user_id=65534' in line and 'group_id=65534' in line, line
    assert 'default_permissions' in line, line
    assert 'nosuid' in line and 'nodev' in line, line       # fusermount3's
    r = nobody_run(['getfattr', '--only-values', '-n', 'user.shmfs.mode',
                    d.path])
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'cached'
    r = nobody_run(['getfattr', '-n', 'user.shmfs.mode', d.path])
    assert 'user.shmfs.mode="cached"' in r.stdout, r
    assert 'mode cached' in d.log()
    # the root directory belongs to nobody
    r = nobody_run(['stat', '-c', '%u %g %a', d.path])
    assert r.stdout.split() == ['65534', '65534', '1777'], r
    # only the mounting user sees the mount: root gets EACCES
    assert util.errno_of(os.stat, d.path) == errno.EACCES
    assert util.errno_of(os.listdir, d.path) == errno.EACCES
    stop_ok(d)


COHERENCE = r'''
import mmap, os, struct, subprocess, sys
mnt = sys.argv[1]
x, raw = os.path.join(mnt, 'x'), os.path.join(mnt, '.raw', 'x')
def text(p):
    with open(p, 'rb', buffering=0) as f:
        return f.read().decode()
def put(p, s):
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    assert os.write(fd, s.encode()) == len(s)
    os.close(fd)

# created by nobody, owned by nobody
fd = os.open(x, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.close(fd)
os.setxattr(x, 'user.shmfs.type', b'f64[1024]')
st = os.stat(x)
assert (st.st_uid, st.st_gid) == (65534, 65534), st
assert os.stat(raw).st_size == 8192

fd = os.open(raw, os.O_RDWR)
m = mmap.mmap(fd, 8192, mmap.MAP_SHARED)
# text write -> mapping and pread
put(x, ' '.join(['1.5'] * 1024) + '\n')
assert struct.unpack_from('d', m, 0)[0] == 1.5
assert struct.unpack_from('d', m, 8184)[0] == 1.5
assert os.pread(fd, 8, 4096) == struct.pack('d', 1.5)
# mmap store -> text view (no msync) and pread
struct.pack_into('d', m, 0, -2.25)
struct.pack_into('d', m, 8184, 3.0)
t = text(x).split()
assert t[0] == '-2.25' and t[-1] == '3' and t[1] == '1.5', t[:3]
assert os.pread(fd, 8, 8184) == struct.pack('d', 3.0)
# pwrite on .raw -> mapping and text
os.pwrite(fd, struct.pack('d', 7.0), 4096)
assert struct.unpack_from('d', m, 4096)[0] == 7.0
assert text(x).split()[512] == '7'
# another process (cat, od) sees the mapping's stores
struct.pack_into('d', m, 8, 0.5)
out = subprocess.run(['cat', x], stdout=subprocess.PIPE, check=True).stdout
assert out.split()[:2] == [b'-2.25', b'0.5'], out[:40]
out = subprocess.run(['od', '-A', 'n', '-t', 'f8', '-N', '16', raw],
                     stdout=subprocess.PIPE, check=True).stdout.split()
assert [float(v) for v in out] == [-2.25, 0.5], out
# bad input: errno, value unchanged
before = text(x)
try:
    put(x, '1 2 3\n')
    raise SystemExit('short array accepted')
except OSError as e:
    assert e.errno == 22, e
try:
    os.setxattr(x, 'user.shmfs.type', b'i64')
    raise SystemExit('retype accepted')
except OSError as e:
    assert e.errno == 1, e
try:
    os.chown(x, 0, 0)
    raise SystemExit('chown to root accepted')
except OSError as e:
    assert e.errno == 1, e
assert text(x) == before
m.close()
os.close(fd)
print('ok')
'''

HOLDER = r'''
import mmap, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 8192, mmap.MAP_SHARED)
os.close(fd)
print('mapped', flush=True)
for line in sys.stdin:
    if line.startswith('get'):
        print(struct.unpack_from('d', m, int(line.split()[1]) * 8)[0],
              flush=True)
    else:
        i, v = line.split()[1:]
        struct.pack_into('d', m, int(i) * 8, float(v))
        print('ok', flush=True)
'''


def test_coherence_as_nobody(nobody_mounts):
    d = nobody_mounts()
    assert nobody_python(COHERENCE, d.path) == 'ok\n'
    # a mapping held by one nobody process, text written by others (echo)
    holder = subprocess.Popen(AS_NOBODY + [util.PYTHON, '-c', HOLDER,
                                           d.r('x')],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline() == 'mapped\n'
        r = nobody_sh('echo "$1" > "$2"', ' '.join(['4.5'] * 1024), d.p('x'))
        assert r.returncode == 0, r.stderr
        holder.stdin.write('get 1023\n')
        holder.stdin.flush()
        assert holder.stdout.readline() == '4.5\n'
        holder.stdin.write('set 1023 -8\n')
        holder.stdin.flush()
        assert holder.stdout.readline() == 'ok\n'
        r = nobody_sh('cat "$1"', d.p('x'))
        assert r.stdout.split()[-1] == '-8' and r.stdout.split()[0] == '4.5'
        # echo's error reaches the shell, the mapping keeps the value
        r = nobody_sh('echo 1 oops > "$1"', d.p('x'))
        assert r.returncode != 0
        holder.stdin.write('get 0\n')
        holder.stdin.flush()
        assert holder.stdout.readline() == '4.5\n'
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
        holder.stdout.close()
    stop_ok(d)


@pytest.mark.parametrize('fg', [True, False], ids=['fg', 'bg'])
def test_passthrough_refused_for_nobody(open_dev_fuse, fg):
    mnt = nobody_mountpoint()
    try:
        args = (['-f'] if fg else []) + ['-o', 'mode=passthrough']
        err = util_store.assert_refused(args, mnt, prefix=AS_NOBODY)
        assert 'passthrough' in err, err
        assert mountinfo(mnt) is None
    finally:
        os.rmdir(mnt)


def test_allow_other_refused_without_fuse_conf(open_dev_fuse):
    """fusermount3 refuses allow_other to users unless /etc/fuse.conf has
    user_allow_other: the daemon says it could not mount and exits 1."""
    with contextlib.suppress(FileNotFoundError):
        with open('/etc/fuse.conf') as f:
            if any(line.strip() == 'user_allow_other' for line in f):
                pytest.fail('/etc/fuse.conf allows allow_other: this test '
                            'expects the Debian default')
    mnt = nobody_mountpoint()
    try:
        rc, out, err = util.run_shmfs(['-f', '-o', 'allow_other', mnt],
                                            prefix=AS_NOBODY)
        assert rc == 1, (rc, err)
        assert 'allow_other' in err and 'shmfs: cannot mount' in err, err
        assert mountinfo(mnt) is None
    finally:
        os.rmdir(mnt)


def test_dev_fuse_0600_allows_root_only():
    """docs/running.md: where /dev/fuse is 0600, an unprivileged mount fails: exit 1
    and a message, nothing mounted, no hang."""
    with dev_fuse_mode(0o600):
        mnt = nobody_mountpoint()
        try:
            rc, out, err = util.run_shmfs(['-f', mnt], prefix=AS_NOBODY)
            assert rc == 1, (rc, err)
            assert '/dev/fuse' in err and 'shmfs: cannot mount' in err, err
            assert mountinfo(mnt) is None
        finally:
            os.rmdir(mnt)


@pytest.fixture
def nobody_store():
    # pytest's tmp_path is root's alone: make one nobody can reach
    store = tempfile.mkdtemp(prefix='shmfs-store-', dir='/tmp')
    os.chown(store, NOBODY, NOBODY)
    try:
        yield store
    finally:
        shutil.rmtree(store)


def test_store_as_nobody(nobody_mounts, nobody_store):
    store = nobody_store
    d = nobody_mounts('-o', f'store={store}')
    r = nobody_sh('echo 12 > "$1/v" && mkdir "$1/d" && echo 1.5 > "$1/d/w" '
                  '&& chmod 640 "$1/v"', d.path)
    assert r.returncode == 0, r.stderr
    stop_ok(d)
    d = nobody_mounts('-o', f'store={store}')
    r = nobody_sh('cat "$1/v" "$1/d/w"; stat -c "%a %u %g" "$1/v"', d.path)
    assert r.stdout.split('\n')[:3] == ['12', '1.5', '640 65534 65534'], r
    stop_ok(d)
