"""A real Ray cluster on 127.0.0.1 for the tests: a head node and a worker node, each a
`ray start --block` process, stopped by signalling those two processes (each stops what
it started), never by `ray stop`, which would stop every Ray of the user."""
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

from .processes import free_port, stop_process

RAY = Path(sys.executable).with_name('ray')
START_TIMEOUT_S = 300  # a hang guard: Ray starts slowly on a busy 2-core machine
NODE_CPUS = 2  # logical CPUs per node: decode tasks beside a model actor
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
    processes: List[subprocess.Popen]

    def stop(self) -> None:
        for process in reversed(self.processes):  # the worker node first
            stop_process(process)


def start_cluster(temp_dir: Path, nodes: int = 2) -> RayCluster:
    port = free_port()
    address = f'127.0.0.1:{port}'
    # Token authentication with a token of this cluster's own (not ~/.ray/auth_token).
    # Ray turns --node-ip-address=127.0.0.1 into the machine's network address unless its
    # single-machine switch is set: with it, every server of the nodes binds loopback.
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED='0', RAY_AUTH_MODE='token', RAY_AUTH_TOKEN=secrets.token_hex(16),
               RAY_ADDRESS=address, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER='0')
    common = ['--block', '--node-ip-address=127.0.0.1', f'--num-cpus={NODE_CPUS}', '--num-gpus=0',
              f'--object-store-memory={OBJECT_STORE_BYTES}', '--disable-usage-stats']
    head_env = {k: v for k, v in env.items() if k != 'RAY_ADDRESS'}
    processes = [subprocess.Popen([str(RAY), 'start', '--head', f'--port={port}', '--include-dashboard=false',
                                   f'--temp-dir={temp_dir}', *common], env=head_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    cluster = RayCluster(address, env, processes)
    try:
        wait_for_nodes(cluster, 1)
        for _ in range(nodes - 1):
            processes.append(subprocess.Popen([str(RAY), 'start', f'--address={address}', *common], env=env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for_nodes(cluster, nodes)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def wait_for_nodes(cluster: RayCluster, count: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert all(p.poll() is None for p in cluster.processes), 'a `ray start` process exited'
        probe = subprocess.run([sys.executable, '-c', NODES_ALIVE.format(address=cluster.address)],
                               capture_output=True, text=True, env=cluster.env, timeout=START_TIMEOUT_S)
        if probe.returncode == 0 and probe.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        assert time.monotonic() < deadline, f'the Ray cluster did not reach {count} nodes: {probe.stderr[-2000:]}'
        time.sleep(1)


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
