"""Remote mounts attacked (docs/remote.md): bad input through two mounts
gives the errnos of a local mount and changes nothing anywhere; races of
several processes on two or three mounts, counted exactly; stale local
state after another host removed and remade a name; permissions set on one
mount enforced on the other."""

import errno
import itertools
import os
import stat
import struct
import subprocess
import threading
import time

import pytest

import redis_util
import util
from test_remote import Mounts, entries, _prefixes

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


@pytest.fixture(scope='module')
def redis():
    with redis_util.RedisServer() as server:
        yield server


@pytest.fixture
def mounts(redis, tmp_path):
    m = Mounts(tmp_path, redis.url, f'hostile{os.getpid()}-{next(_prefixes)}')
    try:
        yield m
    finally:
        problems = m.close()
    if problems:
        pytest.fail('shmfs teardown:\n  ' + '\n  '.join(problems), pytrace=False)


@pytest.fixture
def pair(mounts):
    return mounts.mount(), mounts.mount()


def redis_names(redis, prefix, dir_oid=1):
    """The names Redis holds in a directory of the prefix."""
    out = redis.cli('HKEYS', f'{{{prefix}}}:d:{dir_oid}')
    return sorted(n for n in out.splitlines() if n)


# ---- bad input: the errnos of a local mount, nothing changed -----------------

OBJECTS = [('s', 'i32', '5'), ('arr', 'u8[4]', '1 2 3 4'),
           ('rec', '{a:i32, b:f64}', '{"a": 1, "b": 2.5}'),
           ('ch', 'char[8]', 'hi'), ('grid', 'i16[2][2]', '[[1, 2], [3, 4]]')]


def populate(m):
    for name, spec, text in OBJECTS:
        util.new_object(m, name, spec, text)
    os.close(os.open(m.p('u'), os.O_CREAT | os.O_WRONLY, 0o644))
    os.mkdir(m.p('d'))


def snapshot(m):
    """What a user would compare: listings, values, versions, sizes, modes."""
    seen = {'/': entries(m.path), 'd': entries(m.p('d'))}
    for name, _, _ in OBJECTS:
        st = os.stat(m.r(name))
        seen[name] = (util.cat(m.p(name)), util.xattr(m.p(name), 'user.shmfs.version'),
                      util.xattr(m.p(name), 'user.shmfs.type'), st.st_size,
                      stat.S_IMODE(st.st_mode))
    seen['u'] = util.errno_of(os.getxattr, m.p('u'), 'user.shmfs.type')
    return seen


def text(name, data):
    return lambda m: util.try_write_text(m.p(name), data)


def xset(name, attr, value, raw=False):
    return lambda m: util.errno_of(os.setxattr, m.r(name) if raw else m.p(name),
                                   attr, value.encode() if isinstance(value, str) else value)


def pwrite(name, data, off):
    def op(m):
        with util.opened(m.r(name)) as fd:
            return util.errno_of(os.pwrite, fd, data, off)
    return op


def pwrite_count(name, data, off):
    def op(m):
        with util.opened(m.r(name)) as fd:
            return os.pwrite(fd, data, off), util.errno_of(os.pwrite, fd, data, off + len(data))
    return op


def ftrunc(path_of, size):
    def op(m):
        with util.opened(path_of(m)) as fd:
            return util.errno_of(os.ftruncate, fd, size)
    return op


def errno_op(fn, *paths):
    return lambda m: util.errno_of(fn, *[m.p(p) for p in paths])


BAD_SPECS = ['i33', 'u8[0]', 'u8[', 'u8]', '{a:i32, a:i32}', '', 'char[0]', 'f64[-1]',
             'x' * 300, '{}', '{a}', '{a:}', 'i32[2][', 'u8[1][0]', '{a:i32 b:i32}',
             '\xff', 'i32\x00', 'u8[18446744073709551616]', '{1a:i32}']

BAD_OPS = (
    [(f'type {s!r}', xset('u', 'user.shmfs.type', s)) for s in BAD_SPECS] +
    [('retype typed', xset('s', 'user.shmfs.type', 'i64')),
     ('type a directory', xset('d', 'user.shmfs.type', 'i32')),
     ('type the root', lambda m: util.errno_of(util.set_type, m.path, 'i32'))] +
    [(f'text {n} {t!r}', text(n, t)) for n, t in [
        ('s', '2147483648\n'), ('s', '-2147483649\n'), ('s', 'abc\n'), ('s', '1 2\n'),
        ('s', '1.5\n'), ('s', '\n'), ('s', ''), ('s', '0x\n'), ('s', '[1\n'),
        ('s', '1e3\n'), ('s', '\xff\n'),
        ('arr', '1 2 3 256\n'), ('arr', '1 2 3\n'), ('arr', '1 2 3 4 5\n'),
        ('arr', '[1, 2, 3, 4\n'), ('arr', '1,,2,3,4\n'), ('arr', '-1 2 3 4\n'),
        ('arr', '1 2 3 4 x'), ('arr', 'nan 1 2 3\n'), ('arr', '1 2 3 4]\n'),
        ('rec', '{"a": 1.5}\n'), ('rec', '{"b": "x"}\n'), ('rec', '{"a": 1\n'),
        ('rec', '[1, 2]\n'), ('rec', '{"a": 1, "a": 2}\n'), ('rec', '{"c": 1}\n'),
        ('rec', '{"a": 2147483648}\n'), ('rec', '5\n'),
        ('ch', 'abcdefghi\n'), ('ch', 'a\x00b\n'), ('ch', 'a\nb\n'),
        ('grid', '1 2 3\n'), ('grid', '[[1, 2], [3]]\n'), ('grid', '1 2\n3 4 5\n'),
        ('grid', '1 2\n3\n'), ('grid', '32768 0 0 0\n'),
        ('s', '1' * 5000 + '\n')]] +
    [('pwrite at the end', pwrite('arr', b'x', 4)),
     ('pwrite far past', pwrite('arr', b'x', 1 << 40)),
     ('pwrite untyped', pwrite('u', b'x', 0)),
     ('truncate raw 3', ftrunc(lambda m: m.r('arr'), 3)),
     ('truncate raw 5', ftrunc(lambda m: m.r('arr'), 5)),
     ('truncate raw 0', ftrunc(lambda m: m.r('arr'), 0)),
     ('truncate raw 4', ftrunc(lambda m: m.r('arr'), 4)),
     ('truncate text 7', errno_op(lambda p: os.truncate(p, 7), 'arr')),
     ('truncate text 0', errno_op(lambda p: os.truncate(p, 0), 's'))] +
    [(f'setxattr {x}', xset('arr', f'user.shmfs.{x}', '1'))
     for x in ('dtype', 'shape', 'nbytes', 'version', 'mode', 'nosuch')] +
    [('setxattr raw type', xset('arr', 'user.shmfs.type', 'u8[4]', raw=True)),
     ('setxattr root mode', lambda m: util.errno_of(os.setxattr, m.path, 'user.shmfs.mode',
                                                    b'local')),
     ('removexattr type', errno_op(lambda p: os.removexattr(p, 'user.shmfs.type'), 's')),
     ('removexattr version', errno_op(lambda p: os.removexattr(p, 'user.shmfs.version'), 's'))] +
    [(f'lifetime {v!r}', xset('s', 'user.shmfs.lifetime', v))
     for v in ('pid:0', 'pid:-1', 'pid:abc', 'pid:', 'pid:99999999', 'pid:4194304',
               'bogus', '', 'process ', 'pid:1x', 'pid: 1')] +
    [('lifetime dir', xset('d', 'user.shmfs.lifetime', 'process')),
     ('lifetime unbind unbound', errno_op(
         lambda p: os.removexattr(p, 'user.shmfs.lifetime'), 's'))] +
    [('name 256', lambda m: util.errno_of(os.open, m.p('n' * 256), os.O_CREAT | os.O_WRONLY)),
     ('mkdir 256', errno_op(os.mkdir, 'd/' + 'n' * 256)),
     ('stat 256', errno_op(os.stat, 'n' * 256)),
     ('rename to 256', errno_op(os.rename, 's', 'n' * 256)),
     ('create .raw', lambda m: util.errno_of(os.open, m.p('.raw'),
                                              os.O_CREAT | os.O_EXCL | os.O_WRONLY)),
     ('mkdir .raw', errno_op(os.mkdir, '.raw')),
     ('rename to .raw', errno_op(os.rename, 's', '.raw')),
     ('rename dir to .raw', errno_op(os.rename, 'd', '.raw')),
     ('exchange with .raw', errno_op(lambda a, b: util.renameat2(a, b, RENAME_EXCHANGE),
                                     's', '.raw')),
     ('rename .raw', errno_op(os.rename, '.raw', 'x')),
     ('rmdir .raw', errno_op(os.rmdir, '.raw')),
     ('unlink .raw', errno_op(os.unlink, '.raw')),
     ('create under .raw', lambda m: util.errno_of(os.open, m.p('.raw/new'),
                                                    os.O_CREAT | os.O_WRONLY)),
     ('create under .raw/d', lambda m: util.errno_of(os.open, m.p('.raw/d/new'),
                                                      os.O_CREAT | os.O_WRONLY)),
     ('mkdir under .raw', errno_op(os.mkdir, '.raw/new')),
     ('mkdir under .raw/d', errno_op(os.mkdir, '.raw/d/e')),
     ('rename under .raw', errno_op(os.rename, '.raw/s', '.raw/t')),
     ('rename into .raw', errno_op(os.rename, 's', '.raw/t')),
     ('rename out of .raw', errno_op(os.rename, '.raw/s', 't')),
     ('unlink under .raw', errno_op(os.unlink, '.raw/s')),
     ('rmdir under .raw', errno_op(os.rmdir, '.raw/d')),
     ('rename dir into itself', errno_op(os.rename, 'd', 'd/x')),
     ('rename over dir', errno_op(os.rename, 's', 'd')),
     ('rename dir over obj', errno_op(os.rename, 'd', 's')),
     ('noreplace', errno_op(lambda a, b: util.renameat2(a, b, RENAME_NOREPLACE), 's', 'arr')),
     ('exchange missing', errno_op(lambda a, b: util.renameat2(a, b, RENAME_EXCHANGE),
                                   's', 'nothing')),
     ('both flags', errno_op(lambda a, b: util.renameat2(a, b, 3), 's', 'arr')),
     ('rename missing', errno_op(os.rename, 'nothing', 'x')),
     ('rename under object', errno_op(os.rename, 's', 'arr/x')),
     ('create under object', lambda m: util.errno_of(os.open, m.p('arr/x'),
                                                      os.O_CREAT | os.O_WRONLY)),
     ('symlink', errno_op(os.symlink, 's', 'sl')),
     ('link', errno_op(os.link, 's', 'hl')),
     ('mkfifo', errno_op(os.mkfifo, 'ff')),
     ('rmdir object', errno_op(os.rmdir, 's')),
     ('unlink dir', errno_op(os.unlink, 'd')),
     ('rmdir root', lambda m: util.errno_of(os.rmdir, m.path)),
     ('O_EXCL existing', lambda m: util.errno_of(os.open, m.p('s'),
                                                  os.O_CREAT | os.O_EXCL | os.O_WRONLY)),
     ('open dir for writing', lambda m: util.errno_of(os.open, m.p('d'), os.O_WRONLY))])


# Cached mode: in passthrough mode the kernel answers a write past the end
# itself (EPERM, test_bad_input.py); a remote mount is EFBIG as cached.
@pytest.mark.shmfs_args('-o', 'mode=cached')
def test_bad_input_as_local_and_changes_nothing(pair, shmfs):
    a, b = pair
    populate(a)
    populate(shmfs)
    before = snapshot(a)
    assert snapshot(b) == before
    local_before = snapshot(shmfs)
    diffs = []
    for i, (what, op) in enumerate(BAD_OPS):
        want = op(shmfs)
        got = op(b if i % 2 else a)
        if got != want:
            diffs.append((what, 'remote', got, 'local', want))
    assert not diffs, '\n'.join(map(str, diffs))
    # Nothing changed, on either mount, and both agree.
    assert snapshot(a) == before, 'A changed'
    assert snapshot(b) == before, 'B changed'
    assert snapshot(shmfs) == local_before
    assert a.alive() and b.alive()


def test_name_of_255_bytes_shared(pair, shmfs, redis, mounts):
    a, b = pair
    name = 'n' * 255
    for m in (a, shmfs):
        util.new_object(m, name, 'u8', '7')
        os.mkdir(m.p('d' * 255))
        util.new_object(m, 'd' * 255 + '/' + name, 'u8', '8')
    assert util.cat(b.p(name)) == '7\n'
    assert util.cat(b.p('d' * 255 + '/' + name)) == '8\n'
    assert entries(b.path) == entries(shmfs.path)
    assert redis_names(redis, mounts.prefix) == entries(a.path)
    os.rename(b.p(name), b.p('d' * 255 + '/' + name))
    assert entries(a.p('d' * 255)) == [name]
    assert util.cat(a.p('d' * 255 + '/' + name)) == '7\n'


# ---- attributes changed through a file opened before another host's change ---

def test_fchmod_after_a_chmod_elsewhere(pair):
    """B holds an fd; A changes the mode; B's fchmod back to the old mode
    must not be taken for 'nothing to do'."""
    a, b = pair
    util.new_object(a, 'm', 'i32', '1')
    with util.opened(b.p('m')) as fd:
        os.chmod(a.p('m'), 0o600)
        os.fchmod(fd, 0o644)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o644
    for m in pair:
        assert stat.S_IMODE(os.stat(m.p('m')).st_mode) == 0o644



# ---- directories moved under a walk --------------------------------------------

WALKER = r'''
import errno, os, sys, time
root, until = sys.argv[1], time.monotonic() + float(sys.argv[2])
ok = 0
bad = []
paths = [os.path.join(root, a, b, 'v') for a in ('p', 'p2') for b in ('q', 'q2')]
while time.monotonic() < until:
    for p in paths:
        try:
            with open(p) as f:
                t = f.read()
            if t != '7\n':
                bad.append(('value', p, t))
            ok += 1
        except OSError as e:
            if e.errno != errno.ENOENT:
                bad.append((p, errno.errorcode.get(e.errno, e.errno)))
        try:
            os.listdir(os.path.dirname(p))
        except OSError as e:
            if e.errno != errno.ENOENT:
                bad.append(('list', p, errno.errorcode.get(e.errno, e.errno)))
print(ok, bad[:5], len(bad))
'''


def test_directories_renamed_while_walked(mounts):
    a, b, c = (mounts.mount() for _ in range(3))
    os.makedirs(a.p('p/q'))
    util.new_object(a, 'p/q/v', 'i64', '7')
    walkers = [subprocess.Popen([util.PYTHON, '-c', WALKER, m.path, '3'],
                                stdout=subprocess.PIPE, text=True) for m in (b, b, c)]
    stop = time.monotonic() + 3
    moves = [0, 0]

    def move_top():
        top = 'p'
        while time.monotonic() < stop:
            new = 'p2' if top == 'p' else 'p'
            os.rename(a.p(top), a.p(new))
            top = new
            moves[0] += 1

    def move_inner():
        while time.monotonic() < stop:
            for top in ('p', 'p2'):
                for old, new in (('q', 'q2'), ('q2', 'q')):
                    try:
                        os.rename(c.p(f'{top}/{old}'), c.p(f'{top}/{new}'))
                        moves[1] += 1
                    except FileNotFoundError:
                        pass

    ts = [threading.Thread(target=move_top), threading.Thread(target=move_inner)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    outs = util.finish_all(walkers, 60)
    for out in outs:
        ok, rest = out.split(' ', 1)
        assert rest.strip().endswith(' 0'), out
        assert int(ok) > 0, out
    assert moves[0] > 10 and moves[1] > 10, moves
    found = [m for m in (a, b, c) for p in ('p/q', 'p/q2', 'p2/q', 'p2/q2')
             if os.path.exists(m.p(p + '/v'))]
    assert len(found) == 3, found      # one path, seen by each mount
    for m in (a, b, c):
        assert len([p for p in ('p', 'p2') if os.path.isdir(m.p(p))]) == 1
    assert all(m.alive() for m in (a, b, c))
