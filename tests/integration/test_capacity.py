"""Capacity (DESIGN.md section 7, docs/semantics.md "Capacity and df"): -o size= bounds
the bytes of all typed objects like tmpfs' size=; typing past it (setxattr or
a first text write) fails with ENOSPC and leaves the object untyped; statvfs
reports the capacity and what is used; removing an object gives its bytes
back; an object's memory is allocated when it is typed, so a mapping never
meets SIGBUS; a bad size= is an error at start."""

import errno
import os
import signal
import subprocess

import pytest

import util
import util_store

MIB = 1 << 20
QUARTER = 'u8[262144]'          # a quarter of 1 MiB, page-sized slices


def mem_bytes():
    return os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')


def capacity(mount):
    s = os.statvfs(mount.path)
    return s.f_blocks * s.f_frsize


def free_bytes(mount):
    s = os.statvfs(mount.path)
    return s.f_bfree * s.f_frsize


def create(mount, name):
    path = mount.p(name)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return path


def assert_untyped(mount, name):
    path = mount.p(name)
    assert util.errno_of(os.getxattr, path, util.TYPE) == errno.ENODATA
    assert util.TYPE not in os.listxattr(path)
    assert os.stat(mount.r(name)).st_size == 0
    assert util.read_bytes(path) == b''
    assert util.read_bytes(mount.r(name)) == b''


def both_modes_with(*opts):
    return pytest.mark.parametrize(
        'shmfs', [('-o', ','.join((f'mode={m}',) + opts))
                  for m in util.MODES], ids=util.MODES, indirect=True)


# -- what statfs says ---------------------------------------------------------

SIZES = [('1M', MIB), ('1m', MIB), ('64k', 64 << 10), ('3145728', 3 * MIB),
         ('1g', 1 << 30), ('2G', 2 << 30), ('5%', None)]


@pytest.mark.parametrize('shmfs,want', [
    (('-o', f'size={text}'), want) for text, want in SIZES],
    ids=[text for text, _ in SIZES], indirect=['shmfs'])
def test_statfs_reports_capacity(shmfs, want):
    s = os.statvfs(shmfs.path)
    if want is None:
        want = 5 * (mem_bytes() // 100)
        assert abs(s.f_blocks * s.f_frsize - want) < s.f_frsize
    else:
        assert s.f_blocks * s.f_frsize == want
    assert s.f_bfree == s.f_blocks            # nothing typed yet
    assert s.f_bavail == s.f_bfree


def test_statfs_without_limit_is_half_of_memory(shmfs):
    s = os.statvfs(shmfs.path)
    assert abs(s.f_blocks * s.f_frsize - mem_bytes() // 2) < s.f_frsize
    util.new_object(shmfs, 'big', 'u8[4194304]')
    used = (4 * MIB) // s.f_frsize
    assert os.statvfs(shmfs.path).f_bfree == s.f_bfree - used


@util.both_modes
def test_default_capacity_is_enforced(shmfs):
    """Without -o size the capacity is half of the memory, as tmpfs': an
    object larger than that is ENOSPC, never a daemon in the OOM killer."""
    half = mem_bytes() // 2
    for spec in (f'u8[{half + 4096}]', f'u8[{mem_bytes()}]',
                 'u8[1099511627776]', 'f64[1048576][131072]'):
        path = create(shmfs, 'huge')
        assert util.errno_of(util.set_type, path, spec) == errno.ENOSPC, spec
        assert_untyped(shmfs, 'huge')
        os.unlink(path)
    assert shmfs.alive()
    x = util.new_object(shmfs, 'x', 'i64', '5')      # still serving
    assert util.read_text(x) == '5\n'


@both_modes_with('size=1M')
def test_typing_uses_capacity_then_enospc(shmfs):
    assert capacity(shmfs) == MIB
    free0 = free_bytes(shmfs)
    assert free0 == MIB
    for i in range(4):
        util.new_object(shmfs, f'q{i}', QUARTER)
        assert free_bytes(shmfs) == MIB - (i + 1) * MIB // 4
    util.write_text(shmfs.p('q0'), ' '.join(['7'] * 262144) + '\n')

    before = shmfs.rejected_count()
    for spec in ('u8', 'i64', 'f64[2]', 'char[1]', QUARTER):
        path = create(shmfs, 'over')
        assert util.errno_of(util.set_type, path, spec) == errno.ENOSPC, spec
        assert_untyped(shmfs, 'over')
        os.unlink(path)
    assert shmfs.wait_rejected(before)
    # the first text write infers a type: it is refused the same way
    path = create(shmfs, 'inferred')
    for text in ('5\n', '2.5\n', 'true\n', '1 2 3\n'):
        werr, cerr = util.try_write_text(path, text)
        assert werr == errno.ENOSPC, (text, util.ename(werr), util.ename(cerr))
        assert_untyped(shmfs, 'inferred')
    r = subprocess.run(['bash', '-c', 'echo 42 > "$1"', 'bash',
                        shmfs.p('by-echo')], stderr=subprocess.PIPE, text=True)
    assert r.returncode != 0 and 'No space left' in r.stderr, r
    assert_untyped(shmfs, 'by-echo')

    # nothing changed: the full objects keep their bytes, statfs is full
    assert free_bytes(shmfs) == 0
    assert util.read_bytes(shmfs.r('q0')) == b'\x07' * 262144
    assert util.read_bytes(shmfs.r('q3')) == bytes(262144)
    assert shmfs.alive()


@both_modes_with('size=1M')
def test_refused_object_binary_view(shmfs):
    """An object left untyped by ENOSPC has the binary view of any untyped
    object (docs/semantics.md): empty, and any write to it is EFBIG."""
    util.new_object(shmfs, 'full', 'u8[1048576]')
    path = create(shmfs, 'over')
    assert util.errno_of(util.set_type, path, 'i64') == errno.ENOSPC
    with util.opened(shmfs.r('over'), os.O_RDWR) as fd:
        assert os.pread(fd, 8, 0) == b''
        assert util.errno_of(os.pwrite, fd, b'x', 0) == errno.EFBIG
    assert_untyped(shmfs, 'over')
    assert shmfs.alive()
    # once there is room, it can still be typed
    os.unlink(shmfs.p('full'))
    assert util.poll_until(lambda: free_bytes(shmfs) == MIB, 1.0)
    util.set_type(path, 'i64')
    util.write_text(path, '-9\n')
    assert util.read_text(path) == '-9\n'


@both_modes_with('size=1M')
def test_exact_fit_and_one_byte_over(shmfs):
    path = create(shmfs, 'whole')
    assert util.errno_of(util.set_type, path, 'u8[1048577]') == errno.ENOSPC
    assert_untyped(shmfs, 'whole')
    assert util.errno_of(util.set_type, path, 'u16[524289]') == errno.ENOSPC
    assert util.errno_of(util.set_type, path, 'u8[2][524289]') == errno.ENOSPC
    assert free_bytes(shmfs) == MIB
    util.set_type(path, 'u8[1048576]')          # exactly the capacity
    assert util.xattr(path, util.TYPE) == 'u8[1048576]'
    assert free_bytes(shmfs) == 0
    with util.mapped(shmfs.r('whole')) as m:
        m[-1] = 0xff
    assert util.read_bytes(shmfs.r('whole'))[-1] == 0xff


@both_modes_with('size=1M')
def test_unlink_gives_bytes_back(shmfs):
    for i in range(4):
        util.new_object(shmfs, f'q{i}', QUARTER)
    assert free_bytes(shmfs) == 0
    # rm, rename over an object, and rm of an object in a directory
    os.unlink(shmfs.p('q0'))
    assert util.poll_until(lambda: free_bytes(shmfs) == MIB // 4, 1.0), \
        free_bytes(shmfs)
    os.rename(shmfs.p('q1'), shmfs.p('q2'))
    assert util.poll_until(lambda: free_bytes(shmfs) == MIB // 2, 1.0), \
        free_bytes(shmfs)
    os.mkdir(shmfs.p('d'))
    util.new_object(shmfs, 'd/x', QUARTER)
    util.sh_ok('rm -r d', cwd=shmfs.path)
    assert util.poll_until(lambda: free_bytes(shmfs) == MIB // 2, 1.0)
    # an untyped object holds no bytes: creating and removing one is free
    create(shmfs, 'untyped')
    assert free_bytes(shmfs) == MIB // 2
    # the space can be used again, to the byte
    util.set_type(shmfs.p('untyped'), 'u8[524288]')
    assert free_bytes(shmfs) == 0
    assert util.read_bytes(shmfs.r('q2')) == bytes(262144)


@both_modes_with('size=1M')
def test_rm_then_recreate_at_once(shmfs):
    """`rm big; create big` works right away, as on tmpfs: the bytes of an
    object removed with no users are back when unlink returns (the kernel's
    FORGET for the inode may come later; the bytes must not wait for it)."""
    rounds = 1000
    failures = 0
    for i in range(rounds):
        path = create(shmfs, 'big')
        e = util.errno_of(util.set_type, path, 'u8[1048576]')
        if e:
            failures += 1
            assert e == errno.ENOSPC, util.ename(e)
        os.unlink(path)
    shmfs.expect_output(r'^shmfs: rejected /big: .*No space left')
    assert failures == 0, \
        f'{failures} of {rounds} immediate re-creations: ENOSPC'


@both_modes_with('size=1M')
def test_mapped_object_keeps_its_bytes_until_unmapped(shmfs):
    util.new_object(shmfs, 'x', 'u8[1048576]')
    with util.mapped(shmfs.r('x')) as m:
        m[:4] = b'abcd'
        os.unlink(shmfs.p('x'))
        # still in use: its bytes cannot be handed out yet
        path = create(shmfs, 'y')
        assert util.errno_of(util.set_type, path, 'u8[1048576]') == \
            errno.ENOSPC
        assert_untyped(shmfs, 'y')
        m[-4:] = b'wxyz'
        assert m[:4] == b'abcd' and m[-4:] == b'wxyz'
    assert util.poll_until(lambda: free_bytes(shmfs) == MIB, 2.0), \
        free_bytes(shmfs)
    util.set_type(shmfs.p('y'), 'u8[1048576]')
    assert util.read_bytes(shmfs.r('y')) == bytes(MIB)


TOUCH_ALL = r'''
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
n = os.fstat(fd).st_size
m = mmap.mmap(fd, n, mmap.MAP_SHARED)
os.close(fd)
for off in range(0, n, mmap.PAGESIZE):
    m[off] = (off // mmap.PAGESIZE) % 251 + 1
m.close()
'''


@both_modes_with('size=8M')
def test_mapping_never_sigbus(shmfs):
    """Typing the whole capacity allocates it: a process that then stores
    into every page of its mapping never meets SIGBUS."""
    util.new_object(shmfs, 'a', 'u8[4194304]')
    util.new_object(shmfs, 'b', 'u8[4194304]')
    assert free_bytes(shmfs) == 0
    for name in ('a', 'b'):
        r = subprocess.run([util.PYTHON, '-c', TOUCH_ALL, shmfs.r(name)],
                           stderr=subprocess.PIPE, text=True, timeout=60)
        assert r.returncode == 0, \
            (f'storing into every page of .raw/{name}: status {r.returncode}'
             + (' (SIGBUS)' if r.returncode == -signal.SIGBUS else '')
             + r.stderr)
        data = util.read_bytes(shmfs.r(name))
        page = 4096
        assert all(data[o] == (o // page) % 251 + 1
                   for o in range(0, len(data), page))


@util.both_modes
def test_memory_allocated_when_typed(shmfs):
    """docs/semantics.md: an object's bytes are allocated in full when it is typed.  A
    large object has a memfd of its own in the daemon; it has its blocks
    before anybody writes."""
    nbytes = 8 * MIB
    util.new_object(shmfs, 'big', f'u8[{nbytes}]')
    found = []
    for entry in os.listdir(f'/proc/{shmfs.pid}/fd'):
        link = f'/proc/{shmfs.pid}/fd/{entry}'
        try:
            if not os.readlink(link).startswith('/memfd:'):
                continue
            st = os.stat(link)
        except OSError:
            continue
        if st.st_size == nbytes:
            found.append(st.st_blocks * 512)
    assert len(found) == 1, found
    assert found[0] >= nbytes, f'{found[0]} of {nbytes} bytes allocated'


# -- bad size= ----------------------------------------------------------------

BAD_SIZES = ['abc', '0', '', '-1', '1x', '1kk', '1 m', ' 1m', '1.5m', '0%',
             '0k', 'k', '%', '1e6', '0x100', '99999999999999999999',
             '17179869184g', '1m,size=']


@pytest.mark.parametrize('size', BAD_SIZES)
@pytest.mark.parametrize('fg', [False, True], ids=['bg', 'fg'])
def test_bad_size_refused(size, fg):
    mnt = util.make_mountpoint()
    try:
        args = (['-f'] if fg else []) + ['-o', f'size={size}']
        err = util_store.assert_refused(args, mnt)
        assert 'size' in err, err
    finally:
        os.rmdir(mnt)
