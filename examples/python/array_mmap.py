#!/usr/bin/python3
"""array_mmap.py — the seed's multiprocessing.Array example, on shmfs, stdlib only.

Python's

    arr = Array('i', 5)
    p = Process(target=f, args=(arr,))   # f sets arr[i] = i for i in 0..4
    p.start(); p.join()
    print(arr[:])

becomes a file: MNT/array, typed i32[5].  The parent creates it and maps its
binary view MNT/.raw/array (5 native ints, C layout); a child process opens
and maps that view on its own and, through memoryview.cast('i'), fills it
with the seed's very statement arr[i] = i.  The parent then reads the ints
from its own mapping (no msync, no pipe), and the text view MNT/array shows
them to cat.

Usage: array_mmap.py [MNT]     MNT: argument, else $SHMFS_MNT, else /tmp/shm

Against a mount at /tmp/exmnt (started with: build/fs/shmfs /tmp/exmnt):

    $ python3 examples/python/array_mmap.py /tmp/exmnt
    parent created /tmp/exmnt/array (i32[5]), its mapping reads [0, 0, 0, 0, 0]
    child 7829 stored 0..4 into its own mapping of /tmp/exmnt/.raw/array
    cat /tmp/exmnt/array: 0 1 2 3 4
    [0, 1, 2, 3, 4]
"""
import os
import sys

import mmap
import multiprocessing
import struct

TYPE_XATTR = 'user.shmfs.type'
LEN = 5
TYPE = f'i32[{LEN}]'
NBYTES = LEN * struct.calcsize('i')


def check_mount(mnt):
    """Exits unless mnt is a shmfs mount: only shmfs has MNT/.raw."""
    if not os.path.isdir(os.path.join(mnt, '.raw')):
        sys.exit(f'array_mmap.py: {mnt} is not a shmfs mount (no {mnt}/.raw)')


def create_array(mnt):
    """Creates MNT/array of type i32[5] atomically: under a temporary name,
    typed (which zero-fills it, like Array('i', 5)), then renamed into
    place, replacing any older MNT/array."""
    tmp = os.path.join(mnt, f'.array.tmp{os.getpid()}')
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.setxattr(fd, TYPE_XATTR, TYPE.encode())
        os.rename(tmp, os.path.join(mnt, 'array'))
    except OSError:
        os.unlink(tmp)
        raise
    finally:
        os.close(fd)


def map_array(mnt):
    """Returns a shared mapping of the binary view MNT/.raw/array."""
    fd = os.open(os.path.join(mnt, '.raw', 'array'), os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        if size != NBYTES:
            raise OSError(f'{mnt}/.raw/array is {size} bytes, not {NBYTES}')
        return mmap.mmap(fd, NBYTES, mmap.MAP_SHARED,
                         mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)  # the mapping keeps the object


def child(mnt):
    try:
        with map_array(mnt) as m, memoryview(m).cast('i') as arr:
            for i in range(LEN):
                arr[i] = i
    except OSError as e:
        sys.exit(f'array_mmap.py: child: {e}')
    print(f'child {os.getpid()} stored 0..4 into its own mapping'
          f' of {mnt}/.raw/array', flush=True)


def main():
    args = sys.argv[1:]
    if len(args) > 1 or (args and args[0].startswith('-')):
        print('usage: array_mmap.py [MNT]', file=sys.stderr)
        sys.exit(2)
    mnt = (args[0] if args else None) or os.environ.get('SHMFS_MNT') or '/tmp/shm'

    check_mount(mnt)
    try:
        create_array(mnt)
        with map_array(mnt) as m, memoryview(m).cast('i') as arr:
            print(f'parent created {mnt}/array ({TYPE}),'
                  f' its mapping reads {arr.tolist()}', flush=True)

            p = multiprocessing.Process(target=child, args=(mnt,))
            p.start()
            p.join()
            if p.exitcode != 0:
                sys.exit('array_mmap.py: the child failed')

            with open(os.path.join(mnt, 'array')) as f:
                print(f'cat {mnt}/array: {f.read().rstrip()}')
            values = arr.tolist()
            if values != list(range(LEN)):
                sys.exit(f"array_mmap.py: the parent's mapping reads {values}")
            print(values)  # print(arr[:])
    except OSError as e:
        sys.exit(f'array_mmap.py: {e}')


if __name__ == '__main__':
    main()
