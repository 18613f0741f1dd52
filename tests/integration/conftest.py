"""pytest fixtures for shmfs: a mounted daemon per test, checked on the way
out.

`shmfs` (function scope) starts `$SHMFS_BIN -f [ARGS] MNT` with
G_DEBUG=fatal-warnings, waits for the mount, and yields a util.Daemon.  On
teardown -- whatever the test did, KeyboardInterrupt and SIGTERM (meson's
timeout) included -- it unmounts (fusermount3 -u, then -u -z), asserts that
nothing stays mounted and that the daemon exited 0, and fails the test if the
daemon printed a suspicious line (see util.SUSPICIOUS) that the test did not
register with daemon.expect_output(regex).

Extra daemon arguments: @pytest.mark.shmfs_args('-o', 'allow_other'), or
indirect parametrization (util.both_modes runs a test in cached and in
passthrough mode).
"""

import os
import signal
import time

import pytest

import util


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'shmfs_args(*args): extra command-line arguments for the '
        'shmfs fixture')
    if not os.access(util.SHMFS_BIN, os.X_OK):
        raise pytest.UsageError(f'shmfs binary not found: {util.SHMFS_BIN} '
                                '(set SHMFS_BIN)')

    # meson ends a test that timed out with SIGTERM: unwind like Ctrl-C so
    # fixture teardown unmounts.
    def on_sigterm(signum, frame):
        raise KeyboardInterrupt('SIGTERM')
    signal.signal(signal.SIGTERM, on_sigterm)


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    # After a failure give the daemon a moment to log what happened before
    # its output is read at teardown.
    outcome = yield
    if outcome.excinfo is not None:
        time.sleep(0.3)


@pytest.fixture
def shmfs(request, tmp_path):
    marker = request.node.get_closest_marker('shmfs_args')
    args = tuple(getattr(request, 'param', ()))
    args += marker.args if marker else ()
    mnt = util.make_mountpoint()
    daemon = util.Daemon(mnt, str(tmp_path / 'shmfs.log'), args)
    try:
        daemon.start()
        daemon.wait_for_mount()
        yield daemon
    finally:
        problems = daemon.take_down()
    if problems:
        pytest.fail('shmfs teardown:\n  ' + '\n  '.join(problems),
                    pytrace=False)
