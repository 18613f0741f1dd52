"""The Python client (the shmfs package, clients/python), a multiprocessing-style
Value/Array over MAP_SHARED mappings of MNT/.raw/PATH: the seed's programs
ported with two changed lines, attaching from unrelated processes, slicing
side by side with multiprocessing.Array, the zero-copy numpy view, the
daemon's lock against a shell's flock, the atomic operations, bad input,
locked read-modify-writes racing atomic adds to an exact count, and what
matches multiprocessing: ctypes types, get_obj() and the lock arguments,
`with obj:` holding the lock, a lock of one's own in spawned children, the
buffer protocol of raw objects, and shaped arrays (and refused empty ones)."""

import ast
import ctypes
import errno
import multiprocessing
import os
import pickle
import select
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import closing

import pytest

import util

EXAMPLES = os.path.realpath(os.path.join(util.HERE, '..', '..', 'examples', 'python'))
import shmfs as pyshm  # noqa: E402  (the fixture is named shmfs)

try:
    import numpy
except ImportError:
    numpy = None

PYTHON = '/usr/bin/python3'
PRELUDE = 'import sys\nimport shmfs\n'


def client(code, *args):
    """Runs code in an unrelated Python process that imports shmfs."""
    return util.child(PRELUDE + textwrap.dedent(code), *args)


def no_leftovers(directory):
    """No temporary name of an interrupted or refused creation remains."""
    return [n for n in os.listdir(directory) if '.shmfs-tmp.' in n]


def outcome(fn):
    """('ok', result) or ('raises', exception type) of fn()."""
    try:
        return ('ok', fn())
    except Exception as e:          # noqa: BLE001 -- the type is the answer
        return ('raises', type(e))


# ---- the seed's programs ---------------------------------------------------------

SEED_VALUE = '''\
from multiprocessing import Process
from multiprocessing import Value


def f(n):
    n.value = 3.1415926


if __name__ == '__main__':
    num = Value('d', 0.0)
    p = Process(target=f, args=(num,))
    p.start()
    p.join()
    print(num.value)
'''

SEED_ARRAY = '''\
from multiprocessing import Process
from multiprocessing import Array


def f(a):
    for i in range(len(a)):
        a[i] = i


if __name__ == '__main__':
    arr = Array('i', 5)
    p = Process(target=f, args=(arr,))
    p.start()
    p.join()
    print(arr[:])
'''


def code_lines(source):
    """The lines of a module after its docstring and shebang."""
    body = ast.parse(source).body
    start = body[1].lineno if isinstance(body[0], ast.Expr) else body[0].lineno
    return source.splitlines()[start - 1:]


@pytest.mark.parametrize('script, seed, changed', [
    ('value_client.py', SEED_VALUE,
     {'from shmfs import Value', "    num = Value('d', 0.0, path='num')"}),
    ('array_client.py', SEED_ARRAY,
     {'from shmfs import Array', "    arr = Array('i', 5, path='arr')"}),
])
def test_ports_change_two_lines_of_the_seed(script, seed, changed):
    with open(os.path.join(EXAMPLES, script)) as f:
        port = code_lines(f.read())
    seed = seed.splitlines()
    assert len(port) == len(seed)
    assert {p for p, s in zip(port, seed) if p != s} == changed
    # The seed itself runs under multiprocessing, as the port does on shmfs.
    r = subprocess.run([PYTHON, '-c', '\n'.join(seed)], stdout=subprocess.PIPE,
                       text=True, timeout=60)
    assert r.stdout == {'value_client.py': '3.1415926\n',
                        'array_client.py': '[0, 1, 2, 3, 4]\n'}[script]


@util.both_modes
@pytest.mark.parametrize('script, name, line, text, spec', [
    ('value_client.py', 'num', '3.1415926', '3.1415926', 'f64'),
    ('array_client.py', 'arr', '[0, 1, 2, 3, 4]', '0 1 2 3 4', 'i32[5]'),
])
def test_seed_ports(shmfs, script, name, line, text, spec):
    for _ in range(2):              # the second run attaches to the first's object
        r = subprocess.run([PYTHON, os.path.join(EXAMPLES, script)], cwd=shmfs.path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        assert (r.returncode, r.stdout, r.stderr) == (0, line + '\n', '')
        assert util.cat(shmfs.p(name)) == text + '\n'
        assert util.xattr(shmfs.p(name), util.TYPE) == spec
    assert sorted(os.listdir(shmfs.path)) == [name]


SPAWNED = '''
import multiprocessing, sys
from shmfs import Value, Array


def f(n, a):
    n.value = 2.5
    for i in range(len(a)):
        a[i] = 10 * i


if __name__ == '__main__':
    ctx = multiprocessing.get_context(sys.argv[1])
    num = Value('d', 0.0, path=sys.argv[2] + '/num')
    arr = Array('i', 3, path=sys.argv[2] + '/arr')
    p = ctx.Process(target=f, args=(num, arr))
    p.start()
    p.join()
    print(num.value, arr[:])
'''


@pytest.mark.parametrize('method', ['spawn', 'forkserver'])
def test_objects_travel_to_spawned_children_by_path(shmfs, tmp_path, method):
    script = tmp_path / 'spawned.py'
    script.write_text(SPAWNED)
    r = subprocess.run([PYTHON, str(script), method, shmfs.path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, '2.5 [0, 10, 20]\n'), r.stderr


# ---- attaching -------------------------------------------------------------------

@util.both_modes
def test_attach_from_an_unrelated_process(shmfs):
    path, vpath = shmfs.p('a'), shmfs.p('pi')
    util.echo(vpath, '3.1415926')       # typed by the shell: f64
    with closing(pyshm.Array('i', range(5), path=path)) as a:
        out = client('''
            a = shmfs.attach(sys.argv[1])
            v = shmfs.attach(sys.argv[2])
            print(type(a).__name__, a.typecode, a.shape, len(a), a[:])
            print(type(v).__name__, v.typecode, v.value)
            a[0] = 100
            a.add(5, index=4)
            v.value = 2.5
            ''', path, vpath)
        assert out.splitlines() == ['SharedArray i32[5] (5,) 5 [0, 1, 2, 3, 4]',
                                    'SharedValue f64 3.1415926']
        # The same bytes: this process's mapping, cat, and a third process.
        assert a[:] == [100, 1, 2, 3, 9]
        assert util.cat(path) == '100 1 2 3 9\n'
        assert util.cat(vpath) == '2.5\n'
        assert client('print(shmfs.attach(sys.argv[1], "i")[:])', path) == \
            '[100, 1, 2, 3, 9]\n'
        # Creating with the same type attaches: the initializer is not applied.
        out = client('''
            a = shmfs.Array('i', [7] * 5, path=sys.argv[1])
            print(a[:])
            ''', path)
        assert out == '[100, 1, 2, 3, 9]\n'
        assert a[:] == [100, 1, 2, 3, 9]
    # Either view's path names the object.
    with closing(pyshm.attach(shmfs.r('pi'))) as v:
        assert (v.path, v.raw_path, v.value) == (vpath, shmfs.r('pi'), 2.5)


def test_objects_in_subdirectories(shmfs):
    os.makedirs(shmfs.p('d/e'))
    with closing(pyshm.Value('q', 42, path=shmfs.p('d/e/v'))) as v:
        assert v.raw_path == shmfs.r('d/e/v')
        assert util.cat(shmfs.p('d/e/v')) == '42\n'
        assert pyshm.mount_root(v.path) == shmfs.path
    assert os.listdir(shmfs.p('d/e')) == ['v']


def test_char_values_and_strings(shmfs):
    with closing(pyshm.Value('c', b'x', path=shmfs.p('c'))) as c, \
            closing(pyshm.Array('c', b'hello', path=shmfs.p('s'))) as s, \
            closing(pyshm.Array('char[8]', [b'ab', b'', b'cdefghij'],
                                path=shmfs.p('t'))) as t:
        assert (c.typecode, c.value) == ('char[1]', b'x')
        c.value = 121
        assert util.cat(shmfs.p('c')) == 'y\n'
        assert (s.typecode, s.value, s.raw, s[:], list(s)) == \
            ('char[5]', b'hello', b'hello', b'hello', [b'h', b'e', b'l', b'l', b'o'])
        s.value = b'hi'
        assert (util.cat(shmfs.p('s')), s.raw) == ('hi\n', b'hi\x00lo')
        assert (t.typecode, t.shape, len(t), t[:]) == \
            ('char[8][3]', (3,), 3, [b'ab', b'', b'cdefghij'])
        t[1] = b'zz'
        with pytest.raises(ValueError):
            t[0] = b'123456789'
        assert t[:] == [b'ab', b'zz', b'cdefghij']
        with closing(pyshm.attach(shmfs.p('c'))) as c2, \
                closing(pyshm.attach(shmfs.p('t'))) as t2:
            assert (type(c2).__name__, c2.value, t2[1]) == ('SharedValue', b'y', b'zz')


# ---- slicing, side by side with multiprocessing.Array ----------------------------

GET_KEYS = [0, 3, -1, -8, 7, 8, -9, True, slice(None), slice(1, 3), slice(None, None, 2),
            slice(None, None, -1), slice(6, 1, -2), slice(-3, None), slice(10, 20),
            slice(-20, 2), slice(5, 2), slice(None, None, 0), 'x', 1.0, None]

SETS = [(0, 5), (-1, 6), (-8, 7), (8, 1), (-9, 1), (True, 3),
        (slice(1, 3), [10, 20]), (slice(1, 3), (10, 20)), (slice(1, 3), range(2)),
        (slice(1, 3), [1]), (slice(1, 3), [1, 2, 3]),
        (slice(None, None, 2), [0, 0, 0, 0]), (slice(None, None, 2), [0, 0, 0]),
        (slice(None, None, -1), range(8)), (slice(6, 1, -2), (7, 7, 7)),
        (slice(10, 20), []), (slice(5, 2), []), (slice(None, None, 0), []),
        (slice(1, 3), 'ab'), (0, 1.5), (0, 'x'), (0, None), ('x', 1), (1.0, 1),
        (slice(0, 2), [1.5, 2]), (0, True), (slice(None), range(10, 18))]


@pytest.mark.parametrize('key', GET_KEYS, ids=repr)
def test_get_like_multiprocessing(shmfs, key):
    theirs = multiprocessing.Array('i', range(8))
    with closing(pyshm.Array('i', range(8), path=shmfs.p('a'))) as ours:
        assert outcome(lambda: ours[key]) == outcome(lambda: theirs[key])
        assert (len(ours), list(ours)) == (len(theirs), list(theirs))


@pytest.mark.parametrize('key, value', SETS, ids=repr)
def test_set_like_multiprocessing(shmfs, key, value):
    theirs = multiprocessing.Array('i', range(8))
    with closing(pyshm.Array('i', range(8), path=shmfs.p('a'))) as ours:
        def store(a):
            a[key] = value
        assert outcome(lambda: store(ours)) == outcome(lambda: store(theirs))
        assert ours[:] == theirs[:]
        assert util.cat(shmfs.p('a')) == ' '.join(map(str, theirs[:])) + '\n'


CHAR_GETS = [0, -1, 11, slice(None), slice(1, 4), slice(None, None, -1), slice(None, None, 3)]
CHAR_SETS = [(0, b'x'), (0, 120), (0, 'x'), (0, 300), (0, b'xy'), (0, bytearray(b'z')),
             (slice(0, 2), b'yz'), (slice(0, 2), b'y'), (slice(0, 2), [b'q', 113]),
             (slice(None, None, 2), b'ABCDEF'), ('value', b'ab'), ('value', b'hello world'),
             ('value', b'hello world!'), ('value', 'str'), ('raw', b'QQ'),
             ('raw', b'x' * 12), ('raw', 'str')]


def test_char_array_like_multiprocessing(shmfs):
    init = b'hello world'
    for key in CHAR_GETS:
        theirs = multiprocessing.Array('c', init)
        with closing(pyshm.Array('c', init, path=shmfs.p('s'))) as ours:
            assert outcome(lambda: ours[key]) == outcome(lambda: theirs[key]), key
            assert list(ours) == list(theirs)
    for key, value in CHAR_SETS:
        theirs = multiprocessing.Array('c', init)
        with closing(pyshm.Array('c', init, path=shmfs.p('s'))) as ours:
            def store(a):
                if isinstance(key, str):
                    setattr(a, key, value)
                else:
                    a[key] = value
            assert outcome(lambda: store(ours)) == outcome(lambda: store(theirs)), key
            assert (ours.value, ours.raw) == (theirs.value, theirs.raw), key
        os.unlink(shmfs.p('s'))


def test_slice_stores_are_all_or_nothing(shmfs):
    """Where ctypes stores item by item up to a bad one, shmfs converts all
    first: a refused slice store changes nothing."""
    with closing(pyshm.Array('i', range(4), path=shmfs.p('a'))) as a:
        with pytest.raises(TypeError):
            a[0:2] = [9, 1.5]
        with pytest.raises(OverflowError):
            a[::-1] = [1, 2, 3, 2 ** 31]
        assert a[:] == [0, 1, 2, 3]


# ---- numpy ----------------------------------------------------------------------

@pytest.mark.skipif(numpy is None, reason='numpy is not installed')
@util.both_modes
def test_numpy_view_is_zero_copy(shmfs):
    with closing(pyshm.Array('i', 5, path=shmfs.p('a'))) as a:
        n = a.numpy()
        assert (n.dtype, n.shape, n.tolist()) == (numpy.dtype('int32'), (5,), [0] * 5)
        n[2] = 42                               # a store through numpy ...
        assert util.cat(shmfs.p('a')) == '0 0 42 0 0\n'     # ... cat sees
        assert a[2] == 42
        util.write_text(shmfs.p('a'), '1 2 3 4 5\n')        # and the other way
        assert n.tolist() == [1, 2, 3, 4, 5]
        a[0] = -7
        assert n[0] == -7
        assert not n.flags.owndata and n.flags.writeable
        del n
    util.new_object(shmfs, 'grid', 'f64[2][3]', '1 2 3 4 5 6')
    with closing(pyshm.attach(shmfs.p('grid'))) as g, \
            closing(pyshm.Value('d', 1.5, path=shmfs.p('v'))) as v:
        n = g.numpy()
        assert (g.shape, len(g), n.shape, n[1, 2]) == ((2, 3), 6, (2, 3), 6.0)
        n[1, 2] = 0.25
        assert util.cat(shmfs.p('grid')) == '1 2 3\n4 5 0.25\n'
        assert g[5] == 0.25                                  # flat, C order
        z = v.numpy()
        assert (z.shape, float(z)) == ((), 1.5)
        z[()] = 2.5
        assert util.cat(shmfs.p('v')) == '2.5\n'
        del n, z


# ---- the lock --------------------------------------------------------------------

@util.both_modes
def test_get_lock_excludes_shell_flock_and_back(shmfs):
    path = shmfs.p('x')
    with closing(pyshm.Value('q', 0, path=path)) as v:
        with v.get_lock():
            for p in (path, shmfs.r('x')):
                r = util.sh_args('flock -n "$1" true', p)
                assert r.returncode == 1, r.stderr
        assert util.sh_args('flock -n "$1" true', path).returncode == 0

        shell = subprocess.Popen(['flock', path, '-c', 'echo locked; sleep 1'],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert shell.stdout.readline() == 'locked\n'
            lock = v.get_lock()
            assert lock.acquire(block=False) is False
            assert lock.acquire(timeout=0.2) is False
            start = time.monotonic()
            assert lock.acquire(timeout=30) is True
            waited = time.monotonic() - start
            try:
                assert shell.poll() is not None or waited > 0.3
                v.value += 1
            finally:
                lock.release()
        finally:
            shell.wait(timeout=30)
        assert v.value == 1


def test_lock_is_reentrant_and_excludes_threads(shmfs):
    with closing(pyshm.Value('q', 0, path=shmfs.p('x'))) as v, \
            closing(pyshm.attach(shmfs.p('x'))) as same:
        assert v.get_lock() is same.get_lock()       # one lock per object
        with v.get_lock(), same.get_lock(), v.get_lock():
            v.value += 1                             # .value takes it again
        with pytest.raises(RuntimeError):
            v.get_lock().release()

        def work():
            for _ in range(200):
                with v.get_lock():
                    x = v.value
                    time.sleep(0)
                    v.value = x + 1
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert v.value == 801
    with closing(pyshm.RawValue('q', path=shmfs.p('x'))) as raw:
        with pytest.raises(AttributeError):
            raw.get_lock()
        raw.value = 5
        assert util.cat(shmfs.p('x')) == '5\n'


def test_lock_is_not_shared_with_a_forked_child(shmfs):
    """A child forked while the parent holds the lock has its own open of
    the object, so it waits instead of sharing the parent's flock."""
    with closing(pyshm.Value('q', 0, path=shmfs.p('x'))) as v:
        ctx = multiprocessing.get_context('fork')
        with v.get_lock():
            p = ctx.Process(target=_lock_and_add, args=(v,))
            p.start()
            time.sleep(0.5)
            assert p.is_alive() and v.value == 0
            v.value = 10
        p.join(30)
        assert p.exitcode == 0 and v.value == 11


def _lock_and_add(v):
    with v.get_lock():
        v.value += 1


# ---- atomic operations -----------------------------------------------------------

@util.both_modes
def test_atomic_operations(shmfs):
    with closing(pyshm.Array('i', [5, 0, -1], path=shmfs.p('i'))) as a, \
            closing(pyshm.Value('B', 250, path=shmfs.p('u'))) as u, \
            closing(pyshm.Value('d', 1.5, path=shmfs.p('f'))) as f, \
            closing(pyshm.Value('?', False, path=shmfs.p('b'))) as b:
        assert a.add(3) == 5 and a[0] == 8               # the previous value
        assert a.sub(10, index=2) == -1 and a[2] == -11
        assert a.xchg(7, index=-2) == 0 and a[1] == 7
        r = a.cas(8, 100)
        assert r and r == (True, 8) and r.previous == 8 and a[0] == 100
        r = a.cas(8, 200)
        assert not r and r == (False, 100) and a[0] == 100
        assert a.load(2) == -11
        assert util.cat(shmfs.p('i')) == '100 7 -11\n'
        assert u.add(10) == 250 and u.value == 4         # wraps at 8 bits
        assert u.sub(5) == 4 and u.value == 255
        assert f.add(1) == 1.5 and f.value == 2.5
        assert f.cas(2.5, 0.125) == (True, 2.5) and util.cat(shmfs.p('f')) == '0.125\n'
        assert b.xchg(True) is False and b.value is True
        assert b.cas(True, False) == (True, True)
        with pytest.raises(TypeError):
            b.add(1)
        with pytest.raises(IndexError):
            a.add(1, index=3)
        with pytest.raises(TypeError):
            a.add(1.5)
    with closing(pyshm.Array('c', 4, path=shmfs.p('s'))) as s, \
            pytest.raises(TypeError):
        s.add(1)


@util.both_modes
def test_notify_and_atomic_ops_wake_text_pollers(shmfs):
    """A store through the mapping is made known with notify(); the daemon's
    atomic operations wake pollers by themselves."""
    with closing(pyshm.Value('q', 1, path=shmfs.p('x'))) as v, \
            util.opened(shmfs.p('x'), os.O_RDONLY) as fd:
        p = select.poll()
        p.register(fd, select.POLLPRI)
        for change in (lambda: (setattr(v, 'value', 2), v.notify()), lambda: v.add(1)):
            assert os.pread(fd, 64, 0) in (b'1\n', b'2\n')      # re-arms the poller
            assert p.poll(200) == []
            change()
            assert p.poll(3000), 'no wakeup'
        assert os.pread(fd, 64, 0) == b'3\n'


# ---- bad input -----------------------------------------------------------------

def test_attach_refusals(shmfs, tmp_path):
    tmp_path = tmp_path / 'elsewhere'
    tmp_path.mkdir()
    with pytest.raises(FileNotFoundError):
        pyshm.attach(shmfs.p('nothing'))
    os.close(os.open(shmfs.p('untyped'), os.O_CREAT | os.O_WRONLY, 0o644))
    with pytest.raises(TypeError, match='no type'):
        pyshm.attach(shmfs.p('untyped'))
    os.mkdir(shmfs.p('dir'))
    with pytest.raises(IsADirectoryError):
        pyshm.attach(shmfs.p('dir'))
    util.new_object(shmfs, 'v', 'i32', '5')
    with pytest.raises(TypeError, match='i32'):
        pyshm.attach(shmfs.p('v'), 'd')
    (tmp_path / 'plain').write_text('1\n')
    with pytest.raises(ValueError, match='not on a shmfs mount'):
        pyshm.attach(tmp_path / 'plain')
    with pytest.raises(ValueError, match='not on a shmfs mount'):
        pyshm.Value('d', path=tmp_path / 'new')
    assert sorted(os.listdir(tmp_path)) == ['plain']


@util.both_modes
def test_bad_indices_and_values(shmfs):
    shmfs.expect_output(r'^shmfs: rejected /[ab]: atomic operation .*out of range')
    with closing(pyshm.Array('i', range(5), path=shmfs.p('a'))) as a, \
            closing(pyshm.Value('B', 7, path=shmfs.p('b'))) as b, \
            closing(pyshm.Value('f', 0.5, path=shmfs.p('f'))) as f, \
            closing(pyshm.Value('d', 0.5, path=shmfs.p('d'))) as d:
        for key in (5, -6, 2 ** 70):
            with pytest.raises(IndexError):
                a[key]
            with pytest.raises(IndexError):
                a[key] = 1
        # Out of the type's range: refused here, nothing stored.
        for store in (lambda: setattr(b, 'value', 256), lambda: setattr(b, 'value', -1),
                      lambda: a.__setitem__(0, 2 ** 31), lambda: setattr(f, 'value', 1e300)):
            with pytest.raises(OverflowError):
                store()
        with pytest.raises(TypeError):
            b.value = 1.0
        with pytest.raises(TypeError):
            d.value = '1.5'
        # Refused by the daemon (ERANGE), surfacing as OverflowError.
        before = shmfs.rejected_count()
        for op in (lambda: a.xchg(2 ** 31), lambda: a.cas(0, -2 ** 31 - 1, index=0),
                   lambda: b.xchg(256)):
            with pytest.raises(OverflowError) as info:
                op()
            assert isinstance(info.value.__cause__, OSError)
            assert info.value.__cause__.errno == errno.ERANGE
        assert shmfs.wait_rejected(before)
        assert (a[:], b.value, f.value) == ([0, 1, 2, 3, 4], 7, 0.5)
        assert util.cat(shmfs.p('a')) == '0 1 2 3 4\n'
        assert util.cat(shmfs.p('b')) == '7\n'


def test_creation_refusals(shmfs):
    util.new_object(shmfs, 'i', 'i32[5]', '1 2 3 4 5')
    os.close(os.open(shmfs.p('untyped'), os.O_CREAT | os.O_WRONLY, 0o644))
    os.mkdir(shmfs.p('dir'))
    # Over an object of another type: FileExistsError, the object untouched.
    for make in (lambda: pyshm.Value('d', 2.5, path=shmfs.p('i')),
                 lambda: pyshm.Array('i', 4, path=shmfs.p('i')),
                 lambda: pyshm.Array('I', 5, path=shmfs.p('i')),
                 lambda: pyshm.Value('d', path=shmfs.p('untyped'))):
        with pytest.raises(FileExistsError):
            make()
    with pytest.raises(IsADirectoryError):
        pyshm.Value('d', path=shmfs.p('dir'))
    assert util.xattr(shmfs.p('i'), util.TYPE) == 'i32[5]'
    assert util.cat(shmfs.p('i')) == '1 2 3 4 5\n'
    assert util.read_bytes(shmfs.p('untyped')) == b''
    # Refused arguments create nothing.
    for make, exc in ((lambda: pyshm.Value('b', 300, path=shmfs.p('n')), OverflowError),
                      (lambda: pyshm.Value('i', 1.5, path=shmfs.p('n')), TypeError),
                      (lambda: pyshm.Array('i', [1, 'x'], path=shmfs.p('n')), TypeError),
                      (lambda: pyshm.Array('i', 0, path=shmfs.p('n')), ValueError),
                      (lambda: pyshm.Value('i32[5]', path=shmfs.p('n')), TypeError),
                      (lambda: pyshm.Value('x', path=shmfs.p('n')), TypeError),
                      (lambda: pyshm.Value('d', path=shmfs.p('n'), lock='yes'), TypeError)):
        with pytest.raises(exc):
            make()
    assert sorted(os.listdir(shmfs.path)) == ['dir', 'i', 'untyped']
    # The same type attaches and keeps the value; typecodes and names agree.
    with closing(pyshm.Array('i32', [9] * 5, path=shmfs.p('i'))) as a:
        assert a[:] == [1, 2, 3, 4, 5]


@util.both_modes
def test_racing_creators_never_clobber(shmfs):
    """Eight processes create the same path at once, each with its own
    initial value: one creates, the others attach; all see its value."""
    path = shmfs.p('v')
    start = time.time() + 1.0
    code = PRELUDE + textwrap.dedent('''
        import time
        time.sleep(max(0, float(sys.argv[3]) - time.time()))
        v = shmfs.Value('q', int(sys.argv[2]), path=sys.argv[1])
        print(v.value)
        ''')
    procs = [subprocess.Popen([PYTHON, '-c', code, path, str(i + 1), str(start)],
                              stdout=subprocess.PIPE, text=True) for i in range(8)]
    seen = {int(p.communicate(timeout=60)[0]) for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(seen) == 1 and seen <= set(range(1, 9))
    assert util.cat(path) == f'{seen.pop()}\n'
    assert os.listdir(shmfs.path) == ['v']


# ---- locked read-modify-write racing atomic adds ------------------------------------


@util.both_modes
def test_locked_increments_and_atomic_adds_unrelated(shmfs, tmp_path):
    """Processes started on their own: four increment under get_lock(),
    four call add(1); no increment is lost."""
    n = 300
    script = util.python_incrementer(tmp_path)
    with closing(pyshm.Value('q', 0, path=shmfs.p('count'))) as v:
        procs = [subprocess.Popen([PYTHON, script, v.path, how, str(n)])
                 for how in ('lock', 'add') * 4]
        assert [p.wait(timeout=300) for p in procs] == [0] * 8
        assert v.value == 8 * n
        assert util.cat(v.path) == f'{8 * n}\n'


def _increment(v, how, n):
    for _ in range(n):
        if how == 'lock':
            with v.get_lock():
                v.value += 1
        else:
            v.add(1)


@util.both_modes
def test_locked_increments_and_atomic_adds_forked(shmfs):
    """The same with multiprocessing's forked children sharing one object."""
    n = 300
    ctx = multiprocessing.get_context('fork')
    with closing(pyshm.Value('q', 0, path=shmfs.p('count'))) as v:
        procs = [ctx.Process(target=_increment, args=(v, how, n))
                 for how in ('lock', 'add') * 4]
        for p in procs:
            p.start()
        for p in procs:
            p.join(300)
        assert [p.exitcode for p in procs] == [0] * 8
        assert v.value == 8 * n


# ---- on par with multiprocessing -------------------------------------------------

CTYPES_SPECS = [
    (ctypes.c_bool, 'bool', True), (ctypes.c_char, 'char[1]', b'x'),
    (ctypes.c_byte, 'i8', -5), (ctypes.c_ubyte, 'u8', 250),
    (ctypes.c_short, 'i16', -300), (ctypes.c_ushort, 'u16', 65000),
    (ctypes.c_int, 'i32', -70000), (ctypes.c_uint, 'u32', 2 ** 32 - 1),
    (ctypes.c_long, 'i64', -2 ** 40), (ctypes.c_ulong, 'u64', 2 ** 64 - 1),
    (ctypes.c_longlong, 'i64', 2 ** 62), (ctypes.c_ulonglong, 'u64', 2 ** 63),
    (ctypes.c_float, 'f32', 0.5), (ctypes.c_double, 'f64', 1.5),
    (ctypes.c_int8, 'i8', 7), (ctypes.c_uint8, 'u8', 7), (ctypes.c_int16, 'i16', 7),
    (ctypes.c_uint16, 'u16', 7), (ctypes.c_int32, 'i32', 7), (ctypes.c_uint32, 'u32', 7),
    (ctypes.c_int64, 'i64', 7), (ctypes.c_uint64, 'u64', 7),
    (ctypes.c_size_t, 'u64', 7), (ctypes.c_ssize_t, 'i64', -7)]


class _Either(ctypes.Union):
    _fields_ = [('i', ctypes.c_int), ('d', ctypes.c_double)]


def test_ctypes_types_as_typecodes(shmfs):
    """Every ctypes simple type of a shmfs element's kind and size, as
    multiprocessing takes them; a Union is refused (Structures make records:
    test_python_records.py)."""
    for i, (ctype, spec, x) in enumerate(CTYPES_SPECS):
        path = shmfs.p(f'v{i}')
        with closing(pyshm.Value(ctype, x, path=path)) as v:
            assert (v.typecode, v.value) == (spec, multiprocessing.Value(ctype, x).value)
            assert util.xattr(path, util.TYPE) == spec
        with closing(pyshm.attach(path, ctype)) as v:         # and to check a type
            assert v.value == x
    with closing(pyshm.Array(ctypes.c_double, [0.5, 1.5], path=shmfs.p('d'))) as d, \
            closing(pyshm.Array(ctypes.c_char, 4, path=shmfs.p('s'))) as s:
        assert (d.typecode, d[:], s.typecode, s.raw) == ('f64[2]', [0.5, 1.5], 'char[4]', bytes(4))
    with pytest.raises(TypeError, match='i32'):
        pyshm.attach(shmfs.p('d'), ctypes.c_int)
    before = sorted(os.listdir(shmfs.path))
    refused = [(_Either, 'Union'),
               (ctypes.c_int * 3, 'shape='), (ctypes.c_char_p, 'shmfs element'),
               (ctypes.c_void_p, 'shmfs element'), (ctypes.c_wchar, 'shmfs element'),
               (ctypes.c_wchar_p, 'shmfs element'), (ctypes.c_longdouble, 'shmfs element'),
               (ctypes.POINTER(ctypes.c_int), 'shmfs element'), (int, 'shmfs element'),
               (ctypes.c_int.__ctype_be__ if sys.byteorder == 'little'
                else ctypes.c_int.__ctype_le__, 'byte order')]
    for ctype, why in refused:
        for make in (lambda: pyshm.Value(ctype, path=shmfs.p('new')),
                     lambda: pyshm.RawArray(ctype, 2, path=shmfs.p('new')),
                     lambda: pyshm.Value(ctype, path=shmfs.p('v0'))):   # exists: bool
            with pytest.raises(TypeError, match=why):
                make()
    assert sorted(os.listdir(shmfs.path)) == before
    assert util.cat(shmfs.p('v0')) == '1\n'
    assert shmfs.alive()


def test_get_obj_and_the_lock_arguments(shmfs):
    lock = multiprocessing.RLock()
    with closing(pyshm.Value('i', 5, path=shmfs.p('v'))) as v, \
            closing(pyshm.Value('i', path=shmfs.p('v'), lock=None)) as v_none, \
            closing(pyshm.Array('i', 3, path=shmfs.p('a'), lock=lock)) as a:
        # lock=None is lock=True: the daemon's lock of the object.
        assert v_none.get_lock() is v.get_lock()
        assert isinstance(v.get_lock(), pyshm.ObjectLock)
        assert a.get_lock() is lock
        # get_obj(): the object without its lock, the same one each time.
        obj = v.get_obj()
        assert isinstance(obj, pyshm.RawSharedValue) and obj is v.get_obj()
        assert isinstance(obj, ctypes.c_int32)
        obj.value = 6
        assert (v.value, util.cat(v.path)) == (6, '6\n')
        assert isinstance(a.get_obj(), pyshm.RawSharedArray)
        assert isinstance(a.get_obj(), ctypes.Array)
        del obj               # a ctypes object over the mapping keeps it mapped
    # Raw objects have neither, as multiprocessing's have not.
    for make, theirs in ((lambda: pyshm.RawValue('i', path=shmfs.p('v')),
                          multiprocessing.RawValue('i')),
                         (lambda: pyshm.RawArray('i', 3, path=shmfs.p('a')),
                          multiprocessing.RawArray('i', 3)),
                         (lambda: pyshm.Value('i', path=shmfs.p('v'), lock=False),
                          multiprocessing.Value('i', lock=False)),
                         (lambda: pyshm.attach(shmfs.p('a'), lock=False),
                          multiprocessing.Array('i', 3, lock=False))):
        with closing(make()) as raw:
            for name in ('get_lock', 'get_obj', 'acquire', 'release'):
                assert hasattr(raw, name) is hasattr(theirs, name) is False
        del raw
    # A lock that is none: TypeError, and AttributeError as multiprocessing
    # raises; nothing is created and an existing object is left alone.
    for bad in ('yes', 2.5, object()):
        with pytest.raises(AttributeError):
            multiprocessing.Value('i', lock=bad)
        for make in (lambda: pyshm.Value('i', 9, path=shmfs.p('new'), lock=bad),
                     lambda: pyshm.Array('i', [9] * 3, path=shmfs.p('a'), lock=bad),
                     lambda: pyshm.attach(shmfs.p('v'), lock=bad)):
            with pytest.raises(TypeError) as info:
                make()
            assert isinstance(info.value, AttributeError)
    assert sorted(os.listdir(shmfs.path)) == ['a', 'v']
    assert (util.cat(shmfs.p('v')), util.cat(shmfs.p('a'))) == ('6\n', '0 0 0\n')
    assert shmfs.alive()


def test_empty_arrays_are_refused(shmfs):
    """multiprocessing makes an empty array; a shmfs type has no dimension
    of 0 (the daemon refuses i32[0]), so Array() says so."""
    assert multiprocessing.Array('i', 0)[:] == []
    for make in (lambda: pyshm.Array('i', 0, path=shmfs.p('a')),
                 lambda: pyshm.Array('i', [], path=shmfs.p('a')),
                 lambda: pyshm.Array('c', b'', path=shmfs.p('a')),
                 lambda: pyshm.RawArray('d', 0, path=shmfs.p('a')),
                 lambda: pyshm.Array('i', -1, path=shmfs.p('a')),
                 lambda: pyshm.Array('i', shape=(2, 0), path=shmfs.p('a'))):
        with pytest.raises(ValueError, match='no empty arrays'):
            make()
    assert os.listdir(shmfs.path) == []
    for spec in ('i32[0]', 'char[0]', 'f64[3][0]'):
        os.close(os.open(shmfs.p('y'), os.O_CREAT | os.O_WRONLY, 0o644))
        assert util.errno_of(util.set_type, shmfs.p('y'), spec) == errno.EINVAL
        os.unlink(shmfs.p('y'))
    # Over an existing object: refused the same, the object left alone.
    util.new_object(shmfs, 'x', 'i32[2]', '1 2')
    with pytest.raises(ValueError, match='no empty arrays'):
        pyshm.Array('i', 0, path=shmfs.p('x'))
    assert util.cat(shmfs.p('x')) == '1 2\n'
    assert shmfs.alive()


def _add_under_with(v, n):
    for _ in range(n):
        with v:
            v.value += 1


def _add_under_with_array(a, n):
    for _ in range(n):
        with a:
            a[1] += 1


@util.both_modes
def test_with_holds_the_lock(shmfs):
    """`with v:` holds the object's lock, as multiprocessing's synchronized
    objects do: read-modify-writes under it from forked and spawned
    children add up exactly."""
    n = 150
    with closing(pyshm.Value('q', 0, path=shmfs.p('count'))) as v, \
            closing(pyshm.Array('i', 3, path=shmfs.p('arr'))) as a:
        with v as held:
            assert held is True                      # as multiprocessing.Value's
            assert util.sh_args('flock -n "$1" true', v.path).returncode == 1
            v.value = 0                              # reentrant
        assert util.sh_args('flock -n "$1" true', v.path).returncode == 0
        procs = [multiprocessing.get_context(method).Process(target=target, args=(obj, n))
                 for method in ('fork', 'spawn') for target, obj in
                 ((_add_under_with, v), (_add_under_with_array, a)) * 2]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0] * 8
        assert (v.value, a[:]) == (4 * n, [0, 4 * n, 0])
        assert util.cat(v.path) == f'{4 * n}\n'
    # Raw objects have no lock, and no `with`, as ctypes objects.
    with closing(pyshm.RawValue('q', path=shmfs.p('count'))) as raw:
        with pytest.raises(TypeError):
            with raw:
                pass
        assert raw.value == 4 * n


def _user_lock_in_child(v, out):
    lock = v.get_lock()
    out.value = 1 if type(lock).__module__ == 'multiprocessing.synchronize' else 2
    if lock.acquire(timeout=0.2):                    # the parent holds it
        out.value = 3
        lock.release()


@pytest.mark.parametrize('method', ['spawn', 'forkserver'])
def test_a_lock_of_ones_own_travels_to_children(shmfs, method):
    ctx = multiprocessing.get_context(method)
    lock = ctx.Lock()
    with closing(pyshm.Value('q', 0, path=shmfs.p('v'), lock=lock)) as v, \
            closing(pyshm.Value('i', 0, path=shmfs.p('out'))) as out:
        with lock:
            p = ctx.Process(target=_user_lock_in_child, args=(v, out))
            p.start()
            p.join(60)
        assert (p.exitcode, out.value) == (0, 1)
        # Like multiprocessing's objects, such a lock only pickles to a child
        # being started; with the daemon's lock an object pickles anywhere.
        with pytest.raises(RuntimeError):
            pickle.dumps(v)
        with pytest.raises(RuntimeError):
            pickle.dumps(multiprocessing.Value('q', lock=lock))
        with closing(pickle.loads(pickle.dumps(out))) as again:
            assert isinstance(again.get_lock(), pyshm.ObjectLock)
            assert again.get_lock() is out.get_lock()


@pytest.mark.skipif(numpy is None, reason='numpy is not installed')
@util.both_modes
def test_buffer_protocol(shmfs):
    """Raw objects are ctypes objects over the mapping, so memoryview and
    numpy.frombuffer take them, as they take multiprocessing's; a
    synchronized object's get_obj() is one."""
    with closing(pyshm.RawArray('i', range(5), path=shmfs.p('a'))) as raw, \
            closing(pyshm.RawValue('d', 1.5, path=shmfs.p('v'))) as rv, \
            closing(pyshm.RawArray('d', shape=(2, 3), path=shmfs.p('g'))) as g, \
            closing(pyshm.Array('i', 3, path=shmfs.p('s'))) as sync:
        for ours, theirs in ((raw, multiprocessing.RawArray('i', 5)),
                             (rv, multiprocessing.RawValue('d')),
                             (g, multiprocessing.RawArray(ctypes.c_double * 3, 2)),
                             (sync.get_obj(), multiprocessing.Array('i', 3).get_obj())):
            m, t = memoryview(ours), memoryview(theirs)
            assert (m.format, m.shape, m.nbytes, m.readonly) == \
                (t.format, t.shape, t.nbytes, t.readonly)
        n = numpy.frombuffer(raw, dtype=numpy.int32)
        assert n.tolist() == [0, 1, 2, 3, 4] and not n.flags.owndata
        n[0] = 42                                    # stores reach the file
        memoryview(raw).cast('B').cast('i')[4] = -1
        assert util.cat(raw.path) == '42 1 2 3 -1\n'
        util.write_text(raw.path, '5 6 7 8 9\n')     # and the other way
        assert n.tolist() == [5, 6, 7, 8, 9] and raw[0] == 5
        numpy.frombuffer(sync.get_obj(), dtype=numpy.int32)[1] = 7
        assert sync[:] == [0, 7, 0]
        numpy.frombuffer(g, dtype=numpy.float64).reshape(2, 3)[1, 2] = 0.5
        assert util.cat(g.path) == '0 0 0\n0 0 0.5\n'
        # A synchronized object has no buffer, as multiprocessing's has none.
        for no_buffer in (sync, multiprocessing.Array('i', 3)):
            with pytest.raises(TypeError):
                memoryview(no_buffer)
        del n
        # Closed, a raw object refuses reads and stores; its buffer stays
        # valid (the mapping goes with the object) and the file unchanged.
        raw.close()
        with pytest.raises(ValueError):
            raw[0] = 1
        with pytest.raises(ValueError):
            raw[0]
        assert memoryview(raw).nbytes == 20
        assert util.cat(shmfs.p('a')) == '5 6 7 8 9\n'
    assert shmfs.alive()


def test_shaped_arrays(shmfs):
    with closing(pyshm.Array('d', range(6), shape=(2, 3), path=shmfs.p('g'))) as g:
        assert (g.typecode, g.shape, len(g), g[5]) == ('f64[2][3]', (2, 3), 6, 5.0)
        assert util.cat(g.path) == '0 1 2\n3 4 5\n'
        g[4] = 0.25                                  # items index flat, in C order
        assert util.cat(g.path) == '0 1 2\n3 0.25 5\n'
        if numpy is not None:
            assert g.numpy().shape == (2, 3) and g.numpy()[1, 1] == 0.25
    with closing(pyshm.attach(shmfs.p('g'))) as g:
        assert (g.typecode, g.shape) == ('f64[2][3]', (2, 3))
    with closing(pyshm.RawArray('i', shape=[2, 2, 2], path=shmfs.p('c'))) as c, \
            closing(pyshm.Array('i', 4, shape=(2, 2), path=shmfs.p('sq'))) as sq, \
            closing(pyshm.Array('c', [b'ab', b'cd'], shape=(2, 4), path=shmfs.p('s'))) as s, \
            closing(pyshm.Array('c', shape=(5,), path=shmfs.p('one'))) as one:
        assert (c.typecode, c[:]) == ('i32[2][2][2]', [0] * 8)
        assert sq.typecode == 'i32[2][2]'
        assert (s.typecode, s[:], util.cat(s.path)) == ('char[4][2]', [b'ab', b'cd'], 'ab\ncd\n')
        assert (one.typecode, one.raw) == ('char[5]', bytes(5))   # Array('c', 5)
    del c                     # a ctypes object over the mapping keeps it mapped
    util.new_object(shmfs, 'x', 'i32[2][3]', '1 2 3 4 5 6')
    before = sorted(os.listdir(shmfs.path))
    for make, exc in ((lambda: pyshm.Array('i', range(5), shape=(2, 3), path=shmfs.p('n')),
                       ValueError),
                      (lambda: pyshm.Array('i', 5, shape=(2, 3), path=shmfs.p('n')), ValueError),
                      (lambda: pyshm.Array('i', shape=(), path=shmfs.p('n')), ValueError),
                      (lambda: pyshm.Array('i', shape=(2.0, 3), path=shmfs.p('n')), TypeError),
                      (lambda: pyshm.Array('i', shape=3, path=shmfs.p('n')), TypeError),
                      (lambda: pyshm.Array('i', path=shmfs.p('n')), TypeError),
                      (lambda: pyshm.Array('i', shape=(3, 2), path=shmfs.p('x')),
                       FileExistsError),
                      (lambda: pyshm.Array('i', range(6), shape=(6,), path=shmfs.p('x')),
                       FileExistsError)):
        with pytest.raises(exc):
            make()
    # More dimensions than shmfs allows (8): the daemon refuses the type.
    with pytest.raises(ValueError, match='refuses') as info:
        pyshm.Array('i', shape=(1,) * 9, path=shmfs.p('n'))
    assert info.value.__cause__.errno == errno.EINVAL
    assert sorted(os.listdir(shmfs.path)) == before
    assert util.cat(shmfs.p('x')) == '1 2 3\n4 5 6\n'
    assert shmfs.alive()
