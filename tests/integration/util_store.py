"""Helpers for tests that run shmfs themselves rather than through the
`shmfs` fixture: remounting a store, killing the daemon, lazy unmounts,
running the daemon as another user.  Built on util.Daemon, so a mount is
never leaked (util's atexit hook unmounts whatever is left)."""

import errno
import os
import signal
import time

import pytest

import util

STORE_SKIPPING = r'^shmfs: store: skipping '


def mounted(mnt):
    """Whether mnt is a mount point, from /proc/self/mountinfo: unlike
    os.path.ismount this sees a dead FUSE mount (stat fails with ENOTCONN)
    and a mount whose owner denies us stat."""
    with open('/proc/self/mountinfo') as f:
        return any(line.split()[4] == mnt for line in f)


def assert_refused(args, mnt, prefix=()):
    """shmfs ARGS MNT exits 1 at start, with one `shmfs:` line on stderr,
    leaving nothing mounted."""
    rc, out, err = util.run_shmfs(list(args) + [mnt], prefix=prefix)
    leaked = mounted(mnt)
    if leaked:
        util.fusermount_u(mnt, lazy=True)
    assert not leaked, f'shmfs {args} mounted {mnt}'
    assert rc == 1, f'exit status {rc}, stderr {err!r}'
    lines = err.splitlines()
    assert len(lines) >= 1 and all(l.startswith('shmfs:') for l in lines), \
        f'expected shmfs: messages on stderr, got {err!r}'
    return err


class Mounts:
    """Daemons started by one test; each gets a fresh mountpoint and a log in
    the test's tmp_path.  finish() stops whatever is still running and
    reports problems (exit status, unexpected output) like the fixture."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.daemons = []
        self.problems = []

    def start(self, *args, expect=()):
        n = len(self.daemons)
        mnt = util.make_mountpoint()
        d = util.Daemon(mnt, str(self.tmp_path / f'shmfs-{n}.log'), args)
        for pattern in expect:
            d.expect_output(pattern)
        self.daemons.append(d)
        d.start()
        d.wait_for_mount()
        return d

    def stop(self, d):
        """Clean unmount; asserts the daemon exited 0 with no unexpected
        output and left nothing mounted."""
        problems = d.stop()
        d.proc_done = True
        if mounted(d.path):
            problems.append(f'{d.path} still mounted')
            util.fusermount_u(d.path, lazy=True)
        assert not problems, 'shmfs stop:\n  ' + '\n  '.join(problems) \
            + '\n' + d.log()

    def kill9(self, d):
        """kill -9 of the daemon, then `fusermount3 -u -z` of the dead
        mount."""
        os.kill(d.pid, signal.SIGKILL)
        assert d.proc.wait(timeout=10) == -signal.SIGKILL
        r = util.fusermount_u(d.path, lazy=True)
        assert r.returncode == 0, r.stderr
        d.force_stop()
        d.proc_done = True
        assert not mounted(d.path)
        bad = d.suspicious_lines()
        assert not bad, f'unexpected daemon output: {bad}'

    def finish(self):
        for d in self.daemons:
            if not getattr(d, 'proc_done', False) and d.proc is not None:
                self.problems += d.stop()
            log = d.log()
            if log:
                print(f'--- shmfs output ({d.log_path}) ---\n{log}')
            if mounted(d.path):
                self.problems.append(f'{d.path} left mounted')
                util.fusermount_u(d.path, lazy=True)
            try:
                os.rmdir(d.path)
            except OSError as e:
                self.problems.append(f'cannot remove mountpoint {d.path}: {e}')
        return self.problems


@pytest.fixture
def mounts(tmp_path):
    m = Mounts(tmp_path)
    try:
        yield m
    finally:
        problems = m.finish()
    if problems:
        pytest.fail('shmfs teardown:\n  ' + '\n  '.join(problems),
                    pytrace=False)


# -- the whole tree, as seen through a mount ----------------------------------

def type_of(path):
    try:
        return util.xattr(path, util.TYPE)
    except OSError as e:
        if e.errno != errno.ENODATA:
            raise
        return None


def snapshot(mount):
    """{relative path: entry} for every directory and object under the mount:
    ('dir', mode, uid, gid) or ('obj', mode, uid, gid, type, text, raw bytes),
    the text read with cat and the bytes from .raw/PATH."""
    tree = {}
    for top, dirs, files in os.walk(mount.path):
        rel_top = os.path.relpath(top, mount.path)
        for name in dirs + files:
            rel = os.path.normpath(os.path.join(rel_top, name))
            path = os.path.join(mount.path, rel)
            st = os.lstat(path)
            if name in dirs:
                tree[rel] = ('dir', oct(st.st_mode), st.st_uid, st.st_gid)
            else:
                tree[rel] = ('obj', oct(st.st_mode), st.st_uid, st.st_gid,
                             type_of(path), util.cat(path),
                             util.read_bytes(mount.r(rel)))
    return tree


def diff(want, got):
    """Human-readable differences between two snapshots."""
    lines = []
    for k in sorted(set(want) | set(got)):
        if want.get(k) != got.get(k):
            w, g = want.get(k), got.get(k)
            lines.append(f'{k}: want {summarize(w)}, got {summarize(g)}')
    return '\n'.join(lines)


def summarize(entry):
    if entry is None or entry[0] == 'dir':
        return repr(entry)
    kind, mode, uid, gid, spec, text, raw = entry
    if len(text) > 40:
        text = text[:40] + '...'
    return repr((kind, mode, uid, gid, spec, text,
                 f'{len(raw)} bytes sha={hash(raw) & 0xffffffff:08x}'))


def wait_gone(path, timeout=1.0):
    """Polls until stat(path) fails with ENOENT; returns the time it took or
    None."""
    t0 = time.monotonic()
    while True:
        if util.errno_of(os.stat, path) == errno.ENOENT:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(0.005)
