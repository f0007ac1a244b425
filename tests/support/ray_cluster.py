"""A real Ray cluster on 127.0.0.1 for the tests: a `ray start --head --block` process
that the drivers join through RAY_ADDRESS, stopped by signalling that process (it stops
what it started), never by `ray stop`, which would stop every Ray of the user.

One node: every server of a node binds loopback only when Ray's single-machine switch
(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0) is set, and with that switch `ray start --address`
refuses to add a second node ("Multi-node Ray clusters are not supported"); without it,
Ray replaces 127.0.0.1 by the machine's network address. The tests never use that
address, so the cluster is the head node, its raylet and its worker processes."""
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

from .processes import free_port, stop_process

RAY = Path(sys.executable).with_name('ray')
START_TIMEOUT_S = 600  # a hang guard: Ray starts slowly on a busy 2-core machine
NODE_CPUS = 4  # logical CPUs of the node: decode tasks beside model actors
OBJECT_STORE_BYTES = 512 << 20

NODES_ALIVE = '''
import ray
ray.init(address="{address}", logging_level="ERROR")
print(sum(1 for node in ray.nodes() if node["Alive"]))
'''


@dataclass
class RayCluster:
    address: str                # host:port, what RAY_ADDRESS takes
    env: Dict[str, str]         # what a driver of this cluster runs with
    process: subprocess.Popen   # `ray start --head --block`
    temp_dir: Path

    def check_running(self) -> None:
        if self.process.poll() is not None:
            output = (self.temp_dir / 'ray-start.log').read_text(errors='replace')
            raise AssertionError(f'`ray start` exited with {self.process.returncode}:\n{output[-3000:]}')

    def stop(self) -> None:
        stop_process(self.process)


# Ray's sockets live in <temp_dir>/session_<date>_<time>_<micros>_<pid>/sockets/: a Unix
# socket's path holds at most 107 bytes.
SESSION_AND_SOCKET = len('/session_2026-12-01_18-37-05_155795_1234567/sockets/plasma_store')
SOCKET_PATH_MAX = 107


def start_cluster(temp_dir: Path) -> RayCluster:
    """A one-node cluster on 127.0.0.1; Ray's session files (sockets, and the ``ray
    start`` output in ray-start.log) under ``temp_dir``, which must be short."""
    temp_dir = Path(temp_dir).resolve()
    if len(str(temp_dir)) + SESSION_AND_SOCKET > SOCKET_PATH_MAX:
        raise ValueError(f'{temp_dir} is too long for Ray\'s Unix sockets under it (at most '
                         f'{SOCKET_PATH_MAX - SESSION_AND_SOCKET} characters): use a shorter folder')
    temp_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f'127.0.0.1:{port}'
    # Token authentication with a token of this cluster's own (not ~/.ray/auth_token).
    # Ray's single-machine switch: every server of the node binds loopback (module docstring).
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED='0', RAY_AUTH_MODE='token', RAY_AUTH_TOKEN=secrets.token_hex(16),
               RAY_ADDRESS=address, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER='0')
    head_env = {k: v for k, v in env.items() if k != 'RAY_ADDRESS'}
    with open(temp_dir / 'ray-start.log', 'wb') as log:
        head = subprocess.Popen([str(RAY), 'start', '--head', '--block', f'--port={port}', '--include-dashboard=false',
                                 f'--temp-dir={temp_dir}', '--node-ip-address=127.0.0.1', f'--num-cpus={NODE_CPUS}',
                                 '--num-gpus=0', f'--object-store-memory={OBJECT_STORE_BYTES}',
                                 '--disable-usage-stats'], env=head_env, stdout=log, stderr=subprocess.STDOUT)
    cluster = RayCluster(address, env, head, temp_dir)
    try:
        wait_until_up(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def wait_until_up(cluster: RayCluster) -> None:
    """Until the node is alive: first the GCS port takes connections, then a driver
    sees the node (again until it does)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    host, port = cluster.address.rsplit(':', 1)
    while not _accepts(host, int(port)):
        cluster.check_running()
        assert time.monotonic() < deadline, f'the Ray head never listened on {cluster.address}'
        time.sleep(0.5)
    while True:
        cluster.check_running()
        probe = subprocess.run([sys.executable, '-c', NODES_ALIVE.format(address=cluster.address)],
                               capture_output=True, text=True, env=cluster.env, timeout=START_TIMEOUT_S)
        if probe.returncode == 0 and probe.stdout.strip().splitlines()[-1:] == ['1']:
            return
        assert time.monotonic() < deadline, f'the Ray node never came up: {probe.stderr[-2000:]}'
        time.sleep(1)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


def worker_pids(title: str) -> List[int]:
    """Processes of Ray workers whose title (Ray sets it to ray::<what runs>) holds ``title``."""
    pids = []
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace')
            except OSError:  # gone meanwhile
                continue
            if command.startswith('ray::') and title in command:
                pids.append(int(entry.name))
    return pids
