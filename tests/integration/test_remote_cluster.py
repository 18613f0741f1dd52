"""Remote mounts on a Redis Cluster: three masters on loopback, two daemons
given only the first node's address, which find the others themselves
(docs/design/remote.md §3.9, §5).

The namespace lives in the slot of {P}, each object's keys in the slot of
{P:oid} (oid = st_ino // 2 of the main view), so objects are spread over
the nodes; the tests check that they are, by CLUSTER KEYSLOT and the slot
ranges of CLUSTER NODES, and that the namespace, values, atomics, locks and
pollers work across the two mounts as on one server (test_remote.py, here
reduced).  Then a master fails (kill -9, or SIGSTOP: it hangs), in a
Cluster of its own: operations on the values in its slots fail with EIO or
ETIMEDOUT within -o remote_timeout=1 and a margin, never hang; the other
values and the whole namespace keep working.  When it comes back (SIGCONT,
or a restart without its data) its objects work again or, their values
lost, fail at once, and new objects there work.
"""

import errno
import itertools
import os
import signal
import struct
import threading
import time

import pytest

import redis_util
import util
from test_atomic import ADD, atomic
from test_poll import poll_pri, rearm, woke
from remote_mounts import (assert_errno, check_flock_excludes, entries, mounted, start_adder,
                           unique_prefix, RENAME_EXCHANGE)



class Topology:
    """Which node (an index into cluster.nodes) owns a key's slot, from
    the slot ranges CLUSTER NODES reports."""

    def __init__(self, cluster):
        self.cluster = cluster
        index = {node.port: i for i, node in enumerate(cluster.nodes)}
        self.ranges = []
        for line in cluster.cli('CLUSTER', 'NODES').splitlines():
            fields = line.split()
            port = int(fields[1].split('@')[0].rsplit(':', 1)[1])
            for r in fields[8:]:
                if not r.startswith('['):        # not a slot being migrated
                    lo, _, hi = r.partition('-')
                    self.ranges.append((int(lo), int(hi or lo), index[port]))
        assert {i for _, _, i in self.ranges} == set(range(len(cluster.nodes)))

    def slot(self, key):
        return int(self.cluster.cli('CLUSTER', 'KEYSLOT', key))

    def node_of(self, key):
        slot = self.slot(key)
        for lo, hi, i in self.ranges:
            if lo <= slot <= hi:
                return i
        raise AssertionError(f'slot {slot} of {key} has no owner')

    def node_of_object(self, prefix, path):
        return self.node_of(object_tag(prefix, path))

    def prefix_on(self, node, base):
        """A prefix whose namespace slot {P} is on node."""
        for i in itertools.count():
            prefix = f'{base}-{i}'
            if self.node_of('{%s}' % prefix) == node:
                return prefix


def object_tag(prefix, path):
    return '{%s:%d}' % (prefix, os.stat(path).st_ino // 2)


@pytest.fixture(scope='module')
def cluster():
    with redis_util.RedisCluster(3) as c:
        yield c


@pytest.fixture(scope='module')
def topology(cluster):
    return Topology(cluster)


@pytest.fixture
def mounts(cluster, tmp_path):
    with mounted(tmp_path, cluster.url, unique_prefix('cl')) as m:
        yield m


@pytest.fixture
def pair(mounts):
    return mounts.mount(), mounts.mount()


def objects_by_node(topology, prefix, mount, names):
    """{node: [names of the objects in its slots]}."""
    by_node = {}
    for name in names:
        by_node.setdefault(topology.node_of_object(prefix, mount.p(name)), []).append(name)
    return by_node


# ---- where things live ------------------------------------------------------

def test_objects_spread_over_nodes(pair, mounts, cluster, topology):
    a, b = pair
    names = [f'o{i}' for i in range(12)]
    for i, name in enumerate(names):
        util.new_object(a, name, 'i64', str(i))
    by_node = objects_by_node(topology, mounts.prefix, a, names)
    assert len(by_node) >= 2, by_node
    for node, here in by_node.items():
        for name in here:
            # B reads each value, wherever it lives; inode numbers agree.
            assert util.cat(b.p(name)) == f'{names.index(name)}\n'
            assert os.stat(b.p(name)).st_ino == os.stat(a.p(name)).st_ino
            # The owner really holds the object's keys (v and m).
            slot = topology.slot(object_tag(mounts.prefix, a.p(name)))
            keys = cluster.nodes[node].cli('CLUSTER', 'COUNTKEYSINSLOT', slot)
            assert int(keys) >= 2, (name, node, slot)
    ns = '{%s}' % mounts.prefix
    ns_node = topology.node_of(ns)
    assert int(cluster.nodes[ns_node].cli('CLUSTER', 'COUNTKEYSINSLOT', topology.slot(ns))) > 0


# ---- the namespace ------------------------------------------------------------

def test_namespace_across_mounts(pair):
    a, b = pair
    os.makedirs(a.p('d/e'))
    os.mkdir(a.p('f'))
    util.new_object(a, 'd/x', 'i64', '5')
    util.new_object(b, 'd/e/y', 'u16', '2')
    assert entries(b.path) == ['d', 'f']
    assert entries(a.p('d')) == ['e', 'x']
    assert util.xattr(b.p('d/x'), 'user.shmfs.type') == 'i64'
    sa, sb = os.stat(a.p('d/x')), os.stat(b.p('d/x'))
    assert (sa.st_ino, sa.st_mode, sa.st_uid, sa.st_gid) == \
        (sb.st_ino, sb.st_mode, sb.st_uid, sb.st_gid)

    # Errnos as on a local mount.
    assert_errno(errno.EEXIST, os.mkdir, b.p('d'))
    assert_errno(errno.ENOTEMPTY, os.rmdir, b.p('d'))
    assert_errno(errno.EINVAL, os.rename, b.p('d'), b.p('d/e/inside'))
    assert_errno(errno.EISDIR, os.unlink, b.p('d/e'))
    assert_errno(errno.ENOENT, os.unlink, b.p('d/nothing'))
    assert_errno(errno.EPERM, util.set_type, b.p('d/x'), 'i32')

    # Renames across directories, plain and exchanging, seen on the other mount.
    os.rename(b.p('d/x'), b.p('f/x2'))
    assert entries(a.p('d')) == ['e'] and entries(a.p('f')) == ['x2']
    assert util.cat(a.p('f/x2')) == '5\n'
    assert os.stat(a.p('f/x2')).st_ino == sa.st_ino
    util.renameat2(a.p('f/x2'), a.p('d/e/y'), RENAME_EXCHANGE)
    assert util.cat(b.p('f/x2')) == '2\n'
    assert util.cat(b.p('d/e/y')) == '5\n'
    os.rename(a.p('d/e'), a.p('f/e'))
    assert entries(b.p('f')) == ['e', 'x2'] and entries(b.p('f/e')) == ['y']

    # Unlink and rmdir on one mount: gone on the other.
    os.unlink(b.p('f/e/y'))
    assert_errno(errno.ENOENT, os.stat, a.p('f/e/y'))
    os.rmdir(a.p('f/e'))
    os.unlink(a.p('f/x2'))
    os.rmdir(b.p('f'))
    os.rmdir(b.p('d'))
    assert entries(a.path) == entries(b.path) == []


# ---- values -----------------------------------------------------------------------

def test_values_through_text_and_raw(pair, mounts, topology):
    a, b = pair
    names = [f'v{i}' for i in range(4)]
    for name in names:
        util.new_object(a, name, 'f64[3]')
    assert len(objects_by_node(topology, mounts.prefix, a, names)) >= 2
    for i, name in enumerate(names):
        util.echo(a.p(name), f'1.5 {i} -3')
        assert util.cat(b.p(name)) == f'1.5 {i} -3\n'
        with util.opened(b.r(name)) as fd:
            assert struct.unpack('3d', os.pread(fd, 24, 0)) == (1.5, i, -3.0)
            os.pwrite(fd, struct.pack('d', 7.25), 8)
            assert_errno(errno.EFBIG, os.pwrite, fd, b'x', 24)
        assert util.cat(a.p(name)) == '1.5 7.25 -3\n'
        assert util.xattr(a.p(name), 'user.shmfs.version') == \
            util.xattr(b.p(name), 'user.shmfs.version')


def test_atomics_count_exactly(pair):
    a, b = pair
    for spec in ('i64', 'u8'):
        util.new_object(a, f'c_{spec}', spec, '0')
    per = 100
    procs = [start_adder(m.p(f'c_{spec}'), per) for m in pair for spec in ('i64', 'u8')
             for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    total = 2 * 2 * per
    for m in pair:
        assert util.cat(m.p('c_i64')) == f'{total}\n'
        assert util.cat(m.p('c_u8')) == f'{total % 256}\n'


# ---- locks and pollers ---------------------------------------------------------------

def test_flock_excludes_across_mounts(pair):
    a, b = pair
    check_flock_excludes(a, b, 'l')


def test_poller_woken_by_the_other_mount(pair, mounts, topology):
    a, b = pair
    names = [f'w{i}' for i in range(6)]
    for name in names:
        util.new_object(a, name, 'i64', '1')
    by_node = objects_by_node(topology, mounts.prefix, a, names)
    assert len(by_node) >= 2, by_node
    for here in by_node.values():
        name = here[0]
        with util.opened(b.p(name)) as fd:
            assert rearm(fd) == '1\n'
            assert poll_pri(fd, 0.2) == 0
            t = threading.Timer(0.1, util.echo, (a.p(name), '7'))
            t.start()
            start = time.monotonic()
            revents = poll_pri(fd, 5)
            t.join()
            assert woke(revents), (name, revents)
            assert time.monotonic() - start < 1.5
            assert rearm(fd) == '7\n'


# ---- a node fails -------------------------------------------------------------------

TIMEOUT = 1.0          # -o remote_timeout
MARGIN = 1.0           # a loaded machine, the ASan build
QUICK = 0.5            # an operation that touches no failed node: well under TIMEOUT


def timed(fn, *args, limit=TIMEOUT + MARGIN):
    """Runs fn(*args) in a thread; returns (errno or 0, seconds).  Fails,
    rather than hanging, when it has not returned within limit + 5 s."""
    out = {}

    def run():
        start = time.monotonic()
        out['err'] = util.errno_of(fn, *args)
        out['took'] = time.monotonic() - start

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(limit + 5)
    assert not t.is_alive(), f'{fn.__name__}{args} hung'
    return out['err'], out['took']


def read_text(path):
    with open(path) as f:
        return f.read()


def write_text(path, text):
    with open(path, 'w') as f:
        f.write(text)


def add(fd, n=1):
    return atomic(fd, ADD, n)


def fails_in_time(op, *args):
    err, took = timed(op, *args)
    assert err in (errno.EIO, errno.ETIMEDOUT), (op.__name__, args, err)
    assert took < TIMEOUT + MARGIN, (op.__name__, args, took)


def works_quickly(op, *args):
    err, took = timed(op, *args)
    assert err == 0, (op.__name__, args, err)
    assert took < QUICK, (op.__name__, args, took)


def wait_until_works(op, *args, timeout=10):
    """Retries op until it succeeds (a node coming back); returns its result."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return op(*args)
        except OSError as e:
            assert e.errno in (errno.EIO, errno.ETIMEDOUT), (op.__name__, args, e)
            assert time.monotonic() < deadline, (op.__name__, args, e)
            time.sleep(0.1)


def restart(node):
    node.start()
    deadline = time.monotonic() + 10
    while 'cluster_state:ok' not in node.cli('CLUSTER', 'INFO'):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def new_object_on(topology, prefix, mount, node, base):
    """Makes objects base0, base1 ... until one is on node; its name."""
    for i in itertools.count():
        name = f'{base}{i}'
        util.new_object(mount, name, 'u8', '7')
        if topology.node_of_object(prefix, mount.p(name)) == node:
            return name
        assert i < 60


@pytest.mark.parametrize('victim, signum', [
    (1, signal.SIGKILL),
    (0, signal.SIGKILL),          # the node named in the URL
    (0, signal.SIGSTOP),          # hung: accepts connections, never answers
], ids=['kill-other', 'kill-seed', 'stop-seed'])
def test_node_failure(tmp_path, victim, signum):
    # cluster-require-full-coverage no: the others keep serving their slots
    # once they have marked the failed node (after the node timeout, 2 s).
    with redis_util.RedisCluster(3, ('--cluster-require-full-coverage', 'no')) as cluster:
        topology = Topology(cluster)
        prefix = topology.prefix_on((victim + 1) % 3, unique_prefix('fail'))
        with mounted(tmp_path, cluster.url, prefix, ('-o', f'remote_timeout={TIMEOUT:g}')) as m:
            a, b = m.mount(), m.mount()
            on_victim, elsewhere = [], []
            for i in itertools.count():
                name = f'x{i}'
                util.new_object(a, name, 'i64', '1')
                (on_victim if topology.node_of_object(prefix, a.p(name)) == victim
                 else elsewhere).append(name)
                if len(on_victim) >= 2 and len(elsewhere) >= 2:
                    break
                assert i < 60
            os.mkdir(a.p('d'))
            lost = on_victim[0]
            fds = {(mnt, name, view): os.open(os.path.join(view, name), os.O_RDWR)
                   for mnt in (a, b) for name in (lost, elsewhere[0])
                   for view in (mnt.path, mnt.raw)}
            node = cluster.nodes[victim]
            try:
                node.proc.send_signal(signum)
                if signum == signal.SIGKILL:
                    node.proc.wait()
                for phase in range(2):
                    for mnt in (a, b):
                        fails_in_time(os.pread, fds[mnt, lost, mnt.raw], 8, 0)
                        # Past the 100 ms in which a failed node is not
                        # retried, the others still answer at once.
                        time.sleep(0.15)
                        works_quickly(add, fds[mnt, elsewhere[0], mnt.path])
                        for op in [(os.pwrite, fds[mnt, lost, mnt.raw], bytes(8), 0),
                                   (add, fds[mnt, lost, mnt.path]),
                                   (os.pread, fds[mnt, lost, mnt.path], 64, 0),
                                   (read_text, mnt.p(lost)),
                                   (write_text, mnt.p(lost), '3\n')]:
                            fails_in_time(*op)
                        other = b if mnt is a else a
                        for k, name in enumerate(elsewhere):
                            works_quickly(util.echo, mnt.p(name), f'{9 + k}')
                            assert util.cat(other.p(name)) == f'{9 + k}\n'
                        works_quickly(add, fds[mnt, elsewhere[0], mnt.path], 2)
                        assert struct.unpack('q', os.pread(fds[other, elsewhere[0], other.raw],
                                                           8, 0)) == (11,)
                    # The namespace (on another node) works, for the names of
                    # the objects on the failed node too.
                    new = f'new{phase}'
                    works_quickly(write_text, a.p(new), '')
                    works_quickly(os.rename, b.p(new), b.p(f'd/{new}'))
                    assert new in entries(a.p('d'))
                    for name in (elsewhere[1], on_victim[1]):
                        for x, y in ((a, b), (b, a)):
                            err, took = timed(os.rename, x.p(name), x.p(f'd/{name}'))
                            assert err == 0 and took < TIMEOUT + MARGIN, (name, err, took)
                            err, took = timed(os.listdir, y.p('d'))
                            assert err == 0 and took < TIMEOUT + MARGIN, (name, err, took)
                            assert name in os.listdir(y.p('d'))
                            os.rename(y.p(f'd/{name}'), y.p(name))
                    if phase == 0:
                        time.sleep(2.5)          # --cluster-node-timeout 2000
                assert a.alive() and b.alive()

                # The node comes back: SIGCONT, or a restart without its data.
                if signum == signal.SIGSTOP:
                    node.proc.send_signal(signal.SIGCONT)
                else:
                    restart(node)
                for mnt in (a, b):
                    if signum == signal.SIGSTOP:
                        wait_until_works(add, fds[mnt, lost, mnt.path])
                        assert util.cat(mnt.p(lost)) == util.cat((b if mnt is a else a).p(lost))
                    else:
                        # Its values are gone: an error, at once.
                        err, took = timed(read_text, mnt.p(lost))
                        assert err != 0 and took < TIMEOUT + MARGIN, (err, took)
                name = new_object_on(topology, prefix, a, victim, 'y')     # new objects work
                works_quickly(util.echo, b.p(name), '8')
                assert util.cat(a.p(name)) == '8\n'
                if signum == signal.SIGKILL:
                    # Killed and restarted between two requests: the first
                    # request after it does not fail on the connections
                    # the daemon had to the old process.
                    node.proc.kill()
                    node.proc.wait()
                    restart(node)
                    new_object_on(topology, prefix, a, victim, 'z')
                os.unlink(b.p(lost))
                assert lost not in entries(a.path)
            finally:
                if signum == signal.SIGSTOP and node.proc is not None:
                    node.proc.send_signal(signal.SIGCONT)
                for fd in fds.values():
                    os.close(fd)
