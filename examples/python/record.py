#!/usr/bin/python3
"""record.py -- a robot's pose, a record shared by one writer and readers,
the same record examples/c/pose.c maps as a C struct and
examples/shell/pose.sh reads and writes as JSON.

MNT/pose has the record type

    {seq:u64, t:f64, pos:{x:f64, y:f64, z:f64}, yaw:f64, frame:char[8]}

which is the ctypes.Structure class Pose below, field for field: its binary
view MNT/.raw/pose is the class's bytes (C layout, 56 bytes), its text view
JSON.  attach(path, Pose) and Value(Pose, ..., path=path) check the
object's layout against the class before mapping it, as pose.c does with
libshmfs.  The protocol is pose.c's, so the two interoperate on one mount:
seq is a seqlock.  The writer makes it odd with the daemon's atomic add on
the field (pose.add('seq', 1)), stores the pose's fields through get_obj()
(the Pose instance over its mapping), then makes it even again, so seq / 2
counts the poses published.  A reader loads seq (pose.load('seq')), copies
the whole Pose out of the mapping, loads seq again, and retries while the
writer was between its two adds: it never sees half of one pose.  By
default a writer process and two reader processes, each attaching on its
own, share a fresh MNT/pose; each reader prints every pose it finds and
counts its snapshots; then the parent checks pose.seq (a field attribute,
read holding the object's lock) and shows the text view, as cat and
`shmfs get MNT/pose --field pos` see it.  "write" and "read" split the two sides into
separately started processes, in any language.

Usage: record.py [write|read] [MNT] [N]   MNT: argument, else $SHMFS_MNT,
                                          else /tmp/shm; N: poses (default 5)
  record.py MNT         create MNT/pose, start a writer of N poses and two readers
  record.py write MNT   publish N poses (creating MNT/pose if absent)
  record.py read MNT    print the current pose, read consistently

Against a mount at /tmp/exmnt (started with: build/fs/shmfs /tmp/exmnt):

    $ python3 examples/python/record.py /tmp/exmnt 3
    /tmp/exmnt/pose {seq:u64, t:f64, pos:{x:f64, y:f64, z:f64}, yaw:f64, frame:char[8]} matches class Pose (56 bytes)
    reader 1: pose 1 at t=1796317440.277 pos=(1, 2, 0.5) yaw=0.25 frame=map
    reader 2: pose 1 at t=1796317440.277 pos=(1, 2, 0.5) yaw=0.25 frame=map
    reader 1: pose 2 at t=1796317440.306 pos=(2, 4, 0.5) yaw=0.5 frame=map
    reader 2: pose 2 at t=1796317440.306 pos=(2, 4, 0.5) yaw=0.5 frame=map
    reader 1: pose 3 at t=1796317440.340 pos=(3, 6, 0.5) yaw=0.75 frame=map
    reader 2: pose 3 at t=1796317440.340 pos=(3, 6, 0.5) yaw=0.75 frame=map
    reader 2: 27 snapshots, all whole, last pose 3
    reader 1: 28 snapshots, all whole, last pose 3
    writer 24167 published 3 poses into its own mapping of /tmp/exmnt/.raw/pose
    cat /tmp/exmnt/pose: {"seq": 6, "t": 1796317440.3401058, "pos": {"x": 3, "y": 6, "z": 0.5}, "yaw": 0.75, "frame": "map"}
    $ build/examples/pose read /tmp/exmnt
    pose 3 at t=1796317440.340 pos=(3, 6, 0.5) yaw=0.75 frame=map
    $ build/examples/pose write /tmp/exmnt 2
    writer 24172 published 2 poses into its own mapping of /tmp/exmnt/.raw/pose
    $ python3 examples/python/record.py read /tmp/exmnt
    pose 5 at t=1796317440.759 pos=(2, 4, 0.5) yaw=0.5 frame=map
    $ build/fs/shmfs get /tmp/exmnt/pose --field pos
    {"x": 2, "y": 4, "z": 0.5}
    $ python3 examples/python/record.py write /tmp/exmnt 4; build/examples/pose read /tmp/exmnt
    writer 24242 published 4 poses into its own mapping of /tmp/exmnt/.raw/pose
    pose 9 at t=1796317442.638 pos=(4, 8, 0.5) yaw=1 frame=map
    $ rm /tmp/exmnt/pose; build/fs/shmfs new /tmp/exmnt/pose '{t:f64, x:f32}'
    $ python3 examples/python/record.py read /tmp/exmnt
    record.py: /tmp/exmnt/pose: Pose does not match the record {t:f64, x:f32}: field seq: the class has seq:u64 at offset 0, the object has t:f64 at offset 0
    $ python3 examples/python/record.py /tmp
    record.py: /tmp is not a shmfs mount

(A slow reader may skip a pose; it never sees half of one.  The readers'
lines interleave as the processes run, each line whole.)
"""
import ctypes
import multiprocessing
import os
import sys
import time

from shmfs import Value, attach

PROG = 'record.py'


class Pos(ctypes.Structure):
    _fields_ = [('x', ctypes.c_double), ('y', ctypes.c_double),
                ('z', ctypes.c_double)]                 # metres


class Pose(ctypes.Structure):
    _fields_ = [('seq', ctypes.c_uint64),               # a seqlock: odd while being written
                ('t', ctypes.c_double),                 # seconds since the epoch
                ('pos', Pos),
                ('yaw', ctypes.c_double),               # radians
                ('frame', ctypes.c_char * 8)]           # NUL-padded


class Failure(Exception):
    """What stops the program, said on stderr."""


def say(line):
    """Prints line with one write(2), so lines from several processes never
    mix."""
    os.write(sys.stdout.fileno(), (line + '\n').encode())


def open_pose(mnt, create):
    """MNT/pose as a SharedRecord of Pose, created first (all zero) when
    create is set and it is absent."""
    path = os.path.join(mnt, 'pose')
    try:
        if create:
            return Value(Pose, path=path)
        return attach(path, Pose)
    except ValueError:                                  # not on a shmfs mount
        raise Failure(f'{mnt} is not a shmfs mount') from None
    except FileNotFoundError:
        if not os.path.isdir(mnt):
            raise Failure(f'{mnt} is not a shmfs mount') from None
        raise Failure(f'{path}: no such object') from None
    except FileExistsError as e:                        # Value: another record
        raise Failure(f'{path}: {e.strerror}') from None
    except TypeError as e:                              # attach: another record
        raise Failure(str(e)) from None


def publish(pose, k):
    """Publishes pose number k: seq goes odd, the fields change, seq goes
    even."""
    p = pose.get_obj()                                  # the Pose over the mapping
    pose.add('seq', 1)                                  # odd: readers retry
    p.t = time.time()
    p.pos.x, p.pos.y, p.pos.z = k, 2.0 * k, 0.5
    p.yaw = 0.25 * k
    p.frame = b'map'
    pose.add('seq', 1)                                  # even: pose k is whole


def read_pose(pose):
    """A consistent copy of the pose: retried while the writer is between
    its two adds to seq."""
    p = pose.get_obj()
    while True:
        before = pose.load('seq')
        copy = Pose.from_buffer_copy(p)
        after = pose.load('seq')
        if before % 2 == 0 and before == after:
            copy.seq = before
            return copy


def describe(p):
    return (f'pose {p.seq // 2} at t={p.t:.3f} pos=({p.pos.x:g}, {p.pos.y:g}, {p.pos.z:g}) '
            f'yaw={p.yaw:g} frame={p.frame.decode()}')


def run_write(mnt, n):
    pose = open_pose(mnt, create=True)
    for k in range(1, n + 1):
        publish(pose, k)
        pose.notify()                                   # wakes `shmfs watch MNT/pose`
        time.sleep(0.02)
    say(f'writer {os.getpid()} published {n} poses into its own mapping of {pose.raw_path}')


def run_read(mnt):
    say(describe(read_pose(open_pose(mnt, create=False))))


def reader(mnt, number, n):
    """Every pose it finds, until the last; each one must be whole (y = 2x,
    yaw = x / 4), which the seqlock guarantees."""
    pose = open_pose(mnt, create=False)
    snapshots, seen = 0, 0
    while seen < 2 * n:
        now = read_pose(pose)
        snapshots += 1
        if now.seq != seen:
            if now.pos.y != 2 * now.pos.x or now.yaw != now.pos.x / 4:   # never
                raise Failure(f'reader {number} read half of a pose: {describe(now)}')
            say(f'reader {number}: {describe(now)}')
            seen = now.seq
        time.sleep(0.001)
    say(f'reader {number}: {snapshots} snapshots, all whole, last pose {seen // 2}')


def child(target, *args):
    """A process's body: its failure said on stderr, its exit status 1."""
    try:
        target(*args)
    except Failure as e:
        sys.stderr.write(f'{PROG}: {e}\n')
        sys.exit(1)


def run_processes(mnt, n):
    # Created afresh: typed under a temporary name, then renamed over any
    # older MNT/pose (of this type or another).
    tmp = os.path.join(mnt, f'.pose.tmp{os.getpid()}')
    path = os.path.join(mnt, 'pose')
    try:
        fresh = Value(Pose, 0, 0.0, (0, 0, 0), 0.0, b'map', path=tmp)
    except (ValueError, FileNotFoundError):
        raise Failure(f'{mnt} is not a shmfs mount') from None
    fresh.close()
    os.rename(tmp, path)
    pose = open_pose(mnt, create=False)
    say(f'{path} {pose.typecode} matches class Pose ({ctypes.sizeof(Pose)} bytes)')

    # Each process attaches on its own, as separately started ones would.
    readers = [multiprocessing.Process(target=child, args=(reader, mnt, i, n))
               for i in (1, 2)]
    writer = multiprocessing.Process(target=child, args=(run_write, mnt, n))
    for p in readers + [writer]:
        p.start()
    writer.join()
    for p in readers:
        if writer.exitcode != 0:                        # no last pose to wait for
            p.terminate()
        p.join()
    if any(p.exitcode != 0 for p in readers + [writer]):
        raise Failure('the writer or a reader failed')
    if pose.seq != 2 * n:                               # a field read under the lock
        raise Failure(f'seq is {pose.seq}, not {2 * n}')
    with open(path) as f:
        say(f'cat {path}: {f.read().rstrip()}')


def main(argv):
    args = argv[1:]
    mode = args.pop(0) if args and args[0] in ('write', 'read') else None
    mnt = args.pop(0) if args else None
    try:
        n = int(args.pop(0)) if args else 5
    except ValueError:
        n = 0
    if args or n < 1 or (mnt is not None and mnt.startswith('-')):
        sys.stderr.write(f'usage: {PROG} [write|read] [MNT] [N]\n')
        return 2
    if not mnt:
        mnt = os.environ.get('SHMFS_MNT') or '/tmp/shm'
    try:
        if mode is None:
            run_processes(mnt, n)
        elif mode == 'write':
            run_write(mnt, n)
        else:
            run_read(mnt)
    except Failure as e:
        sys.stderr.write(f'{PROG}: {e}\n')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
