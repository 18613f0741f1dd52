#!/usr/bin/python3
"""value_mmap.py — the seed's multiprocessing.Value example, on shmfs, stdlib only.

Python's

    num = Value('d', 0.0)
    p = Process(target=f, args=(num,))   # f sets num.value = 3.1415926
    p.start(); p.join()
    print(num.value)

becomes a file: MNT/value, typed f64.  The parent creates it and maps its
binary view MNT/.raw/value; a child process opens and maps that view on its
own and stores 3.1415926 with struct.pack_into.  The parent then reads the
store from its own mapping (no msync, no pipe), and the text view MNT/value
shows the same bytes to cat.  "set" and "get" split the two sides into
separately started processes, in any language: C's examples/c/value.c
speaks the same file.

Usage: value_mmap.py [set|get] [MNT]     MNT: argument, else $SHMFS_MNT, else /tmp/shm
  value_mmap.py MNT        create MNT/value = 0, start the storing child, print the result
  value_mmap.py set MNT    store 3.1415926 from this process (creating MNT/value if absent)
  value_mmap.py get MNT    print MNT/value as read through this process's own mapping

Against a mount at /tmp/exmnt (started with: build/fs/shmfs /tmp/exmnt):

    $ python3 examples/python/value_mmap.py /tmp/exmnt
    parent created /tmp/exmnt/value (f64), its mapping reads 0.0
    child 7827 stored 3.1415926 into its own mapping of /tmp/exmnt/.raw/value
    cat /tmp/exmnt/value: 3.1415926
    3.1415926
    $ rm /tmp/exmnt/value
    $ python3 examples/python/value_mmap.py set /tmp/exmnt
    pid 7831 stored 3.1415926 into its own mapping of /tmp/exmnt/.raw/value
    $ build/examples/value get /tmp/exmnt
    3.1415926
"""
import errno
import mmap
import multiprocessing
import os
import struct
import sys

TYPE_XATTR = 'user.shmfs.type'
PI_ISH = 3.1415926
F64 = struct.Struct('d')  # native byte order, like the binary view


def check_mount(mnt):
    """Exits unless mnt is a shmfs mount: only shmfs has MNT/.raw."""
    if not os.path.isdir(os.path.join(mnt, '.raw')):
        sys.exit(f'value_mmap.py: {mnt} is not a shmfs mount (no {mnt}/.raw)')


def create_value(mnt):
    """Creates MNT/value of type f64 atomically: under a temporary name,
    typed (which zero-fills it, so it reads 0 like Value('d', 0.0)), then
    renamed into place, replacing any older MNT/value."""
    tmp = os.path.join(mnt, f'.value.tmp{os.getpid()}')
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.setxattr(fd, TYPE_XATTR, b'f64')
        os.rename(tmp, os.path.join(mnt, 'value'))
    except OSError:
        os.unlink(tmp)
        raise
    finally:
        os.close(fd)


def map_value(mnt):
    """Returns a shared mapping of the binary view of MNT/value (an f64)."""
    try:
        kind = os.getxattr(os.path.join(mnt, 'value'), TYPE_XATTR).decode()
    except OSError as e:
        if e.errno != errno.ENODATA:
            raise
        raise OSError(f'{mnt}/value has no type yet') from None
    if kind != 'f64':
        raise OSError(f'{mnt}/value has type {kind}, not f64')
    fd = os.open(os.path.join(mnt, '.raw', 'value'), os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        if size != F64.size:
            raise OSError(f'{mnt}/.raw/value is {size} bytes, not {F64.size}')
        return mmap.mmap(fd, F64.size, mmap.MAP_SHARED,
                         mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)  # the mapping keeps the object


def store_pi(mnt):
    """What the child (or "value_mmap.py set") does: its own mapping, one store."""
    with map_value(mnt) as num:
        F64.pack_into(num, 0, PI_ISH)


def child(mnt):
    try:
        store_pi(mnt)
    except OSError as e:
        sys.exit(f'value_mmap.py: child: {e}')
    print(f'child {os.getpid()} stored {PI_ISH} into its own mapping'
          f' of {mnt}/.raw/value', flush=True)


def run_fork(mnt):
    create_value(mnt)
    with map_value(mnt) as num:
        print(f'parent created {mnt}/value (f64),'
              f' its mapping reads {F64.unpack_from(num)[0]}', flush=True)

        p = multiprocessing.Process(target=child, args=(mnt,))
        p.start()
        p.join()
        if p.exitcode != 0:
            sys.exit('value_mmap.py: the child failed')

        with open(os.path.join(mnt, 'value')) as f:
            print(f'cat {mnt}/value: {f.read().rstrip()}')
        value = F64.unpack_from(num)[0]
        if value != PI_ISH:
            sys.exit(f"value_mmap.py: the parent's mapping reads {value}, not {PI_ISH}")
        print(value)  # print(num.value)


def run_set(mnt):
    if not os.path.exists(os.path.join(mnt, 'value')):
        create_value(mnt)
    store_pi(mnt)
    print(f'pid {os.getpid()} stored {PI_ISH} into its own mapping'
          f' of {mnt}/.raw/value')


def run_get(mnt):
    with map_value(mnt) as num:
        print(F64.unpack_from(num)[0])


def main():
    args = sys.argv[1:]
    mode = args.pop(0) if args and args[0] in ('set', 'get') else None
    if len(args) > 1 or (args and args[0].startswith('-')):
        print('usage: value_mmap.py [set|get] [MNT]', file=sys.stderr)
        sys.exit(2)
    mnt = (args[0] if args else None) or os.environ.get('SHMFS_MNT') or '/tmp/shm'

    check_mount(mnt)
    try:
        {None: run_fork, 'set': run_set, 'get': run_get}[mode](mnt)
    except OSError as e:
        sys.exit(f'value_mmap.py: {e}')


if __name__ == '__main__':
    main()
