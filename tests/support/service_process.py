"""`dns serve` as users run it: a real subprocess on 127.0.0.1 and a free port."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import httpx

from .processes import free_port, stop_process

DNS = Path(sys.executable).with_name('dns')
START_TIMEOUT_S = 300  # a hang guard: loading the models on a busy machine


def dns_env(torch_home) -> dict:
    """The environment of a `dns` subprocess that loads the weights under ``torch_home``."""
    env = dict(os.environ, TORCH_HOME=str(torch_home))
    env.pop('DNS_TOKEN', None)
    return env


class ServiceProcess:
    """Starts `dns serve --index INDEX` in ``cwd``; ``url`` once /health answers.
    Stopped (SIGINT, then SIGKILL) by its own pid."""

    def __init__(self, index, cwd, torch_home, *options: str, token: Optional[str] = None):
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.token = token
        self.log = Path(cwd) / f'serve-{self.port}.log'
        args = [str(DNS), 'serve', '--index', str(index), '--port', str(self.port), *options]
        if token:
            args += ['--token', token]
        with open(self.log, 'wb') as log:
            self.process = subprocess.Popen(args, cwd=cwd, env=dns_env(torch_home), stdout=log,
                                            stderr=subprocess.STDOUT)
        self._wait()

    @property
    def headers(self) -> dict:
        return {'Authorization': f'Bearer {self.token}'} if self.token else {}

    def client(self, **options) -> httpx.Client:
        """An HTTP client of the service; ``options`` as httpx.Client's (timeout: 300 s unless given)."""
        return httpx.Client(base_url=self.url, headers=self.headers, **{'timeout': 300, **options})

    def _wait(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'dns serve exited with {self.process.returncode}:\n{self.log.read_text()}')
            try:
                if httpx.get(f'{self.url}/health', headers=self.headers, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f'dns serve did not answer in {START_TIMEOUT_S} s:\n{self.log.read_text()}')

    def stop(self) -> None:
        stop_process(self.process, signal.SIGINT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
