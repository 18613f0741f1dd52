"""shmfs from the shell: echo/cat of every type, type inference on the first
write, typing with setfattr and the read-only xattrs, and the namespace --
mkdir/mv/rm/ls/find/cp/tar/chmod/chown/touch, the hidden but reachable
`.raw` tree that mirrors the main one, EPERM for namespace changes under
`.raw`, EEXIST for a new `.raw` at the root, renameat2 NOREPLACE/EXCHANGE."""

import ctypes
import errno
import os
import re
import stat
import struct

import numpy as np
import pytest

import util

LONG = 'i64' if ctypes.sizeof(ctypes.c_long) == 8 else 'i32'
ULONG = 'u' + LONG[1:]

NUMPY = {'i8': 'i1', 'u8': 'u1', 'i16': 'i2', 'u16': 'u2', 'i32': 'i4',
         'u32': 'u4', 'i64': 'i8', 'u64': 'u8', 'f32': 'f4', 'f64': 'f8',
         'bool': '?'}


def elem_of(spec):
    return 'char' if spec.startswith('c') else spec.split('[')[0]


def expected_raw(spec, text_out):
    """The native bytes of a value whose canonical rendering is text_out."""
    elem = elem_of(spec)
    tokens = text_out.split()
    if elem in ('f32', 'f64'):
        return np.array(tokens, dtype=np.float64).astype(NUMPY[elem]).tobytes()
    if elem == 'bool':
        return np.array([t == '1' for t in tokens], dtype='?').tobytes()
    return np.array([int(t) for t in tokens], dtype=NUMPY[elem]).tobytes()


# spec, text given to echo, what cat prints
ECHO_CAT = [
    ('i8', '-128', '-128\n'),
    ('i8', '127', '127\n'),
    ('i8', '0x7f', '127\n'),
    ('i8', '-0x80', '-128\n'),
    ('u8', '255', '255\n'),
    ('u8', '0x10', '16\n'),
    ('u8', '010', '10\n'),
    ('u8', '  7\t ', '7\n'),
    ('i16', '-32768', '-32768\n'),
    ('i16', '+12', '12\n'),
    ('u16', '65535', '65535\n'),
    ('i32', '-2147483648', '-2147483648\n'),
    ('i32', '2147483647', '2147483647\n'),
    ('u32', '4294967295', '4294967295\n'),
    ('u32', '0xFFFFFFFF', '4294967295\n'),
    ('i64', '-9223372036854775808', '-9223372036854775808\n'),
    ('i64', '9223372036854775807', '9223372036854775807\n'),
    ('u64', '18446744073709551615', '18446744073709551615\n'),
    ('u64', '0xffffffffffffffff', '18446744073709551615\n'),
    ('f32', '0.1', '0.1\n'),
    ('f32', '-2.25', '-2.25\n'),
    ('f32', 'inf', 'inf\n'),
    ('f64', '3.1415926', '3.1415926\n'),
    ('f64', '0.1', '0.1\n'),
    ('f64', '-0.5', '-0.5\n'),
    ('f64', '2', '2\n'),
    ('f64', '1.5e1', '15\n'),
    ('f64', '0x1.8p1', '3\n'),
    ('f64', ' -1.25 ', '-1.25\n'),
    ('f64', 'inf', 'inf\n'),
    ('f64', '-inf', '-inf\n'),
    ('f64', 'nan', 'nan\n'),
    ('f64', 'NaN', 'nan\n'),
    ('f64', 'Infinity', 'inf\n'),
    ('bool', 'true', '1\n'),
    ('bool', 'FALSE', '0\n'),
    ('bool', 'Yes', '1\n'),
    ('bool', 'no', '0\n'),
    ('bool', 'ON', '1\n'),
    ('bool', 'off', '0\n'),
    ('bool', '1', '1\n'),
    ('bool', '0', '0\n'),
    ('char[8]', 'hello', 'hello\n'),
    ('char[8]', 'abcdefgh', 'abcdefgh\n'),
    ('char[8]', '', '\n'),
    ('char[8]', ' a b ', ' a b \n'),
    ('char[16]', 'two words', 'two words\n'),
    ('c[4]', 'abc', 'abc\n'),
    ('i32[5]', '0 1 2 3 4', '0 1 2 3 4\n'),
    ('i32[5]', '[0, 1, 2, 3, 4]', '0 1 2 3 4\n'),
    ('i32[5]', '0,1,2,3,4', '0 1 2 3 4\n'),
    ('i32[5]', '0\t1\t2\t3\t4', '0 1 2 3 4\n'),
    ('i32[5]', '0\n1\n2\n3\n4', '0 1 2 3 4\n'),
    ('i32[5]', ' [ 0 ,1, 2 ,3,4 ] ', '0 1 2 3 4\n'),
    ('i32[1]', '5', '5\n'),
    ('u8[4]', '0x10 010 255 0', '16 10 255 0\n'),
    ('i64[3]', '-1 0x10 9223372036854775807', '-1 16 9223372036854775807\n'),
    ('f64[3]', '[0.5, -1.25, 3.1415926]', '0.5 -1.25 3.1415926\n'),
    ('f64[3]', 'inf -inf nan', 'inf -inf nan\n'),
    ('f32[2]', '0.1 0.2', '0.1 0.2\n'),
    ('bool[4]', 'true no ON 0', '1 0 1 0\n'),
    ('i16[2][3]', '1 2 3 4 5 6', '1 2 3\n4 5 6\n'),
    ('i16[2][3]', '[[1, 2, 3], [4, 5, 6]]', '1 2 3\n4 5 6\n'),
    ('i16[2,3]', '[[1 2 3]\n [4 5 6]]', '1 2 3\n4 5 6\n'),
    ('f64[2][2]', '0.5 1.5\n2.5 3.5', '0.5 1.5\n2.5 3.5\n'),
    ('u8[2][2][2]', '0 1 2 3 4 5 6 7', '0 1\n2 3\n4 5\n6 7\n'),
    ('f64[3][1]', '1 2 3', '1\n2\n3\n'),
]


@pytest.mark.parametrize('spec,text,out', ECHO_CAT,
                         ids=[f'{s}:{t!r}' for s, t, _ in ECHO_CAT])
def test_echo_cat(shmfs, spec, text, out):
    v = shmfs.p('v')
    util.new_object(shmfs, 'v', spec)
    r = util.echo(v, text)
    assert r.returncode == 0, r.stderr
    assert util.cat(v) == out
    raw = util.read_bytes(shmfs.r('v'))
    if elem_of(spec) == 'char':
        s = out[:-1].encode()
        assert raw[:len(s)] == s
        assert len(s) == len(raw) or raw[len(s)] == 0
    elif 'nan' in out:
        got = np.frombuffer(raw, dtype=NUMPY[elem_of(spec)])
        want = np.frombuffer(expected_raw(spec, out), dtype=got.dtype)
        assert np.array_equal(got, want, equal_nan=True)
    else:
        assert raw == expected_raw(spec, out)


def test_echo_twice_char_shorter(shmfs):
    s = util.new_object(shmfs, 's', 'char[8]')
    assert util.echo(s, 'hello').returncode == 0
    assert util.echo(s, 'hi').returncode == 0
    assert util.cat(s) == 'hi\n'
    assert util.read_bytes(shmfs.r('s'))[:3] == b'hi\0'


# text of the first write, inferred type, cat output (a float: compare value)
INFER = [
    ('42', 'i64', '42\n'),
    ('-7', 'i64', '-7\n'),
    ('0x10', 'i64', '16\n'),
    ('3.5', 'f64', '3.5\n'),
    ('1e3', 'f64', 1000.0),
    ('inf', 'f64', 'inf\n'),
    ('-inf', 'f64', '-inf\n'),
    ('nan', 'f64', 'nan\n'),
    ('true', 'bool', '1\n'),
    ('false', 'bool', '0\n'),
    ('1 2 3', 'i64[3]', '1 2 3\n'),
    ('[1, 2, 3]', 'i64[3]', '1 2 3\n'),
    ('1,2', 'i64[2]', '1 2\n'),
    ('0 1', 'i64[2]', '0 1\n'),
    ('[1, 2.5, 3]', 'f64[3]', '1 2.5 3\n'),
    ('0.5 nan -inf', 'f64[3]', '0.5 nan -inf\n'),
]


@pytest.mark.parametrize('text,spec,out', INFER,
                         ids=[repr(t) for t, _, _ in INFER])
def test_inference(shmfs, text, spec, out):
    v = shmfs.p('new')
    r = util.echo(v, text)        # creates the file: O_CREAT, then one write
    assert r.returncode == 0, r.stderr
    assert util.xattr(v, util.TYPE) == spec
    got = util.cat(v)
    if isinstance(out, float):
        assert got.endswith('\n') and float(got) == out, got
    else:
        assert got == out
    nbytes = int(util.xattr(v, 'user.shmfs.nbytes'))
    assert os.stat(shmfs.r('new')).st_size == nbytes
    assert len(util.read_bytes(shmfs.r('new'))) == nbytes


def test_untyped_object(shmfs):
    util.sh_ok('touch u', cwd=shmfs.path)
    assert util.cat(shmfs.p('u')) == ''
    assert os.stat(shmfs.p('u')).st_size == 0
    assert os.stat(shmfs.r('u')).st_size == 0
    assert util.read_bytes(shmfs.r('u')) == b''


def numpy_str(code):
    return np.dtype(code).str


# spec given, canonical type, numpy dtype, shape, cat output of the zeros
SPECS = [
    ('f64[3]', 'f64[3]', 'f8', (3,), '0 0 0\n'),
    ('d', 'f64', 'f8', (), '0\n'),
    ('i32[3,4]', 'i32[3][4]', 'i4', (3, 4), '0 0 0 0\n' * 3),
    ('i32[3][4]', 'i32[3][4]', 'i4', (3, 4), '0 0 0 0\n' * 3),
    ('i[5]', 'i32[5]', 'i4', (5,), '0 0 0 0 0\n'),
    ('b', 'i8', 'i1', (), '0\n'),
    ('B', 'u8', 'u1', (), '0\n'),
    ('h', 'i16', 'i2', (), '0\n'),
    ('H', 'u16', 'u2', (), '0\n'),
    ('i', 'i32', 'i4', (), '0\n'),
    ('I', 'u32', 'u4', (), '0\n'),
    ('l', LONG, NUMPY[LONG], (), '0\n'),
    ('L', ULONG, NUMPY[ULONG], (), '0\n'),
    ('q', 'i64', 'i8', (), '0\n'),
    ('Q', 'u64', 'u8', (), '0\n'),
    ('f', 'f32', 'f4', (), '0\n'),
    ('?', 'bool', '?', (), '0\n'),
    ('c', 'char[1]', 'S1', (), '\n'),
    ('c[16]', 'char[16]', 'S16', (), '\n'),
    ('char[16]', 'char[16]', 'S16', (), '\n'),
    ('u8[2][3][4]', 'u8[2][3][4]', 'u1', (2, 3, 4), '0 0 0 0\n' * 6),
    ('bool[2][2]', 'bool[2][2]', '?', (2, 2), '0 0\n0 0\n'),
    ('f32[1]', 'f32[1]', 'f4', (1,), '0\n'),
    ('q[2]', 'i64[2]', 'i8', (2,), '0 0\n'),
    ('?[3]', 'bool[3]', '?', (3,), '0 0 0\n'),
]


@pytest.mark.parametrize('spec,canonical,dtype,shape,zeros', SPECS,
                         ids=[s[0] for s in SPECS])
def test_setfattr_type(shmfs, spec, canonical, dtype, shape, zeros):
    util.sh_ok('touch v', cwd=shmfs.path)
    r = util.sh_args('cd "$2" && setfattr -n user.shmfs.type -v "$1" v',
                     spec, shmfs.path)
    assert r.returncode == 0, r.stderr
    nbytes = np.dtype(dtype).itemsize * int(np.prod(shape, dtype=np.int64))
    want = {
        'user.shmfs.type': canonical,
        'user.shmfs.dtype': numpy_str(dtype),
        'user.shmfs.shape': str(tuple(shape)),
        'user.shmfs.nbytes': str(nbytes),
    }
    for view in (shmfs.p('v'), shmfs.r('v')):
        for name, value in want.items():
            r = util.sh_args('getfattr --only-values -n "$1" "$2"', name, view)
            assert r.returncode == 0, r.stderr
            assert r.stdout == value, (view, name)
        assert util.xattr(view, 'user.shmfs.version').isdigit()
    assert util.cat(shmfs.p('v')) == zeros
    assert os.stat(shmfs.r('v')).st_size == nbytes
    assert util.read_bytes(shmfs.r('v')) == bytes(nbytes)


def test_getfattr_dump_lists_xattrs(shmfs):
    util.new_object(shmfs, 'v', 'f64[3]')
    out = util.sh_ok('getfattr -d -m - v', cwd=shmfs.path)
    for name in util.XATTRS:
        assert f'\n{name}=' in out, out


def test_version_increases(shmfs):
    v = util.new_object(shmfs, 'v', 'i64')
    seen = [int(util.xattr(v, 'user.shmfs.version'))]
    for value in ('1', '2', '-3'):
        assert util.echo(v, value).returncode == 0
        seen.append(int(util.xattr(v, 'user.shmfs.version')))
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen
    assert util.xattr(shmfs.r('v'), 'user.shmfs.version') == str(seen[-1])


@pytest.mark.parametrize('name', util.XATTRS[1:])
@pytest.mark.parametrize('view', ['main', 'raw'])
def test_readonly_xattrs(shmfs, name, view):
    util.new_object(shmfs, 'v', 'f64[3]', '1 2 3\n')
    path = shmfs.p('v') if view == 'main' else shmfs.r('v')
    before = util.xattr(path, name)
    r = util.sh_args('setfattr -n "$1" -v 7 "$2"', name, path)
    assert r.returncode != 0
    assert 'Operation not permitted' in r.stderr, r.stderr
    assert util.errno_of(os.setxattr, path, name, b'7') == errno.EPERM
    assert util.xattr(path, name) == before


def test_setfattr_retype_fails(shmfs):
    util.new_object(shmfs, 'v', 'f64[3]', '1 2 3\n')
    r = util.sh('setfattr -n user.shmfs.type -v i8 v', cwd=shmfs.path)
    assert r.returncode != 0 and 'Operation not permitted' in r.stderr
    assert util.xattr(shmfs.p('v'), util.TYPE) == 'f64[3]'
    assert util.cat(shmfs.p('v')) == '1 2 3\n'


def passthrough_possible():
    """DESIGN.md section 6: passthrough needs CAP_SYS_ADMIN, Linux >= 6.9."""
    release = tuple(int(x) for x in
                    re.match(r'(\d+)\.(\d+)', os.uname().release).groups())
    return os.geteuid() == 0 and release >= (6, 9)


@pytest.mark.parametrize('shmfs,want', [
    ((), None),
    (('-o', 'mode=auto'), None),
    (('-o', 'mode=cached'), 'cached'),
    (('-o', 'mode=passthrough'), 'passthrough'),
], ids=['default', 'auto', 'cached', 'passthrough'], indirect=['shmfs'])
def test_root_mode_xattr(shmfs, want):
    if want is None:
        want = 'passthrough' if passthrough_possible() else 'cached'
    r = util.sh_args('getfattr --only-values -n user.shmfs.mode "$1"',
                     shmfs.path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == want
    assert re.search(r'\bmode\W+' + want, shmfs.log()), 'mode not logged'


# -- the namespace ------------------------------------------------------------

def build_tree(mnt):
    util.sh_ok('mkdir -p d/e f && echo 1 > a && echo 1.5 2.5 > d/b && '
               'touch d/e/c && '
               'setfattr -n user.shmfs.type -v char[8] d/e/c && '
               'echo hi > d/e/c', cwd=mnt)
    return {'a': '1\n', 'd/b': '1.5 2.5\n', 'd/e/c': 'hi\n'}


def test_ls_hides_raw(shmfs):
    build_tree(shmfs.path)
    assert sorted(os.listdir(shmfs.path)) == ['a', 'd', 'f']
    assert util.sh_ok('ls -a', cwd=shmfs.path).split() == \
        ['.', '..', 'a', 'd', 'f']
    st = os.stat(shmfs.raw)
    assert stat.S_ISDIR(st.st_mode)
    assert util.sh_ok('ls -a .raw', cwd=shmfs.path).split() == \
        ['.', '..', 'a', 'd', 'f']
    assert util.sh_ok('ls .raw/d .raw/d/e', cwd=shmfs.path) == \
        '.raw/d:\nb\ne\n\n.raw/d/e:\nc\n'
    assert not os.path.exists(shmfs.p('d/.raw'))


def test_find_cp_tar_see_each_object_once(shmfs, tmp_path):
    tree = build_tree(shmfs.path)
    found = sorted(util.sh_ok('find .', cwd=shmfs.path).split())
    assert found == ['.', './a', './d', './d/b', './d/e', './d/e/c', './f']
    listed = sorted(
        util.sh_ok('tar cf - . | tar tf -', cwd=shmfs.path).split())
    assert listed == ['./', './a', './d/', './d/b', './d/e/', './d/e/c',
                      './f/']
    out = tmp_path / 'copy'
    util.sh_ok(f'cp -r "{shmfs.path}" "{out}"')
    copied = sorted(util.sh_ok('find .', cwd=out).split())
    assert copied == found
    for name, text in tree.items():
        assert (out / name).read_text() == text
    assert util.sh_ok('du -a . | wc -l', cwd=shmfs.path).strip() == '7'


def test_raw_mirrors_directories(shmfs):
    util.sh_ok('mkdir -p a/b/c && echo 5 > a/b/c/v', cwd=shmfs.path)
    assert stat.S_ISDIR(os.stat(shmfs.r('a/b/c')).st_mode)
    assert os.listdir(shmfs.r('a/b/c')) == ['v']
    assert util.read_bytes(shmfs.r('a/b/c/v')) == struct.pack('=q', 5)
    assert stat.S_ISREG(os.stat(shmfs.r('a/b/c/v')).st_mode)


def test_mv_rm_rmdir_visible_under_raw(shmfs):
    m = shmfs.path
    util.sh_ok('echo 1 > a && echo 2 > c && mkdir d', cwd=m)
    # let the kernel cache the twins' dentries first
    assert util.read_bytes(shmfs.r('a')) == struct.pack('=q', 1)
    assert util.read_bytes(shmfs.r('c')) == struct.pack('=q', 2)
    assert not os.path.exists(shmfs.r('d/b'))

    util.sh_ok('mv a d/b', cwd=m)
    assert not os.path.exists(shmfs.r('a'))
    assert util.read_bytes(shmfs.r('d/b')) == struct.pack('=q', 1)

    util.sh_ok('mv d/b c', cwd=m)          # replaces c
    assert util.read_bytes(shmfs.r('c')) == struct.pack('=q', 1)
    assert util.cat(shmfs.p('c')) == '1\n'
    assert not os.path.exists(shmfs.r('d/b'))

    r = util.sh('echo 3 > d/x && rmdir d', cwd=m)
    assert r.returncode != 0 and 'Directory not empty' in r.stderr
    util.sh_ok('mv d d2', cwd=m)
    assert not os.path.exists(shmfs.r('d'))
    assert util.read_bytes(shmfs.r('d2/x')) == struct.pack('=q', 3)

    util.sh_ok('rm c d2/x && rmdir d2', cwd=m)
    for gone in ('c', 'd2/x', 'd2'):
        assert util.errno_of(os.stat, shmfs.r(gone)) == errno.ENOENT, gone
    assert os.listdir(shmfs.raw) == []
    assert os.listdir(m) == []


def test_new_names_visible_under_raw_at_once(shmfs):
    # the failed lookups leave negative dentries behind in the kernel
    for name in ('n', 'd', 'd2'):
        assert util.errno_of(os.stat, shmfs.r(name)) == errno.ENOENT
    util.sh_ok('echo 1 > n && mkdir d && echo 2 > d/m && mkdir d2',
               cwd=shmfs.path)
    assert util.read_bytes(shmfs.r('n')) == struct.pack('=q', 1)
    assert stat.S_ISDIR(os.stat(shmfs.r('d')).st_mode)
    assert util.read_bytes(shmfs.r('d/m')) == struct.pack('=q', 2)
    assert os.listdir(shmfs.r('d2')) == []


@pytest.mark.parametrize('view', ['main', 'raw'])
def test_chmod_chown_touch_shared(shmfs, view):
    util.sh_ok('echo 1 > x', cwd=shmfs.path)
    target = 'x' if view == 'main' else '.raw/x'
    util.sh_ok(f'chmod 640 {target} && chown 1234:5678 {target} && '
               f'touch -m -d "2001-02-03 04:05:06 UTC" {target}',
               cwd=shmfs.path)
    for path in (shmfs.p('x'), shmfs.r('x')):
        st = os.stat(path)
        assert stat.S_IMODE(st.st_mode) == 0o640, path
        assert (st.st_uid, st.st_gid) == (1234, 5678), path
        assert st.st_mtime == 981173106, path
    assert util.sh_ok('stat -c %a:%u:%g x .raw/x', cwd=shmfs.path) == \
        '640:1234:5678\n640:1234:5678\n'


@pytest.mark.shmfs_args('-o', 'allow_other')
def test_permissions_enforced(shmfs):
    m = shmfs.path
    util.sh_ok('echo 1 > private && echo 2 > public && chmod 600 private && '
               'chmod 644 public && chmod 755 .', cwd=m)
    nobody = 65534

    def as_nobody(script, *args):
        return util.sh_args(script, *args, user=nobody)
    for path in (shmfs.p('private'), shmfs.r('private')):
        r = as_nobody('cat "$1"', path)
        assert r.returncode != 0 and 'Permission denied' in r.stderr, path
    r = as_nobody('cat "$1"', shmfs.p('public'))
    assert r.returncode == 0 and r.stdout == '2\n', r.stderr
    r = as_nobody('od -An -tx1 "$1"', shmfs.r('public'))
    assert r.returncode == 0, r.stderr
    for path in (shmfs.p('public'), shmfs.r('public')):
        r = as_nobody('echo 5 > "$1"', path)
        assert r.returncode != 0 and 'Permission denied' in r.stderr, path
        # an atomic change needs write access too
        r = as_nobody('"$1" add "$2" 1', util.SHMFS_BIN, path)
        assert r.returncode != 0 and 'Permission denied' in r.stderr, path
    assert util.cat(shmfs.p('public')) == '2\n'
    assert shmfs.alive()


EPERM_UNDER_RAW = [
    'touch .raw/new',
    'echo 1 > .raw/new',
    'mkdir .raw/dir',
    'rm .raw/x',
    'rmdir .raw/d',
    'mv .raw/x .raw/y',
    'mv .raw/x .raw/d/x',
    'mv x .raw/y',
    'mv .raw/x y',
    'ln -s x .raw/s',
    'ln .raw/x .raw/h',
    'ln x .raw/h',
    'mkdir .raw/d/sub',
    'touch .raw/d/new',
]


@pytest.mark.parametrize('cmd', EPERM_UNDER_RAW)
def test_namespace_change_under_raw_fails(shmfs, cmd):
    util.sh_ok('echo 1 > x && mkdir d', cwd=shmfs.path)
    before = util.sh_ok('ls -R . .raw', cwd=shmfs.path)
    r = util.sh(cmd, cwd=shmfs.path)
    assert r.returncode != 0
    assert 'Operation not permitted' in r.stderr, r.stderr
    assert util.sh_ok('ls -R . .raw', cwd=shmfs.path) == before
    assert util.cat(shmfs.p('x')) == '1\n'


def test_data_write_through_raw_from_shell(shmfs):
    util.sh_ok('echo 1 > x', cwd=shmfs.path)
    util.sh_ok(r"printf '\007\000\000\000\000\000\000\000' > .raw/x",
               cwd=shmfs.path)
    assert util.cat(shmfs.p('x')) == '7\n'


RAW_AT_ROOT = [
    ('mkdir', lambda m: os.mkdir(m.p('.raw'))),
    ('open-excl', lambda m: os.close(os.open(
        m.p('.raw'), os.O_CREAT | os.O_EXCL | os.O_WRONLY))),
    ('symlink', lambda m: os.symlink('x', m.p('.raw'))),
    ('link', lambda m: os.link(m.p('x'), m.p('.raw'))),
    ('rename-noreplace', lambda m: util.renameat2(
        m.p('x'), m.p('.raw'), util.RENAME_NOREPLACE)),
    ('mknod', lambda m: os.mknod(m.p('.raw'), 0o644 | stat.S_IFREG)),
]


@pytest.mark.parametrize('make', [f for _, f in RAW_AT_ROOT],
                         ids=[i for i, _ in RAW_AT_ROOT])
def test_create_raw_at_root_eexist(shmfs, make):
    util.sh_ok('echo 1 > x', cwd=shmfs.path)
    assert util.errno_of(make, shmfs) == errno.EEXIST
    assert util.read_bytes(shmfs.r('x')) == struct.pack('=q', 1)
    assert sorted(os.listdir(shmfs.path)) == ['x']


def test_rename_dir_onto_raw_fails(shmfs):
    util.sh_ok('echo 1 > x && mkdir d', cwd=shmfs.path)
    # which errno is not fixed by the contract; it must fail and change nothing
    e = util.errno_of(os.rename, shmfs.p('d'), shmfs.p('.raw'))
    assert e in (errno.EEXIST, errno.EPERM, errno.ENOTEMPTY, errno.EBUSY), \
        util.ename(e)
    assert os.path.isdir(shmfs.p('d'))
    assert util.read_bytes(shmfs.r('x')) == struct.pack('=q', 1)


def test_raw_name_is_plain_below_root(shmfs):
    util.sh_ok('mkdir d && echo 5 > d/.raw', cwd=shmfs.path)
    assert util.cat(shmfs.p('d/.raw')) == '5\n'
    assert util.read_bytes(shmfs.r('d/.raw')) == struct.pack('=q', 5)
    assert util.sh_ok('ls -A d', cwd=shmfs.path) == '.raw\n'


# -- renameat2 ----------------------------------------------------------------

def test_rename_noreplace(shmfs):
    util.sh_ok('echo 1 > a && echo 2.5 > b', cwd=shmfs.path)
    e = util.errno_of(util.renameat2, shmfs.p('a'), shmfs.p('b'),
                      util.RENAME_NOREPLACE)
    assert e == errno.EEXIST
    assert (util.cat(shmfs.p('a')), util.cat(shmfs.p('b'))) == ('1\n', '2.5\n')
    util.renameat2(shmfs.p('a'), shmfs.p('c'), util.RENAME_NOREPLACE)
    assert util.cat(shmfs.p('c')) == '1\n'
    assert util.read_bytes(shmfs.r('c')) == struct.pack('=q', 1)
    assert not os.path.exists(shmfs.p('a'))
    assert not os.path.exists(shmfs.r('a'))


def test_rename_exchange(shmfs):
    util.sh_ok('echo 1 > a && echo 2.5 > b && mkdir d && echo 7 > d/x',
               cwd=shmfs.path)
    # cache both twins before the exchange
    assert util.read_bytes(shmfs.r('a')) == struct.pack('=q', 1)
    assert util.read_bytes(shmfs.r('b')) == struct.pack('=d', 2.5)
    util.renameat2(shmfs.p('a'), shmfs.p('b'), util.RENAME_EXCHANGE)
    assert (util.cat(shmfs.p('a')), util.cat(shmfs.p('b'))) == ('2.5\n', '1\n')
    assert util.xattr(shmfs.p('a'), util.TYPE) == 'f64'
    assert util.xattr(shmfs.p('b'), util.TYPE) == 'i64'
    assert util.read_bytes(shmfs.r('a')) == struct.pack('=d', 2.5)
    assert util.read_bytes(shmfs.r('b')) == struct.pack('=q', 1)
    # across directories, an object with a directory
    util.renameat2(shmfs.p('a'), shmfs.p('d/x'), util.RENAME_EXCHANGE)
    assert util.cat(shmfs.p('a')) == '7\n'
    assert util.cat(shmfs.p('d/x')) == '2.5\n'
    assert util.read_bytes(shmfs.r('d/x')) == struct.pack('=d', 2.5)
    e = util.errno_of(util.renameat2, shmfs.p('a'), shmfs.p('nope'),
                      util.RENAME_EXCHANGE)
    assert e == errno.ENOENT
    assert util.cat(shmfs.p('a')) == '7\n'


# -- st_size of the text view -------------------------------------------------

@pytest.mark.parametrize('how', ['text', 'pwrite', 'mmap'])
@util.both_modes
def test_text_size_follows_value(shmfs, how):
    x = util.new_object(shmfs, 'x', 'i64', '1\n')
    assert os.stat(x).st_size == 2
    new = 1234567890123
    if how == 'text':
        util.write_text(x, f'{new}\n')
    elif how == 'pwrite':
        with util.opened(shmfs.r('x')) as fd:
            os.pwrite(fd, struct.pack('=q', new), 0)
    else:
        with util.mapped(shmfs.r('x')) as m:
            struct.pack_into('=q', m, 0, new)
            assert os.stat(x).st_size == len(f'{new}\n')
    assert os.stat(x).st_size == len(f'{new}\n')
    assert util.sh_ok('wc -c < x', cwd=shmfs.path).strip() == \
        str(len(f'{new}\n'))
    assert util.sh_ok('ls -l x', cwd=shmfs.path).split()[4] == \
        str(len(f'{new}\n'))
    assert os.stat(shmfs.r('x')).st_size == 8
