#!/usr/bin/python3
"""A remote mount against its Redis server, side by side in one run.

Starts a redis-server of its own on a free loopback port, mounts shmfs on it
(-o remote=redis://127.0.0.1:PORT), and times, one operation at a time from
one client, the text read and write of an i64, 8-byte pread/pwrite of its
.raw view and the atomic add, each with shmfs-latency (median, p99, ops/s).
Beside each it counts the Redis commands one such operation sends (a
`redis-cli MONITOR` between markers) and replays exactly those commands from
one hiredis client: what the operation would cost without FUSE and the
daemon.  Then the store alone: redis-benchmark (-P 1 -c 1) and the same
timer doing GET, SET, INCRBY and EVALSHA of a trivial script on the same
server; and for context a local shmfs mount and /dev/shm.  Everything is
stopped and unmounted at the end, whatever happens.

    $ ninja -C build remote-bench        # or:
    $ /usr/bin/python3 tests/bench/remote-bench.py \\
          --shmfs build/fs/shmfs --latency build/tests/bench/shmfs-latency

It measures, it does not assert: the exit status is 0 whenever every
measurement completed.
"""

import argparse
import ctypes
import hashlib
import importlib.util
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from benchmount import DAEMON_COMPLAINT, Interrupted, Mount, on_signal

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "bench"
KEY = "bench:k"          # the Redis-only rows' key, outside the mount's keys

# (op, view, what it does, open-per-op): the mount's rows, in order.
FILE_OPS = (
    ("cat", "text", "text read: open+read+close (cat)", True),
    ("pread-text", "text", "text read: pread at 0, open fd", False),
    ("echo", "text", "text write: open+write+close (echo >)", True),
    ("pwrite-text", "text", "text write: pwrite at 0, open fd", False),
    ("pread8", "raw", ".raw pread 8 B, open fd", False),
    ("pwrite8", "raw", ".raw pwrite 8 B, open fd", False),
    ("atomic-add", "raw", "atomic add (ioctl), open fd", False),
)


def die_with_parent():
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG


# ---- redis-server ---------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A redis-server on 127.0.0.1 without persistence; stop() always stops it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="shmfs-remote-bench-redis-")
        self.port = None
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        for _ in range(5):
            self.port = free_port()
            self.command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--daemonize", "no"]
            self.proc = subprocess.Popen(self.command + ["--logfile", "redis.log"], cwd=self.dir,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         start_new_session=True, preexec_fn=die_with_parent)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.cli("PING", check=False) == "PONG":
                    return
                time.sleep(0.02)
            self._kill()        # the port was taken meanwhile, say
        raise RuntimeError("redis-server did not start: " + self.log())

    def cli(self, *args, check=True):
        p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port)] + list(args),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        out = p.stdout.strip()
        if check and (p.returncode != 0 or out.startswith(("ERR", "(error)"))):
            raise RuntimeError(f"redis-cli {' '.join(args)}: {out} {p.stderr.strip()}")
        return out

    def cpu(self):
        """The server's CPU time so far, user + system, in seconds."""
        info = self.cli("INFO", "cpu")
        return sum(float(re.search(rf"^{k}:([\d.]+)", info, re.M).group(1))
                   for k in ("used_cpu_sys", "used_cpu_user"))

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.cli("SHUTDOWN", "NOSAVE", check=False)
                self.proc.wait(timeout=5)
            except (subprocess.SubprocessError, OSError):
                self._kill()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- mounting --------------------------------------------------------------


def make_i64(directory, shmfs, name="x"):
    """An i64 holding 0: (text path, raw path).  On plain files the text
    and the 8 bytes are two files."""
    text = os.path.join(directory, name)
    with open(text, "w") as f:
        if shmfs:
            os.setxattr(text, "user.shmfs.type", b"i64")
        f.write("0\n")
    if shmfs:
        return text, os.path.join(directory, ".raw", name)
    raw = text + ".raw"
    with open(raw, "wb") as f:
        f.write(b"\0" * 8)
    return text, raw


# ---- measuring -------------------------------------------------------------


class Failed(Exception):
    pass


def warmup_of(n):
    return max(10, n // 20)     # shmfs-latency's default


def server_cpu(redis, n, run):
    """run()'s result and the server's CPU µs per operation over n of them."""
    before = redis.cpu()
    result = run()
    return result + ((redis.cpu() - before) * 1e6 / n,)


def latency(args, op, *operands, n):
    """Runs shmfs-latency; returns (median µs, p99 µs, ops/s)."""
    cmd = [args.latency, "-n", str(n), "-w", str(warmup_of(n)), op, *operands]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=args.timeout)
    except subprocess.TimeoutExpired:
        raise Failed(f"{' '.join(cmd)}: no answer after {args.timeout} s")
    if p.returncode != 0:
        raise Failed(f"{' '.join(cmd)}: exit status {p.returncode}: {p.stderr.strip()}")
    fields = p.stdout.split()
    return int(fields[2]) / 1e3, int(fields[3]) / 1e3, float(fields[4])


def redis_benchmark(args, redis, *command):
    """redis-benchmark -P 1 -c 1 of one command; returns (median µs, p99 µs, ops/s)."""
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(redis.port), "-n", str(args.n),
           "-P", "1", "-c", "1", "--csv", *command]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=args.timeout)
    rows = [line for line in p.stdout.splitlines() if line.startswith('"') and not line.startswith('"test"')]
    if p.returncode != 0 or not rows:
        raise Failed(f"{' '.join(cmd)}: exit status {p.returncode}: {p.stdout} {p.stderr.strip()}")
    f = [x.strip('"') for x in rows[-1].split('","')]
    return float(f[4]) * 1e3, float(f[6]) * 1e3, float(f[1])


MONITOR_LINE = re.compile(r'^\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$')
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "a": b"\a", "b": b"\b", '"': b'"', "\\": b"\\"}


def unrepr(s):
    """The bytes of one argument as MONITOR quotes it (sdscatrepr)."""
    out, i = bytearray(), 0
    while i < len(s):
        if s[i] == "\\" and s[i + 1] == "x":
            out += bytes([int(s[i + 2:i + 4], 16)])
            i += 4
        elif s[i] == "\\":
            out += ESCAPES[s[i + 1]]
            i += 2
        else:
            out += s[i].encode("latin-1")
            i += 1
    return bytes(out)


def monitored(args, redis, op, path):
    """The Redis commands (lists of bytes) one operation sends: shmfs-latency
    runs two untimed and one timed operation, marked, under MONITOR."""
    mon = subprocess.Popen(["redis-cli", "-h", "127.0.0.1", "-p", str(redis.port), "MONITOR"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, encoding="latin-1")
    try:
        if mon.stdout.readline().strip() != "OK":
            raise Failed("redis-cli MONITOR did not start")
        cmd = [args.latency, "-n", "1", "-w", "2", "--mark", redis.address, op, path]
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=args.timeout)
        if p.returncode != 0:
            raise Failed(f"{' '.join(cmd)}: exit status {p.returncode}: {p.stderr.strip()}")
        commands, marker, inside = [], None, False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = mon.stdout.readline()
            if not line:
                break
            m = MONITOR_LINE.match(line.rstrip("\n"))
            if not m or m.group(1) == "lua":
                continue
            argv = [unrepr(a) for a in QUOTED.findall(m.group(2))]
            if argv[:2] == [b"ECHO", b"shmfs-latency-begin"]:
                marker, inside = m.group(1), True
            elif argv[:2] == [b"ECHO", b"shmfs-latency-end"]:
                return commands
            elif inside and m.group(1) != marker:
                commands.append(argv)
        raise Failed(f"MONITOR of {op}: no end marker")
    finally:
        mon.kill()
        mon.wait()


def script_names():
    """{sha1: script name} of core/lua, expanded as the daemon loads them."""
    names = {}
    try:
        spec = importlib.util.spec_from_file_location(
            "embed_lua", os.path.join(SOURCE_ROOT, "tools", "embed-lua.py"))
        embed = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(embed)
        lua = os.path.join(SOURCE_ROOT, "core", "lua")
        for name in os.listdir(lua):
            if name.endswith(".lua"):
                text = embed.expand(os.path.join(lua, name))
                names[hashlib.sha1(text.encode()).hexdigest()] = name[:-len(".lua")]
    except (OSError, AttributeError, ImportError):
        pass
    return names


def describe_commands(commands, scripts):
    """'ns-getattr, HMGET, ...' for a list of commands."""
    out = []
    for argv in commands:
        name = argv[0].decode("latin-1").upper()
        if name == "EVALSHA":
            sha = argv[1].decode("latin-1")
            out.append(scripts.get(sha, f"EVALSHA {sha[:8]}"))
        else:
            out.append(name)
    return out


def compress(names):
    """['a', 'b', 'b'] -> 'a, b x2' (runs only)."""
    out = []
    for name in names:
        if out and out[-1][0] == name:
            out[-1][1] += 1
        else:
            out.append([name, 1])
    return ", ".join(n if k == 1 else f"{n} x{k}" for n, k in out)


def write_sequence(path, commands):
    with open(path, "w") as f:
        for argv in commands:
            f.write(" ".join(a.hex() for a in argv) + "\n")


# ---- the run ---------------------------------------------------------------


class Table:
    def __init__(self):
        self.rows = []           # (operation, where, (median, p99, ops/s[, server CPU]) or text, RTs)
        self.commands = []       # (tag, command line)
        self.sequences = []      # (operation, description)

    def row(self, operation, where, result, rts=""):
        self.rows.append((operation, where, result, rts))

    def section(self, title):
        self.rows.append((None, title, None, ""))

    def command(self, tag, text):
        self.commands.append((tag, text))

    def print(self, header):
        print()
        print(header)
        print("   one client, one operation at a time; RT/op: Redis commands one operation sends; "
              "srv CPU: redis-server's\n   user+system CPU per operation (INFO cpu), warm-up included")
        head = (f"{'operation':<40} {'where':<34} {'median us':>10} {'p99 us':>9} {'ops/s':>8} "
                f"{'RT/op':>5} {'srv CPU us':>10}")
        print(head)
        print("-" * len(head))
        last = None
        for operation, where, result, rts in self.rows:
            if operation is None:
                print(f"\n{where}")
                last = None
                continue
            title = operation if operation != last else ""
            last = operation
            if isinstance(result, str):
                print(f"{title:<40} {where:<34} {result}")
            else:
                med, p99, rate = result[:3]
                cpu = f"{result[3]:.1f}" if len(result) > 3 else ""
                print(f"{title:<40} {where:<34} {med:>10.1f} {p99:>9.1f} {rate:>8.0f} {str(rts):>5} "
                      f"{cpu:>10}".rstrip())
        print("\nround trips of one operation on the remote mount (MONITOR; scripts by name):")
        for operation, text in self.sequences:
            print(f"  {operation}: {text}")
        print("\ncommands:")
        for tag, text in self.commands:
            print(f"  [{tag}] {text}")


def measure(args, table, failures):
    redis = Redis()
    remote = local = None
    shm_dir = None
    logs = []
    scripts = script_names()
    seq_dir = tempfile.mkdtemp(prefix="shmfs-remote-bench-seq-")
    try:
        redis.start()
        version = redis.cli("INFO", "server")
        version = re.search(r"redis_version:(\S+)", version).group(1)
        table.command("server", shlex.join(redis.command) + f"  (redis {version})")
        remote = Mount(args.shmfs, [f"remote=redis://{redis.address}", f"remote_prefix={PREFIX}"],
                       "remote", "shmfs-remote-bench")
        remote.start()
        table.command("remote", shlex.join(remote.command))
        targets = [("remote mount", remote.dir, True)]
        if not args.no_context:
            local = Mount(args.shmfs, [], "local", "shmfs-remote-bench")
            local.start()
            table.command("local", shlex.join(local.command) + f"  (mode {local.mode()})")
            shm_dir = tempfile.mkdtemp(prefix="shmfs-remote-bench-", dir="/dev/shm")
            targets += [(f"local shmfs ({local.mode()})", local.dir, True), ("/dev/shm", shm_dir, False)]
        paths = {where: make_i64(d, is_shmfs) for where, d, is_shmfs in targets}
        table.command("op", f"{args.latency} -n N OP PATH  (N = {args.n}, {args.n_open} for "
                      "open-per-op rows, after N/20 untimed; one client, one operation at a time)")
        table.command("replay", f"{args.latency} -n N redis {redis.address} SEQ  (SEQ: the "
                      "commands one operation of the mount sent, from MONITOR)")

        for op, view, title, per_open in FILE_OPS:
            n = args.n_open if per_open else args.n
            for where, d, is_shmfs in targets:
                path = paths[where][0 if view == "text" else 1]
                if op == "atomic-add" and not is_shmfs:
                    table.row(title, where, "(no ioctl on plain files)")
                    continue
                try:
                    if where == "remote mount":
                        commands = monitored(args, redis, op, path)
                        table.sequences.append((op, f"{len(commands)}: "
                                                + compress(describe_commands(commands, scripts))))
                        total = n + warmup_of(n)
                        table.row(title, where + " [op]", server_cpu(
                            redis, total, lambda: latency(args, op, path, n=n)), len(commands))
                        seq = os.path.join(seq_dir, op + ".seq")
                        write_sequence(seq, commands)
                        table.row(title, "  its commands, replayed [replay]", server_cpu(
                            redis, total, lambda: latency(args, "redis", redis.address, seq, n=n)),
                            len(commands))
                    else:
                        table.row(title, where + " [op]", latency(args, op, path, n=n))
                except Failed as e:
                    failures.append(str(e))
                    table.row(title, where, "failed")

        table.section(f"Redis alone on the same server, one client, one request at a time "
                      f"(N = {args.n}):")
        sha = redis.cli("SCRIPT", "LOAD", "return 1")
        redis.cli("SET", KEY, "0")
        for title, command in (("GET", ["GET", KEY]), ("SET", ["SET", KEY, "12345"]),
                               ("INCRBY", ["INCRBY", KEY, "1"]),
                               ("EVALSHA of 'return 1'", ["EVALSHA", sha, "0"])):
            try:
                table.row(title, "redis-benchmark [bench]", server_cpu(
                    redis, args.n, lambda: redis_benchmark(args, redis, *command)))
                seq = os.path.join(seq_dir, title.split()[0] + ".seq")
                write_sequence(seq, [[a.encode() for a in command]])
                table.row(title, "hiredis [replay]", server_cpu(
                    redis, args.n + warmup_of(args.n),
                    lambda: latency(args, "redis", redis.address, seq, n=args.n)))
            except Failed as e:
                failures.append(str(e))
                table.row(title, "", "failed")
        table.command("bench", f"redis-benchmark -h 127.0.0.1 -p {redis.port} -n {args.n} -P 1 "
                      f"-c 1 --csv CMD...  (CMD: GET {KEY} | SET {KEY} 12345 | INCRBY {KEY} 1 | "
                      f"EVALSHA {sha} 0)")
    finally:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)   # finish cleaning up
        try:
            for mount in (remote, local):
                if mount is not None:
                    mount.close()
                    logs.append((mount, mount.output()))
                    if mount.exit_status not in (0, None):
                        failures.append(f"{mount.label} shmfs exited with status {mount.exit_status}")
            if shm_dir is not None:
                shutil.rmtree(shm_dir, ignore_errors=True)
            shutil.rmtree(seq_dir, ignore_errors=True)
            redis.stop()
        finally:
            signal.signal(signal.SIGINT, old)
    for mount, log in logs:
        complaints = [line for line in log.splitlines() if DAEMON_COMPLAINT.search(line)]
        if complaints:
            failures.append(f"the {mount.label} daemon logged:\n  " + "\n  ".join(complaints))


def cpu_ticks():
    """(steal, total) jiffies of all CPUs so far, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[7] if len(fields) > 7 else 0, sum(fields[:8])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shmfs", default=os.environ.get("SHMFS_BIN"),
                        help="the shmfs daemon (default: $SHMFS_BIN)")
    parser.add_argument("--latency", default=os.environ.get("SHMFS_LATENCY"),
                        help="the shmfs-latency program (default: $SHMFS_LATENCY)")
    parser.add_argument("-n", type=int, default=20000, help="operations per row (default 20000)")
    parser.add_argument("--n-open", type=int, default=5000,
                        help="operations per row that opens a file each time (default 5000)")
    parser.add_argument("--no-context", action="store_true",
                        help="skip the local shmfs and /dev/shm rows")
    parser.add_argument("--timeout", type=int, default=120,
                        help="seconds one measurement may take before it counts as hung")
    args = parser.parse_args()
    for name in ("shmfs", "latency"):
        path = getattr(args, name)
        if not path or not os.access(path, os.X_OK):
            parser.error(f"--{name}: not an executable: {path!r}")
    for tool in ("redis-server", "redis-cli", "redis-benchmark", "fusermount3"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    failures = []
    table = Table()
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    ticks_before = cpu_ticks()
    try:
        measure(args, table, failures)
    except (KeyboardInterrupt, Interrupted) as e:
        print(f"\ninterrupted ({str(e) or 'SIGINT'}); unmounted, redis-server stopped", file=sys.stderr)
        return 130
    except (Failed, RuntimeError, OSError) as e:
        print(f"remote-bench: {e}", file=sys.stderr)
        for failure in failures:
            print(f"\nPROBLEM: {failure}", file=sys.stderr)
        return 1

    steal, total = (after - before for after, before in zip(cpu_ticks(), ticks_before))
    table.print(f"== shmfs remote mount vs its redis-server  (kernel {platform.release()}, "
                f"{os.cpu_count()} CPUs, load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}, "
                f"CPU steal {100 * steal / max(total, 1):.0f}%, {time.monotonic() - started:.0f} s) ==")
    for failure in failures:
        print(f"\nPROBLEM: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
