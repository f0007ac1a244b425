"""A real Milvus gRPC server for the tests: Milvus Lite's own `python -m milvus_lite
server`, on 127.0.0.1."""
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .processes import free_port

START_TIMEOUT_S = 120  # a hang guard only


@contextmanager
def milvus_server(data_dir: Path) -> Iterator[str]:
    """Run a server storing in ``data_dir``; yields its URI."""
    port = free_port()
    server = subprocess.Popen([sys.executable, '-m', 'milvus_lite', 'server', '--data-dir', str(data_dir),
                               '--host', '127.0.0.1', '--port', str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        uri = f'http://127.0.0.1:{port}'
        deadline = time.monotonic() + START_TIMEOUT_S
        while subprocess.run([sys.executable, '-c', f'import pymilvus; pymilvus.MilvusClient("{uri}")'],
                             capture_output=True).returncode != 0:
            assert server.poll() is None, 'the Milvus server exited'
            assert time.monotonic() < deadline, 'the Milvus server did not start'
            time.sleep(1)
        yield uri
    finally:
        server.kill()
        server.wait()
