#!/usr/bin/python3
"""Benchmark shmfs against /dev/shm and print one table per mode.

For each mode (cached, then passthrough) this mounts shmfs on a fresh
directory, runs shmfs-bench on a fresh directory of /dev/shm (the baseline)
and on the mount, pinned and unpinned, then unmounts.  The mount is always
undone, whatever happens (errors, a hung daemon, Ctrl-C, SIGTERM).  It builds
nothing: `ninja -C BUILD bench` builds both programs and runs this.

    $ /usr/bin/python3 tests/bench/run-bench.py \\
          --shmfs build/fs/shmfs --bench build/tests/bench/shmfs-bench

The figures are medians of --reps repetitions; the ratio compares medians.
It measures, it does not assert: the exit status is 0 whenever every run
completed, whether or not the targets were met.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchmount import DAEMON_COMPLAINT, Interrupted, Mount, on_signal

MODES = ("cached", "passthrough")
GROUPS = ("io", "text", "bw", "bigbw", "atomic", "ping", "fault", "create")
PINS = ("pinned", "unpinned")

# Ratio targets.  Latencies: shmfs time / shm time, at most.  Bandwidths:
# shmfs speed / shm speed, at least.  A mapping runs at memory speed in both
# modes, so every mmap figure should be within 0.9x of /dev/shm (for a
# latency that is a time ratio of at most 1/0.9).
MMAP_SPEED = 0.9
MMAP_TIME = 1 / MMAP_SPEED
IO_TIME = 1.5

def describe(op):
    """A row title for an operation name printed by shmfs-bench."""
    fixed = {
        "pread8": "pread 8 B (.raw fd)",
        "pwrite8": "pwrite 8 B (.raw fd)",
        "text-read": "open+read+close text",
        "atomic-add": "atomic add 8 B (mmap)",
        "ping-pong": "ping-pong 2 procs (mmap)",
        "fault-read": "first touch, read (mmap)",
        "fault-write": "first touch, write (mmap)",
        "create-type-delete": "create+type+delete",
    }
    if op in fixed:
        return fixed[op]
    m = re.fullmatch(r"mmap-(read|write)-(\w+)", op)
    if m:
        return f"mmap {m.group(1)} bw {m.group(2)}iB"
    return op


def is_bandwidth(unit):
    return unit.endswith("/s")


def is_mmap(op):
    return op.startswith(("mmap-", "atomic-", "ping-", "fault-"))


def target(mode, op, unit):
    """('>=' or '<=', bound) for this figure in this mode, or None."""
    if is_mmap(op):
        return (">=", MMAP_SPEED) if is_bandwidth(unit) else ("<=", MMAP_TIME)
    if op == "pread8":
        return ("<=", IO_TIME)
    if op == "pwrite8" and mode == "passthrough":
        return ("<=", IO_TIME)
    return None


# ---- running the bench ---------------------------------------------------


class BenchFailed(Exception):
    pass


class BenchHung(BenchFailed):
    """No point going on with this mount: a run hung or the daemon died."""


def kernel_stack(pid):
    try:
        with open(f"/proc/{pid}/stack") as f:
            return f.read()
    except OSError:
        return "(no /proc/PID/stack)\n"


def run_bench(args, directory, label, pin, group, reps):
    """Runs one group of shmfs-bench; returns {(op, pin): (unit, median, min, max)}."""
    cmd = [args.bench, "--reps", str(reps), "--pin", pin, "--only", group,
           "--big-mib", str(args.big_mib), "--fault-mib", str(args.fault_mib),
           directory, label]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    hung = None
    try:
        out, err = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        hung = kernel_stack(proc.pid)
        proc.kill()
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:   # interrupted: do not leave it on the mount
            proc.kill()
            proc.wait()
    figures = {}
    for line in out.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        lab, pin_name, op, unit, med, lo, hi = line.split("\t")
        figures[(op, pin_name)] = (unit, float(med), float(lo), float(hi))
    if hung is not None:
        raise BenchHung(f"{' '.join(cmd)}: no answer after {args.timeout} s; "
                        f"its kernel stack was:\n{hung}{err}", figures)
    if proc.returncode != 0:
        raise BenchFailed(f"{' '.join(cmd)}: exit status {proc.returncode}\n{err}", figures)
    return figures


def settle(args, directory):
    """Writes back what a run left dirty, so that writeback does not land
    in the next run (the /dev/shm side's, with interleaving)."""
    try:
        subprocess.run(["sync", "-f", directory], timeout=args.timeout, check=True,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        raise BenchHung(f"sync -f {directory}: no answer after {args.timeout} s", {})
    except subprocess.CalledProcessError as e:
        raise BenchFailed(f"sync -f {directory}: exit status {e.returncode}: {e.stderr.strip()}", {})


def summarize(samples):
    """{key: (unit, [value, ...])} -> {key: (unit, median, min, max)}."""
    out = {}
    for key, (unit, values) in samples.items():
        v = sorted(values)
        n = len(v)
        median = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
        out[key] = (unit, median, v[0], v[-1])
    return out


def measure_mode(args, mode, failures):
    """Mounts shmfs in mode; returns (shm figures, shmfs figures, daemon log).

    By default each repetition is its own shmfs-bench run (--reps 1), and
    the two sides alternate repetition by repetition, so load from other
    processes on the machine falls on both alike; --batch runs each group
    once with --reps N instead (quicker, more exposed to drift)."""
    shm, fs = {}, {}
    shm_dir = tempfile.mkdtemp(prefix="shmfs-bench-", dir="/dev/shm")
    mount = None
    log = ""
    try:
        mount = Mount(args.shmfs, [f"mode={mode}"], mode, "shmfs-bench")
        mount.start()
        in_force = mount.mode()
        if in_force != mode:
            raise RuntimeError(f"asked for mode={mode}, the mount says {in_force}")
        sides = [(shm, shm_dir, "shm"), (fs, mount.dir, f"shmfs-{mode}")]
        rounds, reps = (1, args.reps) if args.batch else (args.reps, 1)
        samples = {"shm": {}, f"shmfs-{mode}": {}}
        broken = set()
        for pin in PINS:
            for group in args.groups:
                for r in range(rounds):
                    for figures, directory, label in (sides if r % 2 == 0 else sides[::-1]):
                        if (label, pin, group) in broken:
                            continue
                        got = {}
                        try:
                            got = run_bench(args, directory, label, pin, group, reps)
                            if directory == mount.dir:
                                settle(args, mount.dir)
                        except BenchHung as e:
                            got = e.args[1] or got
                            raise
                        except BenchFailed as e:
                            got = e.args[1] or got   # settle() failing keeps the run
                            if mount.daemon.poll() is not None:
                                raise BenchHung(
                                    f"shmfs died (exit status {mount.daemon.returncode}) during "
                                    f"{pin}/{group}; the rest of this mode was skipped.  "
                                    f"The run that saw it: {e.args[0]}", got)
                            failures.append(f"{mode}/{label}/{pin}/{group}: {e.args[0]}")
                            broken.add((label, pin, group))
                        finally:
                            if args.batch:
                                figures.update(got)
                            else:
                                for key, (unit, median, lo, hi) in got.items():
                                    samples[label].setdefault(key, (unit, []))[1].append(median)
                                figures.update(summarize(samples[label]))
    except BenchHung as e:
        failures.append(f"{mode}: {e.args[0]}")
    finally:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)   # finish cleaning up
        try:
            shutil.rmtree(shm_dir, ignore_errors=True)
            if mount is not None:
                mount.close()
                log = mount.output()
                if mount.exit_status not in (0, None) and not any(
                        f.startswith(f"{mode}: shmfs died") for f in failures):
                    failures.append(f"{mode}: shmfs exited with status {mount.exit_status}")
        finally:
            signal.signal(signal.SIGINT, old)
    return shm, fs, log


# ---- the tables ----------------------------------------------------------


def fmt(x):
    if x >= 1000:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def print_table(args, mode, shm, fs, load):
    print()
    print(f"== shmfs -o mode={mode} vs /dev/shm  "
          f"(kernel {os.uname().release}, {os.cpu_count()} CPUs, median of {args.reps}; "
          f"load average {load[0]} -> {load[1]}) ==")
    print("   latencies (ns): ratio = shmfs time / shm time, lower is better;"
          " bandwidths (GB/s): ratio = shmfs speed / shm speed, higher is better")
    head = (f"{'operation':<27} {'unit':<8} {'pin':<9} {'/dev/shm':>9}  "
            f"{'shmfs median [min-max]':<30} {'ratio':<12} {'target':<7} verdict")
    print(head)
    print("-" * len(head))
    ops = []
    for key in list(shm) + list(fs):
        if key[0] not in ops:
            ops.append(key[0])
    met = missed = 0
    for op in ops:
        for pin in PINS:
            a, b = shm.get((op, pin)), fs.get((op, pin))
            if a is None and b is None:
                continue
            unit = (a or b)[0]
            base = fmt(a[1]) if a else "failed"
            if b:
                ours = f"{fmt(b[1])} [{fmt(b[2])}-{fmt(b[3])}]"
            else:
                ours = "failed"
            ratio_text, tgt_text, verdict = "", "-", ""
            tgt = target(mode, op, unit)
            if a and b and a[1] > 0:
                ratio = b[1] / a[1]
                ratio_text = f"{ratio:.2f}x " + ("speed" if is_bandwidth(unit) else "time")
            if tgt:
                cmp, bound = tgt
                tgt_text = f"{cmp}{bound:.2f}"
                if ratio_text:
                    ok = ratio >= bound if cmp == ">=" else ratio <= bound
                    verdict = "PASS" if ok else "MISS"
                else:
                    verdict = "MISS"
                met += verdict == "PASS"
                missed += verdict == "MISS"
            print(f"{describe(op):<27} {unit:<8} {pin:<9} {base:>9}  {ours:<30} "
                  f"{ratio_text:<12} {tgt_text:<7} {verdict}".rstrip())
    print(f"targets: {met} PASS, {missed} MISS  (mmap figures {'>='}{MMAP_SPEED} speed, "
          f"i.e. {'<='}{MMAP_TIME:.2f} time; pread 8 B{' and pwrite 8 B' if mode == 'passthrough' else ''}"
          f" {'<='}{IO_TIME} time)")
    return missed


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shmfs", default=os.environ.get("SHMFS_BIN"),
                        help="the shmfs daemon (default: $SHMFS_BIN)")
    parser.add_argument("--bench", default=os.environ.get("SHMFS_BENCH"),
                        help="the shmfs-bench program (default: $SHMFS_BENCH)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help="comma-separated modes to measure (default: cached,passthrough)")
    parser.add_argument("--only", default=",".join(GROUPS),
                        help=f"comma-separated groups to run (default: {','.join(GROUPS)})")
    parser.add_argument("--reps", type=int, default=7, help="repetitions per figure (default 7)")
    parser.add_argument("--batch", action="store_true",
                        help="one shmfs-bench run per group and side, instead of one per repetition")
    parser.add_argument("--big-mib", type=int, default=256, help="large mapping, MiB (default 256)")
    parser.add_argument("--fault-mib", type=int, default=64,
                        help="first-touch object, MiB (default 64)")
    parser.add_argument("--timeout", type=int, default=120,
                        help="seconds one bench run may take before it counts as hung")
    args = parser.parse_args()
    for name in ("shmfs", "bench"):
        path = getattr(args, name)
        if not path or not os.access(path, os.X_OK):
            parser.error(f"--{name}: not an executable: {path!r}")
    modes = args.modes.split(",")
    for mode in modes:
        if mode not in MODES:
            parser.error(f"--modes: unknown mode {mode!r}")

    args.groups = args.only.split(",")
    for group in args.groups:
        if group not in GROUPS:
            parser.error(f"--only: unknown group {group!r}")

    # Even when started with SIGINT ignored (a background job), Ctrl-C and
    # kill -INT unwind through the cleanup below.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    failures = []
    tables = []
    started = time.monotonic()
    try:
        for mode in modes:
            before = loadavg()
            shm, fs, log = measure_mode(args, mode, failures)
            tables.append((mode, shm, fs, (before, loadavg())))
            complaints = [line for line in log.splitlines() if DAEMON_COMPLAINT.search(line)]
            if complaints:
                failures.append(f"{mode}: the daemon logged:\n  " + "\n  ".join(complaints))
    except (KeyboardInterrupt, Interrupted) as e:
        print(f"\ninterrupted ({str(e) or 'SIGINT'}); shmfs unmounted, scratch directories removed", file=sys.stderr)
        return 130
    except Exception as e:   # a mount that would not come up, ...
        print(f"run-bench: {e}", file=sys.stderr)
        return 1

    missed = sum(print_table(args, mode, shm, fs, load) for mode, shm, fs, load in tables)
    print(f"\n{sum(1 for _ in tables)} mode(s) in {time.monotonic() - started:.0f} s; "
          f"{missed} target(s) missed")
    for failure in failures:
        print(f"\nPROBLEM: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
