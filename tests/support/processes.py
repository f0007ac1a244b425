"""What the tests' real servers (Milvus, Ray, `dns serve`) share: a free port on
127.0.0.1, and stopping a process they started, by its own handle."""
import signal
import socket
import subprocess

STOP_TIMEOUT_S = 60  # a hang guard only


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Ask ``process`` to stop with ``sig``; kill it if it is still running after
    ``STOP_TIMEOUT_S``."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
