"""Remote mounts (-o remote=redis://...): two daemons mounting one Redis,
as two hosts would (docs/remote.md).  Each test gets its own key prefix on a
server shared by the module.

Checked across the two mounts: the namespace (same names, inode numbers,
owners, types; the errnos of a local mount), the values through every view,
bad input refused with nothing changed anywhere, mmap refused with ENODEV,
atomic operations that count exactly from several processes on both
mounts, and a text written in pieces committed at once.
"""

import errno
import fcntl
import mmap
import os
import signal
import struct
import subprocess
import threading
import time

import pytest

import util
from test_poll import LineReader, poll_pri, rearm, woke
from test_atomic import ADD, CAS, SUB, XCHG, atomic, cli
from remote_mounts import (RENAME_EXCHANGE, RENAME_NOREPLACE, assert_errno,
                           check_flock_excludes, entries, hold_lock, mounted, mounts, pair,
                           redis, release, start_adder, try_flock, unique_prefix)


PREFIX_TAG = 'test'


# ---- the namespace ---------------------------------------------------------

def test_namespace_is_shared(pair):
    a, b = pair
    os.mkdir(a.p('dir'))
    util.new_object(a, 'dir/x', 'i64', '5')
    assert entries(b.path) == ['dir']
    assert entries(b.p('dir')) == ['x']
    assert util.cat(b.p('dir/x')) == '5\n'
    sa, sb = os.stat(a.p('dir/x')), os.stat(b.p('dir/x'))
    assert (sa.st_ino, sa.st_mode, sa.st_uid, sa.st_gid) == \
        (sb.st_ino, sb.st_mode, sb.st_uid, sb.st_gid)
    assert os.stat(a.p('dir')).st_ino == os.stat(b.p('dir')).st_ino
    assert util.xattr(b.p('dir/x'), 'user.shmfs.type') == 'i64'
    assert util.xattr(b.path, 'user.shmfs.mode') == 'remote'
    # .raw is there on both, and hidden from listings.
    assert os.path.isdir(b.p('.raw/dir'))
    assert '.raw' not in os.listdir(b.path)

    # Changes on B show on A at once.
    os.rename(b.p('dir/x'), b.p('y'))
    assert entries(a.path) == ['dir', 'y']
    assert entries(a.p('dir')) == []
    assert util.cat(a.p('y')) == '5\n'
    os.chmod(b.p('y'), 0o600)
    assert os.stat(a.p('y')).st_mode & 0o7777 == 0o600
    os.unlink(a.p('y'))
    assert_errno(errno.ENOENT, os.stat, b.p('y'))
    os.rmdir(b.p('dir'))
    assert entries(a.path) == []


def test_namespace_errnos_as_local(pair):
    a, b = pair
    os.makedirs(a.p('d/e'))
    util.new_object(a, 'd/o', 'u8', '1')
    assert_errno(errno.EEXIST, os.mkdir, b.p('d'))
    assert_errno(errno.EEXIST, os.mkdir, b.p('d/o'))
    assert_errno(errno.ENOTEMPTY, os.rmdir, b.p('d'))
    assert_errno(errno.ENOTDIR, os.rmdir, b.p('d/o'))
    assert_errno(errno.EISDIR, os.unlink, b.p('d/e'))
    assert_errno(errno.ENOENT, os.unlink, b.p('d/nothing'))
    assert_errno(errno.EINVAL, os.rename, b.p('d'), b.p('d/e/inside'))
    assert_errno(errno.ENOTDIR, os.rename, b.p('d/e'), b.p('d/o'))
    assert_errno(errno.EISDIR, os.rename, b.p('d/o'), b.p('d/e'))
    assert_errno(errno.ENAMETOOLONG, os.mkdir, b.p('n' * 256))
    assert_errno(errno.EPERM, os.mkdir, b.p('.raw/new'))
    assert_errno(errno.EEXIST, os.mkdir, b.p('.raw'))
    assert_errno(errno.EPERM, util.set_type, b.p('d/o'), 'i32')   # typed once
    util.renameat2(b.p('d/o'), b.p('o2'), 0)
    assert_errno(errno.EEXIST, util.renameat2, a.p('o2'), a.p('d/e'), RENAME_NOREPLACE)

    # An exchange across directories, seen from the other mount.
    util.new_object(a, 'd/e/p', 'u16', '2')
    util.renameat2(a.p('o2'), a.p('d/e/p'), RENAME_EXCHANGE)
    assert util.cat(b.p('o2')) == '2\n'
    assert util.cat(b.p('d/e/p')) == '1\n'
    assert sorted(os.listdir(b.path)) == ['d', 'o2']
    # Everything unchanged by the refusals, on both mounts.
    for m in pair:
        assert entries(m.p('d')) == ['e']
        assert entries(m.p('d/e')) == ['p']


def test_directories_moved_around_elsewhere(pair):
    """B knows x/y; A moves y out and x into it: B follows by path, and
    what B had open in them keeps working."""
    a, b = pair
    os.makedirs(a.p('x/y'))
    util.new_object(a, 'x/y/o', 'i32', '1')
    fd = os.open(b.p('x/y/o'), os.O_RDWR)
    try:
        os.rename(a.p('x/y'), a.p('y2'))
        os.rename(a.p('x'), a.p('y2/x'))
        assert entries(b.path) == ['y2']
        assert entries(b.p('y2')) == ['o', 'x']
        assert os.stat(b.p('y2/x')).st_ino == os.stat(a.p('y2/x')).st_ino
        os.pwrite(fd, b'7\n', 0)
        assert util.cat(a.p('y2/o')) == '7\n'
        os.rename(b.p('y2/x'), b.p('x'))
        os.rename(b.p('y2'), b.p('x/y'))
        assert entries(a.p('x/y')) == ['o']
    finally:
        os.close(fd)


def test_racing_creates_one_wins(pair):
    a, b = pair
    results = {}

    def make(m, key, n):
        ok = 0
        for i in range(n):
            try:
                os.mkdir(m.p(f'r{i}'))
                ok += 1
            except FileExistsError:
                pass
        results[key] = ok

    threads = [threading.Thread(target=make, args=(m, k, 60))
               for k, m in enumerate(pair)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] + results[1] == 60
    assert entries(a.path) == entries(b.path) == sorted(f'r{i}' for i in range(60))


def test_typing_race_one_type(pair):
    a, b = pair
    for i in range(20):
        name = f't{i}'
        with open(a.p(name), 'w'):
            pass
        errs = {}

        def type_as(m, spec):
            errs[spec] = util.errno_of(util.set_type, m.p(name), spec)

        ts = [threading.Thread(target=type_as, args=(a, 'i32')),
              threading.Thread(target=type_as, args=(b, 'f64[2]'))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert sorted(errs.values()) == [0, errno.EPERM], errs
        won = 'i32' if errs['i32'] == 0 else 'f64[2]'
        for m in pair:
            assert util.xattr(m.p(name), 'user.shmfs.type') == won
            assert os.stat(m.r(name)).st_size == (4 if won == 'i32' else 16)


# ---- values -----------------------------------------------------------------

def test_values_through_every_view(pair):
    a, b = pair
    util.new_object(a, 'v', 'f64[3]')
    util.echo(a.p('v'), '1.5 2 -3')
    assert util.cat(b.p('v')) == '1.5 2 -3\n'
    with util.opened(b.r('v')) as fd:
        assert struct.unpack('3d', os.pread(fd, 24, 0)) == (1.5, 2.0, -3.0)
        os.pwrite(fd, struct.pack('d', 7.25), 8)
    assert util.cat(a.p('v')) == '1.5 7.25 -3\n'
    # Past the end: EFBIG; the value and its version unchanged.
    before = util.xattr(a.p('v'), 'user.shmfs.version')
    with util.opened(a.r('v')) as fd:
        assert_errno(errno.EFBIG, os.pwrite, fd, b'x', 24)
        assert os.pread(fd, 100, 20) == struct.pack('d', -3.0)[4:]
    assert util.xattr(b.p('v'), 'user.shmfs.version') == before
    assert os.stat(b.r('v')).st_size == 24


def test_version_follows_changes_on_either_mount(pair):
    a, b = pair
    util.new_object(a, 'n', 'i32', '0')
    v0 = int(util.xattr(b.p('n'), 'user.shmfs.version'))
    util.echo(a.p('n'), '4')
    v1 = int(util.xattr(b.p('n'), 'user.shmfs.version'))
    assert v1 > v0
    util.echo(b.p('n'), '5')
    assert int(util.xattr(a.p('n'), 'user.shmfs.version')) > v1


def test_bad_input_changes_nothing(pair):
    a, b = pair
    util.new_object(a, 'x', 'u8[2]', '1 2')
    util.new_object(a, 'rec', '{a:i32, b:f64}', '{"a": 1, "b": 2.5}')
    seen = {m: (util.cat(m.p('x')), util.cat(m.p('rec')),
                util.xattr(m.p('x'), 'user.shmfs.version'))
            for m in pair}
    for path, text, err in [('x', '1 256', errno.ERANGE), ('x', '1', errno.EINVAL),
                            ('x', 'a b', errno.EINVAL),
                            ('rec', '{"a": "no"}', errno.EINVAL),
                            ('rec', '{"c": 1}', errno.EINVAL),
                            ('rec', '{"a": 4294967296}', errno.ERANGE)]:
        # An array's text short of items fails at close, the rest at write.
        assert err in util.try_write_text(b.p(path), text + '\n'), (path, text)
    assert_errno(errno.EINVAL, os.truncate, a.p('x'), 7)
    assert_errno(errno.EPERM, util.set_type, a.p('x'), 'u8[3]')
    for m in pair:
        assert (util.cat(m.p('x')), util.cat(m.p('rec')),
                util.xattr(m.p('x'), 'user.shmfs.version')) == seen[m]
    assert a.alive() and b.alive()


def test_record_merges_keep_other_fields(pair):
    a, b = pair
    util.new_object(a, 'pose', '{x:f64, y:f64, n:u32}')
    stop = threading.Event()

    def write_x():
        i = 0
        while not stop.is_set():
            i += 1
            util.echo(a.p('pose'), '{"x": %d}' % i)

    t = threading.Thread(target=write_x)
    t.start()
    try:
        for i in range(1, 101):
            util.echo(b.p('pose'), '{"y": %d}' % i)
    finally:
        stop.set()
        t.join()
    text = util.cat(b.p('pose'))
    assert '"y": 100' in text and '"n": 0' in text, text


def test_statfs(pair, redis):
    a, b = pair
    util.new_object(a, 'big', 'u8[1048576]')
    sa, sb = os.statvfs(a.path), os.statvfs(b.path)
    used = lambda st: (st.f_blocks - st.f_bfree) * st.f_frsize
    assert used(sa) == used(sb) == 1048576
    total = sa.f_blocks * sa.f_frsize
    assert total > 1048576
    redis.cli('CONFIG', 'SET', 'maxmemory', 64 << 20)
    try:
        assert os.statvfs(b.path).f_blocks * sa.f_frsize == 64 << 20
    finally:
        redis.cli('CONFIG', 'SET', 'maxmemory', 0)


def test_mmap_refused(pair):
    a, b = pair
    util.new_object(a, 'm', 'i64[4]', '1 2 3 4')
    with util.opened(b.r('m')) as fd:
        with pytest.raises(OSError) as e:
            mmap.mmap(fd, 32, mmap.MAP_SHARED)
        assert e.value.errno == errno.ENODEV
    assert util.cat(a.p('m')) == '1 2 3 4\n'


def test_large_text_committed_at_once(pair):
    """A 4 MiB array written as text on A in many write(2)s: a reader of
    the text on B (a snapshot at offset 0) sees all old or all new values,
    never a mix."""
    a, b = pair
    n = 512 * 1024
    util.new_object(a, 'big', f'i64[{n}]')
    stop = threading.Event()
    seen = set()
    mixed = []

    def reader():
        while not stop.is_set():
            with open(b.p('big'), 'rb') as f:
                vals = set(f.read().split())
            if len(vals) != 1:
                mixed.append(sorted(vals)[:4])
            seen.update(vals)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for v in (1, 2, 3):
            text = (' '.join([str(v)] * n) + '\n').encode()
            fd = os.open(a.p('big'), os.O_WRONLY | os.O_TRUNC)
            try:
                for off in range(0, len(text), 65536):
                    os.write(fd, text[off:off + 65536])
            finally:
                os.close(fd)
            time.sleep(0.05)
    finally:
        stop.set()
        t.join()
    assert not mixed, mixed[:3]
    assert seen                 # the reader read while the writes went on
    assert util.cat(b.p('big')).split()[-1] == '3'


# ---- atomics -------------------------------------------------------------------

def test_atomic_adds_count_exactly(pair):
    a, b = pair
    for spec in ('i64', 'u8', 'f64'):
        util.new_object(a, f'c_{spec}', spec, '0')
    procs, per = [], 150
    for m in pair:
        for spec in ('i64', 'u8', 'f64'):
            for _ in range(2):
                procs.append(start_adder(m.p(f'c_{spec}'), per, flt=spec == 'f64'))
    for p in procs:
        assert p.wait(timeout=300) == 0
    total = 2 * 2 * per
    for m in pair:
        assert util.cat(m.p('c_i64')) == f'{total}\n'
        assert util.cat(m.p('c_u8')) == f'{total % 256}\n'
        assert util.cat(m.p('c_f64')) == f'{total}\n'


def test_atomic_results_as_local(pair, shmfs):
    """Each operation gives on a remote mount what it gives on a local one:
    old value, swapped, the value after; and the same errnos."""
    a, _ = pair
    cases = [('u8', ADD, 255, 'u'), ('i8', SUB, 1, 'i'), ('i16', XCHG, -5, 'i'),
             ('u64', ADD, 2**64 - 1, 'u'), ('bool', XCHG, 1, 'u'),
             ('f32', ADD, 0.1, 'f'), ('f64', XCHG, -0.0, 'f')]
    for i, (spec, op, operand, kind) in enumerate(cases):
        results = []
        for m in (a, shmfs):
            util.new_object(m, f'a{i}', spec)
            with util.opened(m.p(f'a{i}')) as fd:
                results.append((atomic(fd, op, operand, flt=kind == 'f', kind=kind),
                                atomic(fd, CAS, operand, expected=0, flt=kind == 'f', kind=kind),
                                util.cat(m.p(f'a{i}'))))
        assert results[0] == results[1], spec
    util.new_object(a, 'e', 'u8[2]')
    with util.opened(a.p('e')) as fd:
        with pytest.raises(OSError) as e:
            atomic(fd, ADD, 1, index=2)
        assert e.value.errno == errno.EINVAL
        with pytest.raises(OSError) as e:
            atomic(fd, XCHG, 256)
        assert e.value.errno == errno.ERANGE
    assert util.cat(a.p('e')) == '0 0\n'


def test_cli_on_remote(pair):
    a, b = pair
    r = cli('new', a.p('k'), '{n:u32, s:f64}')
    assert r.returncode == 0, r.stderr
    r = cli('add', b.p('k'), '--field', 'n', '3')
    assert r.returncode == 0 and r.stdout.strip() == '3', r
    r = cli('get', a.p('k'), '--field', 'n')
    assert r.stdout.strip() == '3', r
    r = cli('set', a.p('k'), '--field', 's', 'x')
    assert r.returncode != 0
    assert cli('get', b.p('k')).stdout.strip() == '{"n": 3, "s": 0}'


# ---- the clients and examples --------------------------------------------------

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'examples')


@pytest.mark.parametrize('script, name, text', [
    ('value_client.py', 'num', '3.1415926'),
    ('array_client.py', 'arr', '0 1 2 3 4'),
])
def test_python_seed_runs_unchanged(pair, script, name, text):
    """The seed's programs through the Python package: mmap is refused,
    the package reads and writes with pread/pwrite instead."""
    a, b = pair
    r = subprocess.run(['/usr/bin/python3', os.path.join(EXAMPLES, 'python', script)],
                       cwd=a.path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert util.cat(b.p(name)).strip() == text


COUNTER = '''
import sys
from shmfs import Value
v = Value('q', 0, path=sys.argv[1])
for _ in range(int(sys.argv[2])):
    with v.get_lock():
        v.value += 1
'''


def test_python_locked_counter_across_mounts(pair):
    a, b = pair
    util.new_object(a, 'q', 'i64', '0')
    procs = [subprocess.Popen(['/usr/bin/python3', '-c', COUNTER, m.p('q'), '60'])
             for m in (a, b, a, b)]
    for p in procs:
        assert p.wait(timeout=300) == 0
    assert util.cat(a.p('q')) == '240\n'


def test_shell_counter_on_a_remote_mount(pair):
    a, _ = pair
    env = dict(os.environ, SHMFS=util.SHMFS_BIN)
    r = subprocess.run(['bash', os.path.join(EXAMPLES, 'shell', 'counter.sh'), a.path, '10'],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines()[-1] == '4 workers x 10 increments: counter = 40'


def test_c_client_says_why_it_cannot_map(pair):
    a, _ = pair
    util.new_object(a, 'value', 'f64', '1')
    r = subprocess.run([os.path.join(os.environ.get('SHMFS_EXAMPLES', ''), 'value'), a.path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert 'remote mount' in r.stderr, r.stderr


# ---- locks ---------------------------------------------------------------------

def test_locks_exclude_across_mounts(pair):
    a, b = pair

    def lockf_refused():
        with util.opened(b.p('l')) as fd:
            assert util.errno_of(fcntl.lockf, fd, fcntl.LOCK_EX | fcntl.LOCK_NB) in \
                (errno.EAGAIN, errno.EACCES)
    check_flock_excludes(a, b, 'l', while_held=lockf_refused)
    # Shared locks on both mounts at once.
    with util.opened(a.p('l')) as fa, util.opened(b.p('l')) as fb:
        fcntl.flock(fa, fcntl.LOCK_SH)
        fcntl.flock(fb, fcntl.LOCK_SH | fcntl.LOCK_NB)
        assert try_flock(a.p('l'), fcntl.LOCK_EX) == errno.EWOULDBLOCK


def test_atomics_wait_for_a_lock_on_another_mount(pair):
    a, b = pair
    util.new_object(a, 'w', 'i64', '0')
    holder = hold_lock(a.p('w'))
    adder = start_adder(b.p('w'), 1)
    try:
        time.sleep(0.5)
        assert adder.poll() is None          # waiting for A's lock
        assert util.cat(a.p('w')) == '0\n'
    finally:
        release(holder)
    assert adder.wait(timeout=10) == 0
    assert util.cat(b.p('w')) == '1\n'


LOCKED_ADD = '''
import fcntl, os, sys
path, n = sys.argv[1], int(sys.argv[2])
for _ in range(n):
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    v = int(os.pread(fd, 64, 0))
    os.lseek(fd, 0, 0)
    os.write(fd, b'%d\\n' % (v + 1))
    os.close(fd)
'''


def test_locked_read_modify_write_counts_exactly(mounts):
    ms = [mounts.mount() for _ in range(3)]
    util.new_object(ms[0], 'n', 'i64', '0')
    per = 40
    procs = [subprocess.Popen(['/usr/bin/python3', '-c', LOCKED_ADD, m.p('n'), str(per)])
             for m in ms for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0
    for m in ms:
        assert util.cat(m.p('n')) == f'{len(procs) * per}\n'


def test_dead_host_loses_its_locks(redis, tmp_path):
    with mounted(tmp_path, redis.url, unique_prefix('dead'), ('-o', 'remote_lease=2')) as m:
        a, b = m.mount(), m.mount()
        util.new_object(a, 'd', 'u8', '0')
        holder = hold_lock(a.p('d'))
        killed = time.monotonic()
        m.kill(a)
        try:
            assert try_flock(b.p('d'), fcntl.LOCK_EX) == errno.EWOULDBLOCK
            while try_flock(b.p('d'), fcntl.LOCK_EX) != 0:
                assert time.monotonic() - killed < 6, 'the lease did not end'
                time.sleep(0.1)
            assert time.monotonic() - killed > 1.0
        finally:
            holder.kill()
            holder.wait()


def test_flock_on_an_untyped_lock_file(pair):
    """`flock lockfile cmd` works with an empty (untyped) file too."""
    a, b = pair
    with open(a.p('lk'), 'w'):
        pass
    holder = hold_lock(a.p('lk'))
    try:
        assert try_flock(b.p('lk'), fcntl.LOCK_EX) == errno.EWOULDBLOCK
    finally:
        release(holder)
    assert try_flock(b.p('lk'), fcntl.LOCK_EX) == 0
    r = subprocess.run(['flock', '-n', b.p('lk'), 'true'], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr


WAITER = '''
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    print('granted', flush=True)
except OSError as e:
    print(e.errno, flush=True)
'''


def test_daemon_stops_while_locks_wait_on_another_host(redis, tmp_path):
    """Waiters for a lock another mount holds, when their daemon is told
    to stop: they are answered, and the daemon exits 0."""
    with mounted(tmp_path, redis.url, unique_prefix('stop')) as m:
        a, b = m.mount(), m.mount()
        util.new_object(a, 'x', 'i64', '0')
        holder = hold_lock(b.p('x'))
        try:
            waiters = [subprocess.Popen(['/usr/bin/python3', '-c', WAITER, a.p('x')],
                                        stdout=subprocess.PIPE, text=True) for _ in range(2)]
            adder = start_adder(a.p('x'), 1)
            time.sleep(0.5)
            assert all(w.poll() is None for w in waiters + [adder])
            a.proc.send_signal(signal.SIGTERM)
            assert a.proc.wait(timeout=20) == 0, a.log()
            for w in waiters:
                w.wait(timeout=20)
            adder.wait(timeout=20)
            assert adder.returncode != 0          # its add was refused, not done
        finally:
            release(holder)
        a.force_stop()
        m.daemons.remove(a)
        os.rmdir(a.path)
        assert util.cat(b.p('x')) == '0\n'


# ---- lifetimes -------------------------------------------------------------------

SLEEPER = ['/usr/bin/python3', '-c', 'import sys; sys.stdin.read()']


def wait_gone(path, timeout):
    deadline = time.monotonic() + timeout
    while os.path.exists(path):
        assert time.monotonic() < deadline, f'{path} still there'
        time.sleep(0.05)
    return time.monotonic()


def test_lifetime_across_mounts(pair):
    a, b = pair
    util.new_object(a, 'bound', 'i64', '1')
    util.new_object(a, 'kept', 'i64', '2')
    holder = subprocess.Popen(SLEEPER, stdin=subprocess.PIPE)
    try:
        for name in ('bound', 'kept'):
            os.setxattr(a.p(name), 'user.shmfs.lifetime', f'pid:{holder.pid}'.encode())
        assert util.xattr(a.p('bound'), 'user.shmfs.lifetime') == f'pid:{holder.pid}'
        seen = util.xattr(b.p('bound'), 'user.shmfs.lifetime')
        assert seen.startswith(f'pid:{holder.pid}@'), seen
        os.removexattr(a.p('kept'), 'user.shmfs.lifetime')
        assert util.errno_of(os.getxattr, b.p('kept'), 'user.shmfs.lifetime') == errno.ENODATA
        # Another host cannot unbind what it did not bind.
        assert util.errno_of(os.removexattr, b.p('bound'), 'user.shmfs.lifetime') == errno.ENODATA
    finally:
        holder.stdin.close()
        holder.wait()
    wait_gone(b.p('bound'), 5)
    assert not os.path.exists(a.p('bound'))
    assert util.cat(b.p('kept')) == '2\n'


def test_a_dead_hosts_bound_objects_go(redis, tmp_path):
    with mounted(tmp_path, redis.url, unique_prefix('life'), ('-o', 'remote_lease=2')) as m:
        holder = subprocess.Popen(SLEEPER, stdin=subprocess.PIPE)
        try:
            a, b = m.mount(), m.mount()
            util.new_object(a, 'tmp', 'u8', '1')
            util.new_object(a, 'stays', 'u8', '2')
            os.setxattr(a.p('tmp'), 'user.shmfs.lifetime', f'pid:{holder.pid}'.encode())
            time.sleep(3)                     # renewed past its first lease
            assert os.path.exists(b.p('tmp'))
            killed = time.monotonic()
            m.kill(a)
            gone = wait_gone(b.p('tmp'), 8)
            assert gone - killed > 0.5
            assert util.cat(b.p('stays')) == '2\n'
        finally:
            holder.stdin.close()
            holder.wait()


def test_unlinked_object_open_elsewhere_keeps_working(redis, tmp_path):
    with mounted(tmp_path, redis.url, unique_prefix('ul'), ('-o', 'remote_lease=1')) as m:
        a, b = m.mount(), m.mount()
        util.new_object(a, 'u', 'i64', '5')
        fd = os.open(b.r('u'), os.O_RDWR)
        try:
            os.unlink(a.p('u'))
            assert not os.path.exists(b.p('u'))
            time.sleep(3)                 # three leases: kept by B's open
            assert struct.unpack('q', os.pread(fd, 8, 0))[0] == 5
            os.pwrite(fd, struct.pack('q', 6), 0)
            assert struct.unpack('q', os.pread(fd, 8, 0))[0] == 6
        finally:
            os.close(fd)
        time.sleep(2.5)                   # closed: gone within a lease or two
        assert redis.cli('KEYS', '{' + m.prefix + ':*}:v') == ''


# ---- change notification -------------------------------------------------------

def _pwrite8(path, data):
    with util.opened(path) as fd:
        os.pwrite(fd, data, 0)


def _atomic_add(path, n):
    with util.opened(path) as fd:
        atomic(fd, ADD, n)


@pytest.mark.parametrize('change', [
    lambda a: util.echo(a.p('w'), '7'),
    lambda a: _pwrite8(a.r('w'), struct.pack('q', 9)),
    lambda a: _atomic_add(a.p('w'), 2),
    lambda a: cli('set', a.p('w'), '11'),
], ids=['text', 'pwrite', 'atomic', 'cli-set'])
def test_poller_woken_by_the_other_mount(pair, change):
    a, b = pair
    util.new_object(a, 'w', 'i64', '1')
    with util.opened(b.p('w')) as fd:
        assert rearm(fd) == '1\n'
        assert poll_pri(fd, 0.3) == 0          # nothing changed yet
        t = threading.Timer(0.2, change, (a,))
        t.start()
        start = time.monotonic()
        revents = poll_pri(fd, 5)
        t.join()
        assert woke(revents), revents
        assert time.monotonic() - start < 1.5
        assert rearm(fd) != '1\n'
        assert poll_pri(fd, 0.3) == 0          # once per change


def test_watch_prints_the_other_mounts_values(pair):
    a, b = pair
    util.new_object(a, 'v', 'u32', '1')
    proc = subprocess.Popen([util.SHMFS_BIN, 'watch', b.p('v')], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = LineReader(proc.stdout)
        assert out.line(5) == '1'
        for value in ('5', '3', '12'):
            time.sleep(0.2)
            util.echo(a.p('v'), value)
            assert out.line(5) == value
        time.sleep(0.2)
        assert cli('add', a.p('v'), '30').returncode == 0
        assert out.line(5) == '42'
        assert out.rest(0.3) == ''
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---- mounting -------------------------------------------------------------------

@pytest.mark.parametrize('url, message', [
    ('bogus://x', 'redis://'),
    ('rediss://127.0.0.1:6379', 'TLS'),
    ('redis://127.0.0.1:1', 'refused'),
    ('redis://127.0.0.1:99999', 'port'),
    ('redis://127.0.0.1:6379/x', 'db'),
])
def test_mount_errors_are_one_line(tmp_path, url, message):
    mnt = util.make_mountpoint()
    try:
        start = time.monotonic()
        r = subprocess.run([util.SHMFS_BIN, '-o', f'remote={url}', mnt],
                           capture_output=True, timeout=30)
        took = time.monotonic() - start
        err = r.stderr.decode()
        assert r.returncode == 1, err
        assert len(err.strip().splitlines()) == 1, err
        assert message.lower() in err.lower(), err
        assert took < 4.5
        with open('/proc/self/mountinfo') as f:
            assert not any(line.split()[4] == mnt for line in f)
    finally:
        os.rmdir(mnt)


def test_remote_options_refused_alone_or_mixed(tmp_path, redis):
    mnt = util.make_mountpoint()
    try:
        for args in (['-o', 'remote_prefix=x'], ['-o', 'remote_timeout=2'],
                     ['-o', f'remote={redis.url},store={tmp_path}'],
                     ['-o', f'remote={redis.url},mode=passthrough'],
                     ['-o', f'remote={redis.url},remote_timeout=0'],
                     ['-o', f'remote={redis.url},remote_timeout=abc'],
                     ['-o', f'remote={redis.url},remote_lease=0'],
                     ['-o', f'remote={redis.url},remote_lease=-1'],
                     ['-o', f'remote={redis.url},remote_lease=3601'],
                     ['-o', 'remote_lease=5']):
            r = subprocess.run([util.SHMFS_BIN] + args + [mnt], capture_output=True, timeout=30)
            assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, (args, r.stderr)
    finally:
        os.rmdir(mnt)
