"""The redis-server fixtures of the remote tests (redis_util.py) work: a
server starts, answers, restarts empty on the same port and goes away; a
3-node Cluster spreads slots over its nodes and follows MOVED."""

import os
import socket

import pytest

import redis_util


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(('127.0.0.1', port)) == 0


def test_server():
    with redis_util.RedisServer() as server:
        assert server.url == f'redis://127.0.0.1:{server.port}'
        assert server.cli('SET', 'k', 'v') == 'OK'
        assert server.cli('GET', 'k') == 'v'
        assert server.cli('CONFIG', 'GET', 'appendonly').split() == ['appendonly', 'no']
        port, pid = server.port, server.proc.pid
        server.restart()
        assert server.port == port and server.proc.pid != pid
        assert server.cli('DBSIZE') == '0'     # no persistence
        with pytest.raises(AssertionError):
            server.cli('NOSUCHCOMMAND')
        pid, directory = server.proc.pid, server.dir
    assert not port_open(port)
    assert not os.path.exists(f'/proc/{pid}') or 'zombie' in open(f'/proc/{pid}/status').read().lower()
    assert not os.path.exists(directory)


def test_cluster():
    with redis_util.RedisCluster(3) as cluster:
        assert 'cluster_state:ok' in cluster.cli('CLUSTER', 'INFO')
        owners = set()
        for key in ('{shmfs}:d:1', '{shmfs:5}:v', '{shmfs:6}:v', 'a', 'b', 'c'):
            assert cluster.cli('SET', key, 'x') == 'OK'       # -c follows MOVED
            slot = int(cluster.cli('CLUSTER', 'KEYSLOT', key))
            for node in cluster.nodes:
                if node.cli('CLUSTER', 'COUNTKEYSINSLOT', slot) == '1':
                    owners.add(node.port)
        assert int(cluster.cli('CLUSTER', 'KEYSLOT', '{shmfs:5}:v')) == 1444
        assert len(owners) >= 2
        ports = [n.port for n in cluster.nodes]
    assert not any(port_open(p) for p in ports)
