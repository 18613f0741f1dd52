"""Another language on the same bytes: examples/java/Counter.java, compiled
with javac into a temporary directory, maps MNT/.raw/counter with
FileChannel.map(READ_WRITE) and increments under FileChannel.lock() (fcntl,
so the daemon's one lock per object) while Python processes increment under
the client's get_lock() and call the daemon's atomic add: no increment is
lost.  Skipped where no JDK is installed."""

import os
import shutil
import subprocess
import sys
import time
from contextlib import closing

import pytest

import util

EXAMPLES = os.path.realpath(os.path.join(util.HERE, '..', '..', 'examples'))
import shmfs as pyshm  # noqa: E402  (the fixture is named shmfs)

PYTHON = '/usr/bin/python3'

pytestmark = pytest.mark.skipif(
    not (shutil.which('javac') and shutil.which('java')), reason='no JDK (javac, java)')


@pytest.fixture(scope='module')
def classes(tmp_path_factory):
    out = tmp_path_factory.mktemp('classes')
    r = subprocess.run(['javac', '-d', str(out), os.path.join(EXAMPLES, 'java', 'Counter.java')],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert r.returncode == 0, r.stdout
    return str(out)


def java(classes, mnt, name, n):
    return subprocess.Popen(['java', '-cp', classes, 'Counter', mnt, name, str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@util.both_modes
def test_java_counter_alone(shmfs, classes):
    util.echo(shmfs.p('counter'), '0')                    # typed by the text: i64
    rc, out, err = util.finish(java(classes, shmfs.path, 'counter', 2000), 300)
    assert (rc, err) == (0, '')
    assert out.startswith('java ') and out.endswith(
        f' added 2000 to {shmfs.p("counter")} under FileChannel.lock(), now 2000\n')
    assert util.cat(shmfs.p('counter')) == '2000\n'


@util.both_modes
def test_java_and_python_count_together(shmfs, classes, tmp_path):
    """Two JVMs (FileChannel.lock), two Python processes (get_lock) and two
    calling the daemon's atomic add, all at once, on one counter."""
    n_java, n_py = 3000, 600
    script = util.python_incrementer(tmp_path)
    with closing(pyshm.Value('q', 0, path=shmfs.p('counter'))) as v:
        jvms = [java(classes, shmfs.path, 'counter', n_java) for _ in range(2)]
        pys = [subprocess.Popen([PYTHON, script, v.path, how, str(n_py)])
               for how in ('lock', 'add', 'lock', 'add')]
        assert [util.finish(j, 300)[0] for j in jvms] == [0, 0]
        assert [p.wait(timeout=300) for p in pys] == [0] * 4
        assert v.value == 2 * n_java + 4 * n_py
        assert util.cat(v.path) == f'{2 * n_java + 4 * n_py}\n'


@util.both_modes
def test_get_lock_holds_off_java(shmfs, classes):
    """While Python holds get_lock(), the JVM's FileChannel.lock() waits; it
    goes on once the lock is released."""
    with closing(pyshm.Value('q', 0, path=shmfs.p('counter'))) as v:
        with v.get_lock():
            proc = java(classes, shmfs.path, 'counter', 1)
            time.sleep(2)              # ample for the JVM to start and block
            assert proc.poll() is None
            assert v.value == 0
            v.value = 41
        rc, out, err = util.finish(proc, 300)
        assert (rc, err) == (0, '') and out.endswith('now 42\n')
        assert v.value == 42


@util.both_modes
def test_shell_flock_holds_off_java(shmfs, classes):
    util.echo(shmfs.p('counter'), '0')
    shell = subprocess.Popen(['flock', shmfs.p('counter'), '-c', 'echo locked; sleep 2'],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert shell.stdout.readline() == 'locked\n'
        start = time.monotonic()
        rc, out, err = util.finish(java(classes, shmfs.path, 'counter', 5), 300)
        assert shell.poll() is not None          # Java finished only after the shell
        assert (rc, err) == (0, '') and out.endswith('now 5\n')
        assert time.monotonic() - start > 0.5
    finally:
        shell.wait(timeout=30)


def test_java_refuses_another_type(shmfs, classes):
    util.new_object(shmfs, 'counter', 'f64', '1.5')
    rc, out, err = util.finish(java(classes, shmfs.path, 'counter', 1), 300)
    assert (rc, out) == (1, '')
    assert err == f'Counter: {shmfs.p("counter")} is f64, not i64\n'
    assert util.cat(shmfs.p('counter')) == '1.5\n'
