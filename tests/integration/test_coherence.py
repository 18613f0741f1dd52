"""Coherence (DESIGN.md section 6): once a store through any way in has
returned, every later read through every way in returns the new bytes -- no
msync, no waiting.

The matrix: every writer {text write, pwrite on .raw, mmap store in another
process that then exits without msync, a store into a mapping the test holds}
x every reader {text read, pread on .raw, mmap load in a new process, mmap load
in a process whose mapping predates the write, a mapping the test holds
(created before the write)}, in cached and in passthrough mode, for a scalar
f64 and i64 and for a 1 MiB array (u8[1048576]).  Before each write every way
in is read once so that stale caches would show.  Array writes change the
first and last element, a whole middle page and the two elements around a
page boundary.

Also: the test's own mapping stored into and `cat` reading it, 100 rounds of
alternating text/mmap writes, a text read continuing its snapshot, `cat`
of a big array never mixing two versions while another process rewrites it,
and the size of the binary view, as reads and mappings see it, never behind
the one fstat gives while objects are typed amid truncates and writes."""

import contextlib
import errno
import hashlib
import json
import mmap
import os
import struct
import subprocess

import numpy as np
import pytest

import util

PAGE = mmap.PAGESIZE

# name -> (type spec, numpy dtype, element count or None for a scalar)
OBJECTS = {
    'f64': ('f64', np.float64, None),
    'i64': ('i64', np.int64, None),
    'u8[1048576]': ('u8[1048576]', np.uint8, 1 << 20),
}


class Obj:
    """One object under test: its old value and the expected new one."""

    def __init__(self, mount, key):
        self.mount = mount
        self.spec, self.dtype, count = OBJECTS[key]
        self.scalar = count is None
        n = 1 if self.scalar else count
        self.n = n
        self.size = np.dtype(self.dtype).itemsize
        self.nbytes = n * self.size
        idx = np.arange(n)
        if self.dtype == np.uint8:
            self.old = ((idx * 7) % 251).astype(np.uint8)
            new = self.old ^ np.uint8(0xA5)
        elif self.dtype == np.int64:
            self.old = np.array([42], dtype=np.int64)
            new = np.array([-1234567890123], dtype=np.int64)
        else:
            self.old = idx * 0.5 + 2.5
            new = -(idx + 0.25) * 3.1415926
        self.spots = self._spots()
        self.new = self.old.copy()
        for a, b in self.spots:
            self.new[a:b] = new[a:b]
        self.path = mount.p('x')
        self.raw = mount.r('x')
        util.new_object(mount, 'x', self.spec)
        with util.opened(self.raw, os.O_WRONLY) as fd:
            assert os.pwrite(fd, self.old.tobytes(), 0) == self.nbytes

    def _spots(self):
        """Element ranges the writers change."""
        if self.scalar:
            return [(0, 1)]
        per_page = PAGE // self.size
        mid = (self.n // 2) // per_page * per_page
        edge = 3 * per_page
        return [(0, 1), (self.n - 1, self.n), (mid, mid + per_page),
                (edge - 1, edge + 1)]

    def byte_spots(self, value):
        data = value.tobytes()
        return [(a * self.size, data[a * self.size:b * self.size])
                for a, b in self.spots]


def text_of(values):
    if values.dtype.kind == 'f':
        return ' '.join(map(repr, values.tolist())) + '\n'
    return ' '.join(map(str, values.tolist())) + '\n'


def parse_text(text, dtype):
    tokens = text.split()
    if np.dtype(dtype).kind == 'f':
        return np.array(tokens, dtype=np.float64).astype(dtype)
    return np.array(tokens, dtype=np.int64).astype(dtype)


def assert_bytes(got, want, dtype, what):
    if got == want:
        return
    if len(got) != len(want):
        raise AssertionError(f'{what}: {len(got)} bytes, expected {len(want)}')
    g = np.frombuffer(got, dtype=dtype)
    w = np.frombuffer(want, dtype=dtype)
    bad = np.nonzero(g != w)[0]
    shown = ', '.join(f'[{i}] {g[i]!r} != {w[i]!r}' for i in bad[:5])
    raise AssertionError(f'{what}: {len(bad)} of {len(w)} elements differ: '
                         f'{shown}')


def sha(data):
    return hashlib.sha256(data).hexdigest()


CHILD_STORE = r'''
import json, mmap, os, sys
raw, nbytes = sys.argv[1], int(sys.argv[2])
fd = os.open(raw, os.O_RDWR)
m = mmap.mmap(fd, nbytes, mmap.MAP_SHARED)
os.close(fd)
for off, hexdata in json.load(sys.stdin):
    data = bytes.fromhex(hexdata)
    m[off:off + len(data)] = data
os._exit(0)      # no msync, no munmap: exit unmaps
'''

CHILD_HASH = r'''
import hashlib, mmap, os, sys
raw, nbytes = sys.argv[1], int(sys.argv[2])
fd = os.open(raw, os.O_RDONLY)
m = mmap.mmap(fd, nbytes, mmap.MAP_SHARED, mmap.PROT_READ)
os.close(fd)
print(hashlib.sha256(m).hexdigest(), flush=True)
for _ in sys.stdin:                 # each line: hash the mapping again
    print(hashlib.sha256(m).hexdigest(), flush=True)
'''


class HashingChild:
    """A process holding a read-only mapping of raw from before the write;
    .first is its hash at start, .hash() makes it hash the mapping again."""

    def __init__(self, raw, nbytes):
        self.proc = subprocess.Popen(
            [util.PYTHON, '-c', CHILD_HASH, raw, str(nbytes)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.first = self.proc.stdout.readline().strip()

    def hash(self):
        self.proc.stdin.write('\n')
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        util.reap(self.proc)


WRITERS = ['text', 'pwrite', 'child-mmap', 'held-map']
READERS = ['text', 'pread', 'child-mmap', 'child-held-map', 'held-map']


@pytest.mark.parametrize('key', list(OBJECTS))
@pytest.mark.parametrize('reader', READERS)
@pytest.mark.parametrize('writer', WRITERS)
@util.both_modes
def test_matrix(shmfs, writer, reader, key):
    o = Obj(shmfs, key)
    old, new = o.old.tobytes(), o.new.tobytes()
    with contextlib.ExitStack() as stack:
        # every way in, opened and read before the write
        rfd = stack.enter_context(util.opened(o.raw, os.O_RDONLY))
        rmap = stack.enter_context(util.mapped(o.raw, prot=mmap.PROT_READ))
        wmap = stack.enter_context(util.mapped(o.raw))
        held = stack.enter_context(HashingChild(o.raw, o.nbytes))
        assert held.first == sha(old), 'child mapping before the write'
        assert_bytes(parse_text(util.read_text(o.path), o.dtype).tobytes(),
                     old, o.dtype, 'text before the write')
        assert_bytes(util.pread_all(rfd, o.nbytes), old, o.dtype,
                     'pread before the write')
        assert_bytes(rmap[:], old, o.dtype, 'mapping before the write')
        assert_bytes(wmap[:], old, o.dtype, 'mapping before the write')

        if writer == 'text':
            util.write_text(o.path, text_of(o.new))
        elif writer == 'pwrite':
            with util.opened(o.raw, os.O_WRONLY) as fd:
                for off, data in o.byte_spots(o.new):
                    assert os.pwrite(fd, data, off) == len(data)
        elif writer == 'child-mmap':
            spots = [[off, data.hex()] for off, data in o.byte_spots(o.new)]
            util.child(CHILD_STORE, o.raw, o.nbytes, input=json.dumps(spots))
        elif writer == 'held-map':
            for off, data in o.byte_spots(o.new):
                wmap[off:off + len(data)] = data

        what = f'{reader} after {writer} write'
        if reader == 'text':
            got = parse_text(util.read_text(o.path), o.dtype).tobytes()
            assert_bytes(got, new, o.dtype, what)
        elif reader == 'pread':
            assert_bytes(util.pread_all(rfd, o.nbytes), new, o.dtype, what)
        elif reader == 'child-mmap':
            assert util.child(CHILD_HASH, o.raw, o.nbytes).strip() == \
                sha(new), what
        elif reader == 'child-held-map':
            assert held.hash() == sha(new), what
        elif reader == 'held-map':
            assert_bytes(rmap[:], new, o.dtype, what)


@pytest.mark.parametrize('key', ['f64', 'u8[1048576]'])
@util.both_modes
def test_held_map_store_then_cat(shmfs, key):
    o = Obj(shmfs, key)
    with util.mapped(o.raw) as m:
        util.cat(o.path)                       # cache the old rendering path
        for off, data in o.byte_spots(o.new):
            m[off:off + len(data)] = data
        out = util.cat(o.path)
        assert_bytes(parse_text(out, o.dtype).tobytes(), o.new.tobytes(),
                     o.dtype, 'cat after a store into a held mapping')
        assert out == util.cat(o.path)


@util.both_modes
def test_text_read_continues_its_snapshot(shmfs):
    x = util.new_object(shmfs, 'x', 'i64[4]', '1111 2222 3333 4444\n')
    with util.opened(x, os.O_RDONLY) as fd, \
            util.opened(shmfs.r('x'), os.O_WRONLY) as rfd:
        head = os.pread(fd, 5, 0)                  # takes a snapshot
        assert os.pwrite(rfd, struct.pack('=4q', 5, 6, 7, 8), 0) == 32
        rest = os.pread(fd, 100, 5)                # continues it
        assert head + rest == b'1111 2222 3333 4444\n'
        assert os.pread(fd, 100, 0) == b'5 6 7 8\n'   # a fresh one


@pytest.mark.parametrize('spec,dtype,n', [('i64', np.int64, 1),
                                          ('f64[1024]', np.float64, 1024),
                                          ('u8[8192]', np.uint8, 8192)])
@util.both_modes
def test_alternating_text_and_mmap(shmfs, spec, dtype, n):
    x = util.new_object(shmfs, 'x', spec)
    base = np.arange(n)

    def value(i):
        if dtype == np.float64:
            return (base + i) * 0.25 - 7.5
        if dtype == np.uint8:
            return ((base + i * 13) % 256).astype(np.uint8)
        return np.array([i * 1000003 - 77], dtype=np.int64)
    with util.mapped(shmfs.r('x')) as m, \
            util.opened(shmfs.r('x'), os.O_RDONLY) as fd:
        for i in range(100):
            v = value(i)
            want = v.astype(dtype).tobytes()
            if i % 2 == 0:
                util.write_text(x, text_of(v.astype(dtype)))
                assert_bytes(m[:], want, dtype,
                             f'mapping after text write {i}')
            else:
                m[:] = want
                got = parse_text(util.read_text(x), dtype).tobytes()
                assert_bytes(got, want, dtype, f'text after mmap store {i}')
            assert_bytes(util.pread_all(fd, len(want)), want, dtype,
                         f'pread in round {i}')


CHILD_COUNTER = r'''
import ctypes, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 4096, mmap.MAP_SHARED)
os.close(fd)
# one aligned 8-byte store per value (struct.pack_into zeroes first)
counter = ctypes.c_int64.from_buffer(m)
print('go', flush=True)
for i in range(int(sys.argv[2])):
    counter.value = i
os._exit(0)
'''


@util.both_modes
def test_racing_mmap_stores_and_pwrites(shmfs):
    """Another process stores a counter into element 0 through its mapping
    while the test pwrites element 1 of the same page and reads the text:
    no store is lost, element 0 never goes back, element 1 is always the
    last pwrite."""
    x = util.new_object(shmfs, 'x', 'i64[512]')
    stores = 3_000_000
    proc = subprocess.Popen([util.PYTHON, '-c', CHILD_COUNTER, shmfs.r('x'),
                             str(stores)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == 'go\n'
        seen0, i = -1, 0
        with util.opened(shmfs.r('x'), os.O_RDWR) as fd:
            while proc.poll() is None or i < 1000:
                assert os.pwrite(fd, struct.pack('=q', i), 8) == 8
                if i % 20 == 0:
                    values = [int(v) for v in util.read_text(x).split()[:2]]
                    assert values[1] == i, f'element 1 after pwrite {i}'
                    assert values[0] >= seen0, 'element 0 went back'
                    seen0 = values[0]
                i += 1
            assert proc.wait(timeout=30) == 0
            want = struct.pack('=2q', stores - 1, i - 1) + bytes(510 * 8)
            assert util.pread_all(fd, 4096) == want
        assert util.read_text(x) == f'{stores - 1} {i - 1}' + ' 0' * 510 + '\n'
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@util.both_modes
def test_text_writes_racing_mmap_stores_and_writeback(shmfs):
    """Text writes (the daemon's stores into the page cache) race another
    process's mmap stores and their writeback (fsync): every text write is
    seen whole at once, and once quiet the daemon's bytes equal the page
    cache's -- checked by dropping the cached pages and reading again."""
    x = util.new_object(shmfs, 'x', 'i64[512]')
    proc = subprocess.Popen([util.PYTHON, '-c', CHILD_COUNTER, shmfs.r('x'),
                             '3000000'], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == 'go\n'
        with util.opened(shmfs.r('x'), os.O_RDWR) as fd:
            i = 0
            while proc.poll() is None or i < 200:
                v = 1_000_000_000 + i
                util.write_text(x, ' '.join([str(v)] * 512) + '\n')
                got = np.frombuffer(util.pread_all(fd, 4096), dtype=np.int64)
                # element 0 races with the other process's stores
                assert (got[1:] == v).all(), f'text write {i} not seen whole'
                if i % 4 == 0:
                    os.fsync(fd)
                i += 1
            assert proc.wait(timeout=30) == 0
            os.fsync(fd)
            cached = util.pread_all(fd, 4096)
            text = parse_text(util.read_text(x), np.int64).tobytes()
            assert_bytes(text, cached, np.int64, 'text vs pread')
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            assert_bytes(util.pread_all(fd, 4096), cached, np.int64,
                         'pread after dropping the cached pages')
        assert util.read_text(x).split() == [str(v) for v in
                                             np.frombuffer(cached, np.int64)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


CHILD_REWRITER = r'''
import os, sys
path, rounds = sys.argv[1], int(sys.argv[2])
texts = [sys.stdin.buffer.readline() for _ in range(2)]
print('ready', flush=True)
for i in range(rounds):
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    data = texts[i % 2]
    assert os.write(fd, data) == len(data)
    os.close(fd)
'''


@util.both_modes
def test_cat_never_mixes_versions(shmfs):
    n = 1 << 18
    x = util.new_object(shmfs, 'x', f'u8[{n}]')
    texts = [(' '.join([str(v)] * n) + '\n').encode() for v in (111, 222)]
    util.write_text(x, texts[1])
    proc = subprocess.Popen([util.PYTHON, '-c', CHILD_REWRITER, x, '60'],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    reads = 0
    try:
        proc.stdin.write(texts[0] + texts[1])
        proc.stdin.close()
        assert proc.stdout.readline() == b'ready\n'
        while proc.poll() is None or reads == 0:
            got = util.read_bytes(x)
            reads += 1
            assert got in texts, \
                f'read {reads} mixes versions: {sorted(set(got.split()))}'
        assert proc.wait() == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert util.read_bytes(x) == texts[1]


# Roles of test_raw_size_racing_typing's processes.  Each loops until the
# typer has made its last object (the `done` file), or at most LIMIT times.
CHILD_RAW_SIZE = r'''
import errno, mmap, os, sys, time
role, mnt, done = sys.argv[1], sys.argv[2], sys.argv[3]
rounds, limit = int(sys.argv[4]), int(sys.argv[5])
main, raw = os.path.join(mnt, 'x'), os.path.join(mnt, '.raw', 'x')
if role == 'typer':
    for i in range(rounds):
        try:
            os.unlink(main)
        except FileNotFoundError:
            pass
        os.close(os.open(main, os.O_CREAT | os.O_RDWR, 0o644))
        time.sleep(0.0005 * (i % 4))
        os.setxattr(main, 'user.shmfs.type', b'u8[4096]')
        time.sleep(0.0005 * (i % 3))
    open(done, 'w').close()
    sys.exit(0)
maps, shrunk, reads = [], 0, 0
for i in range(limit):
    if os.path.exists(done):
        break
    try:
        if role == 'truncate':
            os.truncate(raw, 0)
        elif role == 'otrunc':
            os.close(os.open(raw, os.O_WRONLY | os.O_TRUNC))
        elif role == 'chmod':
            os.chmod(raw, 0o644)
        elif role == 'pwrite':
            fd = os.open(raw, os.O_WRONLY)
            try:
                os.pwrite(fd, b'x', 0)
            except OSError as e:
                if e.errno != errno.EFBIG:
                    raise
            finally:
                os.close(fd)
        else:
            fd = os.open(raw, os.O_RDWR)
            try:
                size = os.fstat(fd).st_size
                if size:
                    got = len(os.pread(fd, size, 0))
                    reads += 1
                    if got != size:
                        print(f'pread of {size} bytes returned {got}', flush=True)
                        shrunk += 1
                    maps.append(mmap.mmap(fd, size))
            finally:
                os.close(fd)
            for m in maps:
                m[len(m) - 1] = i % 256     # SIGBUS kills this process
            if len(maps) > 4:
                maps.pop(0).close()
    except FileNotFoundError:
        pass                            # between the typer's unlink and create
print(f'reads {reads}', flush=True)
sys.exit(1 if shrunk else 0)
'''


@pytest.mark.shmfs_args('-o', 'mode=cached')
def test_raw_size_racing_typing(shmfs, tmp_path):
    """Objects are typed, 400 times over, while other processes truncate,
    open with O_TRUNC, chmod and pwrite their binary view, and others open
    it, fstat, pread and map it: a pread within the size fstat has just
    given returns every byte, and touching a mapping never raises SIGBUS.
    The raw inode looked up while the object was untyped used to keep its
    size of 0 (or the end of a pwrite) after the typing: the kernel drops
    the new size while a truncate or a write past the end is in flight, yet
    fstat reports it, and it applies a SETATTR reply's stale size as it is
    (docs/semantics.md, "The binary view").  Cached mode: there reads and
    faults go by the kernel's size."""
    done = str(tmp_path / 'done')
    roles = ['truncate', 'otrunc', 'chmod', 'pwrite', 'reader', 'reader']
    procs = [subprocess.Popen([util.PYTHON, '-c', CHILD_RAW_SIZE, role, shmfs.path,
                               done, '400', '1000000'],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for role in ['typer'] + roles]
    results = []
    for role, proc in zip(['typer'] + roles, procs):
        code, out, err = util.finish(proc, 120)
        results.append((role, code, out + err))
    failed = [f'{role} exited {code}' + (' (SIGBUS)' if code == -7 else '') +
              f': {out.strip()[-500:]}' for role, code, out in results if code != 0]
    assert not failed, '\n'.join(failed)
    reads = sum(int(out.split()[-1]) for role, code, out in results if role == 'reader')
    print(f'{reads} reads of typed objects')
    assert reads > 0
    assert shmfs.alive()


@util.both_modes
def test_raw_view_opened_untyped_stays_empty(shmfs):
    """A binary view opened before its object was typed stays the empty
    view of the untyped object -- size 0, reads at end of file, writes
    EFBIG -- while .raw/x, a new inode, has the bytes (docs/semantics.md,
    "The binary view")."""
    x = shmfs.p('x')
    os.close(os.open(x, os.O_CREAT | os.O_WRONLY, 0o644))
    with util.opened(shmfs.r('x')) as old:
        before = os.fstat(old)
        assert before.st_size == 0
        util.set_type(x, 'u8[4096]')
        util.write_text(x, ' '.join(['7'] * 4096) + '\n')
        now = os.stat(shmfs.r('x'))
        assert now.st_size == 4096 and now.st_ino != before.st_ino
        assert os.fstat(old).st_size == 0
        assert os.fstat(old).st_ino == before.st_ino
        assert os.pread(old, 4096, 0) == b''
        assert util.errno_of(os.pwrite, old, b'x', 0) == errno.EFBIG
        assert util.xattr(old, 'user.shmfs.type') == 'u8[4096]'
        assert util.read_bytes(shmfs.r('x')) == bytes([7] * 4096)
        with util.mapped(shmfs.r('x')) as m:
            assert m[:] == bytes([7] * 4096)
    assert util.read_bytes(shmfs.r('x')) == bytes([7] * 4096)
