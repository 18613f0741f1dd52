"""The atomic-operation ABI is written once, in include/shmfs/ioctl.h
(checked there by _Static_assert): every other language's copy of struct
shmfs_atomic and of the ioctl numbers agrees with it, field by field.  The
copies: the Python package's (clients/python/shmfs/_ioctl.py) and this
suite's own (test_atomic.py)."""

import json
import os
import struct
import subprocess

from shmfs import _ioctl

import test_atomic
import util

TOP = os.path.abspath(os.path.join(util.HERE, '..', '..'))

LAYOUT_C = r'''
#include <stddef.h>
#include <stdio.h>
#include <shmfs/ioctl.h>

#define FIELD(f) printf ("\"%s\": [%zu, %zu], ", #f, offsetof (struct shmfs_atomic, f), \
                         sizeof (((struct shmfs_atomic *) 0)->f))

int main (void)
{
  printf ("{\"size\": %zu, \"ioc_atomic\": %lu, \"ioc_notify\": %lu, \"fields\": {",
          sizeof (struct shmfs_atomic), (unsigned long) SHMFS_IOC_ATOMIC,
          (unsigned long) SHMFS_IOC_NOTIFY);
  FIELD (op); FIELD (flags); FIELD (index); FIELD (operand); FIELD (expected);
  FIELD (result); FIELD (swapped);
  printf ("\"field\": [%zu, %zu]}}\n", offsetof (struct shmfs_atomic, field),
          sizeof (((struct shmfs_atomic *) 0)->field));
  return 0;
}
'''

NAMES = ['op', 'flags', 'index', 'operand', 'expected', 'result', 'swapped', 'field']


def c_layout(tmp_path):
    (tmp_path / 'layout.c').write_text(LAYOUT_C)
    r = subprocess.run(['cc', '-I', os.path.join(TOP, 'include'), '-o',
                        str(tmp_path / 'layout'), str(tmp_path / 'layout.c')],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(tmp_path / 'layout')], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    return json.loads(out)


def fields_of(fmt):
    """(offset, size) of each item of a struct format with no padding
    ('=' or '<'), in order."""
    assert fmt[0] in '=<', fmt
    out, off = [], 0
    items = []
    i = 1
    while i < len(fmt):
        n = ''
        while fmt[i].isdigit():
            n += fmt[i]
            i += 1
        items.append((fmt[i], int(n) if n else 1))
        i += 1
    for code, count in items:
        size = struct.calcsize('=' + code)
        if code == 's':
            out.append((off, count))
            off += count
        else:
            for _ in range(count):
                out.append((off, size))
                off += size
    return out


def test_python_package_agrees_with_the_header(tmp_path):
    c = c_layout(tmp_path)
    assert _ioctl._ATOMIC.size == c['size'] == 48
    assert fields_of(_ioctl._ATOMIC.format) == [tuple(c['fields'][n]) for n in NAMES]
    assert _ioctl.SHMFS_IOC_ATOMIC == c['ioc_atomic']
    assert _ioctl.SHMFS_IOC_NOTIFY == c['ioc_notify']


def test_the_suites_copy_agrees_with_the_header(tmp_path):
    c = c_layout(tmp_path)
    assert test_atomic.ATOMIC_SIZE == c['size']
    assert fields_of(test_atomic.ATOMIC_FMT) == [tuple(c['fields'][n]) for n in NAMES]
    assert test_atomic.SHMFS_IOC_ATOMIC == c['ioc_atomic']


def test_a_wrong_copy_is_caught(tmp_path):
    """The comparison itself: a format with index as 32 bits disagrees."""
    c = c_layout(tmp_path)
    assert fields_of('=IIIQ8s8sII') != [tuple(c['fields'][n]) for n in NAMES]
