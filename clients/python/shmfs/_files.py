"""Where objects live: the shmfs mount holding a path, an object's main
path and its binary view MNT/.raw/PATH, its type xattr, rename without
replacing (how objects are created), the mapping of MNT/.raw/PATH (or
pread/pwrite where the mount cannot map it), and a numpy view of it."""

import ctypes
import errno
import io
import json
import mmap
import os
import re
import stat

from ._pread import PreadBuffer, PreadItems

TYPE_XATTR = 'user.shmfs.type'
MODE_XATTR = 'user.shmfs.mode'


def _is_root(d):
    try:
        os.getxattr(d, MODE_XATTR)
        return True
    except OSError as e:
        if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        return False


def mount_root(path):
    """The root of the shmfs mount holding path (which need not exist): the
    nearest directory upwards carrying user.shmfs.mode (MNT/.raw, the root's
    twin, carries it too).  ValueError if the search leaves path's
    filesystem first."""
    d = os.path.dirname(os.path.realpath(path))
    dev = os.stat(d).st_dev
    while not _is_root(d):
        parent = os.path.dirname(d)
        if parent == d or os.stat(parent).st_dev != dev:
            raise ValueError(f'{path} is not on a shmfs mount')
        d = parent
    if os.path.basename(d) == '.raw' and _is_root(os.path.dirname(d)):
        d = os.path.dirname(d)
    return d


def _locate(path):
    """(absolute main-tree path, binary-view path) of a shmfs object."""
    path = os.path.abspath(os.fspath(path))
    root = mount_root(path)
    rel = os.path.relpath(os.path.realpath(path), root)
    if rel == '.raw' or rel.startswith('.raw' + os.sep):   # given the twin
        rel = rel[5:]
    return os.path.join(root, rel), os.path.join(root, '.raw', rel)


_libc = ctypes.CDLL(None, use_errno=True)
_RENAME_NOREPLACE = 1
_SYS_RENAMEAT2 = {'x86_64': 316, 'aarch64': 276, 'riscv64': 276,
                  'ppc64le': 357, 's390x': 347}


def _rename_noreplace(old, new):
    """rename(2) that fails with FileExistsError instead of replacing."""
    at = ctypes.c_int(-100)                       # AT_FDCWD
    args = (at, ctypes.c_char_p(os.fsencode(old)),
            at, ctypes.c_char_p(os.fsencode(new)), ctypes.c_uint(_RENAME_NOREPLACE))
    fn = getattr(_libc, 'renameat2', None)
    if fn is not None:
        rc = fn(*args)
    else:
        rc = _libc.syscall(ctypes.c_long(_SYS_RENAMEAT2[os.uname().machine]), *args)
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old, None, new)


def _existing_spec(path):
    """The type of the object at path, '' if untyped, None if absent."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    try:
        return os.getxattr(path, TYPE_XATTR).decode()
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        if e.errno == errno.ENODATA:
            return ''
        raise


def _map_object(fd, nbytes):
    """The bytes of the object open as fd: a shared mapping, or a
    PreadBuffer where the mount cannot map it (a remote mount: ENODEV)."""
    try:
        return mmap.mmap(fd, nbytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    except OSError as e:
        if e.errno != errno.ENODEV:
            raise
        return PreadBuffer(fd, nbytes)


def _is_mapped(mm):
    return not isinstance(mm, PreadBuffer)


def _items_view(mm, fmt):
    """The items of mm in the struct format fmt, indexable and sliceable."""
    return memoryview(mm).cast(fmt) if _is_mapped(mm) else PreadItems(mm, fmt)


def _numpy_view(fd, mm, path, copy=False):
    """A zero-copy numpy array over mm, the mapping of the object open as
    fd: dtype from user.shmfs.dtype (a JSON object for records), shape from
    user.shmfs.shape.  copy=True: a snapshot in an array of its own.  An
    object that is not mapped (a remote mount) has no zero-copy view."""
    if not copy and not _is_mapped(mm):
        raise io.UnsupportedOperation(
            errno.ENODEV, 'no zero-copy numpy view: the object lives on a remote mount, '
            'which cannot be mapped; numpy(copy=True) reads a snapshot (stores to it '
            'are not shared)', path)
    import numpy as np
    text = os.getxattr(fd, 'user.shmfs.dtype').decode()
    dtype = np.dtype(json.loads(text) if text.startswith('{') else text)
    shape_text = os.getxattr(fd, 'user.shmfs.shape').decode()
    shape = tuple(int(d) for d in re.findall(r'[0-9]+', shape_text))
    count = 1
    for d in shape:
        count *= d
    data = bytearray(mm[:]) if copy else mm
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape)


def _release_mapping(m, fd):
    """Closes a mapping (left to go with its last user if views of it are
    still exported) and its descriptor."""
    try:
        m.close()
    except BufferError:
        pass                           # unmapped when the last user goes
    os.close(fd)
