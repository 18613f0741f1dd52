"""`meson install` installs exactly shmfs (docs/running.md "Install"): from a
clean copy of the sources into a temporary prefix, the daemon, its mount
helpers, the man page, libshmfs with its header and pkg-config file, and
nothing of libfuse (built from the wrap, static and private).  The installed
pieces then work: a C program built with `pkg-config --cflags --libs shmfs`
runs against a mount of the installed daemon, and the installed
mount.fuse.shmfs mounts as mount(8) runs it for the fstab line
`shmfs MNT fuse.shmfs defaults 0 0`."""

import errno
import os
import shutil
import subprocess
import sysconfig

import pytest

import util

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))

PROGRAM = r'''
#include <shmfs.h>
#include <stdio.h>

int main (int argc, char **argv)
{
  ShmfsMap *map;
  double old;
  int err;

  if ((err = shmfs_create (argv[1], "f64", 0644)) < 0 ||
      (err = shmfs_map (argv[1], 0, &map)) < 0)
    {
      fprintf (stderr, "%s: %s\n", argv[1], shmfs_strerror (err));
      return 1;
    }
  *(double *) shmfs_map_data (map) = 2.5;
  err = shmfs_atomic_add_f64 (map, 0, 1.0, &old);
  shmfs_unmap (map);
  if (err < 0 || old != 2.5)
    {
      fprintf (stderr, "add: %s, old %g\n", shmfs_strerror (err), old);
      return 1;
    }
  return 0;
}
'''


def _run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=600, **kw)
    assert r.returncode == 0, f'{cmd}:\n{r.stdout[-4000:]}'
    return r.stdout


@pytest.fixture(scope='module')
def prefix(tmp_path_factory):
    """A clean copy of the tracked sources, configured with a temporary
    prefix, built, and installed with DESTDIR unset."""
    base = tmp_path_factory.mktemp('install')
    src, build, prefix = base / 'src', base / 'build', base / 'prefix'
    files = _run(['git', '-C', TOP, 'ls-files', '-z']).split('\0')
    for f in filter(None, files):
        if os.path.exists(os.path.join(TOP, f)):
            os.makedirs(src / os.path.dirname(f), exist_ok=True)
            shutil.copy2(os.path.join(TOP, f), src / f)
    cache = os.path.join(TOP, 'subprojects', 'packagecache')
    if os.path.isdir(cache):
        shutil.copytree(cache, src / 'subprojects' / 'packagecache')
    _run(['meson', 'setup', str(build), str(src), f'--prefix={prefix}',
          '--libdir=lib', '--wrap-mode=nodownload'])
    _run(['ninja', '-C', str(build)])
    _run(['meson', 'install', '-C', str(build)])
    # The same, staged under DESTDIR as a package build does.
    _run(['meson', 'install', '-C', str(build), '--destdir', str(base / 'staged')])
    return prefix


EXPECTED = {
    'bin/shmfs',
    'sbin/mount.shmfs',
    'sbin/mount.fuse.shmfs',
    'share/man/man1/shmfs.1',
    'lib/libshmfs.so',
    'lib/libshmfs.so.0',
    'lib/libshmfs.so.0.1.0',
    'lib/pkgconfig/shmfs.pc',
    'include/shmfs/shmfs.h',
    'include/shmfs/ioctl.h',
}


def _installed(root):
    return {os.path.relpath(os.path.join(d, f), root)
            for d, dirs, files in os.walk(root) for f in files + [
                x for x in dirs if os.path.islink(os.path.join(d, x))]}


def test_installs_exactly_shmfs(prefix):
    assert _installed(prefix) == EXPECTED
    staged = prefix.parent / 'staged'
    assert _installed(staged) == {os.path.join(str(prefix).lstrip('/'), f) for f in EXPECTED}
    for helper in ('mount.shmfs', 'mount.fuse.shmfs'):
        assert os.path.realpath(prefix / 'sbin' / helper) == str(prefix / 'bin' / 'shmfs')


class Installed(util.Daemon):
    """The installed daemon, started as mount(8) starts it for an fstab
    line: PREFIX/sbin/mount.fuse.shmfs SOURCE MOUNTPOINT -o OPTIONS."""

    helper = None
    comm = 'mount.fuse.shmf'        # the kernel keeps 15 bytes of a name
    options = 'rw,defaults,nofail,x-a=b'

    def _launch_command(self):
        return [str(self.helper), 'shmfs', self.path, '-o', self.options]


def test_pkg_config_program_and_fstab_mount(prefix, tmp_path):
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / 'lib' / 'pkgconfig'))
    flags = _run(['pkg-config', '--cflags', '--libs', 'shmfs'], env=env).split()
    (tmp_path / 'prog.c').write_text(PROGRAM)
    _run(['cc', '-o', str(tmp_path / 'prog'), str(tmp_path / 'prog.c')] + flags)

    Installed.helper = prefix / 'sbin' / 'mount.fuse.shmfs'
    d = Installed(util.make_mountpoint(), str(tmp_path / 'shmfs.log'))
    d.launch = 'background'
    d.start()
    try:
        assert d.mounted()
        v = d.p('v')
        r = subprocess.run([str(tmp_path / 'prog'), v], capture_output=True, text=True,
                           env=dict(os.environ, LD_LIBRARY_PATH=str(prefix / 'lib')),
                           timeout=30)
        assert r.returncode == 0, r.stderr
        assert util.read_text(v) == '3.5\n'
        assert os.getxattr(v, 'user.shmfs.type') == b'f64'

        # A record, through the installed command line and daemon.
        shmfs, pose = str(prefix / 'bin' / 'shmfs'), d.p('pose')
        _run([shmfs, 'new', pose, '{seq:u64, pos:{x:f64, y:f64}}', '{"pos": {"x": 1.5}}'])
        assert _run([shmfs, 'add', pose, '--field', 'seq', '2']).strip() == '2'
        want = '{"seq": 2, "pos": {"x": 1.5, "y": 0}}\n'
        raw = util.read_bytes(d.r('pose'))
        assert util.try_write_text(pose, '{"pos": {"z": 1}}') == (errno.EINVAL, 0)
        assert (util.read_text(pose), util.read_bytes(d.r('pose'))) == (want, raw)
    finally:
        problems = d.stop()
    assert not problems, problems


def test_remote_fstab_mounts(prefix, tmp_path):
    """Two installed daemons mounting one Redis as two fstab lines would
    (`shmfs MNT fuse.shmfs remote=URL,remote_prefix=NAME`): the installed
    command line on one, the other sees it; a bad write changes nothing."""
    import redis_util
    with redis_util.RedisServer() as server:
        Installed.helper = prefix / 'sbin' / 'mount.fuse.shmfs'
        daemons = []
        try:
            for i in range(2):
                d = Installed(util.make_mountpoint(), str(tmp_path / f'remote{i}.log'))
                d.options = f'rw,nofail,remote={server.url},remote_prefix=install'
                d.launch = 'background'
                daemons.append(d)
                d.start()
            a, b = daemons
            assert os.getxattr(b.path, 'user.shmfs.mode') == b'remote'
            shmfs = str(prefix / 'bin' / 'shmfs')
            _run([shmfs, 'new', a.p('n'), 'i64', '40'])
            assert _run([shmfs, 'add', b.p('n'), '2']).strip() == '42'
            assert util.read_text(a.p('n')) == '42\n'
            assert util.try_write_text(b.p('n'), 'x\n')[0] == errno.EINVAL
            assert util.read_text(a.p('n')) == '42\n'
        finally:
            problems = []
            for d in daemons:
                problems += d.stop() if d.proc else []
                os.rmdir(d.path)
        assert not problems, problems


def test_fake_mount_does_nothing(prefix):
    mnt = util.make_mountpoint()
    try:
        r = subprocess.run([str(prefix / 'sbin' / 'mount.shmfs'), 'shmfs', mnt, '-f',
                            '-o', 'defaults'], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert not os.path.ismount(mnt)
    finally:
        os.rmdir(mnt)


@pytest.mark.parametrize('args', [[], ['shmfs'], ['shmfs', 'MNT', 'extra'],
                                  ['shmfs', 'MNT', '-N', '1']])
def test_helper_bad_arguments(prefix, args):
    mnt = util.make_mountpoint()
    try:
        args = [mnt if a == 'MNT' else a for a in args]
        r = subprocess.run([str(prefix / 'sbin' / 'mount.shmfs')] + args,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert not os.path.ismount(mnt)
    finally:
        os.rmdir(mnt)


def test_python_package_installs_with_pip(prefix, tmp_path):
    """clients/python installs offline with Debian's pip and setuptools, as
    the docs say, and imports from anywhere."""
    src = prefix.parent / 'src' / 'clients' / 'python'
    target = tmp_path / 'site'
    _run(['/usr/bin/python3', '-m', 'pip', 'install', '--quiet', '--no-build-isolation',
          '--no-index', '--no-deps', '--root-user-action=ignore', '--target', str(target),
          str(src)])
    modules = {n for n in os.listdir(src / 'shmfs') if n != '__pycache__'}
    assert {'__init__.py', 'py.typed'} <= modules <= set(os.listdir(target / 'shmfs'))
    assert any(n.startswith('shmfs-0.1.0.dist-info') for n in os.listdir(target))
    r = subprocess.run(['/usr/bin/python3', '-c',
                        'import shmfs; print(shmfs.__file__); print(shmfs.Value, shmfs.attach)'],
                       cwd='/', capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(target)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == str(target / 'shmfs' / '__init__.py')


def test_client_library_needs_only_libc(prefix):
    """libshmfs's header promises plain C: the installed library needs no
    glib (or anything but libc) at run time."""
    r = subprocess.run(['readelf', '-d', str(prefix / 'lib' / 'libshmfs.so')],
                       capture_output=True, text=True, timeout=30, check=True)
    needed = [line.split('[')[1].rstrip(']') for line in r.stdout.splitlines()
              if '(NEEDED)' in line]
    assert needed == ['libc.so.6']
