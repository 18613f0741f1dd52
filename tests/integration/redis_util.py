"""Redis servers for the remote-mount tests, started and stopped by the
tests on loopback ports they choose (tools/setup.sh installs redis-server;
the tests skip with MISSING when it is absent)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REDIS_SERVER = shutil.which('redis-server') or '/usr/bin/redis-server'
REDIS_CLI = shutil.which('redis-cli') or '/usr/bin/redis-cli'
MISSING = 'redis-server is not installed (tools/setup.sh installs it)'


def available():
    return os.access(REDIS_SERVER, os.X_OK) and os.access(REDIS_CLI, os.X_OK)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class RedisServer:
    """One redis-server on 127.0.0.1, no persistence unless asked."""

    def __init__(self, port=None, args=()):
        self.port = port
        self.args = list(args)
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix='shmfs-redis-')

    @property
    def url(self):
        return f'redis://127.0.0.1:{self.port}'

    def start(self, timeout=10):
        for _ in range(5):
            port = self.port or free_port()
            self.proc = subprocess.Popen(
                [REDIS_SERVER, '--port', str(port), '--bind', '127.0.0.1',
                 '--save', '', '--appendonly', 'no', '--daemonize', 'no',
                 '--dir', self.dir, '--logfile', os.path.join(self.dir, 'log')]
                + self.args,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._ping(port):
                    self.port = port
                    return self
                time.sleep(0.02)
            self._kill()
            if self.port is not None:
                break
        raise AssertionError(f'redis-server did not start:\n{self.log()}')

    def _ping(self, port):
        r = subprocess.run([REDIS_CLI, '-p', str(port), 'PING'], capture_output=True,
                           timeout=5)
        return r.stdout.strip() == b'PONG'

    def log(self):
        try:
            with open(os.path.join(self.dir, 'log')) as f:
                return f.read()[-4000:]
        except OSError:
            return ''

    def cli(self, *args):
        """redis-cli ARGS: its output, stripped."""
        r = subprocess.run([REDIS_CLI, '-p', str(self.port)] + [str(a) for a in args],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout.decode().strip()

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
