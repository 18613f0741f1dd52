#!/usr/bin/python3
"""value_client.py -- the seed's multiprocessing.Value program on shmfs,
through the shmfs Python package (pip install clients/python).

It is the seed program with two lines changed: the import of Value comes
from shmfs instead of multiprocessing, and Value() is given path=, the file
the value lives in (here 'num', relative: run it from inside the mount).
Process is still multiprocessing's; the forked child maps the object on its
own and its store is read back by the parent, by `cat` and by any other
process, in any language, later:

    -from multiprocessing import Value
    +from shmfs import Value
    -    num = Value('d', 0.0)
    +    num = Value('d', 0.0, path='num')

A second run attaches to the existing num (same type) instead of creating it.

Against a mount at /tmp/exmnt (started with: build/fs/shmfs /tmp/exmnt):

    $ cd /tmp/exmnt && python3 ~/shmfs/examples/python/value_client.py
    3.1415926
    $ cat /tmp/exmnt/num; getfattr -n user.shmfs.type --only-values num; echo
    3.1415926
    f64
"""
from multiprocessing import Process
from shmfs import Value


def f(n):
    n.value = 3.1415926


if __name__ == '__main__':
    num = Value('d', 0.0, path='num')
    p = Process(target=f, args=(num,))
    p.start()
    p.join()
    print(num.value)
