"""Records in the Python client (clients/python): ctypes.Structure classes as
shmfs record types ({name:TYPE, ...}, docs/contract.md "Records").  Value
and Array of Structures (nested, with field arrays and strings), attaching
with and without the class, field attributes under the lock and field
atomics counting exactly under concurrency, the layout check, classes shmfs
cannot hold, and refused stores that leave both views (the JSON text and
the .raw bytes) as they were.  Both coherence modes."""

import ctypes
import json
import multiprocessing
import os
import pickle
import sys
import textwrap
from contextlib import closing

import pytest

import util
import shmfs as pyshm  # noqa: E402  (the fixture is named shmfs)

try:
    import numpy
except ImportError:
    numpy = None

c = ctypes


class Inner(c.Structure):
    _fields_ = [('a', c.c_uint8), ('b', c.c_int64)]


class Rec(c.Structure):
    _fields_ = [('x', c.c_double), ('id', c.c_uint32), ('tag', c.c_char * 6),
                ('v', c.c_float * 3), ('q', Inner), ('m', (c.c_int32 * 2) * 2),
                ('ok', c.c_bool), ('ch', c.c_char)]


REC_SPEC = ('{x:f64, id:u32, tag:char[6], v:f32[3], q:{a:u8, b:i64}, '
            'm:i32[2][2], ok:bool, ch:char[1]}')


class Counter(c.Structure):
    _fields_ = [('x', c.c_int64), ('n', c.c_uint32), ('f', c.c_double),
                ('hits', c.c_int32 * 2)]


class Point(c.Structure):
    _fields_ = [('x', c.c_double), ('y', c.c_double)]


def no_leftovers(directory):
    return [n for n in os.listdir(directory) if '.shmfs-tmp.' in n]


def views(shmfs, name):
    """Both views of an object: its text and its bytes."""
    return util.cat(shmfs.p(name)), util.read_bytes(shmfs.r(name))


def client(code, *args):
    return util.child('import sys, ctypes\nimport shmfs\n' + textwrap.dedent(code), *args)


# ---- Values and Arrays of Structures --------------------------------------------

@util.both_modes
def test_value_of_a_structure(shmfs):
    path = shmfs.p('rec')
    with closing(pyshm.Value(Rec, 1.5, 7, b'abc', (1, 2, 3.5), (5, -6),
                             ((1, 2), (3, 4)), True, b'z', path=path)) as v:
        assert isinstance(v, pyshm.SharedRecord)
        assert v.typecode == REC_SPEC == util.xattr(path, util.TYPE)
        # The layout is ctypes', the daemon's and numpy's alike.
        assert v.nbytes == c.sizeof(Rec) == int(util.xattr(path, 'user.shmfs.nbytes'))
        dtype = json.loads(util.xattr(path, 'user.shmfs.dtype'))
        assert dtype['names'] == [f for f, _ in Rec._fields_]
        assert dtype['offsets'] == [getattr(Rec, f).offset for f, _ in Rec._fields_]
        assert dtype['itemsize'] == c.sizeof(Rec)
        expect = Rec(1.5, 7, b'abc', (1, 2, 3.5), (5, -6), ((1, 2), (3, 4)), True, b'z')
        assert util.read_bytes(shmfs.r('rec')) == bytes(expect)
        assert json.loads(util.cat(path)) == {
            'x': 1.5, 'id': 7, 'tag': 'abc', 'v': [1, 2, 3.5], 'q': {'a': 5, 'b': -6},
            'm': [[1, 2], [3, 4]], 'ok': True, 'ch': 'z'}
        # Fields as attributes, as multiprocessing's synchronized wrappers.
        v.x *= 2
        v.id += 1
        v.tag = b'abcdef'                      # exactly its capacity
        v.v = [4, 5, 6]
        v.q = {'b': 99}                        # a dict sets the fields it names
        v.m = ((7, 8), (9, 10))
        v.ok = False
        assert (v.x, v.id, v.tag, v.v[:], v.q.a, v.q.b, v.m[1][0], v.ok, v.ch) == \
            (3.0, 8, b'abcdef', [4.0, 5.0, 6.0], 5, 99, 9, False, b'z')
        v.q = Inner(1, 2)                      # a Structure: all of it
        v.q = (3,)                             # a tuple: as ctypes' constructor
        assert (v.q.a, v.q.b) == (3, 0)
        v.v[1] = 0.25                          # ctypes' view of the field array
        assert json.loads(util.cat(path))['v'] == [4, 0.25, 6]
        assert v.todict() == {'x': 3.0, 'id': 8, 'tag': b'abcdef', 'v': [4.0, 0.25, 6.0],
                              'q': {'a': 3, 'b': 0}, 'm': [[7, 8], [9, 10]],
                              'ok': False, 'ch': b'z'}
        # get_obj(): the Structure over the mapping, the same one each time.
        obj = v.get_obj()
        assert isinstance(obj, Rec) and isinstance(obj, pyshm.RawSharedRecord)
        assert obj is v.get_obj() and bytes(obj) == util.read_bytes(shmfs.r('rec'))
        obj.id = 41
        assert (v.id, json.loads(util.cat(path))['id']) == (41, 41)
        assert not hasattr(obj, 'get_lock')
        # The same object again: attached, its value left alone.
        with closing(pyshm.Value(Rec, 0.0, path=path)) as again:
            assert again.x == 3.0
    assert no_leftovers(shmfs.path) == []


@util.both_modes
def test_initializers(shmfs):
    with closing(pyshm.Value(Point, path=shmfs.p('zero'))) as z, \
            closing(pyshm.Value(Point, Point(1, 2), path=shmfs.p('struct'))) as s, \
            closing(pyshm.Value(Point, {'y': 5}, path=shmfs.p('dict'))) as d, \
            closing(pyshm.RawValue(Point, 7, path=shmfs.p('raw'))) as r, \
            closing(pyshm.Value('{x: f64, y :f64}', 3, 4, path=shmfs.p('spec'))) as sp:
        assert [(o.x, o.y) for o in (z, s, d, r, sp)] == \
            [(0, 0), (1, 2), (0, 5), (7, 0), (3, 4)]
        assert util.cat(shmfs.p('dict')) == '{"x": 0, "y": 5}\n'
        assert sp.typecode == '{x:f64, y:f64}'
        assert isinstance(r, Point) and not isinstance(r, pyshm.SharedRecord)
        r.y = 8
        assert util.cat(shmfs.p('raw')) == '{"x": 7, "y": 8}\n'
    # A copy, as multiprocessing.sharedctypes.copy makes one.
    with closing(pyshm.copy(Point(2.5, -1), path=shmfs.p('copy'))) as cp:
        assert (cp.x, cp.y, cp.typecode) == (2.5, -1, '{x:f64, y:f64}')


@util.both_modes
def test_array_of_structures(shmfs):
    path = shmfs.p('arr')
    a = pyshm.Array(Inner, [(1, 2), {'b': 3}, Inner(4, 5), [6]], path=path)
    with closing(a):
        assert isinstance(a, pyshm.SharedRecordArray)
        assert (a.typecode, len(a), a.shape) == ('{a:u8, b:i64}[4]', 4, (4,))
        assert util.cat(path) == ('{"a": 1, "b": 2}\n{"a": 0, "b": 3}\n'
                                  '{"a": 4, "b": 5}\n{"a": 6, "b": 0}\n')
        assert util.read_bytes(shmfs.r('arr')) == bytes(
            (Inner * 4)(Inner(1, 2), Inner(0, 3), Inner(4, 5), Inner(6, 0)))
        assert isinstance(a[2], Inner) and (a[2].a, a[-1].a) == (4, 6)
        a[1] = {'a': 9}                               # merges
        a[2:4] = [Inner(7, 7), (8, 8)]
        a[0].b = 100                                  # through ctypes' view
        assert a.tolist() == [{'a': 1, 'b': 100}, {'a': 9, 'b': 3},
                              {'a': 7, 'b': 7}, {'a': 8, 'b': 8}]
        assert [r.b for r in a] == [100, 3, 7, 8]
        raw = a.get_obj()
        assert isinstance(raw, pyshm.RawSharedRecordArray) and isinstance(raw[0], Inner)
        raw[3] = (1, 1)
        assert a.todict(3) == {'a': 1, 'b': 1}
    # Shaped arrays of records index flat, in C order.
    with closing(pyshm.RawArray(Point, shape=(2, 3), path=shmfs.p('grid'))) as g:
        assert (g.typecode, len(g)) == ('{x:f64, y:f64}[2][3]', 6)
        g[5] = (1.5, 2.5)
        assert util.cat(shmfs.p('grid')).splitlines()[5] == '{"x": 1.5, "y": 2.5}'
        if numpy is not None:
            n = g.numpy()
            assert n.shape == (2, 3) and n[1, 2]['y'] == 2.5
    # Too few or too many initializers for the shape.
    with pytest.raises(ValueError):
        pyshm.Array(Point, [(1, 2)], shape=(2,), path=shmfs.p('bad'))
    with pytest.raises(ValueError):
        pyshm.Array(Point, 0, path=shmfs.p('bad'))
    assert not os.path.exists(shmfs.p('bad')) and no_leftovers(shmfs.path) == []


@pytest.mark.skipif(numpy is None, reason='needs numpy')
@util.both_modes
def test_numpy_structured_view(shmfs):
    with closing(pyshm.Value(Rec, 1.0, 2, b'hi', path=shmfs.p('rec'))) as v, \
            closing(pyshm.Array(Point, 3, path=shmfs.p('pts'))) as a:
        n = v.numpy()
        assert n.shape == () and n.dtype.names == tuple(f for f, _ in Rec._fields_)
        assert n.dtype == numpy.dtype(Rec) or n.dtype.itemsize == c.sizeof(Rec)
        n['x'] = 6.5                                  # zero copy, both ways
        n['v'][2] = 1.25
        n['q']['b'] = -3
        assert (v.x, v.v[2], v.q.b) == (6.5, 1.25, -3)
        v.id = 77
        assert n['id'] == 77
        p = a.numpy()
        p['y'] = [1, 2, 3]
        assert [r.y for r in a] == [1, 2, 3]
        assert json.loads(util.cat(shmfs.p('pts')).splitlines()[2]) == {'x': 0, 'y': 3}


# ---- attaching ------------------------------------------------------------------

@util.both_modes
def test_attach_with_and_without_the_class(shmfs):
    path = shmfs.p('rec')
    with closing(pyshm.Value(Rec, 2.0, 1, b'ab', path=path)):
        pass
    # An unrelated process without the class: one made from the type, fields
    # as attributes.
    out = client('''
        v = shmfs.attach(sys.argv[1])
        print(type(v.get_obj()).__mro__[1].__name__, v.typecode)
        v.x *= 2
        v.tag = b'xyz'
        v.q = {'b': -7}
        with v:
            v.id += 1
        print(v.x, v.id, v.tag, v.q.b, v.m[1][1])
    ''', path)
    assert out.splitlines() == ['Record ' + REC_SPEC, '4.0 2 b\'xyz\' -7 0']
    with closing(pyshm.attach(path, Rec)) as v:
        assert isinstance(v.get_obj(), Rec) and (v.x, v.id, v.tag) == (4.0, 2, b'xyz')
    with closing(pyshm.attach(path, lock=False)) as raw:
        assert isinstance(raw, pyshm.RawSharedRecord) and raw.q.b == -7
    with closing(pyshm.attach(path, REC_SPEC.replace(', ', ','))) as v:
        assert v.id == 2
    # An object typed from the shell, then seen through a class.
    os.close(os.open(shmfs.p('shell'), os.O_CREAT | os.O_WRONLY))
    util.set_type(shmfs.p('shell'), '{ x : f64 , y:f64 }[2]')
    util.echo(shmfs.p('shell'), '{"x": 1}\n{"y": 2}')
    with closing(pyshm.attach(shmfs.p('shell'), Point)) as a:
        assert [(p.x, p.y) for p in a] == [(1, 0), (0, 2)]
    # Pickled to a spawned child with its class.
    ctx = multiprocessing.get_context('spawn')
    with closing(pyshm.Value(Point, 1, 2, path=shmfs.p('pt'))) as pt:
        p = ctx.Process(target=_spawned_check, args=(pt, pt.get_obj()))
        p.start()
        p.join(60)
        assert p.exitcode == 0
        assert (pt.x, pt.y) == (10, 20)


def _spawned_check(pt, raw):
    assert isinstance(pt.get_obj(), Point) and isinstance(raw, Point)
    pt.x = 10
    raw.y = 20


# ---- concurrency ------------------------------------------------------------------

N_PROCS = 4
N_ITER = 150


def _worker(v, a):
    for _ in range(N_ITER):
        with v:                                # one locked read-modify-write
            v.x += 1
            v.f += 0.5
        v.add('n', 1)                          # the daemon's atomic add
        v.add('hits[1]', 2)
        a.add('b', 1, index=1)
        a.sub('b', 1, index=2)


@util.both_modes
@pytest.mark.parametrize('method', ['fork', 'spawn'])
def test_locked_fields_and_field_atomics_count_exactly(shmfs, method):
    ctx = multiprocessing.get_context(method)
    with closing(pyshm.Value(Counter, path=shmfs.p('count'))) as v, \
            closing(pyshm.Array(Inner, 3, path=shmfs.p('arr'))) as a:
        procs = [ctx.Process(target=_worker, args=(v, a)) for _ in range(N_PROCS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0] * N_PROCS
        total = N_PROCS * N_ITER
        assert v.todict() == {'x': total, 'n': total, 'f': total / 2,
                              'hits': [0, 2 * total]}
        assert json.loads(util.cat(shmfs.p('count'))) == {
            'x': total, 'n': total, 'f': total / 2, 'hits': [0, 2 * total]}
        assert [r.b for r in a] == [0, total, -total]


@util.both_modes
def test_field_atomics(shmfs):
    with closing(pyshm.Value(Rec, 1.5, 7, b'ab', (1, 2, 3), (250, 5), ((1, 2), (3, 4)),
                             path=shmfs.p('rec'))) as v:
        assert v.add('x', 1) == 1.5 and v.x == 2.5
        assert v.sub('q.b', 10) == 5 and v.q.b == -5
        assert v.add('q.a', 10) == 250 and v.q.a == 4          # wraps at u8
        assert v.xchg('m[1][0]', 30) == 3 and v.m[1][0] == 30
        assert v.cas('v[2]', 3, 9) == (True, 3) and v.v[2] == 9
        assert not v.cas('id', 0, 1) and v.id == 7
        assert v.load('m[1][0]') == 30
        assert v.xchg('ok', True) is False and v.ok
        raw = v.get_obj()
        assert raw.add('id', 1) == 7 and raw.id == 8
        for bad, exc in (('tag', TypeError), ('q', TypeError), ('v', TypeError),
                         ('nope', KeyError), ('q.c', KeyError), ('v[3]', IndexError),
                         ('x.y', KeyError), ('v[0]x', KeyError), (3, TypeError)):
            with pytest.raises(exc):
                v.add(bad, 1)
        with pytest.raises(TypeError):
            v.add('ok', 1)                                     # add on bool
        with pytest.raises(OverflowError):
            v.xchg('q.a', 256)
        with pytest.raises(IndexError):
            v.add('x', 1, index=1)                             # a Value has one record
        assert (v.q.a, v.x) == (4, 2.5)


# ---- the layout check, and classes shmfs cannot hold -----------------------------------

class PointI(c.Structure):
    _fields_ = [('x', c.c_double), ('y', c.c_int64)]


class PointYX(c.Structure):
    _fields_ = [('y', c.c_double), ('x', c.c_double)]


class Point3(c.Structure):
    _fields_ = [('x', c.c_double), ('y', c.c_double), ('z', c.c_double)]


class InnerA(c.Structure):
    _fields_ = [('a', c.c_uint16), ('b', c.c_int64)]


class RecA(c.Structure):
    _fields_ = [(n, InnerA if n == 'q' else t) for n, t in Rec._fields_]


@util.both_modes
def test_layout_mismatch_is_an_error_naming_the_field(shmfs):
    with closing(pyshm.Value(Point, 1, 2, path=shmfs.p('pt'))), \
            closing(pyshm.Value(Rec, path=shmfs.p('rec'))):
        pass
    before = {n: views(shmfs, n) for n in ('pt', 'rec')}
    cases = [('pt', PointI, r'field y: the class has y:i64 at offset 8, '
                            r'the object has y:f64 at offset 8'),
             ('pt', PointYX, r'field y: the class has y:f64 at offset 0, '
                             r'the object has x:f64'),
             ('pt', Point3, r'field z: the class has z:f64 at offset 16, '
                            r'the object has no field there'),
             ('pt', Inner, r'field a'),
             ('rec', RecA, r'field q\.a: the class has a:u16')]
    for name, cls, msg in cases:
        with pytest.raises(FileExistsError, match=msg):
            pyshm.Value(cls, path=shmfs.p(name))
        with pytest.raises(TypeError, match=msg):
            pyshm.attach(shmfs.p(name), cls)
        with pytest.raises(TypeError, match=msg):
            pyshm.attach(shmfs.p(name), cls, lock=False)
    with pytest.raises(FileExistsError, match='shape'):
        pyshm.Array(Point, 2, path=shmfs.p('pt'))
    # Records and non-records do not mix.
    with closing(pyshm.Value('d', 1.0, path=shmfs.p('num'))):
        pass
    with pytest.raises(TypeError):
        pyshm.attach(shmfs.p('num'), Point)
    with pytest.raises(TypeError, match='record'):
        pyshm.attach(shmfs.p('pt'), 'd')
    with pytest.raises(FileExistsError):
        pyshm.Value(Point, path=shmfs.p('num'))
    # A Structure store of another layout.
    with pytest.raises(TypeError, match='field y'):
        pyshm.Array(Point, [PointI(1, 2)], path=shmfs.p('new'))
    assert {n: views(shmfs, n) for n in ('pt', 'rec')} == before
    assert no_leftovers(shmfs.path) == [] and not os.path.exists(shmfs.p('new'))


class Packed(c.Structure):
    _pack_ = 1
    _fields_ = [('a', c.c_uint8), ('b', c.c_int32)]


class Bits(c.Structure):
    _fields_ = [('a', c.c_uint32, 3), ('b', c.c_uint32, 5)]


class Either(c.Union):
    _fields_ = [('i', c.c_int), ('d', c.c_double)]


class WithUnion(c.Structure):
    _fields_ = [('u', Either)]


class WithPointer(c.Structure):
    _fields_ = [('p', c.POINTER(c.c_int))]


class WithCharP(c.Structure):
    _fields_ = [('s', c.c_char_p)]


class WithRecordArray(c.Structure):
    _fields_ = [('pts', Point * 2)]


class WithWchar(c.Structure):
    _fields_ = [('w', c.c_wchar)]


class Empty(c.Structure):
    _fields_ = []


class BigEndian(c.BigEndianStructure if sys.byteorder == 'little'
                else c.LittleEndianStructure):
    _fields_ = [('x', c.c_int32)]


class Derived(Point):
    _fields_ = [('z', c.c_double)]


@util.both_modes
def test_classes_shmfs_cannot_hold(shmfs):
    refused = [(Packed, '_pack_'), (Bits, 'bitfield'), (Either, 'Union'),
               (WithUnion, 'Union'), (WithPointer, 'WithPointer.p'),
               (WithCharP, 'WithCharP.s'), (WithRecordArray, 'array of Point'),
               (WithWchar, 'WithWchar.w'), (Empty, 'no fields'),
               (BigEndian, 'byte order')]
    for cls, why in refused:
        for make in (lambda: pyshm.Value(cls, path=shmfs.p('new')),
                     lambda: pyshm.RawArray(cls, 2, path=shmfs.p('new'))):
            with pytest.raises(TypeError, match=why):
                make()
    # A spec the daemon refuses too: an array of records as a field.
    with pytest.raises(TypeError, match='array of records'):
        pyshm.Value('{p:{x:f64}[2]}', path=shmfs.p('new'))
    assert os.listdir(shmfs.path) == []
    # A derived Structure: its base's fields first.
    with closing(pyshm.Value(Derived, 1, 2, 3, path=shmfs.p('d'))) as d:
        assert d.typecode == '{x:f64, y:f64, z:f64}' and (d.x, d.z) == (1, 3)


# ---- refused stores change nothing -------------------------------------------------

@util.both_modes
@pytest.mark.parametrize('lock', [True, False])
def test_bad_input_leaves_both_views_alone(shmfs, lock):
    path = shmfs.p('rec')
    v = pyshm.Value(Rec, 1.5, 7, b'abc', (1, 2, 3), (5, 6), ((1, 2), (3, 4)), True,
                    path=path, lock=lock)
    a = pyshm.Array(Inner, [(1, 2), (3, 4)], path=shmfs.p('arr'), lock=lock)
    before = views(shmfs, 'rec'), views(shmfs, 'arr')
    bad = [
        ('id', -1, OverflowError), ('id', 1 << 32, OverflowError),
        ('x', 'x', TypeError), ('x', b'1', TypeError), ('x', [], TypeError),
        ('id', 1.5, TypeError), ('id', '3', TypeError),
        ('tag', b'toolong', ValueError), ('tag', 'abc', TypeError),
        ('v', (1, 2), ValueError), ('v', (1, 2, 3, 4), ValueError), ('v', 5, TypeError),
        ('v', (1, 2, 'x'), TypeError), ('v', (1, 2, 1e39), OverflowError),
        ('m', ((1, 2), (3,)), ValueError), ('m', (1, 2), TypeError),
        ('q', {'a': 256}, OverflowError), ('q', {'a': 1, 'b': 1 << 63}, OverflowError),
        ('q', {'c': 1}, TypeError), ('q', (1, 2, 3), TypeError), ('q', 5, TypeError),
        ('q', Point(1, 2), TypeError), ('ch', b'ab', ValueError),
    ]
    for field, x, exc in bad:
        with pytest.raises(exc):
            setattr(v, field, x)
    # Whole records: into an array's items.
    for key, x, exc in [(0, (1, 1 << 70), OverflowError), (1, {'b': 'x'}, TypeError),
                        (0, (1, 2, 3), TypeError), (2, (1, 2), IndexError),
                        (slice(0, 2), [(1, 2), (300, 2)], OverflowError),
                        (slice(0, 2), [(1, 2)], ValueError), (0, 7, TypeError)]:
        with pytest.raises(exc):
            a[key] = x
    assert (views(shmfs, 'rec'), views(shmfs, 'arr')) == before
    # Refused initializers create nothing.
    for make, exc in [(lambda: pyshm.Value(Inner, 256, path=shmfs.p('new')), OverflowError),
                      (lambda: pyshm.Value(Inner, 1, 2, 3, path=shmfs.p('new')), TypeError),
                      (lambda: pyshm.Value(Inner, 1.5, path=shmfs.p('new')), TypeError),
                      (lambda: pyshm.Array(Inner, [(1, 2), 'x'], path=shmfs.p('new')),
                       TypeError),
                      (lambda: pyshm.Array(Inner, [{'z': 1}], path=shmfs.p('new')), TypeError)]:
        with pytest.raises(exc):
            make()
    assert not os.path.exists(shmfs.p('new')) and no_leftovers(shmfs.path) == []
    v.close()
    a.close()
    assert shmfs.alive()


@util.both_modes
def test_close_and_pickle(shmfs):
    v = pyshm.Value(Point, 1, 2, path=shmfs.p('pt'))
    w = pickle.loads(pickle.dumps(v))
    assert isinstance(w, pyshm.SharedRecord) and w.get_lock() is v.get_lock()
    raw = pickle.loads(pickle.dumps(v.get_obj()))
    assert isinstance(raw, Point) and raw.y == 2
    v.close()
    with pytest.raises(ValueError):
        v.x                                            # noqa: B018
    assert w.x == 1
    raw.close()
    with pytest.raises(ValueError):
        raw.add('x', 1)
    assert 'pt' in repr(w)
    w.close()
