"""The lock of an object: the daemon's lock of its file (flock), reentrant,
one per file in a process, reopened after fork; and the check of a lock=
argument."""

import fcntl
import os
import threading
import time
import weakref

class ObjectLock:
    """The daemon's lock of one object, reentrant, shared by the objects of a
    process that map the same file.  See the module's documentation."""

    _registry = weakref.WeakValueDictionary()   # (st_dev, st_ino) -> lock
    _registry_lock = threading.Lock()

    @classmethod
    def of(cls, fd):
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        with cls._registry_lock:
            lock = cls._registry.get(key)
            if lock is None:
                lock = cls._registry[key] = cls(fd)
            return lock

    def __init__(self, fd):
        self._fd = os.open(f'/proc/self/fd/{fd}', os.O_RDONLY | os.O_CLOEXEC)
        self._pid = os.getpid()
        self._mutex = threading.RLock()
        self._depth = 0        # the owning thread's nesting; under _mutex

    def _check_fork(self):
        """A forked child gets a lock of its own: a new open file description
        (an flock lock belongs to one; the parent's hold stays the parent's)
        and no holder."""
        if self._pid == os.getpid():
            return
        with ObjectLock._registry_lock:
            if self._pid == os.getpid():
                return
            old = self._fd
            self._fd = os.open(f'/proc/self/fd/{old}', os.O_RDONLY | os.O_CLOEXEC)
            os.close(old)
            self._mutex = threading.RLock()
            self._depth = 0
            self._pid = os.getpid()

    def acquire(self, block=True, timeout=None):
        self._check_fork()
        deadline = None
        if not block:
            got = self._mutex.acquire(False)
        elif timeout is None:
            got = self._mutex.acquire()
        else:
            deadline = time.monotonic() + max(timeout, 0)
            got = self._mutex.acquire(True, max(timeout, 0))
        if not got:
            return False
        if self._depth:
            self._depth += 1
            return True
        try:
            if block and deadline is None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            elif not self._try_flock(deadline):
                self._mutex.release()
                return False
        except BaseException:
            self._mutex.release()
            raise
        self._depth = 1
        return True

    def _try_flock(self, deadline):
        delay = 0.0005
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if deadline is None or time.monotonic() >= deadline:
                    return False
            time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
            delay = min(delay * 2, 0.02)

    def release(self):
        if self._pid != os.getpid() or self._depth == 0:
            raise RuntimeError('cannot release un-acquired lock')
        self._depth -= 1
        if self._depth == 0:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                self._mutex.release()
        else:
            self._mutex.release()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        try:
            os.close(self._fd)
        except (OSError, AttributeError):
            pass

    def __repr__(self):
        return f'<shmfs.ObjectLock fd={self._fd} depth={self._depth}>'




def _reinit_after_fork():
    ObjectLock._registry_lock = threading.Lock()


os.register_at_fork(after_in_child=_reinit_after_fork)



class _BadLock(TypeError, AttributeError):
    """lock= that is no lock: a TypeError, and the AttributeError that
    multiprocessing raises."""


def _check_lock(lock):
    if not isinstance(lock, bool) and lock is not None and not (
            hasattr(lock, 'acquire') and hasattr(lock, 'release')):
        raise _BadLock(f'lock must be True, None, False or a lock with acquire() '
                       f'and release(), not {lock!r}')
    return lock

