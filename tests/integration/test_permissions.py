"""No one let in (docs/security.md): on a root mount with allow_other,
other users meet the permissions a tmpfs would give them.

- Binding an object's lifetime is a removal put off until a process exits:
  only the object's owner (or root) may bind or unbind it, and only where it
  could unlink it (write and search permission on the directory).
- A chmod of the root through .raw reaches the kernel's cached attributes
  of the root at once.
- The lifetime table does not grow with rebindings.

Each refusal is checked for its errno, the binding (and the object) left
as they were, and the daemon alive."""

import errno
import os
import subprocess
import time

import pytest

import util

NOBODY = 65534
OTHER = 65533       # a second unprivileged user, no name needed
LIFETIME = 'user.shmfs.lifetime'


def as_user(uid, code, *args):
    """Runs python code as uid (its own group, no others); returns
    (returncode, stdout, stderr)."""
    r = subprocess.run(['setpriv', f'--reuid={uid}', f'--regid={uid}',
                        '--clear-groups', util.PYTHON, '-c', code]
                       + [str(a) for a in args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


# Prints the errno of setting (or, with 'remove', removing) the lifetime
# xattr of argv[1], 0 on success.
BIND = '''
import os, sys
try:
    if sys.argv[2] == 'remove':
        os.removexattr(sys.argv[1], 'user.shmfs.lifetime')
    else:
        os.setxattr(sys.argv[1], 'user.shmfs.lifetime', sys.argv[2].encode())
    print(0)
except OSError as e:
    print(e.errno)
'''

CREATE = '''
import os, sys
try:
    os.close(os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    print(0)
except OSError as e:
    print(e.errno)
'''


def bind_as(uid, path, value):
    rc, out, err = as_user(uid, BIND, path, value)
    assert rc == 0, err
    return int(out)


def binding(path):
    try:
        return os.getxattr(path, LIFETIME).decode()
    except OSError as e:
        assert e.errno == errno.ENODATA
        return None


@pytest.fixture
def sleeper():
    """A process that lives until the test ends."""
    procs = []

    def start():
        p = subprocess.Popen(['sleep', '600'])
        procs.append(p)
        return p
    yield start
    for p in procs:
        p.kill()
        p.wait()


def owned_object(shmfs, name, uid, mode=0o666):
    path = util.new_object(shmfs, name, 'i64', '7')
    os.chown(path, uid, uid)
    os.chmod(path, mode)
    return path


@pytest.mark.shmfs_args('-o', 'allow_other')
@pytest.mark.parametrize('value', ['process', 'pid:1'])
def test_others_object_in_sticky_root_cannot_be_bound(shmfs, value):
    # The root is 1777, like /dev/shm; OTHER's object is even writable by all.
    victim = owned_object(shmfs, 'victim', OTHER)
    assert bind_as(NOBODY, victim, value) == errno.EPERM
    assert bind_as(NOBODY, shmfs.r('victim'), value) == errno.EPERM
    assert binding(victim) is None
    assert util.read_text(victim) == '7\n'
    assert shmfs.alive()


@pytest.mark.shmfs_args('-o', 'allow_other')
def test_binding_process_that_exits_leaves_others_object(shmfs):
    # The attack of the report: bind the victim to a process that then exits.
    victim = owned_object(shmfs, 'victim', OTHER)
    rc, out, err = as_user(NOBODY, BIND, victim, 'process')
    assert rc == 0 and int(out) == errno.EPERM, (out, err)
    time.sleep(0.3)
    assert os.path.exists(victim)
    assert util.read_text(victim) == '7\n'
    assert util.read_bytes(shmfs.r('victim')) == (7).to_bytes(8, 'little')


@pytest.mark.shmfs_args('-o', 'allow_other')
def test_others_binding_cannot_be_removed(shmfs, sleeper):
    victim = owned_object(shmfs, 'victim', OTHER)
    keeper = sleeper()
    assert bind_as(OTHER, victim, f'pid:{keeper.pid}') == 0
    assert bind_as(NOBODY, victim, 'remove') == errno.EPERM
    assert bind_as(NOBODY, victim, 'pid:1') == errno.EPERM
    assert binding(victim) == f'pid:{keeper.pid}'
    assert bind_as(OTHER, victim, 'remove') == 0
    assert binding(victim) is None


@pytest.mark.shmfs_args('-o', 'allow_other')
def test_owner_needs_directory_write_permission(shmfs, sleeper):
    # OTHER owns the object but may not unlink it from root's 0755
    # directory: it may not bind it either.
    d = shmfs.p('d')
    os.mkdir(d, 0o755)
    path = util.new_object(shmfs, 'd/x', 'i64', '1')
    os.chown(path, OTHER, OTHER)
    keeper = sleeper()
    assert bind_as(OTHER, path, f'pid:{keeper.pid}') == errno.EACCES
    assert binding(path) is None
    os.chmod(d, 0o777)
    assert bind_as(OTHER, path, f'pid:{keeper.pid}') == 0
    assert binding(path) == f'pid:{keeper.pid}'


@pytest.mark.shmfs_args('-o', 'allow_other')
def test_owner_binds_own_object_and_it_goes_with_the_process(shmfs):
    rc, out, err = as_user(NOBODY, CREATE, shmfs.p('mine'))
    assert rc == 0 and out.strip() == '0', err
    util.set_type(shmfs.p('mine'), 'i64')
    assert bind_as(NOBODY, shmfs.p('mine'), 'process') == 0
    # The binding process (python as nobody) has exited.
    assert util.poll_until(lambda: not os.path.exists(shmfs.p('mine')))


@pytest.mark.shmfs_args('-o', 'allow_other')
def test_root_binds_anything(shmfs, sleeper):
    victim = owned_object(shmfs, 'victim', OTHER)
    keeper = sleeper()
    os.setxattr(victim, LIFETIME, f'pid:{keeper.pid}'.encode())
    assert binding(victim) == f'pid:{keeper.pid}'
    keeper.kill()
    keeper.wait()
    assert util.poll_until(lambda: not os.path.exists(victim))


@pytest.mark.shmfs_args('-o', 'allow_other')
@pytest.mark.parametrize('through', ['main', 'raw'])
def test_chmod_of_root_takes_effect_at_once(shmfs, through):
    # The kernel has cached the root's attributes (1777) for a day.
    rc, out, err = as_user(NOBODY, CREATE, shmfs.p('before'))
    assert out.strip() == '0', err
    os.chmod(shmfs.path if through == 'main' else shmfs.raw, 0o1755)
    assert os.stat(shmfs.path).st_mode & 0o7777 == 0o1755
    assert os.stat(shmfs.raw).st_mode & 0o7777 == 0o1755
    rc, out, err = as_user(NOBODY, CREATE, shmfs.p('after'))
    assert int(out) == errno.EACCES, err
    assert not os.path.exists(shmfs.p('after'))
    os.chmod(shmfs.raw if through == 'main' else shmfs.path, 0o1777)
    rc, out, err = as_user(NOBODY, CREATE, shmfs.p('again'))
    assert out.strip() == '0', err


def pidfds(pid):
    n = 0
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            if os.readlink(f'/proc/{pid}/fd/{fd}') == 'anon_inode:[pidfd]':
                n += 1
        except OSError:
            pass
    return n


def test_rebinding_does_not_grow(shmfs, sleeper):
    """Each process watched holds one pidfd, given up with its last object;
    rebinding the same object again and again keeps one entry."""
    keepers = [sleeper() for _ in range(20)]
    paths = [util.new_object(shmfs, f'o{i}', 'i64') for i in range(20)]
    base = pidfds(shmfs.pid)
    for p, k in zip(paths, keepers):
        os.setxattr(p, LIFETIME, f'pid:{k.pid}'.encode())
    assert pidfds(shmfs.pid) == base + 20
    # All to one process: the 19 others are no longer watched.
    for p in paths:
        os.setxattr(p, LIFETIME, f'pid:{keepers[0].pid}'.encode())
    assert pidfds(shmfs.pid) == base + 1
    for _ in range(2000):
        os.setxattr(paths[0], LIFETIME, f'pid:{keepers[1].pid}'.encode())
        os.setxattr(paths[0], LIFETIME, f'pid:{keepers[0].pid}'.encode())
    assert pidfds(shmfs.pid) == base + 1
    # Unbinding, or removing, an object drops its process's watch with the last.
    for p in paths[:10]:
        os.removexattr(p, LIFETIME)
    for p in paths[10:]:
        os.unlink(p)
    assert pidfds(shmfs.pid) == base
    # The process exiting now removes nothing and costs nothing.
    keepers[0].kill()
    keepers[0].wait()
    time.sleep(0.2)
    assert all(os.path.exists(p) for p in paths[:10])
    assert shmfs.alive()
