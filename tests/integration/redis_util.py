"""redis-server processes for the remote-mount tests (docs/design/remote.md
§5): a server or a 3-node Cluster on loopback ports, no persistence.

    with RedisServer() as server:          # skips the test without redis-server
        server.cli('SET', 'k', 'v')
        url = server.url                   # redis://127.0.0.1:PORT

    with RedisCluster(3) as cluster:       # three masters, slots assigned
        cluster.cli('CLUSTER', 'INFO')     # on the first node (-c: follows MOVED)

Servers are killed however the test ends: stop() in __exit__, an atexit
hook for anything left, and PR_SET_PDEATHSIG so a killed test process
takes them along.
"""

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

REDIS_SERVER = shutil.which('redis-server')
REDIS_CLI = shutil.which('redis-cli')

_live = set()


def require_redis():
    """Skips the calling test when redis-server or redis-cli is missing."""
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip('redis-server is not installed (apt-get install redis-server)')


def _free_port(bus=False):
    """A loopback port free now (and port + 10000, a Cluster's bus)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        if not bus:
            return port
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(('127.0.0.1', port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError('no free port')


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)       # PR_SET_PDEATHSIG


class RedisServer:
    """One redis-server on 127.0.0.1, started by start() (or `with`)."""

    def __init__(self, *args, cluster=False):
        self.args = list(args)
        self.cluster = cluster
        self.port = None
        self.proc = None
        self.dir = None

    @property
    def url(self):
        return f'redis://127.0.0.1:{self.port}'

    def __enter__(self):
        require_redis()
        self.start()
        return self

    def __exit__(self, *exc):
        self.remove()

    def _command(self):
        cmd = [REDIS_SERVER, '--port', str(self.port), '--bind', '127.0.0.1',
               '--save', '', '--appendonly', 'no', '--daemonize', 'no',
               '--logfile', 'redis.log']
        if self.cluster:
            cmd += ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
                    '--cluster-node-timeout', '2000']
        return cmd + self.args

    def start(self, timeout=10):
        """Starts the server on a free port (the same port on a restart)
        and waits until it answers PING."""
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix='shmfs-redis-')
        keep_port = self.port is not None
        for _ in range(5):
            if not keep_port:
                self.port = _free_port(bus=self.cluster)
            self.proc = subprocess.Popen(self._command(), cwd=self.dir,
                                         stdout=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent)
            _live.add(self)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.ping():
                    return self
                time.sleep(0.01)
            self._kill()                # the port was taken meanwhile, say
        raise RuntimeError(f'redis-server did not start: {self.log()}')

    def ping(self):
        try:
            return self.cli('PING', timeout=2, check=False) == 'PONG'
        except (subprocess.SubprocessError, OSError):
            return False

    def cli(self, *args, timeout=10, check=True):
        """Runs redis-cli ARGS against the server; returns its stdout,
        stripped.  check: fail on a nonzero status or an error reply."""
        p = subprocess.run([REDIS_CLI, '-h', '127.0.0.1', '-p', str(self.port)]
                           + (['-c'] if self.cluster else []) + [str(a) for a in args],
                           capture_output=True, text=True, timeout=timeout)
        out = p.stdout.strip()
        if check and (p.returncode != 0 or out.startswith('ERR') or out.startswith('(error)')):
            raise AssertionError(f'redis-cli {" ".join(map(str, args))}: {out} {p.stderr}')
        return out

    def log(self):
        try:
            with open(os.path.join(self.dir, 'redis.log')) as f:
                return f.read()[-2000:]
        except OSError:
            return ''

    def _kill(self):
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout=5):
        """SHUTDOWN NOSAVE, then SIGKILL; the port stays ours for restart()."""
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGCONT)
            try:
                self.cli('SHUTDOWN', 'NOSAVE', timeout=2, check=False)
            except (subprocess.SubprocessError, OSError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        self.proc = None
        _live.discard(self)

    def pause(self):
        """SIGSTOP: the server still accepts connections (the kernel's
        backlog) and answers nothing."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def restart(self):
        """Stops and starts the server on the same port (no persistence:
        it comes back empty)."""
        self.stop()
        return self.start()

    def remove(self):
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class RedisCluster:
    """n masters (--cluster-enabled yes) made one Cluster with
    `redis-cli --cluster create`, waited for until cluster_state:ok; args
    go to every redis-server."""

    def __init__(self, n=3, args=()):
        self.nodes = [RedisServer(*args, cluster=True) for _ in range(n)]

    @property
    def url(self):
        return self.nodes[0].url

    def __enter__(self):
        require_redis()
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=30):
        for node in self.nodes:
            node.start()
        p = subprocess.run([REDIS_CLI, '--cluster', 'create']
                           + [f'127.0.0.1:{n.port}' for n in self.nodes]
                           + ['--cluster-replicas', '0', '--cluster-yes'],
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f'redis-cli --cluster create: {p.stdout} {p.stderr}')
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while 'cluster_state:ok' not in node.cli('CLUSTER', 'INFO'):
                if time.monotonic() > deadline:
                    raise RuntimeError('the cluster did not become ok')
                time.sleep(0.01)
        return self

    def cli(self, *args, **kwargs):
        return self.nodes[0].cli(*args, **kwargs)

    def stop(self):
        for node in self.nodes:
            node.remove()


@atexit.register
def _stop_all():
    for server in list(_live):
        server.remove()
