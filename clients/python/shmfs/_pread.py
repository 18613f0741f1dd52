"""The bytes of an object that its mount cannot map -- a remote mount, whose
MNT/.raw/PATH is opened direct_io, so mmap(MAP_SHARED) fails with ENODEV --
read and stored through pread/pwrite instead.  PreadBuffer is the part of
mmap the objects use, PreadItems that of a memoryview cast to the element's
format.  Every read or store is one call, which a remote mount applies
atomically: a read of a whole value or slice is one consistent snapshot."""

import errno
import os
import struct

from ._element_types import _checked_index


class PreadBuffer:
    """mm[a:b], mm[a:b] = data, len(mm), mm.close() over pread/pwrite of fd
    (which its owner keeps and closes after close())."""

    def __init__(self, fd, nbytes):
        self._fd = fd
        self._nbytes = nbytes

    def __len__(self):
        return self._nbytes

    def _open_fd(self):
        if self._fd < 0:
            raise ValueError('I/O operation on a closed shmfs object')
        return self._fd

    def read(self, start, stop):
        """Bytes start..stop, in one pread; a short read is an error."""
        n = stop - start
        data = os.pread(self._open_fd(), n, start) if n > 0 else b''
        if len(data) != max(n, 0):
            raise OSError(errno.EIO, f'short read: {len(data)} of {n} bytes at {start}')
        return data

    def write(self, start, data):
        """data at start, in one pwrite; a short write is an error."""
        if not data:
            return
        done = os.pwrite(self._open_fd(), data, start)
        if done != len(data):
            raise OSError(errno.EIO, f'short write: {done} of {len(data)} bytes at {start}')

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(self._nbytes)
            if step == 1:
                return self.read(start, max(start, stop))
            idx = range(start, stop, step)
            if not idx:
                return b''
            return self.read(min(idx), max(idx) + 1)[::step]
        i = _checked_index(key, self._nbytes)
        return self.read(i, i + 1)[0]

    def __setitem__(self, key, data):
        if not isinstance(key, slice):
            key = _checked_index(key, self._nbytes)
            key, data = slice(key, key + 1), bytes((data,))
        start, stop, step = key.indices(self._nbytes)
        data = bytes(data)
        if step != 1 or len(data) != max(stop - start, 0):
            raise IndexError('shmfs stores a contiguous range of its own length')
        self.write(start, data)

    def close(self):
        self._fd = -1


class PreadItems:
    """The items of a PreadBuffer as a memoryview cast to fmt shows them:
    items[i], items[i] = x, items[a:b:c] (a memoryview of a private copy,
    read in one pread), tolist(), release()."""

    def __init__(self, buf, fmt):
        self._buf = buf
        self._fmt = fmt
        self._size = struct.calcsize(fmt)
        self._count = len(buf) // self._size

    def __len__(self):
        return self._count

    def __getitem__(self, key):
        size = self._size
        if isinstance(key, slice):
            idx = range(*key.indices(self._count))
            if not idx:
                return memoryview(b'').cast(self._fmt)
            lo, hi = min(idx), max(idx) + 1
            data = self._buf.read(lo * size, hi * size)
            # A negative step starts from the copy's end, which is idx[0].
            return memoryview(data).cast(self._fmt)[::idx.step]
        i = _checked_index(key, self._count)
        return struct.unpack(self._fmt, self._buf.read(i * size, (i + 1) * size))[0]

    def __setitem__(self, key, x):
        i = _checked_index(key, self._count)
        self._buf.write(i * self._size, struct.pack(self._fmt, x))

    def tolist(self):
        return self[:].tolist()

    def release(self):
        pass
