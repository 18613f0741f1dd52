"""A storm of concurrent operations on a few names, in both modes.

Eight worker processes (each a fresh Python running WORKER below) spend
SHMFS_STORM_SECONDS (default 20) doing random operations on a small set of
names in the root and in two subdirectories: create, type, text writes
(valid and invalid), pread/pwrite of .raw, MAP_SHARED mappings (some kept
across later operations), rename (plain, RENAME_NOREPLACE, RENAME_EXCHANGE,
across directories, of directories), unlink, mkdir/rmdir, flock and fcntl
locks (non-blocking, and blocking ended by an alarm), atomic ioctls, stat of
both views, xattrs, lifetimes bound to the worker itself or to a short-lived
child, readdir, cat, descriptors kept open across operations, and "churn"
(create, type, open, unlink, close: the last close of an unlinked object)
on two hot names that a third of all operations also pick, so that stats
and opens race unlinks and last closes.

Any errno is fine except those that mean the daemon failed: ENOTCONN,
ECONNABORTED, EIO, and ESTALE (an open of a name that exists must not answer
ESTALE, whatever renames run meanwhile).  Also findings: a pread within the
size fstat reports that comes back short (the bytes of an object that is
still open must be there), a typed object's text that is empty or has the
wrong number of elements, a binary write whose count breaks docs/semantics.md's
rule, ENOENT from an operation on a descriptor kept open (FD_ENOENT), a
worker killed by SIGBUS (a mapping of an object must keep working
after unlink/rename) or SIGSEGV, and an operation that does not finish
within SHMFS_STORM_HANG seconds (default 15; the worker's faulthandler
prints every thread's stack and exits 1, and the operation it was in is
reported).  Afterwards the daemon must be alive, objects bound to the dead
workers gone, `ls -R` of both trees working, both trees listing the same
names, every remaining object's text view, .raw (read and mapped) and
xattrs agreeing, and, once everything is removed, no bytes in use; the
fixture then checks a clean unmount, exit status 0 and a log without
sanitizer reports or warnings.

Each run prints its seed; SHMFS_STORM_SEED=N replays the same per-worker
operation sequences (the interleaving is up to the scheduler).  Counts per
operation and outcome are printed (see them with pytest -s, or in the log of
a failing run).
"""

import collections
import errno
import json
import mmap
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import time

import util

WORKERS = 8
SECONDS = float(os.environ.get('SHMFS_STORM_SECONDS', '20'))
HANG = float(os.environ.get('SHMFS_STORM_HANG', '15'))

# Outcomes that fail the test (errno names, or kinds of finding).
FATAL = ('ENOTCONN', 'ECONNABORTED', 'EIO', 'RAW_OPEN_EIO', 'ESTALE', 'SHORT_READ',
         'EMPTY_TEXT', 'BAD_TEXT', 'BAD_WRITE', 'FD_ENOENT', 'EXCEPTION', 'CAT',
         'CHILD')

# Findings still open, by mode, with the reason they do not fail the test
# yet; each is printed when seen.  Remove an entry once it is fixed.
KNOWN_OPEN = {
    'passthrough': {
        'RAW_OPEN_EIO': 'passthrough mode: an open of .raw/PATH decided while '
                        'the object was untyped (no bytes, so not passed '
                        'through) fails with EIO when the kernel takes its '
                        'reply after another process typed the object and '
                        'opened it passed through (the kernel requires every '
                        'open of a passed-through inode to pass through); '
                        'still open, see docs/semantics.md "Passthrough mode"',
    },
}

WORKER = r'''
import ctypes, errno, faulthandler, fcntl, json, mmap, os, random, re
import signal, struct, subprocess, sys, time, traceback

MNT = sys.argv[1]
SEED = int(sys.argv[2])
INDEX = int(sys.argv[3])
SECONDS = float(sys.argv[4])
HANG = float(sys.argv[5])
OUT = sys.argv[6]
MODE = os.getxattr(MNT, 'user.shmfs.mode').decode()
PAGE = os.sysconf('SC_PAGESIZE')
CUR = sys.argv[7]

rng = random.Random(f'{SEED}:{INDEX}')
T0 = time.monotonic()

DIRS = ['', 'd0', 'd1']
MORE_DIRS = ['d0/s', 'd2']
NAMES = ['n0', 'n1', 'n2', 'n3', 'n4', 'n5']
PATHS = ([os.path.join(d, n) for d in DIRS for n in NAMES]
         + ['d0/s/n0', 'd0/s/n1', 'd2/n0'])
SPECS = ['i64', 'f64[3]', 'u8[4096]', 'u32[100000]']
SPEC_WEIGHTS = [4, 4, 2, 2]
TYPE = 'user.shmfs.type'
LIFETIME = 'user.shmfs.lifetime'
XATTRS = [TYPE, 'user.shmfs.dtype', 'user.shmfs.shape', 'user.shmfs.nbytes',
          'user.shmfs.version', LIFETIME, 'user.other']
FATAL_ERRNOS = {errno.ENOTCONN, errno.ECONNABORTED, errno.EIO, errno.ESTALE}
FATAL_STRINGS = [os.strerror(e) for e in FATAL_ERRNOS]

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
SYS_renameat2 = {'x86_64': 316, 'aarch64': 276}[os.uname().machine]
libc = ctypes.CDLL(None, use_errno=True)

ATOMIC_FMT = '=IIQ8s8s8sII'
IOC_ATOMIC = (3 << 30) | (struct.calcsize(ATOMIC_FMT) << 16) | (ord('S') << 8) | 1
LOAD, ADD, SUB, XCHG, CAS = range(5)

ELEM = {'i8': 'b', 'u8': 'B', 'i16': 'h', 'u16': 'H', 'i32': 'i', 'u32': 'I',
        'i64': 'q', 'u64': 'Q', 'f32': 'f', 'f64': 'd', 'bool': '?'}


class Finding(Exception):
    def __init__(self, kind, what):
        super().__init__(what)
        self.kind = kind


class LockWait(Exception):
    pass


def P(rel):
    return os.path.join(MNT, rel)


def R(rel):
    return os.path.join(MNT, '.raw', rel)


cur_fd = os.open(CUR, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
current = ''


def note(op, what):
    """Says what this worker is doing now, for the hang report."""
    global current
    current = f'{op} {what}'
    line = f'{current} (t={time.monotonic() - T0:.2f}s)'.encode()[:250]
    os.pwrite(cur_fd, line.ljust(256) + b'\n', 0)


def count_of(spec):
    m = re.fullmatch(r'\s*(\w+)((?:\[\d+\])*)\s*', spec)
    n = 1
    for d in re.findall(r'\[(\d+)\]', m.group(2)):
        n *= int(d)
    return m.group(1), n


def fspec(fd_or_path):
    try:
        return os.getxattr(fd_or_path, TYPE).decode()
    except OSError as e:
        if e.errno == errno.ENODATA:
            return None
        raise


def view(rel):
    return (R(rel), 'raw') if rng.random() < 0.5 else (P(rel), 'text')


HOT = ['n0', 'd0/n1']


def pick():
    """A path; often one of the hot few, so that operations meet."""
    return rng.choice(HOT if rng.random() < 0.3 else PATHS)


def read_all(fd, limit=8 << 20):
    out = bytearray()
    while len(out) < limit:
        b = os.read(fd, 1 << 20)
        if not b:
            break
        out += b
    return bytes(out)


def check_text(data, spec, where):
    """A typed object's text is never empty and has every element."""
    if not data:
        raise Finding('EMPTY_TEXT', f'{where}: empty text of a {spec}')
    base, n = count_of(spec)
    toks = data.replace(b'[', b' ').replace(b']', b' ').replace(b',', b' ').split()
    if len(toks) != n:
        raise Finding('BAD_TEXT', f'{where}: {len(toks)} elements in the text of a '
                      f'{spec}: {data[:80]!r}')


def check_pread(fd, where):
    """Within the size fstat gives, pread returns every byte asked for."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 'untyped'
    n = min(size, rng.choice([1, 8, 24, 4096, 65536, size]))
    off = rng.randrange(0, size - n + 1)
    got = os.pread(fd, n, off)
    if len(got) != n:
        try:                              # what it looks like a moment later
            again = (f'; then fstat says {os.fstat(fd).st_size} bytes, the same '
                     f'pread returns {len(os.pread(fd, n, off))}, type '
                     f'{fspec(fd)}')
        except OSError as e:
            again = f'; then {e}'
        raise Finding('SHORT_READ', f'{where}: pread({n}, {off}) of an object of '
                      f'{size} bytes returned {len(got)}{again}')


# -- texts --------------------------------------------------------------------

U8_VALID = [' '.join(str((i * k) % 256) for i in range(4096)) for k in (1, 7)]
U32_VALID = [' '.join(map(str, range(100000))), ' '.join(['5'] * 100000)]
FLOATS = ['0', '-0', '1.5', '-2.25', 'nan', 'inf', '-inf', '1e308', '5e-324',
          '3.141592653589793', '0x10', '1e-5']
INFERRED = ['42', '-7', '3.25', 'true', 'false', '[1, 2, 3]', '1.5 2.5',
            '[4,5]', '0x7f']


def gen_text(spec, valid):
    if spec is None or spec not in SPECS:
        if valid:
            return rng.choice(INFERRED)
        return rng.choice(['abc', '1,,2', '[1,]', '9223372036854775808', '', '--1'])
    if spec == 'i64':
        if valid:
            return str(rng.choice([0, 1, -1, 2**63 - 1, -2**63, rng.randrange(-10**6, 10**6)]))
        return rng.choice(['9223372036854775808', 'x', '1.5', '1 2', '[1', ''])
    if spec == 'f64[3]':
        vals = [rng.choice(FLOATS) for _ in range(3)]
        if valid:
            return rng.choice([' '.join(vals), '[' + ', '.join(vals) + ']'])
        return rng.choice([' '.join(vals[:2]), ' '.join(vals + ['1']), 'x y z', '1 2 zz'])
    if spec == 'u8[4096]':
        t = rng.choice(U8_VALID)
        if valid:
            return t
        return rng.choice([t.rsplit(' ', 1)[0], t + ' 1', '256 ' + t.split(' ', 1)[1], '5'])
    t = rng.choice(U32_VALID)
    if valid:
        return t
    return rng.choice([t.rsplit(' ', 1)[0], '4294967296 ' + t.split(' ', 1)[1], '-1'])


# -- operations ---------------------------------------------------------------

held_fds = []      # (fd, path, view)
held_maps = []     # (mmap, path, writable)
in_lock_wait = False


def on_alarm(signum, frame):
    if in_lock_wait:
        raise LockWait()


signal.signal(signal.SIGALRM, on_alarm)


def closing(fd):
    """Closes fd, ignoring errors (the op's first error is what counts)."""
    try:
        os.close(fd)
    except OSError:
        pass


def op_create():
    rel = pick()
    flags = os.O_CREAT | rng.choice([os.O_RDWR, os.O_WRONLY, os.O_RDONLY])
    if rng.random() < 0.3:
        flags |= os.O_EXCL
    if rng.random() < 0.1:
        flags |= os.O_TRUNC
    path = R(rel) if rng.random() < 0.05 else P(rel)
    note('create', f'{path} flags={flags:#o}')
    os.close(os.open(path, flags, 0o644))


def op_settype():
    rel = pick()
    spec = rng.choices(SPECS, SPEC_WEIGHTS)[0]
    if rng.random() < 0.05:
        spec = rng.choice(['i64[0]', 'x', 'f64[', 'u8[99999999999999]'])
    path, _ = view(rel) if rng.random() < 0.3 else (P(rel), 'text')
    note('settype', f'{path} {spec}')
    os.setxattr(path, TYPE, spec.encode())


def op_textwrite():
    rel = pick()
    path = P(rel)
    spec = None
    if rng.random() < 0.7:
        note('textwrite', f'getxattr {path}')
        spec = fspec(path)
    else:
        spec = rng.choices(SPECS, SPEC_WEIGHTS)[0]
    valid = rng.random() < 0.75
    text = gen_text(spec, valid)
    chunked = rng.random() < 0.2 and ' ' in text
    create = rng.random() < 0.3
    note('textwrite', f'{path} as {spec} valid={valid} chunked={chunked} '
         f'create={create} {text[:40]!r}')
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | (os.O_CREAT if create else 0), 0o644)
    try:
        if chunked:
            cut = text.find(' ', rng.randrange(len(text)))
            cut = (text.index(' ') if cut < 0 else cut) + 1
            os.write(fd, text[:cut].encode())
            os.write(fd, text[cut:].encode())
        else:
            os.write(fd, (text + '\n').encode())
    except BaseException:
        closing(fd)
        raise
    os.close(fd)


def op_textread():
    rel = pick()
    path = P(rel)
    note('textread', path)
    fd = os.open(path, os.O_RDONLY)
    try:
        spec = fspec(fd)
        data = read_all(fd)
        if spec is not None:
            check_text(data, spec, path)
    finally:
        closing(fd)


def op_cat():
    rel = pick()
    path = P(rel) if rng.random() < 0.7 else R(rel)
    note('cat', path)
    r = subprocess.run(['cat', path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=HANG)
    if r.returncode != 0:
        err = r.stderr.decode(errors='replace').strip()
        if any(s in err for s in FATAL_STRINGS):
            raise Finding('CAT', err)
        return 'cat-failed'


def allowed_write_counts(size, off, n):
    """What a .raw pwrite of n bytes at off may return (docs/semantics.md): what fits.
    In passthrough mode the kernel writes the sealed memfd a page at a time
    and stops at the last page boundary before the end (the page that
    crosses it fails, F_SEAL_GROW), so a write running past the end may
    stop there."""
    fits = min(n, size - off)
    if MODE != 'passthrough' or off + n <= size:
        return (fits,)
    return (fits, size // PAGE * PAGE - off)


def op_rawpwrite():
    rel = pick()
    path = R(rel)
    note('rawpwrite', f'open {path}')
    fd = os.open(path, rng.choice([os.O_WRONLY, os.O_RDWR]))
    try:
        size = os.fstat(fd).st_size
        off = rng.randrange(0, size + 9)
        n = rng.choice([1, 4, 8, 64, 4096, 100000])
        data = rng.randbytes(n)
        note('rawpwrite', f'{path} size={size} pwrite({n}, {off})')
        got = os.pwrite(fd, data, off)
        if size and got not in allowed_write_counts(size, off, n):
            raise Finding('BAD_WRITE', f'{path}: pwrite({n}, {off}) of an object '
                          f'of {size} bytes returned {got}')
    finally:
        closing(fd)


def op_rawpread():
    rel = pick()
    path = R(rel)
    note('rawpread', path)
    fd = os.open(path, os.O_RDONLY)
    try:
        return check_pread(fd, path)
    finally:
        closing(fd)


def touch_map(m, path, writable):
    size = len(m)
    if rng.random() < 0.2:
        m[:]                                # every page
    else:
        off = rng.randrange(size)
        m[off:off + 64]
    if writable:
        off = rng.randrange(size)
        n = min(size - off, rng.choice([1, 8, 64]))
        m[off:off + n] = rng.randbytes(n)


def op_mmap():
    rel = pick()
    path = R(rel)
    writable = rng.random() < 0.8
    note('mmap', f'{path} writable={writable}')
    fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 'untyped'
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        m = mmap.mmap(fd, size, mmap.MAP_SHARED, prot)
    finally:
        closing(fd)
    touch_map(m, path, writable)
    if len(held_maps) < 4 and rng.random() < 0.5:
        held_maps.append((m, path, writable))
    else:
        m.close()


def op_touchmaps():
    if not held_maps:
        return 'none'
    i = rng.randrange(len(held_maps))
    m, path, writable = held_maps[i]
    note('touchmaps', f'{path} ({len(m)} bytes, writable={writable}; the name '
         'may be gone)')
    touch_map(m, path, writable)
    if rng.random() < 0.25:
        del held_maps[i]
        m.close()


def renameat2(old, new, flags):
    at = ctypes.c_int(-100)
    if libc.syscall(ctypes.c_long(SYS_renameat2), at,
                    ctypes.c_char_p(os.fsencode(old)), at,
                    ctypes.c_char_p(os.fsencode(new)), ctypes.c_uint(flags)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old, None, new)


def op_rename():
    src, dst = pick(), pick()
    flags = rng.choice([0, 0, RENAME_NOREPLACE, RENAME_NOREPLACE, RENAME_EXCHANGE])
    base = R if rng.random() < 0.03 else P
    note('rename', f'{base(src)} -> {base(dst)} flags={flags}')
    renameat2(base(src), base(dst), flags)


def op_renamedir():
    src, dst = rng.choice([('d1', 'd2'), ('d2', 'd1'), ('d0/s', 'd1/s'),
                           ('d1/s', 'd0/s'), ('d0', 'd1')])
    flags = rng.choice([0, RENAME_NOREPLACE, RENAME_EXCHANGE])
    note('renamedir', f'{src} -> {dst} flags={flags}')
    renameat2(P(src), P(dst), flags)


def op_unlink():
    rel = pick()
    path = R(rel) if rng.random() < 0.03 else P(rel)
    note('unlink', path)
    os.unlink(path)


def op_mkdir():
    d = rng.choice(DIRS[1:] + MORE_DIRS)
    note('mkdir', d)
    os.mkdir(P(d))


def op_rmdir():
    d = rng.choice(DIRS[1:] + MORE_DIRS)
    path = R(d) if rng.random() < 0.05 else P(d)
    note('rmdir', path)
    os.rmdir(path)


def op_flock():
    global in_lock_wait
    rel = pick()
    path, v = view(rel)
    blocking = rng.random() < 0.3
    shared = rng.random() < 0.2
    note('flock', f'{path} blocking={blocking} shared={shared}')
    fd = os.open(path, os.O_RDONLY)
    try:
        how = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        if blocking:
            in_lock_wait = True
            signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.05, 0.3))
            try:
                fcntl.flock(fd, how)
            finally:
                in_lock_wait = False
                signal.setitimer(signal.ITIMER_REAL, 0)
        else:
            fcntl.flock(fd, how | fcntl.LOCK_NB)
        note('flock', f'{path} held')
        if rng.random() < 0.5:
            if v == 'raw':
                check_pread(fd, path)
            else:
                read_all(fd)
        else:
            time.sleep(rng.uniform(0, 0.01))
        if rng.random() < 0.5:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        closing(fd)


def op_lockf():
    global in_lock_wait
    rel = pick()
    path, _ = view(rel)
    blocking = rng.random() < 0.3
    note('lockf', f'{path} blocking={blocking}')
    fd = os.open(path, os.O_RDWR)
    try:
        if blocking:
            in_lock_wait = True
            signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.05, 0.3))
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
            finally:
                in_lock_wait = False
                signal.setitimer(signal.ITIMER_REAL, 0)
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        time.sleep(rng.uniform(0, 0.005))
        fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        closing(fd)


def atomic(fd, where):
    op = rng.choice([ADD, ADD, ADD, ADD, SUB, XCHG, CAS, LOAD])
    flt = rng.random() < 0.3
    index = rng.choice([0, 0, 0, 1, 2, 4095, 99999, 100000])
    if flt:
        operand = struct.pack('=d', rng.choice([1.0, -0.5, 1e300]))
    else:
        operand = struct.pack('=q', rng.choice([1, 1, -1, 255, 1 << 40]))
    note('atomic', f'{where} op={op} float={flt} index={index}')
    buf = bytearray(struct.pack(ATOMIC_FMT, op, 1 if flt else 0, index,
                                operand, bytes(8), bytes(8), 0, 0))
    fcntl.ioctl(fd, IOC_ATOMIC, buf, True)


def op_atomic():
    rel = pick()
    path, _ = view(rel)
    note('atomic', f'open {path}')
    fd = os.open(path, os.O_RDONLY if rng.random() < 0.1 else os.O_RDWR)
    try:
        atomic(fd, path)
    finally:
        closing(fd)


def op_stat():
    rel = pick()
    path, _ = view(rel) if rng.random() < 0.4 else (P(rel), 'text')
    note('stat', path)
    os.stat(path)


def op_statclose():
    """open, fstat, close, stat: last closes racing stats of the text view
    while others unlink."""
    rel = pick()
    path, _ = view(rel) if rng.random() < 0.3 else (P(rel), 'text')
    note('statclose', f'open {path}')
    fd = os.open(path, os.O_RDONLY)
    try:
        for _ in range(rng.randrange(1, 4)):
            os.fstat(fd)
    finally:
        closing(fd)
    note('statclose', f'stat {path} after close')
    os.stat(path)


def op_churn():
    """An object typed, opened, unlinked and closed at once: the close is
    the last one of an unlinked object, racing others' stat and open of
    the name."""
    rel = rng.choice(HOT)
    path = P(rel)
    spec = rng.choices(SPECS, SPEC_WEIGHTS)[0]
    note('churn', f'create {path}')
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        note('churn', f'type {path} {spec}')
        try:
            os.setxattr(fd, TYPE, spec.encode())
        except OSError as e:
            if e.errno != errno.EPERM:      # typed already
                raise
        note('churn', f'unlink {path}')
        os.unlink(path)
    finally:
        note('churn', f'close {path}')
        closing(fd)


def op_getxattr():
    rel = pick()
    path, _ = view(rel)
    name = rng.choice(XATTRS)
    note('getxattr', f'{path} {name}')
    os.getxattr(path, name)


def op_listxattr():
    rel = pick()
    path, _ = view(rel)
    note('listxattr', path)
    os.listxattr(path)


def op_lifetime():
    rel = pick()
    path = P(rel)
    r = rng.random()
    if r < 0.1:
        note('lifetime', f'{path} remove')
        os.removexattr(path, LIFETIME)
        return
    value = f'pid:{os.getpid()}' if r < 0.7 else 'process'
    note('lifetime', f'{path} {value}')
    os.setxattr(path, LIFETIME, value.encode())


def op_lifetimechild():
    """A child binds an object to itself and exits: the daemon removes it
    while the storm goes on."""
    rel = pick()
    path = P(rel)
    note('lifetimechild', path)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setxattr(path, LIFETIME, f'pid:{os.getpid()}'.encode())
        except OSError as e:
            code = e.errno & 0x7f
        except BaseException:
            code = 126
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise Finding('CHILD', f'child binding {path} killed by signal '
                      f'{os.WTERMSIG(status)}')
    code = os.WEXITSTATUS(status)
    if code in FATAL_ERRNOS or code == 126:
        raise Finding('CHILD', f'child binding {path}: {errno.errorcode.get(code, code)}')
    if code:
        raise OSError(code, os.strerror(code), path)


def op_readdir():
    d = rng.choice(DIRS + MORE_DIRS)
    path = R(d) if rng.random() < 0.5 else P(d)
    note('readdir', path)
    with os.scandir(path) as it:
        for e in it:
            if rng.random() < 0.3:
                try:
                    e.stat()
                except FileNotFoundError:
                    pass


def op_holdopen():
    rel = pick()
    path, v = view(rel)
    flags = rng.choice([os.O_RDONLY, os.O_RDWR])
    note('holdopen', path)
    fd = os.open(path, flags)
    held_fds.append((fd, path, v))
    if len(held_fds) > 6:
        fd, path, v = held_fds.pop(0)
        note('holdopen', f'close {path}')
        os.close(fd)


def op_heldop():
    if not held_fds:
        return 'none'
    i = rng.randrange(len(held_fds))
    fd, path, v = held_fds[i]
    what = rng.choice(['fstat', 'read', 'read', 'xattr', 'atomic', 'close', 'close'])
    note('heldop', f'{what} {path} (the name may be gone)')
    try:
        return held_op(what, i, fd, path, v)
    except OSError as e:
        if e.errno == errno.ENOENT:     # an open file has no name to miss
            raise Finding('FD_ENOENT', f'{what} on a held fd of {path}: {e}')
        raise


def held_op(what, i, fd, path, v):
    if what == 'fstat':
        os.fstat(fd)
    elif what == 'read':
        if v == 'raw':
            return check_pread(fd, path)
        spec = fspec(fd)
        data = b''
        while True:
            b = os.pread(fd, 1 << 20, len(data))
            if not b:
                break
            data += b
        if spec is not None:
            check_text(data, spec, path + ' (held)')
    elif what == 'xattr':
        os.getxattr(fd, rng.choice(XATTRS))
    elif what == 'atomic':
        atomic(fd, path + ' (held)')
    else:
        del held_fds[i]
        os.close(fd)


def op_truncate():
    rel = pick()
    path, _ = view(rel)
    size = rng.choice([0, 8, 24, 4096, 5])
    note('truncate', f'{path} {size}')
    os.truncate(path, size)


OPS = {
    'create': (op_create, 12), 'settype': (op_settype, 8),
    'textwrite': (op_textwrite, 10), 'textread': (op_textread, 8),
    'cat': (op_cat, 0.3), 'rawpwrite': (op_rawpwrite, 8),
    'rawpread': (op_rawpread, 8), 'mmap': (op_mmap, 6),
    'touchmaps': (op_touchmaps, 6), 'rename': (op_rename, 8),
    'renamedir': (op_renamedir, 0.5), 'unlink': (op_unlink, 6),
    'mkdir': (op_mkdir, 3), 'rmdir': (op_rmdir, 3), 'flock': (op_flock, 5),
    'lockf': (op_lockf, 2), 'atomic': (op_atomic, 8), 'stat': (op_stat, 10),
    'statclose': (op_statclose, 8), 'getxattr': (op_getxattr, 6),
    'listxattr': (op_listxattr, 2), 'lifetime': (op_lifetime, 2),
    'lifetimechild': (op_lifetimechild, 0.3), 'readdir': (op_readdir, 4),
    'holdopen': (op_holdopen, 4), 'heldop': (op_heldop, 6),
    'truncate': (op_truncate, 1), 'churn': (op_churn, 4),
}
NAMES_OF_OPS = list(OPS)
WEIGHTS = [OPS[n][1] for n in NAMES_OF_OPS]

stats = {}
findings = []
finding_counts = {}
total = 0


def record(op, outcome, kind=None, what=None, tb=None):
    per = stats.setdefault(op, {})
    per[outcome] = per.get(outcome, 0) + 1
    if kind:
        finding_counts[kind] = finding_counts.get(kind, 0) + 1
        if finding_counts[kind] <= 10:
            findings.append({'kind': kind, 'op': op, 'doing': current,
                             'what': what, 'where': tb,
                             't': round(time.monotonic() - T0, 3)})


def where(exc):
    frames = traceback.extract_tb(exc.__traceback__)
    return f'{frames[-1].name}:{frames[-1].lineno}: {frames[-1].line}' if frames else ''


def run():
    global total
    faulthandler.enable()          # SIGBUS/SIGSEGV: stacks, then die by it
    end = T0 + SECONDS
    notconn = 0
    while time.monotonic() < end and notconn < 50:
        name = rng.choices(NAMES_OF_OPS, WEIGHTS)[0]
        fn = OPS[name][0]
        note(name, '')
        faulthandler.dump_traceback_later(HANG, exit=True)
        try:
            outcome = fn() or 'ok'
            record(name, outcome)
        except OSError as e:
            ename = errno.errorcode.get(e.errno, str(e.errno))
            if (e.errno == errno.EIO and MODE == 'passthrough'
                    and where(e).startswith('op_') and 'os.open(' in where(e)
                    and '/.raw/' in str(e.filename)):
                # The kernel's verdict on an open whose reply (untyped: no
                # passthrough) it took after a typed open had passed the
                # inode through; see KNOWN_OPEN.
                record(name, 'RAW_OPEN_EIO', 'RAW_OPEN_EIO', str(e), where(e))
            elif e.errno in FATAL_ERRNOS:
                record(name, ename, ename, str(e), where(e))
                notconn += e.errno == errno.ENOTCONN
            else:
                record(name, ename)
        except Finding as e:
            record(name, e.kind, e.kind, str(e), where(e))
        except LockWait:
            record(name, 'alarm')
        except ValueError:               # mmap of a size that changed
            record(name, 'ValueError')
        except Exception as e:
            record(name, 'EXCEPTION', 'EXCEPTION', repr(e),
                   traceback.format_exc()[-1500:])
        finally:
            faulthandler.cancel_dump_traceback_later()
        total += 1
    # The kept mappings must still work, whatever became of their names.
    faulthandler.dump_traceback_later(HANG, exit=True)
    for m, path, writable in held_maps:
        note('final-touch', f'{path} ({len(m)} bytes)')
        m[:]
        m.close()
    for fd, path, v in held_fds:
        note('final-close', path)
        closing(fd)
    faulthandler.cancel_dump_traceback_later()


run()
with open(OUT, 'w') as f:
    json.dump({'index': INDEX, 'pid': os.getpid(), 'total': total,
               'ops': stats, 'findings': findings,
               'finding_counts': finding_counts}, f)
'''


# -- after the storm ----------------------------------------------------------

ELEM = {'i8': 'b', 'u8': 'B', 'i16': 'h', 'u16': 'H', 'i32': 'i', 'u32': 'I',
        'i64': 'q', 'u64': 'Q', 'f32': 'f', 'f64': 'd', 'bool': 'B'}


def parse_spec(spec):
    m = re.fullmatch(r'\s*(\w+)((?:\[\d+\])*)\s*', spec)
    assert m and m.group(1) in ELEM, f'unexpected type {spec!r}'
    n = 1
    for d in re.findall(r'\[(\d+)\]', m.group(2)):
        n *= int(d)
    return m.group(1), n


def text_mismatch(base, raw, tokens):
    """Where the text's elements and the raw bytes disagree, or None."""
    code = ELEM[base]
    size = struct.calcsize(code)
    values = struct.unpack(f'<{len(raw) // size}{code}', raw)
    for i, (tok, v) in enumerate(zip(tokens, values)):
        tok = tok.decode()
        if base == 'bool':
            ok = (tok in ('1', 'true')) == (v != 0)
        elif code in 'fd':
            t = float(tok)
            ok = (t != t and v != v) or \
                struct.pack('<' + code, t) == raw[i * size:(i + 1) * size]
        else:
            ok = int(tok) == v
        if not ok:
            return f'element {i}: text {tok!r}, .raw {v!r}'
    return None


def check_object(shmfs, rel):
    """Problems with one remaining object: both views and xattrs agree."""
    p, r = shmfs.p(rel), shmfs.r(rel)
    problems = []
    try:
        spec = os.getxattr(p, util.TYPE).decode()
    except OSError as e:
        if e.errno != errno.ENODATA:
            return [f'{rel}: getxattr type: {util.ename(e.errno)}']
        spec = None
    try:
        text = util.read_bytes(p)
        raw = util.read_bytes(r)
        st_text, st_raw = os.stat(p), os.stat(r)
    except OSError as e:
        return [f'{rel}: reading the views: {e}']
    if spec is None:
        if raw or st_raw.st_size:
            problems.append(f'{rel}: untyped, yet .raw has {len(raw)} bytes '
                            f'(st_size {st_raw.st_size})')
        return problems
    base, count = parse_spec(spec)
    nbytes = count * struct.calcsize(ELEM[base])
    if int(util.xattr(r, 'user.shmfs.nbytes')) != nbytes:
        problems.append(f'{rel}: nbytes xattr {util.xattr(r, "user.shmfs.nbytes")} '
                        f'for a {spec}')
    if util.xattr(r, util.TYPE) != spec:
        problems.append(f'{rel}: the type xattr of .raw is '
                        f'{util.xattr(r, util.TYPE)!r}, of the text view {spec!r}')
    if len(raw) != nbytes or st_raw.st_size != nbytes:
        problems.append(f'{rel}: {spec}: .raw reads {len(raw)} bytes, st_size '
                        f'{st_raw.st_size}, expected {nbytes}')
        return problems
    if st_text.st_size != len(text):
        problems.append(f'{rel}: text view st_size {st_text.st_size}, reads '
                        f'{len(text)} bytes')
    tokens = text.replace(b'[', b' ').replace(b']', b' ') \
        .replace(b',', b' ').split()
    if len(tokens) != count:
        problems.append(f'{rel}: {spec}: text has {len(tokens)} elements: '
                        f'{text[:80]!r}')
    else:
        bad = text_mismatch(base, raw, tokens)
        if bad:
            problems.append(f'{rel}: {spec}: text and .raw differ at {bad}')
    with util.mapped(r, prot=mmap.PROT_READ) as m:
        if m[:] != raw:
            problems.append(f'{rel}: a mapping of .raw differs from read(2)')
    return problems


def snapshot(shmfs):
    names = []
    for top, dirs, files in os.walk(shmfs.path):
        rel = os.path.relpath(top, shmfs.path)
        names += [os.path.normpath(os.path.join(rel, n)) + '/' for n in dirs]
        names += [os.path.normpath(os.path.join(rel, n)) for n in files]
    return sorted(names)


def bound_objects(shmfs):
    out = []
    for name in snapshot(shmfs):
        if name.endswith('/'):
            continue
        try:
            out.append((name, util.xattr(shmfs.p(name), 'user.shmfs.lifetime')))
        except OSError as e:
            if e.errno not in (errno.ENODATA, errno.ENOENT):
                out.append((name, util.ename(e.errno)))
    return out


def check_after(shmfs):
    """Problems with the filesystem once every worker has gone."""
    problems = []
    # Objects bound to the workers (all dead now) go within a second or so.
    if not util.poll_until(lambda: not bound_objects(shmfs), timeout=10):
        problems.append(f'objects still bound to exited processes: '
                        f'{bound_objects(shmfs)}')
    for tree in (shmfs.path, shmfs.raw):
        r = util.sh('ls -laR .', cwd=tree)
        if r.returncode != 0:
            problems.append(f'ls -R {tree}: status {r.returncode}: '
                            f'{r.stderr.strip()[:500]}')
    names = snapshot(shmfs)
    print(f'after the storm: {len(names)} names: {" ".join(names)}')
    for name in names:
        if name.endswith('/'):
            d = name.rstrip('/')
            main = sorted(os.listdir(shmfs.p(d)))
            raw = sorted(os.listdir(shmfs.r(d)))
            if main != raw:
                problems.append(f'{d}: main tree lists {main}, .raw {raw}')
        else:
            problems += check_object(shmfs, name)
    main = sorted(os.listdir(shmfs.path))
    raw = sorted(os.listdir(shmfs.raw))
    if main != raw:
        problems.append(f'root: main tree lists {main}, .raw {raw}')

    # Everything removed, no bytes stay in use.
    for entry in os.listdir(shmfs.path):
        p = shmfs.p(entry)
        if os.path.isdir(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)

    def used():
        sv = os.statvfs(shmfs.path)
        return (sv.f_blocks - sv.f_bfree) * sv.f_frsize
    if not util.poll_until(lambda: used() == 0, timeout=5):
        problems.append(f'{used()} bytes in use after removing everything')
    if os.listdir(shmfs.path) or os.listdir(shmfs.raw):
        problems.append('names left after removing everything')
    return problems


def log_excerpt(shmfs, lines=40):
    """The daemon's log without the routine lines."""
    keep = [line for line in shmfs.log().splitlines()
            if not re.match(r'shmfs: (rejected|removed) ', line)]
    return '\n'.join(keep[-lines:])


def reap_workers(procs):
    """Waits for every worker; returns (problems, their results)."""
    problems = []
    deadline = time.monotonic() + SECONDS + HANG + 60
    results = []
    for i, proc, files in procs:
        try:
            rc = proc.wait(timeout=max(1, deadline - time.monotonic()))
            hung = None
        except subprocess.TimeoutExpired:
            hung = proc_state(proc.pid)
            proc.kill()
            try:
                rc = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                rc = None
        with open(files['err'], errors='replace') as f:
            err = f.read()
        try:
            with open(files['cur'], errors='replace') as f:
                cur = f.read().strip()
        except FileNotFoundError:
            cur = '?'
        tail = err[-3000:]
        if hung is not None:
            problems.append(f'worker {i} did not end (no op guard fired): '
                            f'in {cur!r}; {hung}; rc after kill {rc}\n{tail}')
        elif rc == -signal.SIGBUS:
            problems.append(f'worker {i} killed by SIGBUS in {cur!r}\n{tail}')
        elif rc is not None and rc < 0:
            problems.append(f'worker {i} killed by signal {-rc} in {cur!r}\n{tail}')
        elif rc != 0:
            what = 'hung (op guard fired)' if 'Timeout (' in err else f'exited {rc}'
            problems.append(f'worker {i} {what} in {cur!r}\n{tail}')
        if rc == 0:
            with open(files['json']) as f:
                results.append(json.load(f))
            if results[-1]['total'] <= 0:
                problems.append(f'worker {i} did no operation')
    return problems, results


def proc_state(pid):
    out = []
    for what in ('wchan', 'stack'):
        try:
            with open(f'/proc/{pid}/{what}') as f:
                out.append(f'{what}: {f.read().strip()}')
        except OSError:
            pass
    return '; '.join(out)


@util.both_modes
def test_storm(shmfs, tmp_path):
    mode = shmfs.mode()
    seed = int(os.environ.get('SHMFS_STORM_SEED') or random.randrange(1 << 32))
    replay = (f'SHMFS_STORM_SEED={seed} SHMFS_STORM_SECONDS={SECONDS:g} '
              f'(mode {mode})')
    print(f'storm: {WORKERS} workers, {SECONDS:g} s, mode {mode}, seed {seed}; '
          f'replay: {replay}', flush=True)
    script = tmp_path / 'storm_worker.py'
    script.write_text(WORKER)
    os.mkdir(shmfs.p('d0'))
    os.mkdir(shmfs.p('d1'))

    procs = []
    for i in range(WORKERS):
        files = {k: str(tmp_path / f'w{i}.{k}') for k in ('json', 'cur', 'err')}
        with open(files['err'], 'wb') as err:
            proc = subprocess.Popen(
                [util.PYTHON, str(script), shmfs.path, str(seed), str(i),
                 str(SECONDS), str(HANG), files['json'], files['cur']],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        procs.append((i, proc, files))

    try:
        problems, results = reap_workers(procs)
    except BaseException:           # e.g. meson's timeout: leave no worker
        for _, proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        raise

    # Counts per operation and outcome, and what was found.
    ops = collections.defaultdict(collections.Counter)
    kinds = collections.Counter()
    for res in results:
        for op, outcomes in res['ops'].items():
            ops[op].update(outcomes)
        kinds.update(res['finding_counts'])
    print(f'ops per worker: {[res["total"] for res in results]} '
          f'(total {sum(res["total"] for res in results)})')
    for op in sorted(ops):
        outcomes = ', '.join(f'{k} {n}' for k, n in ops[op].most_common())
        print(f'  {op:14} {sum(ops[op].values()):6}  {outcomes}')
    print(f'findings: {dict(kinds) or "none"}')
    found = sorted((dict(f, worker=res['index']) for res in results
                    for f in res['findings']), key=lambda f: f['t'])

    def describe(f):
        return (f'worker {f["worker"]} at {f["t"]}s in {f["doing"]!r}: '
                f'{f["what"]} [{f["where"]}]')
    shown = collections.Counter()
    for f in found:
        shown[f['kind']] += 1
        if shown[f['kind']] <= 5:
            print(f'  {f["kind"]}: {describe(f)}')
    for kind in FATAL:
        if kinds[kind] and kind in KNOWN_OPEN.get(shmfs.mode(), ()):
            print(f'known open, not failing this test: {kinds[kind]} x {kind}: '
                  f'{KNOWN_OPEN[shmfs.mode()][kind]}')
        elif kinds[kind]:
            these = [f for f in found if f['kind'] == kind]
            if kind == 'ECONNABORTED':  # what was in flight when it died
                problems.append(f'{kinds[kind]} x {kind} (requests in flight '
                                'when the daemon went):\n    '
                                + '\n    '.join(map(describe, these[:WORKERS])))
            else:
                problems.append(f'{kinds[kind]} x {kind}, first: '
                                f'{describe(these[0])}')

    if not shmfs.alive():
        problems.append(f'the daemon is gone (status {shmfs.proc.poll()})')
    else:
        problems += check_after(shmfs)
        if not shmfs.alive():
            problems.append('the daemon died during the checks after the storm')

    if problems:
        raise AssertionError(
            f'storm in {mode} mode, seed {seed} (replay: {replay}):\n  '
            + '\n  '.join(problems)
            + '\n--- daemon log (routine lines left out) ---\n'
            + log_excerpt(shmfs))
