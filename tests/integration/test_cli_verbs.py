"""The command-line verbs (`shmfs new/get/set/load/add/sub/cas/xchg/ls/info/rm`,
`VERB --help`): what each prints and its exit status; `new` is atomic and
leaves nothing behind when it fails; argument errors without a mount; and
the two other ways to mount: `shmfs mount [opts] MNT` and the
`shmfs SOURCE MNT -o opts` form that mount.fuse3 runs."""

import os
import re
import signal
import stat
import subprocess
import time

import pytest

import util


def cli(*args, cwd=None, env=None):
    return subprocess.run([util.SHMFS_BIN] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=30,
                          cwd=cwd, env=env)


def ok(*args, **kw):
    r = cli(*args, **kw)
    assert r.returncode == 0, f'shmfs {args}: {r.returncode} {r.stderr!r}'
    assert r.stderr == ''
    return r.stdout


def fails(r, status=2, verb=None):
    """Asserts exit status and a one-line message on stderr, nothing on
    stdout."""
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ''
    lines = r.stderr.splitlines()
    assert len(lines) == 1, f'expected one line on stderr: {r.stderr!r}'
    if verb:
        assert lines[0].startswith(f'shmfs {verb}'), lines[0]
    return lines[0]


def entries(d):
    """Every name in d, dot files included."""
    return sorted(os.listdir(d))


# -- success of each verb ------------------------------------------------------

@util.both_modes
def test_new_get_set(shmfs):
    d = shmfs.path
    assert ok('new', f'{d}/pi', 'f64', '3.1415926') == ''
    assert ok('get', f'{d}/pi') == '3.1415926\n'
    assert util.xattr(shmfs.p('pi'), util.TYPE) == 'f64'
    assert ok('new', f'{d}/a', 'i32[5]', 0, 1, 2, 3, 4) == ''
    assert ok('get', f'{d}/a') == '0 1 2 3 4\n'
    assert ok('new', f'{d}/z', 'u16[2][2]') == ''          # zeros
    assert ok('get', f'{d}/z') == '0 0\n0 0\n'
    assert ok('new', f'{d}/s', 'char[16]', 'hello world') == ''
    assert ok('get', f'{d}/s') == 'hello world\n'
    assert ok('new', f'{d}/b', 'bool', 'true') == ''
    assert ok('get', f'{d}/b') == '1\n'
    os.mkdir(shmfs.p('sub'))
    assert ok('new', f'{d}/sub/v', 'i8', '-5') == ''
    assert ok('get', f'{d}/sub/v') == '-5\n'

    assert ok('set', f'{d}/pi', '2.5') == ''
    assert util.read_text(shmfs.p('pi')) == '2.5\n'
    assert ok('set', f'{d}/a', 9, 8, 7, 6, 5) == ''
    assert util.read_text(shmfs.p('a')) == '9 8 7 6 5\n'
    assert ok('set', f'{d}/s', 'bye') == ''
    assert ok('get', f'{d}/s') == 'bye\n'
    # relative paths work from inside the mount
    assert ok('get', 'sub/v', cwd=d) == '-5\n'
    assert entries(d) == ['a', 'b', 'pi', 's', 'sub', 'z']
    assert entries(shmfs.p('sub')) == ['v']


@util.both_modes
def test_atomic_verbs(shmfs):
    x = util.new_object(shmfs, 'x', 'i64', '10\n')
    r = cli('add', x, 5)
    assert (r.returncode, r.stdout, r.stderr) == (0, '15\n', '')
    r = cli('sub', x, 20)
    assert (r.returncode, r.stdout, r.stderr) == (0, '-5\n', '')
    r = cli('xchg', x, 7)                       # prints the old value
    assert (r.returncode, r.stdout, r.stderr) == (0, '-5\n', '')
    assert util.read_text(x) == '7\n'
    r = cli('cas', x, 7, 8)                     # swapped: the value seen
    assert (r.returncode, r.stdout, r.stderr) == (0, '7\n', '')
    r = cli('cas', x, 7, 9)                     # not swapped
    assert (r.returncode, r.stdout, r.stderr) == (1, '8\n', '')
    assert util.read_text(x) == '8\n'

    a = util.new_object(shmfs, 'a', 'u8[4]', '1 2 3 4\n')
    assert ok('add', a, '--index', 2, 250) == '253\n'
    assert ok('sub', a, '-i', 0, 2) == '255\n'           # wraps
    assert ok('xchg', a, '--index', 3, 40) == '4\n'
    assert ok('cas', a, '--index', 1, 2, 20) == '2\n'
    r = cli('cas', a, '--index', 1, 2, 30)
    assert (r.returncode, r.stdout) == (1, '20\n')
    # --index may come anywhere after the verb
    assert ok('add', '--index', 1, a, 1) == '21\n'
    assert util.read_text(a) == '255 21 253 40\n'

    f = util.new_object(shmfs, 'f', 'f32', '0.25\n')
    assert ok('add', f, '0.5') == '0.75\n'
    assert ok('xchg', f, '1e3') == '0.75\n'
    assert ok('get', f) == '1000\n'


BAD_ATOMIC = [
    # id, type, value, verb arguments after PATH
    ('float-on-int', 'i32', '5', ['add', '1.5']),
    ('not-a-number', 'i32', '5', ['add', 'abc']),
    ('index-past-end', 'i32[3]', '1 2 3', ['add', '--index', '3', '1']),
    ('index-junk', 'i32[3]', '1 2 3', ['add', '--index', 'x', '1']),
    ('index-negative', 'i32[3]', '1 2 3', ['add', '--index', '-1', '1']),
    ('xchg-u8-300', 'u8', '5', ['xchg', '300']),
    ('cas-u8-new-300', 'u8', '5', ['cas', '5', '300']),
    ('add-bool', 'bool', 'true', ['add', '1']),
    ('add-char', 'char[8]', 'hi', ['add', '1']),
    ('xchg-char', 'char[8]', 'hi', ['xchg', 'x']),
]


@pytest.mark.parametrize('spec,text,args', [b[1:] for b in BAD_ATOMIC],
                         ids=[b[0] for b in BAD_ATOMIC])
def test_atomic_verbs_bad_input(shmfs, spec, text, args):
    path = util.new_object(shmfs, 'x', spec, text + '\n')
    before = util.read_bytes(shmfs.r('x'))
    verb = args[0]
    fails(cli(verb, path, *args[1:]), verb=verb)
    assert util.read_bytes(shmfs.r('x')) == before


def test_atomic_verbs_untyped_and_missing(shmfs):
    u = shmfs.p('u')
    os.close(os.open(u, os.O_CREAT | os.O_WRONLY, 0o644))
    for verb, args in (('add', [1]), ('sub', [1]), ('xchg', [1]),
                       ('cas', [0, 1])):
        fails(cli(verb, u, *args), verb=verb)
        fails(cli(verb, shmfs.p('missing'), *args), verb=verb)
    assert util.read_bytes(u) == b''
    assert 'missing' not in entries(shmfs.path)


# -- new: atomic, nothing left behind ---------------------------------------------

BAD_NEW = [
    # id, TYPE, VALUES
    ('bad-type', 'bogus', []),
    ('bad-type-dims', 'i32[0]', []),
    ('bad-type-with-value', 'i33', ['1']),
    ('out-of-range', 'u8', ['300']),
    ('out-of-range-i64', 'i64', ['9223372036854775808']),
    ('negative-unsigned', 'u16', ['-1']),
    ('too-few', 'i32[3]', ['1', '2']),
    ('too-many', 'i32[3]', ['1', '2', '3', '4']),
    ('too-many-scalar', 'f64', ['1', '2']),
    ('malformed', 'f64', ['abc']),
    ('bool-2', 'bool', ['2']),
    ('char-too-long', 'char[4]', ['hello']),
]


@util.both_modes
@pytest.mark.parametrize('spec,values', [b[1:] for b in BAD_NEW],
                         ids=[b[0] for b in BAD_NEW])
@pytest.mark.parametrize('where', ['root', 'subdir'])
def test_new_bad_leaves_nothing(shmfs, spec, values, where):
    d = shmfs.path if where == 'root' else shmfs.p('sub')
    if where == 'subdir':
        os.mkdir(d)
    util.new_object(shmfs, 'keep', 'i64', '1\n')
    before = entries(d)
    fails(cli('new', f'{d}/n', spec, *values), verb='new')
    assert entries(d) == before
    assert not os.path.exists(f'{d}/n')
    assert util.read_text(shmfs.p('keep')) == '1\n'


@util.both_modes
@pytest.mark.parametrize('spec,values', [('i64', ['5']), ('f64', []),
                                         ('i64', ['x'])],
                         ids=['same-type', 'other-type', 'bad-value'])
def test_new_existing_path(shmfs, spec, values):
    x = util.new_object(shmfs, 'x', 'i64', '42\n')
    before = entries(shmfs.path)
    line = fails(cli('new', x, spec, *values), verb='new')
    if spec == 'i64' and values == ['5']:
        assert 'exists' in line
    assert entries(shmfs.path) == before
    assert util.read_text(x) == '42\n'
    assert util.xattr(x, util.TYPE) == 'i64'


def test_new_existing_untyped_and_dir(shmfs):
    os.close(os.open(shmfs.p('u'), os.O_CREAT | os.O_WRONLY, 0o644))
    os.mkdir(shmfs.p('d'))
    before = entries(shmfs.path)
    fails(cli('new', shmfs.p('u'), 'i32', '1'), verb='new')
    fails(cli('new', shmfs.p('d'), 'i32', '1'), verb='new')
    fails(cli('new', shmfs.p('nodir/x'), 'i32', '1'), verb='new')
    assert entries(shmfs.path) == before
    assert entries(shmfs.p('d')) == []
    assert util.read_bytes(shmfs.p('u')) == b''


def test_new_races_one_winner(shmfs):
    """Several `new` of one PATH at once: exactly one succeeds and its value
    is there whole; nothing else is left."""
    procs = [subprocess.Popen([util.SHMFS_BIN, 'new', shmfs.p('x'),
                               'i32[3]', str(i), str(i), str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(8)]
    results = [(p.wait(timeout=30), p.communicate()) for p in procs]
    winners = [i for i, (rc, _) in enumerate(results) if rc == 0]
    assert len(winners) == 1, results
    assert all(rc == 2 for rc, _ in results if rc != 0)
    w = winners[0]
    assert util.read_text(shmfs.p('x')) == f'{w} {w} {w}\n'
    assert entries(shmfs.path) == ['x']


# -- set, get, rm failures ---------------------------------------------------------

def test_set_get_rm_failures(shmfs):
    a = util.new_object(shmfs, 'a', 'i32[3]', '1 2 3\n')
    fails(cli('set', a, 1, 2), verb='set')
    fails(cli('set', a, 'x', 'y', 'z'), verb='set')
    fails(cli('set', a, 1, 2, 3, 4), verb='set')
    assert util.read_text(a) == '1 2 3\n'
    fails(cli('set', shmfs.p('missing'), 1), verb='set')
    fails(cli('get', shmfs.p('missing')), verb='get')
    assert entries(shmfs.path) == ['a']

    line = fails(cli('rm', shmfs.p('missing')), verb='rm')
    assert 'missing' in line
    # rm of several: removes what exists, fails for the rest
    util.new_object(shmfs, 'b', 'f64')
    r = cli('rm', a, shmfs.p('missing'), shmfs.p('b'))
    fails(r, verb='rm')
    assert entries(shmfs.path) == []


def test_rm(shmfs):
    for name in ('a', 'b', 'c'):
        util.new_object(shmfs, name, 'i64', '1\n')
    assert ok('rm', shmfs.p('a')) == ''
    assert entries(shmfs.path) == ['b', 'c']
    assert ok('rm', shmfs.p('b'), shmfs.p('c')) == ''
    assert entries(shmfs.path) == []


# -- ls and info ----------------------------------------------------------------

def ls_line(path, spec, nbytes, name):
    mode = stat.filemode(os.stat(path).st_mode)
    return f'{mode} {spec:<16} {nbytes:>10}  {name}'


@util.both_modes
def test_ls(shmfs):
    d = shmfs.path
    ok('new', shmfs.p('pi'), 'f64', '3.14')
    ok('new', shmfs.p('arr'), 'i32[2][3]')
    ok('new', shmfs.p('name'), 'char[16]', 'x')
    os.close(os.open(shmfs.p('u'), os.O_CREAT | os.O_WRONLY, 0o600))
    os.mkdir(shmfs.p('dir'))
    ok('new', shmfs.p('dir/inner'), 'u8', '1')
    want = [ls_line(shmfs.p('arr'), 'i32[2][3]', 24, 'arr'),
            ls_line(shmfs.p('dir'), 'dir', 0, 'dir/'),
            ls_line(shmfs.p('name'), 'char[16]', 16, 'name'),
            ls_line(shmfs.p('pi'), 'f64', 8, 'pi'),
            ls_line(shmfs.p('u'), 'untyped', 0, 'u')]
    out = ok('ls', d)
    assert [l for l in out.splitlines() if not l.endswith(' .raw')] == want
    assert ok('ls', d + '/') == out
    assert ok('ls', cwd=d) == out                 # DIR defaults to .
    assert ok('ls', shmfs.p('dir')) == \
        ls_line(shmfs.p('dir/inner'), 'u8', 1, 'inner') + '\n'
    assert out.splitlines()[1].startswith('d')
    assert ok('ls', shmfs.p('dir'), cwd='/') == ok('ls', cwd=shmfs.p('dir'))
    # sizes of big arrays line up too
    ok('new', shmfs.p('big'), 'f64[1000][1000]')
    assert ls_line(shmfs.p('big'), 'f64[1000][1000]', 8000000, 'big') in \
        ok('ls', d).splitlines()


def test_ls_failures(shmfs):
    fails(cli('ls', shmfs.p('missing')), verb='ls')
    util.new_object(shmfs, 'x', 'i64')
    fails(cli('ls', shmfs.p('x')), verb='ls')
    assert ok('ls', shmfs.p('')) != ''


@util.both_modes
def test_info(shmfs):
    ok('new', shmfs.p('a'), 'f32[3][2]', 1, 2, 3, 4, 5, 6)
    st = os.stat(shmfs.p('a'))
    out = ok('info', shmfs.p('a'))
    lines = out.splitlines()
    keys = [l.split()[0] for l in lines]
    assert keys == ['type', 'shape', 'dtype', 'bytes', 'version', 'lifetime',
                    'mode']
    for l in lines:
        assert re.match(r'^[a-z]+ +\S', l) and l[9] == ' ' and l[10] != ' ', l
    assert lines[0] == 'type      f32[3][2]'
    assert lines[1] == 'shape     (3, 2)'
    assert lines[2] == 'dtype     <f4'
    assert lines[3] == 'bytes     24'
    assert re.fullmatch(r'version   \d+', lines[4])
    assert lines[5] == 'lifetime  ' + (
        util.xattr(shmfs.p('a'), 'user.shmfs.lifetime')
        if 'user.shmfs.lifetime' in os.listxattr(shmfs.p('a')) else 'mount')
    assert lines[6] == (f'mode      {stat.filemode(st.st_mode)} '
                        f'({st.st_mode & 0o7777:04o}) '
                        f'uid {st.st_uid} gid {st.st_gid}')
    # the version rises with a change
    v1 = int(lines[4].split()[1])
    ok('set', shmfs.p('a'), 0, 0, 0, 0, 0, 0)
    v2 = int(ok('info', shmfs.p('a')).splitlines()[4].split()[1])
    assert v2 > v1

    os.close(os.open(shmfs.p('u'), os.O_CREAT | os.O_WRONLY, 0o640))
    lines = ok('info', shmfs.p('u')).splitlines()
    assert lines[:5] == ['type      untyped', 'shape     -', 'dtype     -',
                         'bytes     -', 'version   -']
    assert lines[6].startswith('mode      -rw-r----- (0640) ')

    fails(cli('info', shmfs.p('missing')), verb='info')


# -- help and argument errors (no mount) ---------------------------------------------

VERBS = ['new', 'get', 'set', 'load', 'add', 'sub', 'cas', 'xchg', 'ls', 'info',
         'rm', 'watch']


@pytest.mark.parametrize('flag', ['--help', '-h'])
@pytest.mark.parametrize('verb', VERBS)
def test_verb_help(verb, flag):
    r = cli(verb, flag)
    assert r.returncode == 0 and r.stderr == ''
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f'usage: shmfs {verb}'), lines
    assert len(lines) >= 2 and lines[1].strip()


def test_main_help_lists_verbs():
    r = cli('--help')
    assert r.returncode == 0
    for verb in VERBS:
        assert re.search(rf'^\s+shmfs {verb}\b', r.stdout, re.M), verb


WRONG_COUNTS = [
    ('new', ['/nonexistent/p']), ('get', []), ('get', ['a', 'b']),
    ('set', ['/nonexistent/p']), ('add', ['/nonexistent/p']),
    ('add', ['p', '1', '2']), ('add', ['p', '--index', '1', '2', '3']),
    ('sub', ['/nonexistent/p']), ('sub', ['p', '1', '2']),
    ('cas', ['p', '1']), ('cas', ['p', '1', '2', '3']),
    ('xchg', ['p']), ('xchg', ['p', '1', '2']), ('load', []), ('load', ['p', '1']),
    ('ls', ['a', 'b']), ('info', []), ('info', ['a', 'b']), ('rm', []),
    ('watch', []), ('watch', ['a', 'b']),
]


@pytest.mark.parametrize('verb,args', WRONG_COUNTS,
                         ids=[f'{v}-{len(a)}' + ('-index' if '--index' in a
                                                 else '')
                              for v, a in WRONG_COUNTS])
def test_wrong_argument_count(verb, args):
    line = fails(cli(verb, *args), verb=verb)
    assert f'usage: shmfs {verb}' in line


# -- the mount verb and mount.fuse3's form -------------------------------------------

def _daemon_pids(mnt):
    """Processes running SHMFS_BIN with mnt on their command line."""
    pids = []
    exe = os.path.realpath(util.SHMFS_BIN)
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/cmdline', 'rb') as f:
                argv = f.read().split(b'\0')
            if os.path.realpath(f'/proc/{entry}/exe') != exe:
                continue
        except OSError:
            continue
        if os.fsencode(mnt) in argv:
            pids.append(int(entry))
    return pids


class MountedBy(util.Daemon):
    """A daemon started by an arbitrary command line; argv holds '{mnt}'
    where the mountpoint goes.  With background=True the command returns
    once mounted and the daemon runs detached; stop() then also waits for
    that daemon to exit."""

    def __init__(self, mnt, log_path, argv, background=False, env=None):
        super().__init__(mnt, log_path)
        self.argv = [a.format(mnt=mnt) for a in argv]
        self.background = background
        self.env = env
        self.detached = []

    def start(self):
        env = dict(self.env or os.environ, G_DEBUG='fatal-warnings')
        with open(self.log_path, 'wb') as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         env=env)
        util._live.add(self)
        if self.background:
            rc = self.proc.wait(timeout=20)
            assert rc == 0, f'{self.argv} exited {rc}:\n{self.log()}'
            assert os.path.ismount(self.path), f'{self.argv}: not mounted'
            self.detached = _daemon_pids(self.path)

    def wait_for_mount(self, timeout=10):
        if not self.background:
            super().wait_for_mount(timeout)

    def stop(self):
        problems = super().stop()
        for pid in self.detached:
            deadline = time.monotonic() + 10
            while os.path.exists(f'/proc/{pid}') and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            if os.path.exists(f'/proc/{pid}'):
                problems.append(f'detached daemon {pid} did not exit')
                os.kill(pid, signal.SIGTERM)
        return problems

    def force_stop(self):
        super().force_stop()
        for pid in self.detached:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


@pytest.fixture
def mount_with(tmp_path):
    """mount_with(argv, background=False, env=None) mounts a fresh
    mountpoint with argv; teardown unmounts and checks like the shmfs
    fixture."""
    made = []

    def start(argv, background=False, env=None):
        mnt = util.make_mountpoint()
        daemon = MountedBy(mnt, str(tmp_path / f'mount{len(made)}.log'),
                           argv, background, env)
        made.append(daemon)
        daemon.start()
        daemon.wait_for_mount()
        return daemon

    yield start
    problems = []
    for daemon in made:
        problems += daemon.stop() if daemon.proc else []
        log = daemon.log()
        if log:
            print(f'--- {daemon.argv} output ---\n{log}')
        try:
            os.rmdir(daemon.path)
        except OSError as e:
            problems.append(f'cannot remove mountpoint {daemon.path}: {e}')
    if problems:
        pytest.fail('teardown:\n  ' + '\n  '.join(problems), pytrace=False)


def _works(daemon, mode):
    assert daemon.mode() == mode
    assert ok('new', daemon.p('x'), 'i64', 5) == ''
    assert ok('add', daemon.p('x'), 1) == '6\n'
    assert util.read_bytes(daemon.r('x')) == (6).to_bytes(8, 'little')


@pytest.mark.parametrize('mode', util.MODES)
def test_mount_verb_foreground(mount_with, mode):
    d = mount_with([util.SHMFS_BIN, 'mount', '-f', '-o', f'mode={mode}',
                    '{mnt}'])
    _works(d, mode)


def test_mount_verb_background(mount_with):
    d = mount_with([util.SHMFS_BIN, 'mount', '-o', 'mode=cached', '{mnt}'],
                   background=True)
    assert d.detached, 'no detached daemon found'
    _works(d, 'cached')


@pytest.mark.parametrize('mode', util.MODES)
def test_source_form_foreground(mount_with, mode):
    d = mount_with([util.SHMFS_BIN, 'anything', '{mnt}', '-o',
                    f'mode={mode}', '-f'])
    _works(d, mode)


def test_source_form_background(mount_with):
    d = mount_with([util.SHMFS_BIN, 'shmfs', '{mnt}', '-o', 'mode=cached'],
                   background=True)
    assert d.detached
    _works(d, 'cached')


def test_mount_fuse3_helper(mount_with, tmp_path):
    """mount -t fuse.shmfs / fstab: mount.fuse3 runs `shmfs SOURCE MNT -o
    OPTS` with shmfs found on PATH."""
    helper = '/sbin/mount.fuse3'
    assert os.access(helper, os.X_OK), 'mount.fuse3 (fuse3) is missing'
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    (bindir / 'shmfs').symlink_to(os.path.abspath(util.SHMFS_BIN))
    env = dict(os.environ, PATH=f'{bindir}:' + os.environ.get('PATH', ''))
    d = mount_with([helper, 'mysource', '{mnt}', '-t', 'fuse.shmfs', '-o',
                    'mode=cached'], background=True, env=env)
    assert d.detached
    _works(d, 'cached')
