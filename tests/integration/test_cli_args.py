"""The command line: help, version and argument errors (no mount made), and
the life cycle of a mount: -f with SIGTERM/SIGINT/fusermount3 -u, background
mode, -s, -d and -o allow_other."""

import os
import re
import signal
import struct

import pytest

import util

BAD_ARGS = [
    # id, arguments ({mnt}: an existing empty directory, {missing}: a path
    # that does not exist)
    ('unknown-long-option', ['--no-such-option', '{mnt}']),
    ('unknown-short-option', ['-Z', '{mnt}']),
    ('unknown-option-foreground', ['-f', '--no-such-option', '{mnt}']),
    ('unknown-o-option', ['-o', 'no_such_option', '{mnt}']),
    ('unknown-o-option-foreground', ['-f', '-o', 'no_such_option', '{mnt}']),
    ('unknown-o-option-in-list',
     ['-o', 'allow_other,no_such_option', '{mnt}']),
    ('unknown-o-option-with-value', ['-o', 'no_such_option=1', '{mnt}']),
    ('unknown-mode', ['-o', 'mode=bogus', '{mnt}']),
    ('empty-mode', ['-o', 'mode=', '{mnt}']),
    ('missing-mountpoint', []),
    ('missing-mountpoint-foreground', ['-f']),
    ('missing-mountpoint-with-o', ['-o', 'allow_other']),
    ('nonexistent-mountpoint', ['{missing}']),
    ('nonexistent-mountpoint-foreground', ['-f', '{missing}']),
]


@pytest.fixture
def mnt():
    d = util.make_mountpoint()
    yield d
    leaked = os.path.ismount(d)
    if leaked:
        util.fusermount_u(d, lazy=True)
    os.rmdir(d)
    assert not leaked, f'{d} was left mounted'


def expand(args, mnt):
    missing = os.path.join(mnt, 'no', 'such', 'dir')
    return [a.format(mnt=mnt, missing=missing) for a in args]


@pytest.mark.parametrize('args', [a for _, a in BAD_ARGS],
                         ids=[i for i, _ in BAD_ARGS])
def test_bad_arguments(mnt, args):
    rc, out, err = util.run_shmfs(expand(args, mnt))
    assert rc == 1, f'exit status {rc}, stderr {err!r}'
    lines = err.splitlines()
    assert len(lines) == 1, f'expected a one-line message, got {err!r}'
    assert lines[0].startswith('shmfs:'), lines[0]
    assert not os.path.ismount(mnt)


@pytest.mark.parametrize('flag', ['-h', '--help'])
@pytest.mark.parametrize('with_mountpoint', [False, True],
                         ids=['alone', 'with-mountpoint'])
def test_help(mnt, flag, with_mountpoint):
    rc, out, err = util.run_shmfs([flag] + ([mnt] if with_mountpoint else []))
    assert rc == 0, f'exit status {rc}, stderr {err!r}'
    assert 'usage' in out.lower(), out
    assert not os.path.ismount(mnt)


@pytest.mark.parametrize('flag', ['-V', '--version'])
def test_version(mnt, flag):
    rc, out, err = util.run_shmfs([flag])
    assert rc == 0, f'exit status {rc}, stderr {err!r}'
    first = out.splitlines()[0] if out else ''
    version = os.environ.get('SHMFS_VERSION')
    if version:
        assert first == f'shmfs {version}', out
    else:
        assert re.fullmatch(r'shmfs \d+\.\d+\.\d+\S*', first), out
    assert not os.path.ismount(mnt)


# -- life cycle ---------------------------------------------------------------

@pytest.fixture
def daemon(tmp_path):
    """start(*args): a mounted foreground daemon; always cleaned up."""
    made = []

    def start(*args):
        d = util.Daemon(util.make_mountpoint(), str(tmp_path / 'shmfs.log'),
                        args)
        made.append(d)
        d.start()
        d.wait_for_mount()
        return d
    yield start
    for d in made:
        if d.proc.poll() is None or os.path.ismount(d.path):
            d.force_stop()
        os.rmdir(d.path)


def smoke(d):
    """A tiny round trip through the mount."""
    util.write_text(d.p('x'), '41\n', create=True)
    assert util.read_text(d.p('x')) == '41\n'
    assert util.read_bytes(d.r('x')) == struct.pack('=q', 41)


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT],
                         ids=['SIGTERM', 'SIGINT'])
def test_signal_unmounts(daemon, sig):
    d = daemon()
    smoke(d)
    d.proc.send_signal(sig)
    rc = d.proc.wait(timeout=10)
    assert rc == 0
    assert not os.path.ismount(d.path)
    assert d.suspicious_lines() == []


def test_fusermount_unmounts(daemon):
    d = daemon()
    smoke(d)
    assert d.stop() == []


@pytest.mark.parametrize('args', [['-s'], ['-d'], ['-o', 'allow_other'],
                                  ['-s', '-o', 'allow_other']],
                         ids=['single-thread', 'debug', 'allow_other',
                              'single-thread-allow_other'])
def test_options_mount(daemon, args):
    d = daemon(*args)
    if '-d' in args:
        # libfuse's request trace reports errnos as "error: -2 (...)"
        d.expect_output(r'unique: \d+, error: -\d+ ')
    smoke(d)
    with open('/proc/self/mountinfo') as f:
        entry = [line for line in f if line.split()[4] == d.path]
    assert len(entry) == 1, entry
    opts = entry[0].split(' - ')[1].split()[2].split(',')
    assert 'default_permissions' in opts, opts
    assert ('allow_other' in opts) == ('allow_other' in args), opts
    assert d.stop() == []


def test_debug_logs_requests(daemon):
    d = daemon('-d')
    d.expect_output(r'unique: \d+, error: -\d+ ')
    smoke(d)
    assert d.stop() == []
    assert 'unique:' in d.log()


def daemons_on(mountpoint):
    """PIDs of running processes whose command line names mountpoint."""
    pids = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue
        if os.fsencode(mountpoint) in argv and any(
                a.endswith(b'shmfs') for a in argv[:1]):
            pids.append(int(pid))
    return pids


def test_background_mode(mnt):
    rc, out, err = util.run_shmfs([mnt])
    try:
        assert rc == 0, f'exit status {rc}, stderr {err!r}'
        assert os.path.ismount(mnt)
        pids = daemons_on(mnt)
        assert len(pids) == 1, pids
        util.write_text(os.path.join(mnt, 'x'), '7\n', create=True)
        assert util.read_text(os.path.join(mnt, 'x')) == '7\n'
    finally:
        if os.path.ismount(mnt):
            r = util.fusermount_u(mnt)
            assert r.returncode == 0, r.stderr
    assert util.poll_until(lambda: not daemons_on(mnt), timeout=10), \
        'background daemon still running after unmount'
