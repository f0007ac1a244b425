"""What the tests' real servers (Milvus, Ray, `dns serve`) share: a free port on
127.0.0.1, and stopping a process they started, by its own handle."""
import signal
import socket
import subprocess
from pathlib import Path
from typing import List

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


def descendants(pid: int) -> List[int]:
    """``pid`` and the processes below it, found by their parent ids."""
    parents = {}
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / 'stat').read_text()
            except OSError:  # gone meanwhile
                continue
            # The command name, in parentheses, may hold spaces: fields follow the last ')'.
            parents[int(entry.name)] = int(stat.rsplit(')', 1)[1].split()[1])
    tree, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree
