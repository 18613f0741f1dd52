"""The seed programs: a Value('d') set to 3.1415926 and an Array('i', 5)
filled 0..4 by a separately started child process, then read by the parent --
through the text view and through MAP_SHARED mappings of the binary view."""

import mmap
import struct

import pytest

import util

CHILD_VALUE_TEXT = r'''
import os, sys
path = sys.argv[1]
os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
os.setxattr(path, 'user.shmfs.type', b'd')
with open(path, 'w') as f:
    f.write('3.1415926\n')
'''

CHILD_VALUE_MMAP = r'''
import mmap, os, struct, sys
path, raw, create = sys.argv[1], sys.argv[2], sys.argv[3] == 'create'
if create:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    os.setxattr(path, 'user.shmfs.type', b'd')
fd = os.open(raw, os.O_RDWR)
m = mmap.mmap(fd, 8, mmap.MAP_SHARED)
os.close(fd)
struct.pack_into('d', m, 0, 3.1415926)
# exit without msync or munmap: the process's exit unmaps
os._exit(0)
'''

CHILD_ARRAY = r'''
import mmap, os, struct, sys
path, raw, how = sys.argv[1:4]
os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
os.setxattr(path, 'user.shmfs.type', b'i[5]')
if how == 'text-print-list':
    with open(path, 'w') as f:
        print(list(range(5)), file=f)
elif how == 'text-spaces':
    with open(path, 'w') as f:
        f.write('0 1 2 3 4\n')
elif how == 'pwrite':
    fd = os.open(raw, os.O_WRONLY)
    os.pwrite(fd, struct.pack('5i', *range(5)), 0)
    os.close(fd)
elif how == 'mmap-pack':
    fd = os.open(raw, os.O_RDWR)
    m = mmap.mmap(fd, 20, mmap.MAP_SHARED)
    struct.pack_into('5i', m, 0, *range(5))
    os._exit(0)
elif how == 'mmap-each-element':
    fd = os.open(raw, os.O_RDWR)
    m = mmap.mmap(fd, 20, mmap.MAP_SHARED)
    for i in range(5):
        struct.pack_into('i', m, 4 * i, i)
    m.close()
    os.close(fd)
'''


@util.both_modes
def test_value_text(shmfs):
    util.child(CHILD_VALUE_TEXT, shmfs.p('pi'))
    assert util.read_text(shmfs.p('pi')) == '3.1415926\n'
    assert util.sh_ok('cat pi', cwd=shmfs.path) == '3.1415926\n'
    assert util.xattr(shmfs.p('pi'), util.TYPE) == 'f64'
    assert util.read_bytes(shmfs.r('pi')) == struct.pack('d', 3.1415926)


@pytest.mark.parametrize('parent_maps_first', [False, True],
                         ids=['child-creates', 'parent-maps-first'])
@util.both_modes
def test_value_mmap(shmfs, parent_maps_first):
    pi, raw = shmfs.p('pi'), shmfs.r('pi')
    if parent_maps_first:
        util.new_object(shmfs, 'pi', 'd')
        with util.mapped(raw, 8) as m:
            assert struct.unpack_from('d', m, 0)[0] == 0.0
            util.child(CHILD_VALUE_MMAP, pi, raw, 'exists')
            assert struct.unpack_from('d', m, 0)[0] == 3.1415926
    else:
        util.child(CHILD_VALUE_MMAP, pi, raw, 'create')
    with util.mapped(raw, 8, prot=mmap.PROT_READ) as m:
        assert struct.unpack_from('d', m, 0)[0] == 3.1415926
    assert util.read_text(pi) == '3.1415926\n'


@pytest.mark.parametrize('how', ['text-print-list', 'text-spaces', 'pwrite',
                                 'mmap-pack', 'mmap-each-element'])
@util.both_modes
def test_array(shmfs, how):
    util.child(CHILD_ARRAY, shmfs.p('a'), shmfs.r('a'), how)
    assert util.sh_ok('cat a', cwd=shmfs.path) == '0 1 2 3 4\n'
    assert util.xattr(shmfs.p('a'), util.TYPE) == 'i32[5]'
    assert util.read_bytes(shmfs.r('a')) == struct.pack('5i', *range(5))
