#!/usr/bin/python3
"""array_client.py -- the seed's multiprocessing.Array program on shmfs,
through the shmfs Python package (pip install clients/python).

It is the seed program with two lines changed: the import of Array comes
from shmfs instead of multiprocessing, and Array() is given path=, the file
the array lives in (here 'arr', relative: run it from inside the mount).
Process is still multiprocessing's; the forked child fills the array through
its own mapping, and the parent, `cat` and any other process see the ints:

    -from multiprocessing import Array
    +from shmfs import Array
    -    arr = Array('i', 5)
    +    arr = Array('i', 5, path='arr')

Against a mount at /tmp/exmnt (started with: build/fs/shmfs /tmp/exmnt):

    $ cd /tmp/exmnt && python3 ~/shmfs/examples/python/array_client.py
    [0, 1, 2, 3, 4]
    $ cat arr; od -An -td4 .raw/arr
    0 1 2 3 4
               0           1           2           3
               4
"""
from multiprocessing import Process
from shmfs import Array


def f(a):
    for i in range(len(a)):
        a[i] = i


if __name__ == '__main__':
    arr = Array('i', 5, path='arr')
    p = Process(target=f, args=(arr,))
    p.start()
    p.join()
    print(arr[:])
