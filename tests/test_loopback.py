"""Nothing listens beyond loopback unless asked: the local Ray instance that `dns index
--ray` starts without RAY_ADDRESS, and every server the tests start (`dns serve` with
its worker processes and Milvus Lite, the Milvus server, the HTTP file server, the Ray
cluster). Each check reads the listening sockets of the processes started, from /proc."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from support.listening import beyond_loopback, listening
from support.milvus_server import milvus_server
from support.processes import descendants
from support.http_server import FileServer
from support.ray_cluster import start_cluster
from support.service_process import ServiceProcess

TESTS = Path(__file__).parent

LOCAL_RAY_PROBE = textwrap.dedent('''
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    from distill_and_select.retrieval.ingestion.ray_engine.driver import connect
    from support.listening import listening
    from support.processes import descendants
    ray = connect()
    ray.data.range(4).map(lambda row: row).take_all()  # a Ray Data pipeline, as indexing runs: workers start
    print(json.dumps([list(entry) + [open(f"/proc/{entry[0]}/cmdline").read().split(chr(0))[0]]
                      for entry in listening(descendants(os.getpid()))]))
    ray.shutdown()
''')


def test_the_local_ray_instance_listens_on_loopback_only(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith('RAY_')}  # as a user's shell: no RAY_ADDRESS
    env.update(RAY_USAGE_STATS_ENABLED='0')
    probe = subprocess.run([sys.executable, '-c', LOCAL_RAY_PROBE, str(TESTS)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=600)
    assert probe.returncode == 0, probe.stderr[-3000:]
    sockets = [tuple(entry) for entry in json.loads(probe.stdout.strip().splitlines()[-1])]
    programs = {os.path.basename(program) for *_, program in sockets}
    # Not vacuous: Ray's own servers were found listening.
    assert {'gcs_server', 'raylet'} <= programs, sockets
    assert beyond_loopback(sockets) == [], sockets


def test_the_service_its_workers_and_milvus_lite_listen_on_loopback_only(review_index):
    root, torch_home = review_index
    with ServiceProcess('dns-index', root, torch_home) as running:
        sockets = listening(descendants(running.process.pid))
        assert httpx.get(running.url + '/health', timeout=60).status_code == 200
    assert any(port == running.port for *_, port in sockets), sockets
    assert beyond_loopback(sockets) == [], sockets


def test_the_milvus_server_listens_on_loopback_only(tmp_path):
    with milvus_server(tmp_path / 'milvus') as uri:
        sockets = listening(descendants(os.getpid()))
    port = int(uri.rsplit(':', 1)[1])
    assert any(entry[3] == port for entry in sockets), sockets
    assert beyond_loopback(sockets) == [], sockets


def test_the_http_file_server_listens_on_loopback_only():
    with FileServer({'/a': b'a'}) as server:
        port = server.httpd.server_address[1]
        ours = [entry for entry in listening([os.getpid()]) if entry[3] == port]
    assert ours and beyond_loopback(ours) == [], ours


@pytest.mark.slow
def test_the_ray_cluster_listens_on_loopback_only(tmp_path_factory):
    cluster = start_cluster(tmp_path_factory.mktemp('ray'))
    try:
        sockets = listening(descendants(cluster.process.pid))
    finally:
        cluster.stop()
    assert len({entry[0] for entry in sockets}) >= 4, sockets  # GCS and raylets at least
    assert beyond_loopback(sockets) == [], sockets
