"""The examples run as their headers and docs/running.md show, in both modes:
the seed's Value and Array in C (fork and a separately started process) and
in Python, the shell session and counter, and the shared record (a robot's
pose) in C, Python and the shell."""

import json
import os
import re
import shutil
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


POSE_LINE = re.compile(r'^(?:reader(?::| \((?:jq|sed)\):) )?pose (\d+) at t=\d+\.\d+ '
                       r'pos=\(([\d.-]+), ([\d.-]+), 0\.5\) yaw=([\d.]+) frame=map$')


def _poses(lines):
    """(k, x, y, yaw) of each pose line, each one whole (y = 2x, yaw =
    k/4)."""
    poses = []
    for line in lines:
        m = POSE_LINE.match(line)
        if m:
            k, x, y, yaw = int(m[1]), float(m[2]), float(m[3]), float(m[4])
            assert (x, y, yaw) == (k, 2 * k, k / 4), line
            poses.append(k)
    return poses


@util.both_modes
def test_c_pose(shmfs):
    """The record mapped as a C struct, checked with libshmfs, written by a
    forked process and read consistently by the parent."""
    pose = os.path.join(BUILD_EXAMPLES, 'pose')
    lines = run(pose, shmfs.path, '3')
    assert lines[0] == (f'{shmfs.path}/pose {{seq:u64, t:f64, pos:{{x:f64, y:f64, z:f64}}, '
                        'yaw:f64, frame:char[8]} matches struct Pose (56 bytes)')
    poses = _poses(lines)
    assert poses == sorted(set(poses)) and poses[-1] == 3
    # The writer's line comes from another process: anywhere before the last.
    writers = [l for l in lines[1:-1] if l.startswith('writer ')]
    assert len(writers) == 1 and writers[0].endswith(
        f' published 3 poses into its own mapping of {shmfs.path}/.raw/pose'), lines
    assert len(poses) + 3 == len(lines), lines
    text = json.loads(util.cat(shmfs.p('pose')))
    assert lines[-1] == f'cat {shmfs.p("pose")}: ' + util.cat(shmfs.p('pose')).rstrip('\n')
    assert (text['seq'], text['pos'], text['yaw'], text['frame']) == \
        (6, {'x': 3, 'y': 6, 'z': 0.5}, 0.75, 'map')

    # Separate processes: a text write merges, the reader's mapping sees it.
    run(pose, 'write', shmfs.path, '2')
    util.write_text(shmfs.p('pose'), '{"pos": {"x": 10, "y": 20}}\n')
    line, = run(pose, 'read', shmfs.path)
    assert line.startswith('pose 5 at t=') and 'pos=(10, 20, 0.5) yaw=0.5' in line   # seq 6 + 2 * 2


@util.both_modes
def test_c_pose_refuses_another_record(shmfs, tmp_path):
    util.new_object(shmfs, 'pose', '{t:f64, x:f32}')
    pose = os.path.join(BUILD_EXAMPLES, 'pose')
    for args in (['read', shmfs.path], ['write', shmfs.path, '1'], [shmfs.path, '1']):
        proc = subprocess.run([pose] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=60, text=True)
        if args[0] == shmfs.path:   # it creates MNT/pose afresh
            assert proc.returncode == 0, proc.stderr
            continue
        assert proc.returncode == 1
        assert proc.stderr == (f'pose: {shmfs.p("pose")} is {{t:f64, x:f32}}, not struct Pose: '
                               'its fields are t f64 @0, x f32 @8\n')
        assert util.cat(shmfs.p('pose')) == '{"t": 0, "x": 0}\n'
    proc = subprocess.run([pose, str(tmp_path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60, text=True)
    assert (proc.returncode, proc.stderr) == (1, f'pose: {tmp_path} is not a shmfs mount\n')


@util.both_modes
@pytest.mark.parametrize('jq', ['jq', 'none'])
def test_shell_pose(shmfs, jq):
    """The record from the shell: shmfs new with JSON, a writer of JSON
    merges, a reader with jq (or sed), and the --field verbs."""
    if jq == 'jq' and shutil.which('jq') is None:
        pytest.skip('jq is not installed')
    env = dict(os.environ, SHMFS=util.SHMFS_BIN, JQ=jq)
    proc = subprocess.run(['bash', os.path.join(EXAMPLES, 'shell', 'pose.sh'),
                           shmfs.path, '3'], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    assert (proc.returncode, proc.stderr) == (0, '')
    lines = proc.stdout.splitlines()
    assert lines[0] == (f"$ shmfs new {shmfs.p('pose')} '{{seq:u64, t:f64, pos:{{x:f64, y:f64, "
                        "z:f64}, yaw:f64, frame:char[8]}' '{\"pos\": {\"z\": 0.5}, "
                        "\"frame\": \"map\"}'")
    readers = [l for l in lines if l.startswith('reader ')]
    assert readers and all(l.startswith('reader (jq)' if jq == 'jq' else 'reader (sed)')
                           for l in readers)
    poses = _poses(readers)
    assert len(poses) == len(readers) and poses[-1] == 3
    text = '\n'.join(lines)
    assert f'$ shmfs get {shmfs.p("pose")} --field pos\n{{"x": 3, "y": 6, "z": 0.5}}\n' in text
    assert f'$ shmfs add {shmfs.p("pose")} --field yaw 0.5\n1.25\n' in text
    assert f'--field frame\n"odom"\n' in text
    assert 'field     pos.x  f64      offset 16\n' in text
    last = json.loads(lines[-1])
    assert (last['seq'], last['pos'], last['yaw'], last['frame']) == \
        (6, {'x': 3, 'y': 6, 'z': 0.5}, 1.25, 'odom')
    assert os.listdir(shmfs.path) == []


PY_RECORD = os.path.join(EXAMPLES, 'python', 'record.py')
POSE_SPEC = '{seq:u64, t:f64, pos:{x:f64, y:f64, z:f64}, yaw:f64, frame:char[8]}'


@util.both_modes
def test_python_record(shmfs):
    """One writer and two readers of the pose record, each process attaching
    on its own: every pose a reader finds is whole (the seqlock), each reader
    reaches the last one, and the last pose is what cat shows; a second run
    starts over on a fresh object."""
    for n in (5, 3):
        lines = run('/usr/bin/python3', PY_RECORD, shmfs.path, str(n))
        assert lines[0] == f'{shmfs.p("pose")} {POSE_SPEC} matches class Pose (56 bytes)'
        readers = 0
        for number in (1, 2):
            mine = [l for l in lines if l.startswith(f'reader {number}: ')]
            readers += len(mine)
            poses = _poses(l[len(f'reader {number}: '):] for l in mine[:-1])
            assert len(poses) == len(mine) - 1 and poses == sorted(set(poses)), mine
            assert poses[-1] == n
            assert re.fullmatch(rf'reader {number}: [0-9]+ snapshots, all whole, '
                                rf'last pose {n}', mine[-1]), mine[-1]
        writer = [l for l in lines if l.startswith('writer ')]
        assert len(writer) == 1 and writer[0].endswith(
            f' published {n} poses into its own mapping of {shmfs.path}/.raw/pose')
        assert len(lines) == 1 + readers + 1 + 1           # and no line mixes two
        text = util.cat(shmfs.p('pose'))
        assert lines[-1] == f'cat {shmfs.p("pose")}: ' + text.rstrip('\n')
        pose = json.loads(text)
        assert (pose['seq'], pose['pos'], pose['yaw'], pose['frame']) == \
            (2 * n, {'x': n, 'y': 2 * n, 'z': 0.5}, n / 4, 'map')
    assert os.listdir(shmfs.path) == ['pose']

    # Separately started processes: a writer, then a reader.
    run('/usr/bin/python3', PY_RECORD, 'write', shmfs.path, '2')
    line, = run('/usr/bin/python3', PY_RECORD, 'read', shmfs.path)
    assert line.startswith('pose 5 at t=') and line.endswith(
        ' pos=(2, 4, 0.5) yaw=0.5 frame=map')                   # seq 6 + 2 * 2


@util.both_modes
def test_python_record_refuses_another_record(shmfs, tmp_path):
    util.new_object(shmfs, 'pose', '{t:f64, x:f32}')
    for mode in ('read', 'write'):
        proc = subprocess.run(['/usr/bin/python3', PY_RECORD, mode, shmfs.path],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=60, text=True)
        assert (proc.returncode, proc.stdout) == (1, ''), proc.stderr
        assert proc.stderr.startswith(f'record.py: {shmfs.p("pose")}') and \
            '{t:f64, x:f32}' in proc.stderr and 'field seq' in proc.stderr, proc.stderr
        assert util.cat(shmfs.p('pose')) == '{"t": 0, "x": 0}\n'
    # Run whole, it makes MNT/pose afresh, whatever was there.
    lines = run('/usr/bin/python3', PY_RECORD, shmfs.path, '1')
    assert lines[0].endswith('matches class Pose (56 bytes)')
    assert json.loads(util.cat(shmfs.p('pose')))['seq'] == 2
    proc = subprocess.run(['/usr/bin/python3', PY_RECORD, str(tmp_path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60, text=True)
    assert (proc.returncode, proc.stderr) == (1, f'record.py: {tmp_path} is not a shmfs mount\n')


@util.both_modes
def test_pose_across_languages(shmfs):
    """One pose object shared by C, Python and the shell: C writes, Python
    (its read mode) and the shell read; then Python writes and C reads."""
    pose = os.path.join(BUILD_EXAMPLES, 'pose')
    line, = run(pose, 'write', shmfs.path, '4')
    assert line.endswith(f' published 4 poses into its own mapping of {shmfs.path}/.raw/pose')
    line, = run('/usr/bin/python3', PY_RECORD, 'read', shmfs.path)
    assert _poses([line]) == [4], line
    assert run(util.SHMFS_BIN, 'get', shmfs.p('pose'), '--field', 'pos') == \
        ['{"x": 4, "y": 8, "z": 0.5}']

    line, = run('/usr/bin/python3', PY_RECORD, 'write', shmfs.path, '3')
    assert line.endswith(f' published 3 poses into its own mapping of {shmfs.path}/.raw/pose')
    line, = run(pose, 'read', shmfs.path)
    # seq went on from C's 8 by 2 a pose: pose 7, holding Python's third.
    assert line.startswith('pose 7 at t=') and line.endswith(
        ' pos=(3, 6, 0.5) yaw=0.75 frame=map'), line
    text = json.loads(util.cat(shmfs.p('pose')))
    assert (text['seq'], text['pos'], text['yaw'], text['frame']) == \
        (14, {'x': 3, 'y': 6, 'z': 0.5}, 0.75, 'map')
    assert run(util.SHMFS_BIN, 'get', shmfs.p('pose'), '--field', 'pos') == \
        ['{"x": 3, "y": 6, "z": 0.5}']
