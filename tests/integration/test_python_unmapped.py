"""The Python client where an object cannot be mapped: on a remote mount
mmap(2) of MNT/.raw/PATH fails with ENODEV and the client reads and stores
through pread/pwrite instead.  Here a local mount stands in for a remote
one (nomap.py makes mmap of binary views fail with ENODEV in this process,
its forked children and, through sitecustomize, its spawned ones).
Values and arrays of every kind, char arrays, slices, records, get_obj(),
copy() and pickling behave as mapped; a counter under the lock from four
processes counts exactly; an unmapped object and a mapping of the same
file see each other's stores; bad input raises what it raises mapped; and
numpy() refuses a view it cannot make zero-copy."""

import ctypes
import errno
import io
import mmap
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import struct
import subprocess
from contextlib import closing

import pytest

import nomap
import util
import shmfs as pyshm  # noqa: E402  (the fixture is named shmfs)

EXAMPLES = os.path.realpath(os.path.join(util.HERE, '..', '..', 'examples', 'python'))

try:
    import numpy
except ImportError:
    numpy = None

c = ctypes
CDATA = (c._SimpleCData, c.Array, c.Structure)     # what ctypes objects are


@pytest.fixture
def unmapped(monkeypatch):
    """No mmap of binary views here and in children; yields a function
    that lifts it (what is opened afterwards is mapped again)."""
    monkeypatch.setattr(mmap, 'mmap', nomap._no_map_of_binary_views)
    env = nomap.child_env()
    monkeypatch.setenv(nomap.ENV, env[nomap.ENV])
    monkeypatch.setenv('PYTHONPATH', env['PYTHONPATH'])
    yield lambda: monkeypatch.setattr(mmap, 'mmap', nomap.REAL_MMAP)


def is_unmapped(obj):
    """The object reads through pread: no ctypes object, no buffer."""
    raw = obj.get_obj() if hasattr(obj, 'get_obj') else obj
    if isinstance(raw, CDATA):
        return False
    with pytest.raises(TypeError):
        memoryview(raw)
    return True


def outcome(fn):
    """('ok', result) or ('raises', exception type) of fn()."""
    try:
        return ('ok', fn())
    except Exception as e:          # noqa: BLE001 -- the type is the answer
        return ('raises', type(e))


@util.both_modes
@pytest.mark.parametrize('script, name, line, text', [
    ('value_client.py', 'num', '3.1415926', '3.1415926'),
    ('array_client.py', 'arr', '[0, 1, 2, 3, 4]', '0 1 2 3 4'),
])
def test_seed_ports_run_unchanged(shmfs, script, name, line, text):
    """The seed's programs, ported to shmfs, where nothing can be mapped."""
    probe = ('import ctypes, shmfs, sys; o = shmfs.attach(sys.argv[1]).get_obj(); '
             'print(isinstance(o, (ctypes._SimpleCData, ctypes.Array)))')
    for _ in range(2):              # the second run attaches to the first's object
        r = subprocess.run(['/usr/bin/python3', os.path.join(EXAMPLES, script)],
                           cwd=shmfs.path, env=nomap.child_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        assert (r.returncode, r.stdout, r.stderr) == (0, line + '\n', '')
        assert util.cat(shmfs.p(name)) == text + '\n'
    r = subprocess.run(['/usr/bin/python3', '-c', probe, shmfs.p(name)], env=nomap.child_env(),
                       stdout=subprocess.PIPE, text=True, timeout=60, check=True)
    assert r.stdout == 'False\n'                     # unmapped: not a ctypes object


VALUES = [('b', -5, 7), ('B', 250, 3), ('h', -300, 301), ('H', 65000, 1),
          ('i', -70000, 70000), ('I', 2 ** 32 - 1, 0), ('q', -2 ** 40, 2 ** 62),
          ('Q', 2 ** 64 - 1, 5), ('f', 0.5, -1.25), ('d', 1.5, 3.1415926),
          (c.c_bool, True, False), ('c', b'x', b'y')]


@pytest.mark.parametrize('lock', [True, False], ids=['locked', 'raw'])
def test_values(shmfs, unmapped, lock):
    for i, (code, first, then) in enumerate(VALUES):
        with closing(pyshm.Value(code, first, path=shmfs.p(f'v{i}'), lock=lock)) as v:
            assert is_unmapped(v)
            assert v.value == first
            v.value = then
            assert v.value == then
            with closing(pyshm.attach(v.path)) as again:
                assert again.value == then
    assert util.cat(shmfs.p('v9')) == '3.1415926\n'
    assert util.cat(shmfs.p('v10')) == '0\n'


def test_arrays_and_slices(shmfs, unmapped):
    with closing(pyshm.Array('i', range(10), path=shmfs.p('a'))) as a, \
            closing(pyshm.RawArray('d', [0.5, 1.5, 2.5], path=shmfs.p('d'))) as d, \
            closing(pyshm.Array(c.c_bool, [True, False, True], path=shmfs.p('b'))) as b:
        assert is_unmapped(a) and is_unmapped(d) and is_unmapped(b)
        assert (len(a), a[3], a[-1], a[:]) == (10, 3, 9, list(range(10)))
        assert (a[2:7], a[::3], a[8:1:-2], a[::-1], a[5:5]) == \
            ([2, 3, 4, 5, 6], [0, 3, 6, 9], [8, 6, 4, 2], list(range(9, -1, -1)), [])
        a[1:4] = [10, 20, 30]
        a[::4] = [-1, -2, -3]
        a[-2] = 88
        assert list(a) == [-1, 10, 20, 30, -2, 5, 6, 7, 88, 9] == a.tolist()
        assert util.cat(a.path) == '-1 10 20 30 -2 5 6 7 88 9\n'
        d[1] = 7.25
        assert d[:] == [0.5, 7.25, 2.5]
        b[1] = 1
        assert b[:] == [True, True, True]
    with closing(pyshm.Array('H', shape=(2, 3), path=shmfs.p('g'))) as g:
        g[5] = 65535
        assert (g.shape, g[:]) == ((2, 3), [0, 0, 0, 0, 0, 65535])


def test_char_arrays(shmfs, unmapped):
    with closing(pyshm.Array('c', b'hello', path=shmfs.p('s'))) as s, \
            closing(pyshm.Array('c', shape=(3, 4), path=shmfs.p('names'))) as names:
        assert is_unmapped(s)
        assert (len(s), s[1], s[1:4], s[::-1], s.value, s.raw) == \
            (5, b'e', b'ell', b'olleh', b'hello', b'hello')
        s.value = b'hi'
        assert (s.value, s.raw) == (b'hi', b'hi\0lo')
        s.raw = b'HELLO'
        s[0] = b'j'
        s[1:3] = b'EE'
        assert (s.value, list(s)) == (b'jEELO', [b'j', b'E', b'E', b'L', b'O'])
        names[:] = [b'ab', b'cdef', b'']
        names[2] = b'x'
        assert (names[:], names[1], names[::-1]) == \
            ([b'ab', b'cdef', b'x'], b'cdef', [b'x', b'cdef', b'ab'])
        assert util.cat(names.path) == 'ab\ncdef\nx\n'


@util.both_modes
def test_unmapped_and_mapped_see_each_others_stores(shmfs, unmapped):
    with closing(pyshm.Array('q', 4, path=shmfs.p('a'))) as far:
        assert is_unmapped(far)
        unmapped()
        with closing(pyshm.Array('q', 4, path=shmfs.p('a'))) as near, \
                util.mapped(shmfs.r('a')) as m:
            assert not is_unmapped(near)
            far[1:3] = [11, 22]
            assert near[:] == [0, 11, 22, 0]
            assert struct.unpack('4q', m[:]) == (0, 11, 22, 0)
            near[3] = -4
            m[0:8] = struct.pack('q', 99)
            assert far[:] == [99, 11, 22, -4]
            assert far.add(1, index=3) == -4 and near[3] == -3 and far.load(3) == -3


def test_atomics_lock_and_close(shmfs, unmapped):
    with closing(pyshm.Value('i', 5, path=shmfs.p('v'))) as v:
        assert (v.add(2), v.sub(1), v.xchg(10), v.cas(10, 11), v.load()) == \
            (5, 7, 6, pyshm.CasResult(True, 10), 11)
        with v:
            v.value += 1
        lock = v.get_lock()
        assert lock.acquire(block=False)
        r = util.sh_args('flock -n "$1" true', v.path)
        assert r.returncode != 0                     # held: a shell's flock waits
        lock.release()
        assert util.sh_args('flock -n "$1" true', v.path).returncode == 0
        raw = v.get_obj()
        assert raw is v.get_obj() and raw.value == 12
    with pytest.raises(ValueError):
        v.value
    with pytest.raises(ValueError):
        raw.value
    assert shmfs.alive()


def _count(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


@util.both_modes
@pytest.mark.parametrize('method', ['fork', 'spawn'])
def test_counter_under_the_lock_from_four_processes(shmfs, unmapped, method):
    """The CPython way to count (a read-modify-write under get_lock()),
    each read one pread and each store one pwrite: exact."""
    n = 200
    ctx = multiprocessing.get_context(method)
    with closing(pyshm.Value('q', 0, path=shmfs.p('count'))) as v:
        assert is_unmapped(v)
        procs = [ctx.Process(target=_count, args=(v, n)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(300)
        assert [p.exitcode for p in procs] == [0] * 4
        assert v.value == 4 * n


def _report_unmapped(v, q):
    q.put((type(v._m._mmap).__name__, isinstance(v.get_obj(), CDATA)))


@pytest.mark.parametrize('method', ['spawn', 'forkserver'])
def test_spawned_children_cannot_map_either(shmfs, unmapped, method):
    ctx = multiprocessing.get_context(method)
    q = ctx.Queue()
    multiprocessing.forkserver._forkserver._stop()     # one with this environment
    try:
        with closing(pyshm.Value('i', 1, path=shmfs.p('v'))) as v:
            p = ctx.Process(target=_report_unmapped, args=(v, q))
            p.start()
            assert q.get(timeout=60) == ('PreadBuffer', False)
            p.join(60)
            assert p.exitcode == 0
    finally:
        multiprocessing.forkserver._forkserver._stop()


def test_bad_input_as_mapped(shmfs, unmapped):
    """Each bad read or store raises what it raises on a mapped object and
    stores nothing."""
    far = {'v': pyshm.Value('B', 7, path=shmfs.p('v')),
           'a': pyshm.Array('i', 3, path=shmfs.p('a')),
           's': pyshm.Array('c', 4, path=shmfs.p('s')),
           'n': pyshm.Array('c', shape=(2, 3), path=shmfs.p('n'))}
    unmapped()
    near = {k: pyshm.attach(o.path) for k, o in far.items()}
    bad = [lambda o: setattr(o['v'], 'value', 256), lambda o: setattr(o['v'], 'value', 1.5),
           lambda o: setattr(o['v'], 'value', 'x'), lambda o: o['a'][3],
           lambda o: o['a'][-4], lambda o: o['a']['1'], lambda o: o['a'].__setitem__(3, 1),
           lambda o: o['a'].__setitem__(0, 2 ** 31), lambda o: o['a'].__setitem__(0, None),
           lambda o: o['a'].__setitem__(slice(0, 2), [1]),
           lambda o: o['a'].__setitem__(slice(0, 3), [1, 2, 2 ** 40]),
           lambda o: o['s'].__setattr__('value', b'12345'),
           lambda o: o['s'].__setattr__('raw', 'abc'), lambda o: o['s'][4],
           lambda o: o['s'].__setitem__(0, b'ab'), lambda o: o['n'].__setitem__(0, b'abcd'),
           lambda o: o['a'].value, lambda o: o['a'].add(1, index=5),
           lambda o: o['s'].add(1)]
    for i, fn in enumerate(bad):
        got, want = outcome(lambda: fn(far)), outcome(lambda: fn(near))
        assert got[0] == 'raises' and got == want, i
    assert (far['v'].value, far['a'][:], far['s'].raw, far['n'][:]) == \
        (7, [0, 0, 0], bytes(4), [b'', b''])
    for o in list(far.values()) + list(near.values()):
        o.close()


@pytest.mark.skipif(numpy is None, reason='numpy is not installed')
def test_numpy_needs_a_copy(shmfs, unmapped):
    with closing(pyshm.Array('d', [1, 2, 3], path=shmfs.p('a'))) as a, \
            closing(pyshm.Value(Point, 1, 2, path=shmfs.p('p'))) as p:
        for obj in (a, a.get_obj(), p, p.get_obj()):
            with pytest.raises(io.UnsupportedOperation, match='remote mount') as e:
                obj.numpy()
            assert e.value.errno == errno.ENODEV
        snap = a.numpy(copy=True)
        assert snap.tolist() == [1, 2, 3]
        snap[0] = 9                                  # not shared
        assert a[0] == 1
        assert p.numpy(copy=True)['y'] == 2


# ---- records -----------------------------------------------------------------------

class Point(c.Structure):
    _fields_ = [('x', c.c_double), ('y', c.c_double)]


class Inner(c.Structure):
    _fields_ = [('a', c.c_uint8), ('b', c.c_int64)]


class Rec(c.Structure):
    _fields_ = [('x', c.c_double), ('id', c.c_uint32), ('tag', c.c_char * 6),
                ('v', c.c_float * 3), ('q', Inner), ('ok', c.c_bool), ('ch', c.c_char)]


@pytest.mark.parametrize('lock', [True, False], ids=['locked', 'raw'])
def test_record_fields(shmfs, unmapped, lock):
    with closing(pyshm.Value(Rec, 0.5, 7, b'map', (1, 2, 3), (4, 5), True, b'z',
                             path=shmfs.p('r'), lock=lock)) as r:
        assert is_unmapped(r)
        assert (r.x, r.id, r.tag, r.v[:], r.q.b, r.ok, r.ch) == \
            (0.5, 7, b'map', [1, 2, 3], 5, True, b'z')
        r.x, r.id, r.tag = 1.25, 8, b'odom'
        r.v = (4, 5, 6)
        r.q = {'b': -9}
        r.id += 1
        assert r.todict() == {'x': 1.25, 'id': 9, 'tag': b'odom', 'v': [4, 5, 6],
                              'q': {'a': 4, 'b': -9}, 'ok': True, 'ch': b'z'}
        assert r.add('id', 1) == 9 and r.load('id') == 10
        assert r.cas('q.b', -9, 3) == pyshm.CasResult(True, -9) and r.q.b == 3
        with pytest.raises(OverflowError):
            r.id = -1
        with pytest.raises(ValueError):
            r.tag = b'too long'
        with pytest.raises(TypeError):
            r.x = 'x'
        assert r.id == 10 and r.tag == b'odom'
        assert util.cat(r.path).startswith('{"x": 1.25, "id": 10, "tag": "odom"')


def test_record_arrays_get_obj_copy_and_pickle(shmfs, unmapped):
    with closing(pyshm.Array(Point, [(1, 2), (3, 4), (5, 6)], path=shmfs.p('pts'))) as a:
        assert is_unmapped(a)
        assert (len(a), a[1].y, [p.x for p in a[::-1]]) == (3, 4, [5, 3, 1])
        a[0] = {'y': 20}
        a[1:3] = [(7, 8), Point(9, 10)]
        assert a.tolist() == [{'x': 1, 'y': 20}, {'x': 7, 'y': 8}, {'x': 9, 'y': 10}]
        raw = a.get_obj()
        assert raw is a.get_obj() and raw[2].x == 9 and raw.todict(1) == {'x': 7, 'y': 8}
        raw[2] = (0, 0)
        assert a.add('x', 1, index=2) == 0 and a[2].x == 1
        again = pickle.loads(pickle.dumps(a))
        assert is_unmapped(again) and again.tolist() == a.tolist()
        again.close()
    p = pyshm.copy(Point(2.5, 3.5), path=shmfs.p('copied'))
    assert is_unmapped(p) and (p.x, p.y) == (2.5, 3.5)
    p.y = 4
    q = pickle.loads(pickle.dumps(p))
    assert (type(q).__name__, q.y) == ('Point', 4)
    p.close()
    q.close()
    v = pyshm.copy(c.c_int16(-3), path=shmfs.p('copied_int'))
    assert is_unmapped(v) and v.value == -3
    v.close()
