"""Bad input is an errno, never damage (DESIGN.md sections 4, 5 and 9).

A table of malformed and out-of-range text writes across all types: each
fails with its exact errno from the write(2) itself, leaves the value (text
and .raw bytes) as it was, leaves a neighbouring object intact, keeps the
daemon alive and is logged as one "shmfs: rejected" line.  Then the binary
view's limits (EFBIG past the end, EINVAL for truncates to other sizes),
type specs (EINVAL) and retyping (EPERM), namespace changes under .raw
(EPERM), mmap of the text view, text split over many writes (committed whole
by the last element; incomplete text fails at close; stray offsets fail) and
O_TRUNC without a write."""

import errno
import mmap
import os
import stat
import subprocess

import pytest

import util

EINVAL, ERANGE = errno.EINVAL, errno.ERANGE

# type spec, valid initial text, bad text (written in one write(2)), errno
BAD_TEXT = [
    ('i8', '5', '128', ERANGE),
    ('i8', '5', '-129', ERANGE),
    ('i8', '5', '0x80', ERANGE),
    ('u8', '5', '256', ERANGE),
    ('u8', '5', '-1', ERANGE),
    ('i16', '5', '32768', ERANGE),
    ('i16', '5', '-32769', ERANGE),
    ('u16', '5', '65536', ERANGE),
    ('u16', '5', '0x10000', ERANGE),
    ('i32', '5', '2147483648', ERANGE),
    ('i32', '5', '-2147483649', ERANGE),
    ('u32', '5', '4294967296', ERANGE),
    ('u32', '5', '0x100000000', ERANGE),
    ('i64', '5', '9223372036854775808', ERANGE),
    ('i64', '5', '-9223372036854775809', ERANGE),
    ('i64', '5', '0x8000000000000000', ERANGE),
    ('i64', '5', '99999999999999999999999999', ERANGE),
    ('u64', '5', '18446744073709551616', ERANGE),
    ('u64', '5', '0x10000000000000000', ERANGE),
    ('u64', '5', '-1', ERANGE),
    ('f32', '1.5', '1e39', ERANGE),
    ('f32', '1.5', '-3.5e38', ERANGE),
    ('f64', '1.5', '1e400', ERANGE),
    ('f64', '1.5', '-1e309', ERANGE),
    ('i32', '5', 'abc', EINVAL),
    ('i32', '5', '\n', EINVAL),
    ('i32', '5', '   \n', EINVAL),
    ('i32', '5', '12abc', EINVAL),
    ('i32', '5', '1.5', EINVAL),
    ('i32', '5', '1e3', EINVAL),
    ('i32', '5', '\0', EINVAL),
    ('i32', '5', '\xff\xfe', EINVAL),
    ('i64', '5', '0x', EINVAL),
    ('i64', '5', '0xg1', EINVAL),
    ('i64', '5', '1 2', EINVAL),
    ('i64', '5', '--1', EINVAL),
    ('i64', '5', '+', EINVAL),
    ('i64', '5', '1_000', EINVAL),
    ('i16', '5', '1,000', EINVAL),
    ('u8', '5', 'true', EINVAL),
    ('f64', '1.5', 'abc', EINVAL),
    ('f64', '1.5', '1.2.3', EINVAL),
    ('f64', '1.5', '1,5', EINVAL),
    ('f64', '1.5', '1e', EINVAL),
    ('f64', '1.5', '1e3x', EINVAL),
    ('f64', '1.5', '--1', EINVAL),
    ('f64', '1.5', 'nan nan', EINVAL),
    ('f64', '1.5', 'infinity x', EINVAL),
    ('f32', '1.5', 'x1', EINVAL),
    ('bool', 'true', 'maybe', EINVAL),
    ('bool', 'true', 'tru', EINVAL),
    ('bool', 'true', 'yesno', EINVAL),
    ('bool', 'true', 'true false', EINVAL),
    ('bool', 'true', '\n', EINVAL),
    ('char[4]', 'ab', 'hello', EINVAL),
    ('char[4]', 'ab', 'abcde\n', EINVAL),
    ('char[4]', 'ab', 'abcd\n\n', EINVAL),
    ('char[4]', 'ab', 'ab\0cd', EINVAL),
    ('char[1]', 'a', 'ab', EINVAL),
    ('char[8]', 'ab', '123456789', EINVAL),
    ('i32[4]', '1 2 3 4', '1 2 3 4 5', EINVAL),
    ('i32[4]', '1 2 3 4', '1 2 x 4', EINVAL),
    ('i32[4]', '1 2 3 4', '1 2 3 2147483648', ERANGE),
    ('i32[4]', '1 2 3 4', '[1, 2, 3, 4', EINVAL),
    ('i32[4]', '1 2 3 4', '1 2 3 4]', EINVAL),
    ('i32[4]', '1 2 3 4', '[1, 2, 3, 4]]', EINVAL),
    ('i32[4]', '1 2 3 4', '1 2 3 4.5', EINVAL),
    ('u8[3]', '1 2 3', '1 2 256', ERANGE),
    ('u8[3]', '1 2 3', '1 2 -1', ERANGE),
    ('f64[3]', '1 2 3', '1 2 nan x', EINVAL),
    ('f64[3]', '1 2 3', '1 2 1e999', ERANGE),
    ('f32[2]', '1 2', '1 3.5e38', ERANGE),
    ('bool[3]', '1 0 1', '1 0 maybe', EINVAL),
    ('i16[2][3]', '1 2 3 4 5 6', '1 2 3\n4 5 6\n7', EINVAL),
    ('i16[2][3]', '1 2 3 4 5 6', '1 2 3\n4 5 40000', ERANGE),
    ('i64[2]', '1 2', '[[1, 2]', EINVAL),
]

# An array text with too few elements may be the start of a longer text that
# comes in further writes; the contract lets it fail at the write or, as text
# left incomplete, at close.  Either way: EINVAL and nothing changes.
SHORT_TEXT = [
    ('i32[4]', '1 2 3 4', '1 2 3'),
    ('i32[4]', '1 2 3 4', '1 2 x'),
    ('i64[3]', '1 2 3', '1\t2\t'),
    ('i16[2][3]', '1 2 3 4 5 6', '1 2 3\n4 5'),
    ('f64[3]', '1 2 3', '[1.5, 2.5]'),
]

NEIGHBOUR = bytes(range(7, 7 + 64))


@pytest.fixture
def obj(shmfs):
    """Makes MNT/v (spec, initial text) next to MNT/nb (u8[64], a pattern)."""
    nb = util.new_object(shmfs, 'nb', 'u8[64]')
    with util.opened(shmfs.r('nb'), os.O_WRONLY) as fd:
        os.pwrite(fd, NEIGHBOUR, 0)

    def make(spec, text):
        v = util.new_object(shmfs, 'v', spec, text + '\n')
        return v, util.read_bytes(v), util.read_bytes(shmfs.r('v'))
    yield make
    assert shmfs.alive(), 'the daemon died'
    assert util.read_bytes(shmfs.r('nb')) == NEIGHBOUR
    assert util.read_text(nb) == ' '.join(map(str, NEIGHBOUR)) + '\n'


def assert_logged(shmfs, before):
    """DESIGN.md section 9: each rejected input is one log line saying why."""
    assert shmfs.wait_rejected(before), 'no "shmfs: rejected" log line'


def assert_unchanged(shmfs, v, text, raw):
    assert util.read_bytes(v) == text, 'text view changed'
    assert util.read_bytes(shmfs.r('v')) == raw, '.raw bytes changed'


@pytest.mark.parametrize('spec,init,bad,err', BAD_TEXT,
                         ids=[f'{s}:{b!r}' for s, _, b, _ in BAD_TEXT])
def test_bad_text(shmfs, obj, spec, init, bad, err):
    v, text, raw = obj(spec, init)
    logged = shmfs.rejected_count()
    werr, cerr = util.try_write_text(v, bad.encode('latin-1'))
    assert util.ename(werr) == util.ename(err), 'errno of the write'
    assert cerr in (0, EINVAL), \
        f'close after a failed write: {util.ename(cerr)}'
    assert_unchanged(shmfs, v, text, raw)
    assert_logged(shmfs, logged)


@pytest.mark.parametrize('spec,init,bad', SHORT_TEXT,
                         ids=[f'{s}:{b!r}' for s, _, b in SHORT_TEXT])
def test_short_array_text(shmfs, obj, spec, init, bad):
    v, text, raw = obj(spec, init)
    logged = shmfs.rejected_count()
    werr, cerr = util.try_write_text(v, bad + '\n')
    assert EINVAL in (werr, cerr), (util.ename(werr), util.ename(cerr))
    assert werr in (0, EINVAL) and cerr in (0, EINVAL)
    assert_unchanged(shmfs, v, text, raw)
    assert_logged(shmfs, logged)


@pytest.mark.parametrize('shell', ['sh', 'bash'])
def test_echo_reports_the_error(shmfs, obj, shell):
    v, text, raw = obj('u8', '5')
    for value, message in (('300', 'Numerical result out of range'),
                           ('x', 'Invalid argument')):
        r = subprocess.run([shell, '-c', 'echo "$1" > "$2"', shell, value, v],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE,
                           text=True, timeout=60)
        assert r.returncode != 0, value
        if shell == 'bash':     # dash says "I/O error" whatever the errno
            assert message in r.stderr, r.stderr
    assert_unchanged(shmfs, v, text, raw)


def test_append_to_text_view(shmfs, obj):
    v, text, raw = obj('i64', '5')
    # O_APPEND writes at st_size: neither 0 nor a continuation
    with util.opened(v, os.O_WRONLY | os.O_APPEND) as fd:
        assert util.ename(util.errno_of(os.write, fd, b'6\n')) == 'EINVAL'
    r = subprocess.run(['bash', '-c', 'echo 6 >> "$1"', 'bash', v],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE,
                       text=True, timeout=60)
    assert r.returncode != 0 and 'Invalid argument' in r.stderr, r.stderr
    assert_unchanged(shmfs, v, text, raw)


# untyped object, first text, errno: inference fails and it stays untyped
BAD_FIRST_TEXT = [
    ('abc', EINVAL),
    ('\n', EINVAL),
    ('1 x', EINVAL),
    ('[1, 2', EINVAL),
    ('true false', EINVAL),
    ('hello world', EINVAL),
    ('1 true', EINVAL),
    ('0x', EINVAL),
]


@pytest.mark.parametrize('bad,err', BAD_FIRST_TEXT,
                         ids=[repr(b) for b, _ in BAD_FIRST_TEXT])
def test_bad_first_text(shmfs, bad, err):
    u = shmfs.p('u')
    os.close(os.open(u, os.O_WRONLY | os.O_CREAT, 0o644))
    logged = shmfs.rejected_count()
    werr, cerr = util.try_write_text(u, bad)
    assert util.ename(werr) == util.ename(err)
    assert cerr in (0, EINVAL)
    assert_logged(shmfs, logged)
    assert util.read_bytes(u) == b''
    assert os.stat(shmfs.r('u')).st_size == 0
    util.write_text(u, '7\n')                     # still untyped: infers
    assert util.xattr(u, util.TYPE) == 'i64'
    assert util.read_text(u) == '7\n'


# -- type specs ---------------------------------------------------------------

BAD_SPECS = ['f65', 'i32[0]', 'i32[', 'i32[3', 'i32[-1]', 'i32[3]]', 'char',
             'char[0]', 'float', 'ii', 'x', '[3]', 'i32[3][0]', 'i32[a]',
             'i32[1][2][3][4][5][6][7][8][9]', 'u8[1099511627777]',
             'f64[18446744073709551617]', 'i32[3,]', 'i32[,3]', '']


@pytest.mark.parametrize('spec', BAD_SPECS)
def test_bad_type_spec(shmfs, spec):
    u = shmfs.p('u')
    os.close(os.open(u, os.O_WRONLY | os.O_CREAT, 0o644))
    logged = shmfs.rejected_count()
    assert util.ename(util.errno_of(os.setxattr, u, util.TYPE,
                                    spec.encode())) == 'EINVAL'
    assert_logged(shmfs, logged)
    assert os.stat(shmfs.r('u')).st_size == 0
    util.set_type(u, 'i8[2]')                     # still untyped
    assert util.read_text(u) == '0 0\n'


@pytest.mark.parametrize('view', ['main', 'raw'])
@pytest.mark.parametrize('spec', ['i64', 'f64[3]', 'i8'])
def test_retype(shmfs, view, spec):
    v = util.new_object(shmfs, 'v', 'f64[3]', '1 2 3\n')
    path = v if view == 'main' else shmfs.r('v')
    logged = shmfs.rejected_count()
    assert util.ename(util.errno_of(util.set_type, path, spec)) == 'EPERM'
    assert_logged(shmfs, logged)
    assert util.xattr(v, util.TYPE) == 'f64[3]'
    assert util.read_text(v) == '1 2 3\n'


def test_retype_after_inference(shmfs):
    util.write_text(shmfs.p('v'), '5\n', create=True)
    assert util.ename(util.errno_of(util.set_type, shmfs.p('v'), 'i64')) \
        == 'EPERM'


@pytest.mark.parametrize('name', util.XATTRS[1:])
def test_set_readonly_xattr(shmfs, name):
    v = util.new_object(shmfs, 'v', 'i64', '5\n')
    logged = shmfs.rejected_count()
    assert util.ename(util.errno_of(os.setxattr, v, name, b'1')) == 'EPERM'
    assert_logged(shmfs, logged)
    assert util.read_text(v) == '5\n'


# -- the binary view's size ---------------------------------------------------

@util.both_modes
def test_write_past_end(shmfs):
    # EFBIG from the daemon in cached mode; in passthrough mode the kernel
    # answers from the memfd's F_SEAL_GROW: EPERM (DESIGN.md section 5)
    cached = shmfs.mode() == 'cached'
    past = 'EFBIG' if cached else 'EPERM'
    v = util.new_object(shmfs, 'v', 'u8[100]')
    with util.opened(shmfs.r('v'), os.O_RDWR) as fd:
        for off in (100, 101, 4096, 1 << 40):
            logged = shmfs.rejected_count()
            assert util.ename(util.errno_of(os.pwrite, fd, b'x', off)) \
                == past, off
            if cached:      # passthrough: the kernel answers, not the daemon
                assert_logged(shmfs, logged)
        assert os.fstat(fd).st_size == 100
        # straddling the end within one page
        if cached:      # a short write of the bytes that fit
            assert os.pwrite(fd, b'ABCDEFGHIJKLMNOP', 92) == 8
            want = bytes(92) + b'ABCDEFGH'
        else:           # the seal refuses the whole page's write
            assert util.ename(util.errno_of(
                os.pwrite, fd, b'ABCDEFGHIJKLMNOP', 92)) == 'EPERM'
            want = bytes(100)
        assert os.fstat(fd).st_size == 100
    assert util.read_bytes(shmfs.r('v')) == want
    with util.opened(shmfs.r('v'), os.O_WRONLY | os.O_APPEND) as fd:
        assert util.ename(util.errno_of(os.write, fd, b'y')) == past
    assert os.stat(shmfs.r('v')).st_size == 100
    assert util.read_bytes(shmfs.r('v')) == want
    assert util.xattr(v, 'user.shmfs.nbytes') == '100'


@pytest.mark.parametrize('size', [1, 99, 101, 200, 4096, 1 << 40])
@pytest.mark.parametrize('how', ['truncate', 'ftruncate'])
@util.both_modes
def test_truncate_raw_other_size(shmfs, size, how):
    util.new_object(shmfs, 'v', 'u8[100]')
    data = bytes(range(100))
    logged = shmfs.rejected_count()
    with util.opened(shmfs.r('v')) as fd:
        os.pwrite(fd, data, 0)
        if how == 'truncate':
            e = util.errno_of(os.truncate, shmfs.r('v'), size)
        else:
            e = util.errno_of(os.ftruncate, fd, size)
    assert util.ename(e) == 'EINVAL'
    assert_logged(shmfs, logged)
    assert os.stat(shmfs.r('v')).st_size == 100
    assert util.read_bytes(shmfs.r('v')) == data


@pytest.mark.parametrize('size', [0, 100])
@util.both_modes
def test_truncate_raw_zero_or_nbytes(shmfs, size):
    util.new_object(shmfs, 'v', 'u8[100]')
    data = bytes(range(100))
    with util.opened(shmfs.r('v')) as fd:
        os.pwrite(fd, data, 0)
    os.truncate(shmfs.r('v'), size)
    with util.opened(shmfs.r('v'), os.O_WRONLY | os.O_TRUNC):
        pass
    assert os.stat(shmfs.r('v')).st_size == 100
    assert util.read_bytes(shmfs.r('v')) == data


@util.both_modes
def test_o_trunc_without_write_keeps_value(shmfs):
    v = util.new_object(shmfs, 'v', 'f64[3]', '1.5 2.5 3.5\n')
    raw = util.read_bytes(shmfs.r('v'))
    for path in (v, shmfs.r('v')):
        os.close(os.open(path, os.O_WRONLY | os.O_TRUNC))
        assert util.read_text(v) == '1.5 2.5 3.5\n'
        assert util.read_bytes(shmfs.r('v')) == raw
    util.sh_ok(': > v', cwd=shmfs.path)
    assert util.read_text(v) == '1.5 2.5 3.5\n'


# -- namespace changes under .raw ---------------------------------------------

RAW_NAMESPACE = [
    ('create', lambda m: os.close(os.open(m.r('new'), os.O_CREAT | os.O_WRONLY,
                                          0o644))),
    ('create-in-subdir', lambda m: os.close(os.open(
        m.r('d/new'), os.O_CREAT | os.O_WRONLY, 0o644))),
    ('mknod', lambda m: os.mknod(m.r('new'), 0o644 | stat.S_IFREG)),
    ('mkdir', lambda m: os.mkdir(m.r('dir'))),
    ('unlink', lambda m: os.unlink(m.r('x'))),
    ('rmdir', lambda m: os.rmdir(m.r('e'))),
    ('rename', lambda m: os.rename(m.r('x'), m.r('y'))),
    ('rename-into-raw', lambda m: os.rename(m.p('x'), m.r('y'))),
    ('rename-out-of-raw', lambda m: os.rename(m.r('x'), m.p('y'))),
    ('rename-over', lambda m: os.rename(m.r('x'), m.r('z'))),
    ('rename-dir', lambda m: os.rename(m.r('d'), m.r('d2'))),
    ('rename-noreplace', lambda m: util.renameat2(
        m.r('x'), m.r('y'), util.RENAME_NOREPLACE)),
    ('rename-exchange', lambda m: util.renameat2(
        m.r('x'), m.r('z'), util.RENAME_EXCHANGE)),
    ('symlink', lambda m: os.symlink('x', m.r('s'))),
    ('link', lambda m: os.link(m.r('x'), m.r('h'))),
    ('link-into-raw', lambda m: os.link(m.p('x'), m.r('h'))),
]


LINK_OPS = [f for i, f in RAW_NAMESPACE if 'link' in i]


@pytest.mark.parametrize('op', [f for _, f in RAW_NAMESPACE],
                         ids=[i for i, _ in RAW_NAMESPACE])
def test_namespace_under_raw_eperm(shmfs, op):
    util.sh_ok('echo 1 > x && echo 2 > z && mkdir d e', cwd=shmfs.path)
    before = sorted(os.listdir(shmfs.path)), sorted(os.listdir(shmfs.raw))
    logged = shmfs.rejected_count()
    assert util.ename(util.errno_of(op, shmfs)) == 'EPERM'
    if op not in LINK_OPS:
        # links are refused in the main tree too: no bad input to log
        assert_logged(shmfs, logged)
    assert (sorted(os.listdir(shmfs.path)), sorted(os.listdir(shmfs.raw))) \
        == before
    assert os.listdir(shmfs.p('d')) == [] and os.listdir(shmfs.r('d')) == []
    assert util.read_text(shmfs.p('x')) == '1\n'
    assert util.read_text(shmfs.p('z')) == '2\n'


# -- the text view is not mappable --------------------------------------------

@pytest.mark.parametrize('flags', [os.O_RDWR, os.O_RDONLY])
@util.both_modes
def test_mmap_text_view_fails(shmfs, flags):
    v = util.new_object(shmfs, 'v', 'i64', '12345\n')
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if flags == os.O_RDWR else 0)
    with util.opened(v, flags) as fd:
        try:
            m = mmap.mmap(fd, 6, mmap.MAP_SHARED, prot)
        except OSError as e:
            assert util.ename(e.errno) == 'ENODEV'
        else:
            m.close()
            pytest.fail('MAP_SHARED mmap of the text view succeeded')
    assert util.read_text(v) == '12345\n'


# -- text in several writes ---------------------------------------------------

N_BIG = 300_000
OLD_BIG = ('7 ' * (N_BIG - 1) + '7\n').encode()


def big_text(sep_end):
    return (' '.join(str(i) for i in range(N_BIG)) + sep_end).encode()


def big_object(shmfs):
    v = util.new_object(shmfs, 'big', f'i32[{N_BIG}]', OLD_BIG)
    return v, util.read_bytes(shmfs.r('big'))


def chunks(data, size=65536 - 3):
    # an odd size, so that chunk boundaries fall inside numbers
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize('ending', ['\n', ''], ids=['newline', 'no-newline'])
def test_split_text_commits_whole(shmfs, ending):
    v, old_raw = big_object(shmfs)
    new = big_text(ending)
    pieces = chunks(new)
    assert len(pieces) > 20
    fd = os.open(v, os.O_WRONLY | os.O_TRUNC)
    try:
        with util.opened(shmfs.r('big'), os.O_RDONLY) as rfd:
            for i, piece in enumerate(pieces):
                assert os.write(fd, piece) == len(piece), f'write {i}'
                if i == len(pieces) - 1:
                    break
                assert util.pread_all(rfd, len(old_raw)) == old_raw, \
                    f'.raw changed after write {i} of {len(pieces)}'
                if i % 5 == 0:
                    assert util.read_bytes(v) == OLD_BIG, \
                        f'text changed after write {i} of {len(pieces)}'
            if ending:
                # the last element was followed by a separator: committed
                # by the write that brought it
                assert util.read_bytes(v) == new
            else:
                # "299999" might go on in a further write: committed at close
                assert util.pread_all(rfd, len(old_raw)) == old_raw
    finally:
        e = util.errno_of(os.close, fd)
    assert util.ename(e) == 'success', 'close'
    assert util.read_bytes(v) == (new if ending else new + b'\n')


def test_split_text_incomplete_fails_at_close(shmfs):
    v, old_raw = big_object(shmfs)
    new = big_text('\n')
    cut = len(new) * 2 // 3
    logged = shmfs.rejected_count()
    fd = os.open(v, os.O_WRONLY | os.O_TRUNC)
    try:
        for piece in chunks(new[:cut]):
            assert os.write(fd, piece) == len(piece)
    finally:
        e = util.errno_of(os.close, fd)
    assert util.ename(e) == 'EINVAL'
    assert util.read_bytes(v) == OLD_BIG
    assert util.read_bytes(shmfs.r('big')) == old_raw
    assert_logged(shmfs, logged)


def test_write_at_zero_restarts_text(shmfs):
    v = util.new_object(shmfs, 'v', 'i64[4]', '1 2 3 4\n')
    with util.opened(v, os.O_WRONLY) as fd:
        assert os.pwrite(fd, b'9 9', 0) == 3
        assert os.pwrite(fd, b'5 6 7 8\n', 0) == 8
        assert util.read_text(v) == '5 6 7 8\n'
    assert util.read_text(v) == '5 6 7 8\n'


@pytest.mark.parametrize('offsets', [
    [(10, b'5\n')],                       # fresh open, offset not 0
    [(0, b'1 2 '), (5, b'3 4\n')],        # a gap
    [(0, b'1 2 '), (2, b'3 4\n')],        # going back, not to 0
    [(0, b'1 2 '), (4, b'3 '), (4, b'3 4\n')],   # a repeated offset
], ids=['fresh', 'gap', 'back', 'repeat'])
def test_text_write_at_stray_offset(shmfs, offsets):
    v = util.new_object(shmfs, 'v', 'i64[4]', '1 1 1 1\n')
    raw = util.read_bytes(shmfs.r('v'))
    fd = os.open(v, os.O_WRONLY)
    try:
        for off, data in offsets[:-1]:
            assert os.pwrite(fd, data, off) == len(data)
        logged = shmfs.rejected_count()
        off, data = offsets[-1]
        assert util.ename(util.errno_of(os.pwrite, fd, data, off)) == 'EINVAL'
        assert_logged(shmfs, logged)
    finally:
        cerr = util.errno_of(os.close, fd)
    assert cerr in (0, EINVAL)
    assert util.read_text(v) == '1 1 1 1\n'
    assert util.read_bytes(shmfs.r('v')) == raw
