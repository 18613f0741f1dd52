"""Persistence with -o store=DIR (DESIGN.md section 7, docs/semantics.md "Persistence"):
objects, types, values, directories, modes and owners survive a clean unmount
and a kill -9 of the daemon (every durability point: text writes, write(2) on
.raw, mapped stores followed by fsync on either view, namespace and metadata
changes); stored objects are served cached and mode=passthrough is refused;
damaged or foreign entries in DIR are logged, skipped and left alone."""

import contextlib
import errno
import mmap
import os
import struct

import numpy as np
import pytest

import util
import util_store
from util_store import mounts  # noqa: F401  (fixture)

SKIPPING = util_store.STORE_SKIPPING


@pytest.fixture
def store(tmp_path):
    d = tmp_path / 'store'
    d.mkdir()
    return str(d)


def stored(store, rel):
    """The bytes of DIR/rel."""
    with open(os.path.join(store, rel), 'rb') as f:
        return f.read()


def put(path, data):
    with open(path, 'wb') as f:
        f.write(data)


def store_arg(store, extra=''):
    return ('-o', f'store={store}' + (f',{extra}' if extra else ''))


# -- options ------------------------------------------------------------------

@pytest.mark.parametrize('extra', ['', 'mode=auto', 'mode=cached'])
def test_store_is_served_cached(mounts, store, extra):
    d = mounts.start(*store_arg(store, extra))
    assert d.mode() == 'cached'
    util.new_object(d, 'x', 'i64', '7\n')
    assert util.read_text(d.p('x')) == '7\n'
    mounts.stop(d)


def test_store_with_passthrough_refused(store):
    mnt = util.make_mountpoint()
    try:
        util_store.assert_refused(store_arg(store, 'mode=passthrough'), mnt)
        util_store.assert_refused(['-f'] + list(
            store_arg(store, 'mode=passthrough')), mnt)
    finally:
        os.rmdir(mnt)
    # nothing was written into the store
    assert os.listdir(store) == []


@pytest.mark.parametrize('what', ['regular-file', 'under-a-file', 'proc'])
def test_bad_store_dir_refused(tmp_path, what):
    f = tmp_path / 'file'
    f.write_bytes(b'not a directory')
    bad = {'regular-file': str(f),
           'under-a-file': str(f / 'sub'),
           'proc': '/proc/shmfs-no-such-store'}[what]
    mnt = util.make_mountpoint()
    try:
        err = util_store.assert_refused(['-f', '-o', f'store={bad}'], mnt)
        assert 'store' in err, err
    finally:
        os.rmdir(mnt)
    assert f.read_bytes() == b'not a directory'


# -- a clean unmount ----------------------------------------------------------

def populate(d):
    """A tree with every kind of entry; returns nothing, the snapshot says."""
    util.write_text(d.p('pi'), '3.1415926\n', create=True)        # inferred
    util.new_object(d, 'arr', 'i32[5]', '0 1 2 3 -4\n')
    util.new_object(d, 'name', 'char[16]', 'hello store\n')
    util.new_object(d, 'flag', 'bool', 'true\n')
    util.new_object(d, 'zeros', 'f32[3][2]')                      # never set
    os.close(os.open(d.p('untyped'), os.O_CREAT | os.O_WRONLY, 0o644))
    os.mkdir(d.p('dir'))
    os.mkdir(d.p('dir/sub'), 0o750)
    util.new_object(d, 'dir/sub/deep', 'u16[3]', '[1, 2, 65535]\n')
    util.new_object(d, 'big', f'f64[{2048}]')                      # 16 KiB
    with util.opened(d.r('big'), os.O_WRONLY) as fd:
        os.pwrite(fd, np.arange(2048, dtype=np.float64).tobytes(), 0)
    os.chmod(d.p('arr'), 0o600)
    os.chmod(d.p('dir/sub'), 0o700)
    os.chown(d.p('name'), 1000, 1001)
    os.chown(d.p('dir'), 4321, 8765)


def test_clean_unmount_keeps_everything(mounts, store):
    d = mounts.start(*store_arg(store))
    populate(d)
    os.utime(d.p('flag'), ns=(1_000_000_000_123, 1_500_000_000_456_000_000))
    before = util_store.snapshot(d)
    assert len(before) == 10, before.keys()
    assert before['pi'][4:6] == ('f64', '3.1415926\n')
    assert before['untyped'][4:] == (None, '', b'')
    mounts.stop(d)

    d = mounts.start(*store_arg(store))
    after = util_store.snapshot(d)
    assert after == before, util_store.diff(before, after)
    assert os.stat(d.p('flag')).st_mtime_ns == 1_500_000_000_456_000_000
    # the objects are live: they can be written and read again
    util.write_text(d.p('arr'), '5 6 7 8 9\n')
    assert util.read_bytes(d.r('arr')) == struct.pack('5i', 5, 6, 7, 8, 9)
    # and a second round trip keeps the new value
    mounts.stop(d)
    d = mounts.start(*store_arg(store))
    assert util.cat(d.p('arr')) == '5 6 7 8 9\n'
    assert util_store.snapshot(d)['pi'] == before['pi']
    mounts.stop(d)


def test_store_dir_mirrors_the_tree(mounts, store):
    """docs/semantics.md: each directory a directory, each object a regular file at the
    same path holding the object's bytes, its type in user.shmfs.type."""
    d = mounts.start(*store_arg(store))
    util.new_object(d, 'v', 'i64', '-2\n')
    os.mkdir(d.p('dd'))
    util.new_object(d, 'dd/w', 'u8[4]', '1 2 3 4\n')
    mounts.stop(d)
    assert sorted(os.listdir(store)) == ['dd', 'v']
    assert stored(store, 'v') == struct.pack('q', -2)
    assert os.getxattr(os.path.join(store, 'v'), util.TYPE) == b'i64'
    assert stored(store, 'dd/w') == bytes([1, 2, 3, 4])
    assert not os.path.exists(os.path.join(store, '.raw'))


def test_rejected_input_changes_nothing_stored(mounts, store):
    d = mounts.start(*store_arg(store))
    util.new_object(d, 'x', 'i16[2]', '1 2\n')
    before = mounts.daemons[-1].rejected_count()
    assert util.try_write_text(d.p('x'), '1 abc\n')[0] == errno.EINVAL
    assert util.try_write_text(d.p('x'), '1 70000\n')[0] == errno.ERANGE
    assert util.errno_of(util.set_type, d.p('x'), 'i64') == errno.EPERM
    with util.opened(d.r('x'), os.O_WRONLY) as fd:
        assert util.errno_of(os.pwrite, fd, b'zz', 4) == errno.EFBIG
    assert util.errno_of(os.mkdir, d.p('.raw')) == errno.EEXIST
    assert util.errno_of(os.mkdir, d.r('y')) == errno.EPERM
    assert d.wait_rejected(before)
    mounts.stop(d)
    assert sorted(os.listdir(store)) == ['x']
    d = mounts.start(*store_arg(store))
    assert util.cat(d.p('x')) == '1 2\n'
    assert util.xattr(d.p('x'), util.TYPE) == 'i16[2]'
    assert os.stat(d.r('x')).st_size == 4
    mounts.stop(d)


# -- kill -9 ------------------------------------------------------------------

F64N = 1024          # 8 KiB
I32N = 2048          # 8 KiB


def format_1d(arr):
    """The text view of a 1-D array whose floats are exact in few digits."""
    def one(v):
        if isinstance(v, float) and not v.is_integer():
            return repr(v)
        return str(int(v))
    return ' '.join(one(v) for v in arr.tolist()) + '\n'


def test_kill9_keeps_every_durable_store(mounts, store):
    d = mounts.start(*store_arg(store))
    # namespace: directories made, one removed, objects renamed and removed
    os.mkdir(d.p('dir'))
    os.mkdir(d.p('dir/sub'))
    os.mkdir(d.p('doomed-dir'))
    os.mkdir(d.p('moved-dir'))
    util.new_object(d, 'moved-dir/inside', 'u8', '9\n')
    # text write (type inferred), and an explicit type then text
    util.write_text(d.p('pi'), '3.1415926\n', create=True)
    util.new_object(d, 'dir/arr', 'i32[4]', '10 -20 30 -40\n')
    util.new_object(d, 'dir/sub/s', 'char[8]', 'abc\n')
    util.new_object(d, 'zero', 'u64')
    os.close(os.open(d.p('untyped'), os.O_CREAT | os.O_WRONLY, 0o644))
    # pwrite on .raw
    util.new_object(d, 'raw', 'i64[2]')
    with util.opened(d.r('raw'), os.O_WRONLY) as fd:
        assert os.pwrite(fd, struct.pack('q', -77), 8) == 8
    # rename, rename over an existing object, rm
    util.new_object(d, 'old', 'f32', '1.5\n')
    os.rename(d.p('old'), d.p('dir/new'))
    util.new_object(d, 'victim', 'i64', '111\n')
    util.new_object(d, 'winner', 'i64', '222\n')
    os.rename(d.p('winner'), d.p('victim'))
    os.rename(d.p('moved-dir'), d.p('dir/moved-dir'))
    util.new_object(d, 'gone', 'i64', '5\n')
    os.unlink(d.p('gone'))
    os.rmdir(d.p('doomed-dir'))
    # chmod, chown
    os.chmod(d.p('pi'), 0o600)
    os.chmod(d.p('dir/sub'), 0o711)
    os.chown(d.p('dir/arr'), 1000, 1000)
    os.chown(d.p('dir/sub'), 2000, 3000)
    # rejected input on a stored object changes nothing
    assert util.try_write_text(d.p('pi'), 'not a number\n')[0] == errno.EINVAL
    assert util.errno_of(util.set_type, d.p('pi'), 'i64') == errno.EPERM

    # mapped stores made durable by fsync: one on .raw, one on the text view.
    # Everything else is snapshotted first: reading an object through the
    # mount after its mapped stores could itself make them durable.  The
    # mappings and fds stay open through the kill, so nothing but fsync (no
    # munmap, no close/flush) can have written them back.
    f64 = np.arange(F64N, dtype=np.float64) * 0.25 - 3
    i32 = (np.arange(I32N, dtype=np.int32) * 7919) ^ 0x5A5A
    util.new_object(d, 'mapped-raw', f'f64[{F64N}]')
    util.new_object(d, 'dir/mapped-text', f'i32[{I32N}]')
    expect = util_store.snapshot(d)
    assert sorted(expect) == [
        'dir', 'dir/arr', 'dir/mapped-text', 'dir/moved-dir',
        'dir/moved-dir/inside', 'dir/new', 'dir/sub', 'dir/sub/s',
        'mapped-raw', 'pi', 'raw', 'untyped', 'victim', 'zero']
    assert expect['raw'][6] == struct.pack('2q', 0, -77)
    assert expect['victim'][5] == '222\n'
    assert expect['pi'][1:6] == (oct(0o100600), 0, 0, 'f64', '3.1415926\n')
    assert expect['dir/sub'] == ('dir', oct(0o40711), 2000, 3000)
    assert expect['dir/arr'][2:4] == (1000, 1000)
    assert expect['dir/arr'][5] == '10 -20 30 -40\n'
    for name, arr in (('mapped-raw', f64), ('dir/mapped-text', i32)):
        e = expect[name]
        assert e[6] == bytes(arr.nbytes)
        expect[name] = e[:5] + (format_1d(arr), arr.tobytes())
    held = contextlib.ExitStack()
    with held:
        fd1 = os.open(d.r('mapped-raw'), os.O_RDWR)
        held.callback(lambda: util.errno_of(os.close, fd1))
        m1 = mmap.mmap(fd1, F64N * 8, mmap.MAP_SHARED)
        held.callback(m1.close)
        fd2 = os.open(d.r('dir/mapped-text'), os.O_RDWR)
        held.callback(lambda: util.errno_of(os.close, fd2))
        m2 = mmap.mmap(fd2, I32N * 4, mmap.MAP_SHARED)
        held.callback(m2.close)
        t2 = os.open(d.p('dir/mapped-text'), os.O_RDONLY)
        held.callback(lambda: util.errno_of(os.close, t2))
        m1[:] = f64.tobytes()
        m2[:] = i32.tobytes()
        os.fsync(fd1)
        os.fsync(t2)
        mounts.kill9(d)
    d = mounts.start(*store_arg(store))
    got = util_store.snapshot(d)
    assert got == expect, util_store.diff(expect, got)
    mounts.stop(d)


def test_kill9_of_idle_daemon_then_clean_cycles(mounts, store):
    """A store survives several kill -9 / remount rounds, each adding one
    object, and a final clean unmount."""
    for i in range(3):
        d = mounts.start(*store_arg(store))
        for j in range(i):
            assert util.cat(d.p(f'o{j}')) == f'{j * 11}\n'
        util.write_text(d.p(f'o{i}'), f'{i * 11}\n', create=True)
        mounts.kill9(d)
    d = mounts.start(*store_arg(store))
    assert sorted(os.listdir(d.path)) == ['o0', 'o1', 'o2']
    mounts.stop(d)


# -- damaged and foreign entries ----------------------------------------------

def make_garbage(store):
    """Fills store with good entries and garbage; returns (good, garbage):
    relative paths of what must load and of what must be skipped."""
    def obj(rel, data, spec=None, attr=None):
        p = os.path.join(store, rel)
        put(p, data)
        if spec is not None:
            os.setxattr(p, util.TYPE, spec.encode())
        if attr is not None:
            os.setxattr(p, 'user.shmfs.attr', attr.encode())

    os.mkdir(os.path.join(store, 'sub'))
    # good ones
    obj('good', struct.pack('q', 42), 'i64', '640 0 0')
    obj('sub/v', struct.pack('d', 2.5), 'f64', '644 0 0')
    obj('empty-untyped', b'', None, '644 0 0')
    obj('half', b'', 'i32[4]', '644 0 0')      # typed, crash before its size
    # garbage
    obj('foreign', b'some bytes, no type')
    obj('sub/junk', b'\x00\x01\x02')
    obj('badsize', b'12345', 'i64')
    obj('badtype', b'12345678', 'q9z')
    obj('sub/badtype2', b'', 'i64[0')
    os.symlink('good', os.path.join(store, 'link'))
    os.symlink('/etc/passwd', os.path.join(store, 'sub/abs-link'))
    os.mkfifo(os.path.join(store, 'fifo'))
    os.mkdir(os.path.join(store, '.raw'))
    obj('.raw/good', struct.pack('q', 1), 'i64')
    good = ['empty-untyped', 'good', 'half', 'sub', 'sub/v']
    garbage = ['foreign', 'sub/junk', 'badsize', 'badtype', 'sub/badtype2',
               'link', 'sub/abs-link', 'fifo', '.raw']
    return good, garbage


def fingerprint(store):
    """What DIR holds, so that 'left alone' can be checked."""
    out = {}
    for top, dirs, files in os.walk(store):
        for name in dirs + files:
            p = os.path.join(top, name)
            st = os.lstat(p)
            data = None
            if os.path.islink(p):
                data = os.readlink(p)
            elif os.path.isfile(p):
                data = stored(store, p)
            out[os.path.relpath(p, store)] = (st.st_mode, data,
                                              sorted(os.listxattr(
                                                  p, follow_symlinks=False)))
    return out


def test_garbage_in_store_is_skipped(mounts, store):
    good, garbage = make_garbage(store)
    before = fingerprint(store)
    d = mounts.start('-o', f'store={store}', expect=[SKIPPING])
    skipped = [line for line in d.log().splitlines()
               if line.startswith('shmfs: store: skipping ')]
    skipped_paths = sorted(line.split(' ')[3].rstrip(':') for line in skipped)
    assert skipped_paths == sorted(garbage), '\n'.join(skipped)
    for line in skipped:
        assert line.count(': ') >= 2 and line.split(': ', 3)[-1], line

    assert sorted(os.listdir(d.path)) == ['empty-untyped', 'good', 'half',
                                          'sub']
    assert sorted(os.listdir(d.p('sub'))) == ['v']
    assert util.cat(d.p('good')) == '42\n'
    assert os.stat(d.p('good')).st_mode & 0o7777 == 0o640
    assert util.cat(d.p('sub/v')) == '2.5\n'
    assert util.cat(d.p('half')) == '0 0 0 0\n'
    assert util.xattr(d.p('half'), util.TYPE) == 'i32[4]'
    assert util_store.type_of(d.p('empty-untyped')) is None
    # the .raw of the store is not the mount's .raw
    assert os.stat(d.r('good')).st_size == 8
    assert util.read_bytes(d.r('good')) == struct.pack('q', 42)
    for name in garbage:
        if '/' not in name and name != '.raw':
            assert util.errno_of(os.stat, d.p(name)) == errno.ENOENT, name
    # the mount works: new objects, writes, the loaded ones are live
    util.write_text(d.p('fresh'), '1.25\n', create=True)
    util.write_text(d.p('half'), '1 2 3 4\n')
    util.write_text(d.p('good'), '43\n')
    assert util.cat(d.p('fresh')) == '1.25\n'
    mounts.stop(d)

    # the garbage was left alone; 'half' was completed to its size
    after = fingerprint(store)
    for name in garbage:
        for rel in before:
            if rel == name or rel.startswith(name + '/'):
                assert after.get(rel) == before[rel], rel
    assert os.path.getsize(os.path.join(store, 'half')) == 16

    # and a second mount reports the same garbage and keeps the new values
    d = mounts.start('-o', f'store={store}', expect=[SKIPPING])
    again = sorted(line.split(' ')[3].rstrip(':')
                   for line in d.log().splitlines()
                   if line.startswith('shmfs: store: skipping '))
    assert again == sorted(garbage)
    assert util.cat(d.p('half')) == '1 2 3 4\n'
    assert util.cat(d.p('good')) == '43\n'
    assert util.cat(d.p('fresh')) == '1.25\n'
    mounts.stop(d)


@pytest.mark.parametrize('kind', ['no-type', 'bad-size', 'bad-type',
                                  'symlink', 'fifo', 'raw-dir', 'huge-type'])
def test_each_kind_of_garbage_alone(mounts, store, kind):
    p = os.path.join(store, 'bad')
    if kind == 'no-type':
        put(p, b'x')
    elif kind == 'bad-size':
        put(p, b'x' * 9)
        os.setxattr(p, util.TYPE, b'f64')
    elif kind == 'bad-type':
        put(p, b'x' * 8)
        os.setxattr(p, util.TYPE, b'float64')
    elif kind == 'huge-type':
        # 2**40 + 1 bytes is over the 1 TiB limit: an unknown type
        put(p, b'x')
        os.setxattr(p, util.TYPE, b'u8[1099511627777]')
    elif kind == 'symlink':
        os.symlink('.', p)
    elif kind == 'fifo':
        os.mkfifo(p)
    else:
        p = os.path.join(store, '.raw')
        os.mkdir(p)
    d = mounts.start('-o', f'store={store}', expect=[SKIPPING])
    lines = [line for line in d.log().splitlines() if 'skipping' in line]
    name = os.path.basename(p)
    assert len(lines) == 1 and lines[0].startswith(
        f'shmfs: store: skipping {name}: '), d.log()
    assert os.listdir(d.path) == []
    util.write_text(d.p('ok'), '1\n', create=True)
    assert util.cat(d.p('ok')) == '1\n'
    mounts.stop(d)
