"""shmfs-exerciser (tests/exerciser/shmfs-exerciser.c), fsx-style: worker
processes apply random ops to one u32 array -- pread/pwrite at any byte
offset and length, loads and stores through MAP_SHARED mappings, text reads,
atomic ioctls on either view, fsync/msync, reopen and remap -- each on its
own range of elements, so that every result is checked against an exact
model, while all of them add to shared counters whose totals are checked at
the end, and aim atomics that change nothing (add 0, cas(v, v), load) at
small zones of each other's ranges, which must never undo the owner's
pwrite of that very element.  Text writes set every element, so only a
single worker makes them.

Each run is a function of its seed: a failure prints the seed, the worker,
the op, expected and got, the worker's last ops and the command that
replays it (on a fresh mount: create the object with the same type first).

In both modes: a fixed seed and one from the clock (printed), on a 6-page
array whose worker ranges share pages with the counters, and on a
sub-page (slab) array; one worker with text writes; and the exerciser must
notice a byte changed behind its back (-X), so that it cannot pass
vacuously (with one worker, so that no race can get in first).
$SHMFS_EXERCISER is set by meson; otherwise the default build
directory's binary is used."""

import os
import re
import shlex
import subprocess
import tempfile
import time

import pytest

import util

HERE = os.path.dirname(os.path.abspath(__file__))
EXERCISER = os.environ.get('SHMFS_EXERCISER') or os.path.join(
    HERE, '..', '..', 'build', 'tests', 'exerciser', 'shmfs-exerciser')

# 6000 elements = 24000 bytes: six pages, each worker's range crossing page
# boundaries and sharing its first and last page with a counter and a
# neighbour.  700 elements = 2800 bytes: a small object in a slab slot.
BIG = 'u32[6000]'
SMALL = 'u32[700]'
NPROC = 4
# Ops per worker: a run takes 1-4 s on 2 CPUs (cached mode is the slower:
# each pwrite and atomic is a daemon round trip), 5-15 s per mode in all.
OPS = 30000
SOLO_OPS = 20000

TIME_SEED = time.time_ns() % 1000000007


def _exerciser():
    if not os.access(EXERCISER, os.X_OK):
        pytest.skip(f'shmfs-exerciser not built: {EXERCISER} (set SHMFS_EXERCISER)')
    return EXERCISER


def exercise(shmfs, name, *args, text=True, timeout=180):
    """Runs the exerciser on MNT/name; returns the CompletedProcess.  Its
    output goes to files, not pipes: a worker stuck in a request the daemon
    never answers outlives its parent, and would hold a pipe open."""
    cmd = [_exerciser()] + [str(a) for a in args]
    if text:
        cmd += ['-t', shmfs.p(name)]
    cmd.append(shmfs.r(name))
    print(f'$ {shlex.join(cmd)}  # mode={shmfs.mode()}, '
          f'{util.xattr(shmfs.p(name), "user.shmfs.type")}')
    t0 = time.monotonic()
    with tempfile.TemporaryFile('w+') as out, tempfile.TemporaryFile('w+') as err:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                           timeout=timeout)
        out.seek(0)
        err.seek(0)
        r = subprocess.CompletedProcess(cmd, p.returncode, out.read(), err.read())
    print(f'exit {r.returncode} after {time.monotonic() - t0:.1f} s')
    print(r.stdout, end='')
    print(r.stderr, end='')
    return r


def assert_ok(shmfs, r):
    assert r.returncode == 0, (
        f'the exerciser failed in {shmfs.mode()} mode; to replay, mount shmfs '
        f'-o mode={shmfs.mode()}, create the object with the same type and run '
        f'the replay line below\n{r.stderr}')
    assert re.match(r'shmfs-exerciser: OK: ', r.stdout), r.stdout
    assert shmfs.alive(), 'the daemon died'


def counts(stdout):
    """{kind: number} from the summary line."""
    head = stdout.split(' s:', 1)[1].split(';', 1)[0]
    words = head.split()
    return {k: int(v) for k, v in zip(words[::2], words[1::2])}


@util.both_modes
@pytest.mark.parametrize('seed', [1, TIME_SEED], ids=['fixed-seed', 'time-seed'])
@pytest.mark.parametrize('spec', [BIG, SMALL], ids=['pages', 'slab'])
def test_workers(shmfs, spec, seed):
    """NPROC workers, every kind of op but text writes; exact counters."""
    print(f'seed {seed}')
    util.new_object(shmfs, 'a', spec)
    r = exercise(shmfs, 'a', '-s', seed, '-n', OPS, '-p', NPROC)
    assert_ok(shmfs, r)
    done = counts(r.stdout)
    for kind in ('pread', 'pwrite', 'mread', 'mwrite', 'tread', 'atomic',
                 'counter', 'probe', 'sync', 'reopen'):
        assert done[kind] > 0, f'no {kind} op ran: {r.stdout}'
    assert done['twrite'] == 0


@util.both_modes
def test_single_worker_text_writes(shmfs):
    """One worker: text writes in every style (one write, a Python list,
    cut in pieces anywhere, a line per element, hex and tabs) mixed with
    everything else, and every byte, counters included, exactly modelled."""
    util.new_object(shmfs, 'solo', BIG)
    r = exercise(shmfs, 'solo', '-s', 7, '-n', SOLO_OPS, '-p', 1)
    assert_ok(shmfs, r)
    assert counts(r.stdout)['twrite'] > 0


@util.both_modes
@pytest.mark.parametrize('where', ['mid-run', 'before-final-check'])
def test_detects_corruption(shmfs, where):
    """-X OP: the worker changes one byte behind its model's back (by pwrite
    or a mapping store); the run must fail with a miscompare report that
    names the seed, shows expected and got, logs the corruption, stars it
    as an op that touched the byte and says how to replay."""
    n = 2000
    at = n // 2 if where == 'mid-run' else n
    util.new_object(shmfs, 'c', BIG)
    r = exercise(shmfs, 'c', '-s', 3, '-n', n, '-p', 1, '-X', at)
    assert r.returncode == 1, f'corruption not detected:\n{r.stdout}{r.stderr}'
    err = r.stderr
    assert re.search(r'FAILED: seed 3, worker 0, op \d+: MISCOMPARE', err), err
    assert re.search(r'expected at \d+:( [0-9a-f]{2})+\n  got      at \d+:', err), err
    assert re.search(rf'^ \*#{at}\s.*inject\s+CORRUPTION', err, re.M), err
    assert re.search(r'^replay: .*shmfs-exerciser -s 3 .*-X ' + str(at), err, re.M), err
    assert r.stdout == ''
    assert shmfs.alive(), 'the daemon died'


@util.both_modes
def test_failure_stops_every_worker(shmfs):
    """With several workers, the first failure ends the run: the parent
    stops the others and exits 1."""
    util.new_object(shmfs, 'c', SMALL)
    r = exercise(shmfs, 'c', '-s', 5, '-n', 3000, '-p', NPROC, '-X', 0)
    assert r.returncode == 1
    assert 'MISCOMPARE' in r.stderr
    assert re.search(r'worker \d failed \(exit 1\); the others were stopped', r.stderr)
    assert shmfs.alive(), 'the daemon died'


@util.both_modes
def test_replay_is_deterministic(shmfs):
    """The same seed fails at the same op with the same report (times
    aside)."""
    util.new_object(shmfs, 'd', SMALL)
    reports = []
    for _ in range(2):
        r = exercise(shmfs, 'd', '-s', 11, '-n', 1000, '-p', 1, '-X', 300)
        assert r.returncode == 1
        reports.append(re.sub(r'\[[0-9.]+-[0-9.]+\]', '[time]', r.stderr))
    assert reports[0] == reports[1]


def test_bad_arguments(shmfs):
    """Usage errors and objects the exerciser cannot use: exit 2, a
    message, nothing done."""
    ex = _exerciser()

    def run(*args):
        return subprocess.run([ex] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=30)

    r = run()
    assert r.returncode == 2 and 'usage:' in r.stderr
    r = run('-n', 'many', shmfs.r('x'))
    assert r.returncode == 2 and 'bad number' in r.stderr
    util.new_object(shmfs, 'i', 'i64[100]', text=' '.join(['5'] * 100))
    r = run(shmfs.r('i'))
    assert r.returncode == 2 and 'u32' in r.stderr
    assert util.read_text(shmfs.p('i')) == ' '.join(['5'] * 100) + '\n'
    util.new_object(shmfs, 'tiny', 'u32[4]')
    r = run('-p', 4, shmfs.r('tiny'))
    assert r.returncode == 2 and 'too small' in r.stderr
    r = run('-n', 10, '-X', 11, shmfs.r('tiny'))
    assert r.returncode == 2 and 'past the last op' in r.stderr
    assert shmfs.alive()
