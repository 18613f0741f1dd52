"""The shmfs mount the benchmarks measure (run-bench.py, remote-bench.py).

A Mount runs shmfs in the foreground on a fresh directory, in a session of
its own so that Ctrl-C reaches the benchmark only, and close() always
unmounts it (fusermount3 -u, then lazily), reaps the daemon and removes the
directory.  Interrupted and on_signal make SIGTERM and SIGHUP unwind like
Ctrl-C, so that the mount is undone on those too.
"""

import os
import re
import signal
import subprocess
import tempfile
import time

# What in a daemon's output the benchmarks report as a problem.
DAEMON_COMPLAINT = re.compile(r"error|warning|critical|crash|assert|^==\d+==", re.I)


class Interrupted(Exception):
    """SIGTERM or SIGHUP: unwind like Ctrl-C."""


def on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def is_mounted(path):
    """Whether path is a mount point, without touching the (maybe hung) fs."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == path:
                return True
    return False


class Mount:
    """shmfs in the foreground on a fresh directory; close() always unmounts.

    The directory is a new one in the temporary directory, named
    DIR_PREFIX-LABEL-...; each of options is passed with -o."""

    def __init__(self, shmfs, options, label, dir_prefix):
        self.shmfs = shmfs
        self.options = options
        self.label = label
        self.dir = tempfile.mkdtemp(prefix=f"{dir_prefix}-{label}-")
        self.log = tempfile.TemporaryFile(mode="w+")
        self.daemon = None
        self.exit_status = None

    def _argv(self, mountpoint):
        return [self.shmfs, "-f"] + [a for o in self.options for a in ("-o", o)] + [mountpoint]

    @property
    def command(self):
        return self._argv("MNT")

    def start(self):
        self.daemon = subprocess.Popen(
            self._argv(self.dir),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)      # Ctrl-C reaches us only; we unmount
        deadline = time.monotonic() + 10
        while not is_mounted(self.dir):
            if self.daemon.poll() is not None:
                raise RuntimeError(f"shmfs exited with {self.daemon.returncode} before mounting:\n"
                                   + self.output())
            if time.monotonic() > deadline:
                raise RuntimeError("shmfs did not mount within 10 s:\n" + self.output())
            time.sleep(0.1)

    def mode(self):
        return os.getxattr(self.dir, "user.shmfs.mode").decode().strip("\0\n")

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def close(self):
        """Unmount (-u, then lazily), reap the daemon, remove the directory."""
        if self.daemon is None:
            os.rmdir(self.dir)
            return
        for attempt in range(5):
            if not is_mounted(self.dir):
                break
            lazy = ["-z"] if attempt == 4 else []
            subprocess.run(["fusermount3", "-u", *lazy, self.dir],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.2 if is_mounted(self.dir) else 0)
        try:
            self.exit_status = self.daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.daemon.terminate()
            try:
                self.exit_status = self.daemon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.exit_status = self.daemon.wait()
        self.daemon = None
        if not is_mounted(self.dir):
            os.rmdir(self.dir)
