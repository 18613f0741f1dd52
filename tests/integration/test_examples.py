"""The examples run as their headers and docs/running.md show, in both modes:
the seed's Value and Array in C (fork and a separately started process) and
in Python, the shell session, and the Python record (a robot's pose)."""

import json
import os
import re
import subprocess

import pytest

import util

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, '..', '..', 'examples')
BUILD_EXAMPLES = os.environ.get('SHMFS_EXAMPLES') or os.path.join(
    os.path.dirname(util.SHMFS_BIN), '..', 'examples')


def run(*cmd, stderr=subprocess.PIPE):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=stderr,
                          timeout=60, text=True)
    assert proc.returncode == 0, (cmd, proc.stdout, proc.stderr)
    return proc.stdout.splitlines()


@util.both_modes
@pytest.mark.parametrize('program, last_line', [
    ('value', '3.1415926'),
    ('array', '[0, 1, 2, 3, 4]'),
])
def test_c_seed(shmfs, program, last_line):
    lines = run(os.path.join(BUILD_EXAMPLES, program), shmfs.path)
    assert lines[-1] == last_line
    # What the child stored is what cat shows.
    assert util.cat(shmfs.p(program)).strip() == last_line.strip('[]').replace(',', '')


@util.both_modes
@pytest.mark.parametrize('script, last_line', [
    ('value_mmap.py', '3.1415926'),
    ('array_mmap.py', '[0, 1, 2, 3, 4]'),
])
def test_python_seed(shmfs, script, last_line):
    lines = run('/usr/bin/python3', os.path.join(EXAMPLES, 'python', script), shmfs.path)
    assert lines[-1] == last_line


@util.both_modes
def test_value_set_and_get_across_languages(shmfs):
    """One process stores through its mapping and exits; a separately
    started process in the other language reads it."""
    c_value = os.path.join(BUILD_EXAMPLES, 'value')
    py_value = os.path.join(EXAMPLES, 'python', 'value_mmap.py')
    run(c_value, 'set', shmfs.path)
    assert run('/usr/bin/python3', py_value, 'get', shmfs.path)[-1] == '3.1415926'
    os.unlink(shmfs.p('value'))
    run('/usr/bin/python3', py_value, 'set', shmfs.path)
    assert run(c_value, 'get', shmfs.path)[-1] == '3.1415926'


@util.both_modes
def test_shell_session(shmfs):
    shmfs.expect_output(r'^shmfs: rejected')
    lines = run('bash', os.path.join(EXAMPLES, 'shell', 'session.sh'), shmfs.path,
                stderr=subprocess.STDOUT)
    text = '\n'.join(lines)
    assert '$ cat pi\n3.1415926\n' in text
    assert 'echo: write error: Invalid argument' in text
    assert 'echo: write error: Numerical result out of range' in text
    # The refused writes changed nothing, as the session shows next.
    assert '$ cat count v\n42\n1.5 2 3\n' in text


def test_examples_refuse_a_missing_mount(tmp_path):
    for cmd in ([os.path.join(BUILD_EXAMPLES, 'value'), str(tmp_path)],
                ['/usr/bin/python3', os.path.join(EXAMPLES, 'python', 'array_mmap.py'),
                 str(tmp_path)]):
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=60, text=True)
        assert proc.returncode == 1
        assert 'not a shmfs mount' in proc.stderr


@util.both_modes
def test_shell_counter(shmfs):
    """shmfs new, watch, add and flock from a shell: an exact total."""
    env = dict(os.environ, SHMFS=util.SHMFS_BIN)
    proc = subprocess.run(['bash', os.path.join(EXAMPLES, 'shell', 'counter.sh'),
                           shmfs.path, '20'], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    lines = proc.stdout.splitlines()
    assert lines[-1] == '4 workers x 20 increments: counter = 80'
    # The watcher's last line is the final value.
    assert lines[-2] == '80'
    assert os.listdir(shmfs.path) == []


@util.both_modes
def test_python_record(shmfs):
    """One writer, two readers of a pose record: every snapshot consistent,
    the readers' atomic adds counted exactly, the last pose what cat shows;
    a second run starts over on the same object."""
    for n in (100, 30):
        lines = run('/usr/bin/python3', os.path.join(EXAMPLES, 'python', 'record.py'),
                    shmfs.path, str(n))
        assert lines[0] == (f'{shmfs.p("pose")}: {{stamp:f64, seq:u64, xyz:f64[3], '
                            f'quat:f64[4], frame:char[16], moving:bool, ticks:u32}}')
        assert lines[1] == f'writer stored {n} poses'
        snapshots = 0
        for line in lines[2:4]:
            m = re.fullmatch(r'reader [12]: ([0-9]+) snapshots, all consistent, '
                             rf'last seq {n}', line)
            assert m, line
            snapshots += int(m.group(1))
        assert lines[4] == f"ticks (the readers' atomic adds): {snapshots}"
        pose = json.loads(util.cat(shmfs.p('pose')))
        assert (pose['seq'], pose['xyz'], pose['frame'], pose['moving'], pose['ticks']) == \
            (n, [0.1 * n, -0.2 * n, 0.5], 'map', False, snapshots)
    assert os.listdir(shmfs.path) == ['pose']
