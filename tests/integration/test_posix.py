"""POSIX where the contract is silent (docs/semantics.md), as pjdfstest
checks it and tmpfs behaves: over-long names are ENAMETOOLONG on every
path, chmod keeps setuid/setgid (a setgid directory hands down its group),
a change of owner clears setuid, .raw cannot be removed or renamed, and a
store never loads a bit that claims a privilege."""

import errno
import os
import stat
import subprocess

import pytest

import util
from util_store import mounts  # noqa: F401  (fixture)

OTHER = 65533
LONG = 'n' * 256


def err(fn, *args):
    return util.errno_of(fn, *args)


@util.both_modes
@pytest.mark.parametrize('where', ['main', 'raw', 'subdir'])
def test_long_name_is_enametoolong(shmfs, where):
    os.mkdir(shmfs.p('d'))
    base = {'main': shmfs.path, 'raw': shmfs.raw, 'subdir': shmfs.p('d')}[where]
    path = os.path.join(base, LONG)
    assert err(os.stat, path) == errno.ENAMETOOLONG
    assert err(os.open, path, os.O_RDONLY) == errno.ENAMETOOLONG
    assert err(os.unlink, path) == errno.ENAMETOOLONG
    if where != 'raw':
        assert err(os.open, path, os.O_CREAT | os.O_WRONLY) == errno.ENAMETOOLONG
        assert err(os.mkdir, path) == errno.ENAMETOOLONG
    # 255 bytes is fine
    ok = os.path.join(shmfs.path, 'n' * 255)
    os.close(os.open(ok, os.O_CREAT | os.O_WRONLY))
    assert os.path.exists(ok)
    assert shmfs.alive()


@util.both_modes
@pytest.mark.parametrize('mode', [0o4755, 0o2755, 0o6777, 0o1777, 0o7644, 0o0])
def test_chmod_keeps_every_bit(shmfs, mode):
    x = util.new_object(shmfs, 'x', 'i64', '3')
    os.chmod(x, mode)
    assert stat.S_IMODE(os.stat(x).st_mode) == mode
    assert stat.S_IMODE(os.stat(shmfs.r('x')).st_mode) == mode
    os.mkdir(shmfs.p('d'))
    os.chmod(shmfs.p('d'), mode)
    assert stat.S_IMODE(os.stat(shmfs.p('d')).st_mode) == mode
    assert util.read_text(x) == '3\n'


def test_setgid_directory_hands_down_its_group(shmfs):
    d = shmfs.p('g')
    os.mkdir(d)
    os.chown(d, 0, 4242)
    os.chmod(d, 0o2775)
    os.close(os.open(os.path.join(d, 'obj'), os.O_CREAT | os.O_WRONLY, 0o644))
    os.mkdir(os.path.join(d, 'sub'))
    st = os.stat(os.path.join(d, 'obj'))
    assert st.st_gid == 4242
    assert not st.st_mode & stat.S_ISGID            # files do not take the bit
    st = os.stat(os.path.join(d, 'sub'))
    assert st.st_gid == 4242
    assert st.st_mode & stat.S_ISGID                # directories do
    # and further down
    os.mkdir(os.path.join(d, 'sub', 'deeper'))
    assert os.stat(os.path.join(d, 'sub', 'deeper')).st_gid == 4242
    # without the bit, the creator's group
    os.mkdir(shmfs.p('plain'))
    os.chown(shmfs.p('plain'), 0, 4242)
    os.close(os.open(shmfs.p('plain/obj'), os.O_CREAT | os.O_WRONLY, 0o644))
    assert os.stat(shmfs.p('plain/obj')).st_gid == os.getgid()


@util.both_modes
def test_chown_clears_setuid(shmfs):
    x = util.new_object(shmfs, 'x', 'i64', '3')
    os.chmod(x, 0o6755)
    os.chown(x, OTHER, -1)
    st = os.stat(x)
    assert st.st_uid == OTHER
    # setuid goes; setgid with group execute goes too, as on Linux's tmpfs
    assert stat.S_IMODE(st.st_mode) == 0o0755
    assert stat.S_IMODE(os.stat(shmfs.r('x')).st_mode) == 0o0755
    os.chmod(x, 0o2745)         # setgid without group execute: kept
    os.chown(x, -1, OTHER)
    assert stat.S_IMODE(os.stat(x).st_mode) == 0o2745
    d = shmfs.p('d')
    os.mkdir(d)
    os.chmod(d, 0o2755)         # a directory's setgid survives a chown
    os.chown(d, OTHER, OTHER)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o2755


@pytest.mark.shmfs_args('-o', 'mode=cached', '-o', 'allow_other')
@pytest.mark.parametrize('view', ['raw', 'text'])
def test_write_by_other_user_clears_setuid(shmfs, view):
    """Cached mode: a write(2) by anyone but root clears setuid, as the
    kernel does on other filesystems, through either view (passthrough
    writes never reach the daemon; the mount is nosuid, so the bit grants
    nothing either way)."""
    x = util.new_object(shmfs, 'x', 'u8[8]')
    os.chmod(x, 0o4777)
    target, data = (shmfs.r('x'), '\x01') if view == 'raw' else (x, '1 2 3 4 5 6 7 8\n')
    # No O_TRUNC: the truncation would clear the bit before the write.
    r = subprocess.run(['setpriv', f'--reuid={OTHER}', f'--regid={OTHER}',
                        '--clear-groups', util.PYTHON, '-c',
                        'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); '
                        'os.write(fd, sys.argv[2].encode()); os.close(fd)',
                        target, data], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(os.stat(x).st_mode) == 0o0777
    assert stat.S_IMODE(os.stat(shmfs.r('x')).st_mode) == 0o0777
    if view == 'text':
        assert util.read_text(x) == '1 2 3 4 5 6 7 8\n'


@util.both_modes
def test_raw_directory_cannot_be_removed_or_renamed(shmfs):
    assert err(os.rmdir, shmfs.raw) == errno.EBUSY
    assert err(os.unlink, shmfs.raw) == errno.EISDIR
    assert err(os.rename, shmfs.raw, shmfs.p('elsewhere')) == errno.EBUSY
    os.mkdir(shmfs.p('d'))
    assert err(os.rename, shmfs.p('d'), shmfs.raw) == errno.EEXIST
    assert os.path.isdir(shmfs.raw)
    assert not os.path.exists(shmfs.p('elsewhere'))
    assert os.path.isdir(shmfs.p('d'))
    assert shmfs.alive()


def test_store_loads_no_privileged_bits(mounts, tmp_path):
    store = tmp_path / 'store'
    store.mkdir()
    # Crafted entries: objects with setuid/setgid in their attr xattr or in
    # the file's own mode, a directory with setuid and setgid.
    for name, how in (('attr', 'xattr'), ('filemode', 'mode')):
        path = store / name
        path.write_bytes(b'\0' * 8)
        os.setxattr(path, util.TYPE, b'i64')
        if how == 'xattr':
            os.setxattr(path, 'user.shmfs.attr', b'6777 0 0')
        else:
            os.chmod(path, 0o6777)
    os.mkdir(store / 'dir')
    os.setxattr(store / 'dir', 'user.shmfs.attr', b'7777 0 0')
    d = mounts.start('-o', f'store={store}')
    assert stat.S_IMODE(os.stat(d.p('attr')).st_mode) == 0o0777
    assert stat.S_IMODE(os.stat(d.p('filemode')).st_mode) == 0o0777
    assert stat.S_IMODE(os.stat(d.p('dir')).st_mode) == 0o3777
    assert util.read_text(d.p('attr')) == '0\n'
    mounts.stop(d)


RENAMER = r'''
import os, sys, time
mnt, seconds = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + seconds
n, cur = 0, 'd0'
other = {'d0': 'd1', 'd1': 'd0'}
while time.monotonic() < end:
    # s moves between d0 and d1; d0 and d1 swap names now and then.
    os.rename(f'{mnt}/{cur}/s', f'{mnt}/{other[cur]}/s')
    cur = other[cur]
    if n % 3 == 0:
        os.rename(f'{mnt}/d0', f'{mnt}/tmp')
        os.rename(f'{mnt}/d1', f'{mnt}/d0')
        os.rename(f'{mnt}/tmp', f'{mnt}/d1')
        cur = other[cur]
    n += 1
print(n)
'''

READER = r'''
import errno, os, sys, time
raw, seconds = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + seconds
seen = {}
while time.monotonic() < end:
    for d in ('d0', 'd1'):
        for path in (f'{raw}/{d}/s/obj', f'{raw}/{d}/s', f'{raw}/{d}/s/sub/obj'):
            try:
                if path.endswith('obj'):
                    os.close(os.open(path, os.O_RDONLY))
                else:
                    os.listdir(path)
                e = 'ok'
            except OSError as ex:
                e = errno.errorcode[ex.errno]
            seen[e] = seen.get(e, 0) + 1
print(' '.join(f'{k}={v}' for k, v in sorted(seen.items())))
'''


@util.both_modes
def test_raw_twin_of_moving_directory_is_never_stale(shmfs):
    """A directory moving in the main tree is found under .raw by its new
    path at once; a lookup racing the move answers the object or ENOENT,
    never ESTALE (the kernel cannot move a directory's old .raw dentry while
    another rename holds its rename lock, so moved twins get new inodes)."""
    for d in ('d0', 'd1', 'd0/s', 'd0/s/sub'):
        os.mkdir(shmfs.p(d))
    util.new_object(shmfs, 'd0/s/obj', 'i64', '1')
    util.new_object(shmfs, 'd0/s/sub/obj', 'i64', '2')
    renamer = subprocess.Popen([util.PYTHON, '-c', RENAMER, shmfs.path, '4'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    readers = [subprocess.Popen([util.PYTHON, '-c', READER, shmfs.raw, '4'],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(3)]
    results = [util.finish(p, 60) for p in [renamer] + readers]
    rc, out, err = results[0]
    assert rc == 0 and int(out) > 50, err
    for rc, out, err in results[1:]:
        assert rc == 0, err
        assert 'ESTALE' not in out, out + err
        assert 'ok=' in out, out
    # Where everything ended up, both trees agree.
    where = 'd0' if os.path.exists(shmfs.p('d0/s')) else 'd1'
    assert util.read_bytes(shmfs.r(f'{where}/s/sub/obj')) == (2).to_bytes(8, 'little')
    assert sorted(os.listdir(shmfs.raw)) == sorted(os.listdir(shmfs.path))
    assert shmfs.alive()
