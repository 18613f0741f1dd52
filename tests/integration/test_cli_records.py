"""The command-line verbs on records: `new PATH '{...}' JSON`, `get` and
`set` with --field and --index, the atomic verbs (load, add, sub, xchg, cas)
on a field, `ls` and `info`; bad input (an unknown field, an index out of
range, a string for add, bad JSON) fails with status 2 and one line on
stderr and changes no byte; and field atomics stay exact while other
processes write other fields through the text view."""

import json
import os
import struct
import subprocess

import pytest

import util
from test_cli_verbs import cli, entries, fails, ok

SPEC = '{x:f64, id:u32, tag:char[6], v:f32[3], q:{a:u8, b:i64}}'
# offsets: x 0, id 8, tag 12, v 20, q 32 (q.a 32, q.b 40); 48 bytes


def raw(shmfs, name):
    return util.read_bytes(shmfs.r(name))


def js(path):
    return [json.loads(l) for l in util.read_text(path).splitlines()]


@util.both_modes
def test_new_with_json(shmfs):
    p = shmfs.p('p')
    assert ok('new', p, SPEC, '{"x": 1.5, "tag": "hi", "q": {"b": -7}}') == ''
    assert util.xattr(p, util.TYPE) == SPEC
    assert js(p) == [{'x': 1.5, 'id': 0, 'tag': 'hi', 'v': [0, 0, 0],
                      'q': {'a': 0, 'b': -7}}]
    # An array of records: one object per element (as lines or a JSON array).
    r = shmfs.p('r')
    assert ok('new', r, '{n:i64, s:char[4]}[3]', '[{"n": 1}, {}, {"n": 3, "s": "c"}]') == ''
    assert js(r) == [{'n': 1, 's': ''}, {'n': 0, 's': ''}, {'n': 3, 's': 'c'}]
    assert ok('new', shmfs.p('z'), '{a:u8}') == ''          # zeros
    assert ok('get', shmfs.p('z')) == '{"a": 0}\n'
    # Bad JSON: nothing left behind.
    for value in ('{"nope": 1}', '{"x": "a"}', '{"id": -1}', '{"tag": "toolong"}', '{'):
        fails(cli('new', shmfs.p('bad'), SPEC, value), verb='new')
    line = fails(cli('new', shmfs.p('bad'), '{x:f64', '{}'), verb='new')
    assert 'not a type' in line
    assert entries(shmfs.path) == ['p', 'r', 'z']


@util.both_modes
def test_get_field(shmfs):
    p = shmfs.p('p')
    ok('new', p, SPEC, '{"x": -0.5, "id": 7, "tag": "h\\"i", "v": [1, 2.5, 3],'
       ' "q": {"a": 255, "b": 9007199254740993}}')
    assert ok('get', p, '--field', 'x') == '-0.5\n'
    assert ok('get', p, '--field', 'id') == '7\n'
    assert ok('get', p, '--field', 'tag') == '"h\\"i"\n'
    assert ok('get', p, '--field', 'v') == '[1, 2.5, 3]\n'
    assert ok('get', p, '--field', 'v[1]') == '2.5\n'
    assert ok('get', p, '--field', 'q') == '{"a": 255, "b": 9007199254740993}\n'
    assert ok('get', p, '--field', 'q.b') == '9007199254740993\n'
    assert ok('get', '--field', 'q.a', p) == '255\n'         # options anywhere
    assert ok('get', p, '--index', 0) == util.read_text(p)
    assert ok('get', p, '--index', 0, '--field', 'id') == '7\n'

    m = shmfs.p('m')
    ok('new', m, '{m:i16[2][3], b:bool, f:f32}')
    ok('set', m, '{"m": [[1, 2, 3], [4, 5, 6]], "b": true, "f": 1e30}')
    assert ok('get', m, '--field', 'm') == '[[1, 2, 3], [4, 5, 6]]\n'
    assert ok('get', m, '--field', 'm[1]') == '[4, 5, 6]\n'
    assert ok('get', m, '--field', 'm[1][2]') == '6\n'
    assert ok('get', m, '--field', 'b') == 'true\n'
    assert ok('get', m, '--field', 'f') == '1e+30\n'

    r = shmfs.p('r')
    ok('new', r, '{n:i64, s:char[4]}[3]', '{"n": 1, "s": "a"}', '{"n": 2}', '{"n": 3, "s": "c"}')
    assert ok('get', r, '--field', 'n') == '1\n2\n3\n'       # every element
    assert ok('get', r, '--field', 's') == '"a"\n""\n"c"\n'
    assert ok('get', r, '-i', 2, '--field', 's') == '"c"\n'
    assert ok('get', r, '--index', 1) == '{"n": 2, "s": ""}\n'
    # --index on other arrays: the element as the text view prints it.
    a = util.new_object(shmfs, 'a', 'f64[4]', '1 2.5 -3 4\n')
    assert ok('get', a, '--index', 1) == '2.5\n'
    c = util.new_object(shmfs, 'c', 'char[4][2]', 'ab\ncd\n')
    assert ok('get', c, '--index', 1) == 'cd\n'


def _field_bytes(before, after, start, end):
    """Asserts before and after differ only within [start, end)."""
    assert before[:start] == after[:start] and before[end:] == after[end:]


@util.both_modes
def test_set_field(shmfs):
    p = shmfs.p('p')
    ok('new', p, SPEC, '{"x": 1, "id": 2, "tag": "abc", "v": [1, 2, 3], "q": {"a": 4, "b": 5}}')
    cases = [
        # field, JSON value, bytes it may change, the field's JSON after
        ('x', '2.25', (0, 8), '2.25'),
        ('id', '4294967295', (8, 12), '4294967295'),
        ('tag', '"xy"', (12, 18), '"xy"'),
        ('tag', '"\\u00e9t\\u00e9"', (12, 18), '"\u00e9t\u00e9"'),
        ('v', '[0.5, -1, 1e3]', (20, 32), '[0.5, -1, 1000]'),
        ('v[1]', '7', (24, 28), '7'),
        ('q.b', '-9223372036854775808', (40, 48), '-9223372036854775808'),
        ('q', '{"a": 9}', (32, 33), '{"a": 9, "b": -9223372036854775808}'),
    ]
    for field, value, (start, end), shown in cases:
        before = raw(shmfs, 'p')
        assert ok('set', p, '--field', field, value) == '', field
        _field_bytes(before, raw(shmfs, 'p'), start, end)
        assert json.loads(ok('get', p, '--field', field)) == json.loads(shown), field
    assert js(p) == [{'x': 2.25, 'id': 4294967295, 'tag': '\u00e9t\u00e9',
                      'v': [0.5, 7, 1000], 'q': {'a': 9, 'b': -9223372036854775808}}]
    # A whole record element with --index, a merge as the text view does.
    assert ok('set', p, '--index', 0, '{"id": 1}') == ''
    assert js(p)[0]['id'] == 1 and js(p)[0]['x'] == 2.25

    r = shmfs.p('r')
    ok('new', r, '{n:i64, s:char[4]}[3]', '{"n": 1}', '{"n": 2}', '{"n": 3}')
    before = raw(shmfs, 'r')
    assert ok('set', r, '--index', 1, '--field', 's', '"mid"') == ''
    _field_bytes(before, raw(shmfs, 'r'), 16 + 8, 16 + 12)
    assert ok('set', r, '--field', 'n', '0') == ''           # every element
    assert js(r) == [{'n': 0, 's': ''}, {'n': 0, 's': 'mid'}, {'n': 0, 's': ''}]
    assert ok('set', r, '-i', 2, '{"n": 5, "s": "z"}') == ''
    assert js(r)[2] == {'n': 5, 's': 'z'} and js(r)[1] == {'n': 0, 's': 'mid'}
    # One number of a plain array.
    a = util.new_object(shmfs, 'a', 'u8[3]', '1 2 3\n')
    assert ok('set', a, '--index', 2, '200') == ''
    assert util.read_text(a) == '1 2 200\n'


@util.both_modes
def test_atomic_field_verbs(shmfs):
    p = shmfs.p('p')
    ok('new', p, '{c:i32, f:f64, b:bool, v:u16[3], in:{k:u64}, s:char[4]}[2]')
    assert ok('add', p, '--field', 'c', 5) == '5\n'
    assert ok('add', p, '--index', 1, '--field', 'c', 7) == '7\n'
    assert ok('sub', p, '--field', 'c', 10) == '-5\n'
    assert ok('load', p, '--field', 'c') == '-5\n'
    assert ok('load', p, '-i', 1, '--field', 'c') == '7\n'
    assert ok('add', p, '--field', 'f', '0.25') == '0.25\n'
    assert ok('xchg', p, '--field', 'f', '1e3') == '0.25\n'
    assert ok('xchg', p, '--field', 'b', 'true') == '0\n'
    assert ok('load', p, '--field', 'b') == '1\n'
    assert ok('sub', p, '-i', 1, '--field', 'v[2]', 1) == '65535\n'     # wraps
    assert ok('add', p, '-i', 1, '--field', 'in.k', 3) == '3\n'
    r = cli('cas', p, '--field', 'in.k', 1, 2)
    assert (r.returncode, r.stdout, r.stderr) == (1, '0\n', '')      # not swapped
    assert ok('cas', p, '--field', 'in.k', 0, 9) == '0\n'
    assert js(p) == [
        {'c': -5, 'f': 1000, 'b': True, 'v': [0, 0, 0], 'in': {'k': 9}, 's': ''},
        {'c': 7, 'f': 0, 'b': False, 'v': [0, 0, 65535], 'in': {'k': 3}, 's': ''}]
    # load of a plain element
    a = util.new_object(shmfs, 'a', 'i64[2]', '4 5\n')
    assert ok('load', a, '--index', 1) == '5\n'


BAD = [
    # id, verb arguments after PATH (of a {x:f64, ...}[2]), words of the message
    ('get-unknown-field', ['get', '--field', 'nope'], 'no field nope'),
    ('get-nested-unknown', ['get', '--field', 'q.c'], 'no field q.c'),
    ('get-item-past-shape', ['get', '--field', 'v[3]'], 'no field v[3]'),
    ('get-index-out-of-range', ['get', '--index', '2'], 'index 2 out of range'),
    ('set-unknown-field', ['set', '--field', 'nope', '1'], 'no field nope'),
    ('set-index-out-of-range', ['set', '--index', '2', '--field', 'x', '1'], 'out of range'),
    ('set-wrong-json-type', ['set', '--field', 'x', '"a"'], 'not a JSON value of field x'),
    ('set-malformed-json', ['set', '--field', 'q', '{"a": '], 'not a JSON value of field q'),
    ('set-another-field-too', ['set', '--field', 'x', '1, "id": 5'], 'not a JSON value'),
    ('set-out-of-range', ['set', '--field', 'id', '-1'], 'out of range'),
    ('set-string-too-long', ['set', '--field', 'tag', '"abcdefg"'], 'not a JSON value'),
    ('set-item-not-a-number', ['set', '--field', 'v[0]', 'abc'], 'not an element of type f32'),
    ('add-unknown-field', ['add', '--field', 'nope', '1'], 'no field nope'),
    ('add-index-out-of-range', ['add', '--index', '2', '--field', 'id', '1'], 'out of range'),
    ('add-string', ['add', '--field', 'tag', '1'], 'field tag is char[6], not a number'),
    ('add-field-array', ['add', '--field', 'v', '1'], 'field v is f32[3], not a number'),
    ('add-nested-record', ['add', '--field', 'q', '1'], 'not a number'),
    ('add-no-field', ['add', '1'], 'name one of its numbers with --field'),
    ('load-no-field', ['load'], 'name one of its numbers with --field'),
    ('add-float-to-int', ['add', '--field', 'id', '1.5'], 'not an element of type u32'),
    ('xchg-out-of-range', ['xchg', '--field', 'q.a', '256'], 'not an element of type u8'),
    ('cas-string', ['cas', '--field', 'tag', 'a', 'b'], 'not a number'),
    ('add-bool', ['add', '--field', 'ok', '1'], 'Invalid argument'),
]


@util.both_modes
@pytest.mark.parametrize('args,words', [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_changes_nothing(shmfs, args, words):
    shmfs.expect_output(r'^shmfs: rejected')
    p = shmfs.p('p')
    ok('new', p, '{x:f64, id:u32, tag:char[6], v:f32[3], q:{a:u8, b:i64}, ok:bool}[2]',
       '{"x": 1.5, "id": 3, "tag": "abc", "v": [1, 2, 3], "q": {"a": 4, "b": 5}}', '{"ok": true}')
    text, data = util.read_text(p), raw(shmfs, 'p')
    verb = args[0]
    line = fails(cli(verb, p, *args[1:]), verb=verb)
    assert words in line, line
    assert util.read_text(p) == text
    assert raw(shmfs, 'p') == data


def test_field_on_other_types(shmfs):
    a = util.new_object(shmfs, 'a', 'i32[3]', '1 2 3\n')
    for args in (['get', '--field', 'x'], ['set', '--field', 'x', '1'],
                 ['add', '--field', 'x', '1'], ['load', '--field', 'x']):
        line = fails(cli(args[0], a, *args[1:]), verb=args[0])
        assert '--field needs a record, not i32[3]' in line
    line = fails(cli('set', a, '--index', 3, '1'), verb='set')
    assert 'index 3 out of range: i32[3] has 3 elements' in line
    c = util.new_object(shmfs, 'c', 'char[4]', 'ab\n')
    assert 'is not a number' in fails(cli('load', c), verb='load')
    assert 'is not a number' in fails(cli('set', c, '--index', 0, 'x'), verb='set')
    assert util.read_text(a) == '1 2 3\n' and util.read_text(c) == 'ab\n'
    # missing and untyped objects
    os.close(os.open(shmfs.p('u'), os.O_CREAT | os.O_WRONLY, 0o644))
    for path in (shmfs.p('u'), shmfs.p('missing')):
        fails(cli('get', path, '--field', 'x'), verb='get')
        fails(cli('set', path, '--field', 'x', '1'), verb='set')
        fails(cli('load', path), verb='load')


@util.both_modes
def test_info_and_ls(shmfs):
    p = shmfs.p('p')
    ok('new', p, SPEC)
    lines = ok('info', p).splitlines()
    assert lines[0] == 'type      ' + SPEC
    assert json.loads(lines[2][10:])['itemsize'] == 48
    assert lines[7:] == [
        'field     x    f64      offset 0',
        'field     id   u32      offset 8',
        'field     tag  char[6]  offset 12',
        'field     v    f32[3]   offset 20',
        'field     q.a  u8       offset 32',
        'field     q.b  i64      offset 40',
    ]
    ok('new', shmfs.p('s'), '{a:u8, b:u8}[10]')
    # A long record type: its first fields, whole xattrs however long.
    names = [f'field{i:03d}' for i in range(40)]
    long_spec = '{' + ', '.join(f'{n}:f64' for n in names) + '}'
    ok('new', shmfs.p('wide'), long_spec + '[2]')
    out = ok('ls', shmfs.path).splitlines()
    assert any(l.endswith(f"{'{a:u8, b:u8}[10]':<16} {20:>10}  s") for l in out), out
    wide = [l for l in out if l.endswith('  wide')]
    assert len(wide) == 1 and '{field000:f64, field001:f64, ...}[2]' in wide[0], wide
    assert any(' {x:f64, id:u32, tag:char[6], ...} ' in l for l in out), out
    info = ok('info', shmfs.p('wide')).splitlines()
    assert info[0] == 'type      ' + long_spec + '[2]'
    assert info[-1] == 'field     field039  f64  offset 312'


def test_verb_help_and_counts():
    for verb in ('get', 'set', 'load', 'add', 'sub', 'cas', 'xchg'):
        r = cli(verb, '--help')
        assert r.returncode == 0 and '--field F' in r.stdout and 'pose.x' in r.stdout
    for verb, args in (('load', []), ('load', ['p', '1']), ('get', ['p', '--field']),
                       ('get', ['p', '--index', '1', '--index', '2']),
                       ('add', ['p', '--field', 'x', '--field', 'y', '1']),
                       ('set', ['p', '--field', 'x']), ('add', ['p', '--index', 'x', '1'])):
        line = fails(cli(verb, *args), verb=verb)
        assert f'usage: shmfs {verb}' in line


# -- field atomics under concurrency --------------------------------------------

ADDER = 'for i in $(seq "$3"); do "$1" add "$2" --index 2 --field n 1 >/dev/null || exit 1; done'


@util.both_modes
def test_field_adds_exact_while_other_fields_are_written(shmfs):
    """Processes `shmfs add --field n` on element 2 of a record array while
    others merge other fields of the same element (and of others) through
    the text view: not one increment is lost, and what the writers wrote
    stays."""
    p = shmfs.p('r')
    ok('new', p, '{n:i64, x:f64, tag:char[8], m:u32}[4]',
       *[json.dumps({'m': 100 + i}) for i in range(4)])
    n_adders, adds = 3, 60
    adders = [subprocess.Popen(['sh', '-c', ADDER, 'sh', util.SHMFS_BIN, p, str(adds)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(n_adders)]
    writes = 0
    while writes < 50 or any(a.poll() is None for a in adders):
        lines = ['{}', json.dumps({'x': writes + 0.5}), json.dumps({'x': writes, 'tag': f'w{writes}'}),
                 '{}']
        util.write_text(p, '\n'.join(lines) + '\n')
        # and through the CLI, one field of element 2
        ok('set', p, '--index', 2, '--field', 'm', str(writes))
        writes += 1
    for a in adders:
        out, err = a.communicate(timeout=120)
        assert a.returncode == 0, err
    last = writes - 1
    assert js(p) == [
        {'n': 0, 'x': 0, 'tag': '', 'm': 100},
        {'n': 0, 'x': last + 0.5, 'tag': '', 'm': 101},
        {'n': n_adders * adds, 'x': last, 'tag': f'w{last}', 'm': last},
        {'n': 0, 'x': 0, 'tag': '', 'm': 103},
    ]
    # The binary view agrees: element 2 at 2 * 32 bytes.
    n, x = struct.unpack_from('=qd', raw(shmfs, 'r'), 64)
    assert (n, x) == (n_adders * adds, last)
