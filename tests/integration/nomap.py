"""Remote mounts seen from a local one: mmap(2) of a file in a .raw
directory fails with ENODEV, as on a remote mount (its binary views are
opened direct_io), so the clients fall back to pread/pwrite while the tests
run against a local daemon.

install() patches mmap.mmap in this process; children started with fork
inherit it.  Spawned children (multiprocessing's spawn and forkserver, or
any Python) get it through child_env(): the environment that makes
nomap_site/sitecustomize.py call install() at their start.  REAL_MMAP maps
for real, for a test's own view of the same object."""

import errno
import mmap
import os

REAL_MMAP = mmap.mmap
ENV = 'SHMFS_TEST_NOMAP'
SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'nomap_site')


def _is_binary_view(fd):
    try:
        target = os.readlink(f'/proc/self/fd/{fd}')
    except OSError:
        return False
    return f'{os.sep}.raw{os.sep}' in target


def _no_map_of_binary_views(fd, *args, **kw):
    if fd >= 0 and _is_binary_view(fd):
        raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
    return REAL_MMAP(fd, *args, **kw)


def install():
    mmap.mmap = _no_map_of_binary_views


def uninstall():
    mmap.mmap = REAL_MMAP


def child_env(environ=None):
    """environ (os.environ by default) for a Python child that cannot map."""
    env = dict(os.environ if environ is None else environ)
    env[ENV] = '1'
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (SITE, os.path.dirname(SITE), env.get('PYTHONPATH')) if p)
    return env
