"""Writers of every kind at once, counted exactly, in both modes, while the
kernel drops clean pages (drop_caches) every few milliseconds when it lets
us: nothing any of them wrote may be lost.

Object a (i64[512], one page): every writer adds 1 to element 0 under a
flock of a: text read-modify-write of the whole array, pread/pwrite,
stores through a held mapping, and atomic adds (which wait for the lock).
The final value is the sum of what each writer says it added.

Object b (i64[512], one page), no lock: CPU atomic adds through mappings
and atomic adds by ioctl on element 0; two more processes write their own
element of the same page (pwrite, or a mapping store) and read back each
value they wrote.  Element 0 ends at the sum of the adds, and each own
element at its writer's last value."""

import os
import struct
import subprocess
import threading
import time

import pytest

import util

SECONDS = float(os.environ.get('SHMFS_COUNT_SECONDS', '8'))
DROP_CACHES = '/proc/sys/vm/drop_caches'

IOC_ATOMIC = (3 << 30) | (48 << 16) | (ord('S') << 8) | 1

LOCKED_WRITER = r'''
import fcntl, mmap, os, struct, sys, time
kind, raw, text, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
lk = os.open(text, os.O_RDONLY)
fd = os.open(raw, os.O_RDWR)
m = mmap.mmap(fd, 4096) if kind == 'mmap' else None
deadline, n = time.monotonic() + secs, 0
while time.monotonic() < deadline:
    if kind == 'ioctl':
        buf = bytearray(struct.pack('=IIQqqqII', 1, 0, 0, 1, 0, 0, 0, 0))
        fcntl.ioctl(fd, %(ioc)d, buf, True)
        n += 1
        continue
    fcntl.flock(lk, fcntl.LOCK_EX)
    if kind == 'text':
        with open(text) as f:
            values = f.read().split()
        values[0] = str(int(values[0]) + 1)
        with open(text, 'w') as f:
            f.write(' '.join(values) + '\n')
    elif kind == 'pwrite':
        v = struct.unpack('=q', os.pread(fd, 8, 0))[0]
        os.pwrite(fd, struct.pack('=q', v + 1), 0)
    else:
        v = struct.unpack_from('=q', m, 0)[0]
        struct.pack_into('=q', m, 0, v + 1)
    fcntl.flock(lk, fcntl.LOCK_UN)
    n += 1
print(n)
''' % {'ioc': IOC_ATOMIC}

OWN_WRITER = r'''
import mmap, os, struct, sys, time
kind, raw, index, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fd = os.open(raw, os.O_RDWR)
m = mmap.mmap(fd, 4096) if kind == 'mmap' else None
deadline, v = time.monotonic() + secs, 0
while time.monotonic() < deadline:
    v += 1
    if kind == 'pwrite':
        os.pwrite(fd, struct.pack('=q', v), 8 * index)
    else:
        struct.pack_into('=q', m, 8 * index, v)
    got = struct.unpack('=q', os.pread(fd, 8, 8 * index))[0]
    if got != v:
        sys.exit(f'{kind} of {v} to element {index}: read back {got}')
print(v)
'''

ADDER_C = r'''
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main (int argc, char **argv)
{
  double deadline = now () + atof (argv[2]);
  int fd = open (argv[1], O_RDWR);
  if (fd < 0) { perror ("open"); return 1; }
  int64_t *p = mmap (NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) { perror ("mmap"); return 1; }
  long n = 0;
  while (now () < deadline)
    for (int i = 0; i < 1000; i++, n++)
      __atomic_fetch_add (p, 1, __ATOMIC_SEQ_CST);
  printf ("%ld\n", n);
  return munmap (p, 4096);
}
'''


class CacheDropper:
    """Drops the kernel's clean pages every few ms while it runs, if this
    process may (root); says whether it did."""

    def __init__(self):
        self.able = os.access(DROP_CACHES, os.W_OK)
        self.drops = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self):
        while not self._stop.wait(0.005):
            with open(DROP_CACHES, 'w') as f:
                f.write('1\n')
            self.drops += 1

    def __enter__(self):
        if self.able:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.able:
            self._thread.join()


def _spawn(*args):
    return subprocess.Popen(list(args), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _counts(procs, timeout):
    return [int(out) for out in util.finish_all(procs, timeout)]


@util.both_modes
def test_mixed_writers_count_exactly(shmfs, tmp_path):
    exe = tmp_path / 'adder'
    (tmp_path / 'adder.c').write_text(ADDER_C)
    r = subprocess.run(['gcc', '-O2', '-o', str(exe), str(tmp_path / 'adder.c')],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    a = util.new_object(shmfs, 'a', 'i64[512]')
    b = util.new_object(shmfs, 'b', 'i64[512]')
    secs = str(SECONDS)

    with CacheDropper() as dropper:
        locked = [_spawn(util.PYTHON, '-c', LOCKED_WRITER, kind, shmfs.r('a'), a, secs)
                  for kind in ('text', 'pwrite', 'mmap', 'ioctl')]
        adders = [_spawn(str(exe), shmfs.r('b'), secs) for _ in range(2)]
        adders.append(_spawn(util.PYTHON, '-c', LOCKED_WRITER, 'ioctl', shmfs.r('b'),
                             b, secs))
        own = [_spawn(util.PYTHON, '-c', OWN_WRITER, kind, shmfs.r('b'), str(index), secs)
               for kind, index in (('pwrite', 5), ('mmap', 6))]
        timeout = SECONDS + 120
        locked_counts = _counts(locked, timeout)
        add_counts = _counts(adders, timeout)
        own_last = _counts(own, timeout)
    if dropper.able:
        assert dropper.drops > 0

    assert all(n > 0 for n in locked_counts + add_counts + own_last)
    want_a = [sum(locked_counts)] + [0] * 511
    want_b = [0] * 512
    want_b[0], want_b[5], want_b[6] = sum(add_counts), own_last[0], own_last[1]
    for name, want in (('a', want_a), ('b', want_b)):
        text = [int(v) for v in util.read_text(shmfs.p(name)).split()]
        raw = list(struct.unpack('=512q', util.read_bytes(shmfs.r(name))))
        with util.mapped(shmfs.r(name), 4096) as m:
            mapped = list(struct.unpack('=512q', m[:4096]))
        assert text == want, f'{name} text: {text[:8]} want {want[:8]}'
        assert raw == want, f'{name} raw: {raw[:8]} want {want[:8]}'
        assert mapped == want, f'{name} mapped: {mapped[:8]} want {want[:8]}'
    assert shmfs.alive()
