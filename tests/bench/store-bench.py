#!/usr/bin/python3
"""Measure the two designs of a persistent store (-o store=DIR) at their
durability points and print one table.

Built: each stored object is a file in DIR that the daemon maps, served in
cached mode; a durability point is fsync(2) on the object's .raw file (the
kernel writes the dirty pages back to the daemon, the daemon fsyncs the
file).  Not built: objects stay in memfds served in passthrough mode (the
speed of the passthrough table of run-bench.py) and each durability point
copies the object into DIR crash-safely: write a new file, fsync it, rename
it over the old one.  Both are timed here for the same object, with every
page changed before each durability point, and both on DIR's filesystem.

    $ /usr/bin/python3 tests/bench/store-bench.py --shmfs build/fs/shmfs [--dir DIR]

It measures, it does not assert; the mount is always undone.
"""

import argparse
import mmap
import os
import statistics
import subprocess
import sys
import tempfile
import time

SIZES = ((8, "i64"), (1 << 20, "u8[1048576]"), (64 << 20, "u8[67108864]"))
PAGE = os.sysconf("SC_PAGESIZE")


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def dirty_every_page(m, size, value):
    for off in range(0, size, PAGE):
        m[off] = value
    m[size - 1] = value


def time_built(mnt, size, spec, reps):
    """fsync(2) on .raw of a stored object after changing every page
    through a mapping."""
    path = os.path.join(mnt, f"obj{size}")
    with open(path, "w"):
        pass
    os.setxattr(path, "user.shmfs.type", spec.encode())
    fd = os.open(os.path.join(mnt, ".raw", f"obj{size}"), os.O_RDWR)
    try:
        m = mmap.mmap(fd, size, mmap.MAP_SHARED)
        times = []
        for i in range(reps):
            dirty_every_page(m, size, i & 0xff)
            t = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - t)
        m.close()
        return times
    finally:
        os.close(fd)


def time_copy(dirpath, size, reps):
    """What the other design pays at each durability point: the object's
    memfd written to a new file in DIR, fsync, rename over the old copy."""
    memfd = os.memfd_create("obj", os.MFD_CLOEXEC)
    os.ftruncate(memfd, size)
    m = mmap.mmap(memfd, size, mmap.MAP_SHARED)
    final = os.path.join(dirpath, f"copy{size}")
    times = []
    try:
        for i in range(reps):
            dirty_every_page(m, size, i & 0xff)
            t = time.perf_counter()
            tmp = final + ".new"
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                done = 0
                while done < size:
                    done += os.sendfile(out, memfd, done, size - done)
                os.fsync(out)
            finally:
                os.close(out)
            os.rename(tmp, final)
            dfd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(dfd)
            os.close(dfd)
            times.append(time.perf_counter() - t)
    finally:
        m.close()
        os.close(memfd)
    return times


def fmt_ms(times):
    return (f"{statistics.median(times) * 1e3:9.3f} "
            f"[{min(times) * 1e3:.3f}-{max(times) * 1e3:.3f}]")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shmfs", default=os.environ.get("SHMFS_BIN"), help="the shmfs daemon")
    parser.add_argument("--dir", default="/var/tmp",
                        help="where the store and the copies go (default /var/tmp, on disk)")
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    if not args.shmfs:
        parser.error("--shmfs is needed")

    work = tempfile.mkdtemp(prefix="shmfs-store-bench-", dir=args.dir)
    store, copies = os.path.join(work, "store"), os.path.join(work, "copies")
    os.mkdir(store)
    os.mkdir(copies)
    mnt = tempfile.mkdtemp(prefix="shmfs-store-bench-mnt-")
    log = tempfile.TemporaryFile(mode="w+")
    daemon = subprocess.Popen([args.shmfs, "-f", "-o", f"store={store}", mnt],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not mounted(mnt):
            if daemon.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                sys.exit("shmfs did not mount:\n" + log.read())
            time.sleep(0.05)
        fs_type = subprocess.run(["stat", "-f", "-c", "%T", work], stdout=subprocess.PIPE,
                                 text=True).stdout.strip()
        print(f"== durability points: -o store=DIR ({fs_type} at {args.dir}) vs copying "
              f"memfds into DIR (kernel {os.uname().release}, median of {args.reps}) ==")
        print(f"{'object':<14} {'built: fsync .raw, ms [min-max]':<34} "
              f"{'other: copy+fsync+rename, ms [min-max]':<40} ratio")
        for size, spec in SIZES:
            built = time_built(mnt, size, spec, args.reps)
            copy = time_copy(copies, size, args.reps)
            ratio = statistics.median(built) / statistics.median(copy)
            print(f"{spec:<14} {fmt_ms(built):<34} {fmt_ms(copy):<40} {ratio:.2f}x")
    finally:
        if mounted(mnt):
            subprocess.run(["fusermount3", "-u", mnt])
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
            subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL)
        os.rmdir(mnt)
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
