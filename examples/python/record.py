#!/usr/bin/python3
"""record.py -- a robot's pose, a record shared by one writer and readers.

A ctypes.Structure is a shmfs record type: Value(Pose, ..., path=MNT/pose)
makes the file MNT/pose, typed {stamp:f64, seq:u64, xyz:f64[3],
quat:f64[4], frame:char[16], moving:bool, ticks:u32}, whose binary view
MNT/.raw/pose
is the Structure's bytes (C layout), and whose text view is JSON.  The
writer process stores a new pose N times, every field of it inside
`with pose:` (the object's lock), so that a reader taking the lock the same
way never sees half of one pose and half of the next; it counts the poses
in seq.  Two reader processes take snapshots the same way (pose.todict())
and check each one: xyz and the stamp must be those of its seq.  Poses are
attributes (pose.seq, pose.xyz[0]) as in multiprocessing's Value of a
Structure; the daemon's atomic add on a field (pose.add('ticks', 1)) counts
the readers' snapshots without the lock.  The last pose is then what `cat`
shows, and any other process -- in any language -- can map the same bytes.

Usage: record.py [MNT [N]]    MNT: argument, else $SHMFS_MNT, else /tmp/shm;
                              N poses (default 200)

Against a mount at /tmp/exmnt (started with: build/fs/shmfs /tmp/exmnt):

    $ python3 examples/python/record.py /tmp/exmnt
    /tmp/exmnt/pose: {stamp:f64, seq:u64, xyz:f64[3], quat:f64[4], frame:char[16], moving:bool, ticks:u32}
    writer stored 200 poses
    reader 2: 1056 snapshots, all consistent, last seq 200
    reader 1: 1054 snapshots, all consistent, last seq 200
    ticks (the readers' atomic adds): 2110
    $ cat /tmp/exmnt/pose
    {"stamp": 1796316348.1130002, "seq": 200, "xyz": [20, -40, 0.5], "quat": [1, 0, 0, 0], "frame": "map", "moving": false, "ticks": 2110}
"""
import ctypes
import multiprocessing
import os
import sys
import time

from shmfs import Value


class Pose(ctypes.Structure):
    _fields_ = [('stamp', ctypes.c_double),          # seconds since the epoch
                ('seq', ctypes.c_uint64),            # poses stored so far
                ('xyz', ctypes.c_double * 3),        # metres, in frame
                ('quat', ctypes.c_double * 4),       # w, x, y, z
                ('frame', ctypes.c_char * 16),
                ('moving', ctypes.c_bool),
                ('ticks', ctypes.c_uint32)]          # the readers' snapshots


def expected_xyz(seq):
    return [0.1 * seq, -0.2 * seq, 0.5]


def writer(pose, n, t0):
    for seq in range(1, n + 1):
        with pose:                                   # one consistent pose
            pose.stamp = t0 + seq / 1000
            pose.xyz = expected_xyz(seq)
            pose.quat = (1, 0, 0, 0)
            pose.moving = seq < n
            pose.seq = seq
        time.sleep(0.001)


def reader(pose, number, t0, done):
    snapshots, bad, seq = 0, 0, -1
    while True:
        finished = done.is_set()
        with pose:
            p = pose.todict()
        pose.add('ticks', 1)
        snapshots += 1
        seq = p['seq']
        if seq and (p['xyz'] != expected_xyz(seq) or p['stamp'] != t0 + seq / 1000):
            bad += 1
        if finished:
            break
    line = (f'reader {number}: {snapshots} snapshots, '
            f'{"all consistent" if not bad else f"{bad} inconsistent"}, last seq {seq}\n')
    os.write(sys.stdout.fileno(), line.encode())     # one write: lines never mix
    sys.exit(1 if bad else 0)


def main():
    mnt = sys.argv[1] if len(sys.argv) > 1 else os.environ.get('SHMFS_MNT', '/tmp/shm')
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    path = os.path.join(mnt, 'pose')
    try:
        pose = Value(Pose, 0.0, 0, (0, 0, 0), (1, 0, 0, 0), b'map', path=path)
    except (ValueError, FileNotFoundError):
        sys.exit(f'record.py: {mnt} is not a shmfs mount')
    print(f'{path}: {pose.typecode}', flush=True)
    with pose:                                       # a second run starts over
        pose.seq, pose.ticks = 0, 0
    t0 = round(time.time(), 3)
    done = multiprocessing.Event()
    readers = [multiprocessing.Process(target=reader, args=(pose, i, t0, done))
               for i in (1, 2)]
    for r in readers:
        r.start()
    w = multiprocessing.Process(target=writer, args=(pose, n, t0))
    w.start()
    w.join()
    print(f'writer stored {pose.seq} poses', flush=True)
    done.set()
    for r in readers:
        r.join()
    print(f'ticks (the readers\' atomic adds): {pose.ticks}')
    sys.exit(max(r.exitcode for r in readers + [w]) != 0)


if __name__ == '__main__':
    main()
