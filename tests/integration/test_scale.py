"""Many objects (docs/semantics.md "Many objects"): 100 000 typed objects in one
directory (passthrough, the default mode) and 5 000 in cached mode are
created, listed by ls, looked up, read and written, then removed.  Small
objects share memfd chunks, so the daemon holds few memfds and file
descriptors however many objects exist.  Prints the creation and removal
rates and the daemon's RSS per object (run with -s to see them); asserts only
generous bounds on those."""

import errno
import os
import random
import struct
import subprocess
import time

import pytest

import util

# bytes of daemon RSS per small object (AddressSanitizer's redzones and
# quarantine roughly double it)
RSS_PER_OBJECT_MAX = 4096 * (3 if 'ASAN_OPTIONS' in os.environ else 1)
MIN_RATE = 1000                  # objects created per second, at the least


def vm_rss(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    raise AssertionError('no VmRSS')


def fd_count(pid):
    return len(os.listdir(f'/proc/{pid}/fd'))


def name(i):
    return f'obj{i:06d}'


def run_scale(shmfs, count, spec='i64'):
    mode = shmfs.mode()
    d = shmfs.p('many')
    os.mkdir(d)
    rss0 = vm_rss(shmfs.pid)
    fds0 = fd_count(shmfs.pid)
    memfds0 = shmfs.memfd_count()

    t0 = time.monotonic()
    for i in range(count):
        fd = os.open(os.path.join(d, name(i)),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.setxattr(fd, util.TYPE, spec.encode())
        finally:
            os.close(fd)
    t_create = time.monotonic() - t0
    rss1 = vm_rss(shmfs.pid)
    fds1 = fd_count(shmfs.pid)
    memfds1 = shmfs.memfd_count()
    per_object = (rss1 - rss0) / count
    print(f'\n[{mode}] created {count} {spec} objects in {t_create:.2f} s '
          f'({count / t_create:.0f}/s); daemon RSS {rss0 / 2**20:.1f} -> '
          f'{rss1 / 2**20:.1f} MiB = {per_object:.0f} bytes/object; fds '
          f'{fds0} -> {fds1}; memfds {memfds0} -> {memfds1}')

    # ls lists exactly the names
    t0 = time.monotonic()
    r = subprocess.run(['ls', d], stdout=subprocess.PIPE, text=True,
                       timeout=120)
    t_ls = time.monotonic() - t0
    assert r.returncode == 0
    names = r.stdout.split('\n')[:-1]
    assert len(names) == count
    assert names == [name(i) for i in range(count)]   # ls sorts
    assert len(os.listdir(d)) == count
    print(f'[{mode}] ls of {count} names: {t_ls:.2f} s')

    # small objects share chunks: the daemon's resources do not grow with
    # the object count
    assert fds1 < fds0 + 64, f'daemon fds {fds0} -> {fds1}'
    assert memfds1 <= memfds0 + max(4, count // 10000), \
        f'daemon memfds {memfds0} -> {memfds1}'
    assert per_object < RSS_PER_OBJECT_MAX, \
        f'{per_object:.0f} bytes of daemon RSS per object'
    assert count / t_create > MIN_RATE, f'{count / t_create:.0f} objects/s'

    # a sample of lookups, reads and writes through every way in
    rng = random.Random(count)
    sample = rng.sample(range(count), min(count, 500))
    for i in sample:
        p = os.path.join(d, name(i))
        assert util.xattr(p, util.TYPE) == spec
        assert util.read_text(p) == '0\n'
        util.write_text(p, f'{i * 3 - 7}\n')
    for i in sample:
        p = os.path.join(d, name(i))
        raw = shmfs.r(os.path.join('many', name(i)))
        assert util.read_text(p) == f'{i * 3 - 7}\n'
        assert util.read_bytes(raw) == struct.pack('q', i * 3 - 7)
    for i in sample[:50]:
        raw = shmfs.r(os.path.join('many', name(i)))
        with util.mapped(raw) as m:
            m[:] = struct.pack('q', -i)
        assert util.read_text(os.path.join(d, name(i))) == f'{-i}\n'
    untouched = [i for i in range(0, count, 997) if i not in set(sample)]
    for i in untouched:
        assert util.read_text(os.path.join(d, name(i))) == '0\n'
    for bad in ('obj', name(count), name(count + 1) + 'x', 'OBJ000001'):
        assert util.errno_of(os.stat, os.path.join(d, bad)) == errno.ENOENT
    # bad input at scale: a duplicate name, a retype, a malformed value
    assert util.errno_of(os.open, os.path.join(d, name(0)),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL) == errno.EEXIST
    assert util.errno_of(util.set_type, os.path.join(d, name(1)),
                         'f64') == errno.EPERM
    p2 = os.path.join(d, name(2))
    before = util.read_text(p2)
    assert util.try_write_text(p2, 'x\n')[0] == errno.EINVAL
    assert util.read_text(p2) == before

    # remove them all
    t0 = time.monotonic()
    for i in range(count):
        os.unlink(os.path.join(d, name(i)))
    t_rm = time.monotonic() - t0
    assert os.listdir(d) == []
    os.rmdir(d)
    assert os.listdir(shmfs.path) == []
    rss2 = vm_rss(shmfs.pid)
    print(f'[{mode}] removed {count} objects in {t_rm:.2f} s '
          f'({count / t_rm:.0f}/s); daemon RSS after removal '
          f'{rss2 / 2**20:.1f} MiB; fds {fd_count(shmfs.pid)}; memfds '
          f'{shmfs.memfd_count()}')
    # objects whose binary view was opened had memfds of their own: gone
    # with them (the shared chunks may stay, for reuse)
    assert util.poll_until(lambda: shmfs.memfd_count() <= memfds1, 2.0), \
        f'memfds {memfds1} -> {shmfs.memfd_count()} after removing all'
    assert util.poll_until(lambda: fd_count(shmfs.pid) < fds0 + 64, 2.0), \
        f'daemon fds {fds0} -> {fd_count(shmfs.pid)} after removing all'
    # the mount still works
    util.write_text(shmfs.p('after'), '1\n', create=True)
    assert util.read_text(shmfs.p('after')) == '1\n'


@pytest.mark.shmfs_args('-o', 'mode=passthrough')
def test_100k_objects_passthrough(shmfs):
    run_scale(shmfs, 100_000)


@pytest.mark.shmfs_args('-o', 'mode=cached')
def test_5k_objects_cached(shmfs):
    run_scale(shmfs, 5_000)


@pytest.mark.shmfs_args('-o', 'mode=passthrough')
def test_5k_arrays_of_4k_passthrough(shmfs):
    """The largest objects that share chunks (4 KiB each), created and
    removed three times: the chunks are reused, not piled up."""
    memfds0 = shmfs.memfd_count()
    count = 5000
    seen = []
    for cycle in range(3):
        rss0 = vm_rss(shmfs.pid)
        for i in range(count):
            util.new_object(shmfs, name(i), 'u8[4096]')
        memfds1 = shmfs.memfd_count()
        seen.append(memfds1)
        print(f'\n[{shmfs.mode()}] cycle {cycle}: {count} u8[4096]: memfds '
              f'{memfds0} -> {memfds1}, RSS {rss0 / 2**20:.1f} -> '
              f'{vm_rss(shmfs.pid) / 2**20:.1f} MiB')
        # 20 MB in 4 MiB chunks: a handful of memfds, not one per object
        assert memfds1 - memfds0 <= 10
        for i in (0, count // 2, count - 1):
            with util.opened(shmfs.r(name(i))) as fd:
                os.pwrite(fd, bytes([(i + cycle) % 256]) * 4096, 0)
        for i in (0, count // 2, count - 1):
            assert util.read_bytes(shmfs.r(name(i))) == \
                bytes([(i + cycle) % 256]) * 4096
        # a reused slot starts zeroed
        assert util.read_bytes(shmfs.r(name(1))) == bytes(4096)
        assert util.read_text(shmfs.p(name(count - 2))) == \
            ' '.join(['0'] * 4096) + '\n'
        assert len(os.listdir(shmfs.path)) == count
        for i in range(count):
            os.unlink(shmfs.p(name(i)))
        assert util.poll_until(lambda: shmfs.memfd_count() <= memfds1, 2.0)
    assert seen[2] <= seen[0], f'memfds per cycle: {seen}'


@pytest.mark.shmfs_args('-o', 'mode=passthrough')
def test_closed_binary_views_release_fds(shmfs):
    """docs/semantics.md: in passthrough mode a small object gets a memfd of its own
    when its binary view is opened, "so only objects that are open count
    against the limits".  Reading the binary views of 2 000 objects one
    after the other (as `for f in .raw/*; do od $f; done` does) leaves none
    open, so the daemon's file descriptors return to where they were."""
    count = 2000
    for i in range(count):
        util.new_object(shmfs, name(i), 'i64', f'{i}\n')
    fds0 = fd_count(shmfs.pid)
    for i in range(count):
        assert util.read_bytes(shmfs.r(name(i))) == struct.pack('q', i)
    ok = util.poll_until(lambda: fd_count(shmfs.pid) < fds0 + 64, 2.0)
    fds1 = fd_count(shmfs.pid)
    print(f'\ndaemon fds: {fds0} before, {fds1} after reading {count} '
          'closed binary views')
    assert ok, f'daemon fds {fds0} -> {fds1} with no binary view open'


def peak_rss_mib(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    raise AssertionError('no VmHWM')


def reset_peak_rss(pid):
    with open(f'/proc/{pid}/clear_refs', 'w') as f:
        f.write('5')


@util.both_modes
def test_text_of_large_object_in_bounded_memory(shmfs):
    """The text view renders in pieces: a stat (which needs the text's
    length) keeps no text, and a read keeps the value's bytes and only the
    text not yet read.  A u8[32 MiB] renders to 64 MiB of text; it made the
    daemon allocate text and bytes (96 MiB) at every stat."""
    n = 32 << 20
    x = util.new_object(shmfs, 'big', f'u8[{n}]')
    with util.opened(shmfs.r('big')) as fd:
        os.pwrite(fd, bytes(range(256)) * (n // 256), 0)
    want = sum(len(str(v)) + 1 for v in range(256)) * (n // 256)
    # The daemon's mapping of the object counts in its RSS once touched:
    # in the base, not in what a stat or read adds.
    os.stat(x)
    reset_peak_rss(shmfs.pid)
    base = peak_rss_mib(shmfs.pid)
    assert os.stat(x).st_size == want
    assert peak_rss_mib(shmfs.pid) - base < 16
    got = 0
    with open(x, 'rb', buffering=0) as f:
        head = f.read(1 << 16)
        assert head.startswith(b'0 1 2 3 4 5 6 7 8 9 10 11 ')
        got += len(head)
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            got += len(b)
        assert b'' == f.read(10)
    assert got == want
    assert peak_rss_mib(shmfs.pid) - base < 32 + 16
    assert shmfs.alive()


@util.both_modes
def test_size_of_one_long_string_in_bounded_memory(shmfs):
    """A char[N] far longer than a render chunk: a stat finds where its
    string ends a chunk at a time (it read all N bytes at once)."""
    n = 64 << 20
    x = util.new_object(shmfs, 's', f'char[{n}]')
    with util.opened(shmfs.r('s')) as fd:
        os.pwrite(fd, b'z' * n, 0)           # no NUL at all: all N bytes
        # The daemon's mapping of the object counts in its RSS once
        # touched: in the base, not in what a stat adds.
        os.stat(x)
        reset_peak_rss(shmfs.pid)
        base = peak_rss_mib(shmfs.pid)
        assert os.stat(x).st_size == n + 1
        assert peak_rss_mib(shmfs.pid) - base < 16
        os.pwrite(fd, b'abc\0', 0)
        assert os.stat(x).st_size == 4
        assert util.read_text(x) == 'abc\n'
    assert shmfs.alive()


class FdLimitedDaemon(util.Daemon):
    """A daemon that may hold only 64 file descriptors (without
    CAP_SYS_RESOURCE, which would let it raise the limit, as it tries)."""
    prefix = ['prlimit', '--nofile=64:64', 'setpriv', '--bounding-set=-sys_resource']


def test_passthrough_open_past_fd_limit_is_emfile(tmp_path):
    """In passthrough mode each open binary view needs a memfd of its own
    (small objects move out of their slab at the first open): past the
    daemon's RLIMIT_NOFILE an open fails with EMFILE and one log line, the
    objects keep their values, and closing gives the descriptors back."""
    d = FdLimitedDaemon(util.make_mountpoint(), str(tmp_path / 'shmfs.log'),
                        ['-o', 'mode=passthrough'])
    fds = []
    try:
        d.start()
        d.wait_for_mount()
        n = 100
        for i in range(n):
            util.new_object(d, f'o{i}', 'i64', str(i))
        before = d.rejected_count()
        err = 0
        for i in range(n):
            try:
                fds.append(os.open(d.r(f'o{i}'), os.O_RDWR))
            except OSError as e:
                err = e.errno
                break
        assert err in (errno.EMFILE, errno.ENFILE), errno.errorcode.get(err, err)
        assert 10 < len(fds) < n
        assert d.wait_rejected(before)
        assert 'no file descriptor left' in d.log()
        failed = len(fds)
        assert util.read_text(d.p(f'o{failed}')) == f'{failed}\n'
        assert os.pread(fds[0], 8, 0) == (0).to_bytes(8, 'little')
        assert d.alive()
        for fd in fds:
            os.close(fd)
        fds = []
        # The descriptors came back: the object that failed opens now.
        assert util.poll_until(lambda: util.errno_of(
            lambda: os.close(os.open(d.r(f'o{failed}'), os.O_RDWR))) == 0)
        with util.opened(d.r(f'o{failed}')) as fd:
            assert os.pread(fd, 8, 0) == failed.to_bytes(8, 'little')
    finally:
        for fd in fds:
            os.close(fd)
        problems = d.stop() if d.proc else []
        print(d.log())
        os.rmdir(d.path)
    assert not problems, problems
