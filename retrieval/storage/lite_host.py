"""A Milvus Lite database served from a process of its own.

Milvus Lite is pure Python: pymilvus serves a ``.db`` folder from a gRPC server thread
inside the calling process, so every search runs under that process's GIL beside the
caller's own work. A service answering many requests at once is then held to one core.
``LiteHost`` keeps a child process (started once, its imports done) that serves the
folder on 127.0.0.1 while it is open and lets go of it, releasing the folder's lock for
other processes, when closed; reopening takes what opening the folder takes, not a new
interpreter. The child exits when its parent does (EOF on its pipe), which releases
the lock whatever way the parent ended.
"""
import multiprocessing
import threading

from .vector_store import LiteLocked, VectorStoreError, wait_for_lite

START_TIMEOUT_S = 120.0   # importing gRPC and Milvus Lite in the child (a hang guard)
ANSWER_TIMEOUT_S = 120.0  # opening or closing a folder (a hang guard)
LOCKED = 'locked'


def _host_main(conn, threads: int) -> None:
    # The server function pymilvus itself uses to serve a .db folder in-process.
    from milvus_lite.adapter.grpc.server import start_server_in_thread
    from milvus_lite.exceptions import DataDirLockedError
    conn.send(('ready', None))
    running = None
    try:
        while True:
            try:
                command, folder = conn.recv()
            except EOFError:  # the parent is gone
                return
            if running is not None:  # 'open' on an open folder reopens it; 'close' closes it
                server, db = running
                server.stop(grace=None)
                db.close()
                running = None
            if command == 'open':
                try:
                    server, db, port = start_server_in_thread(folder, host='127.0.0.1', port=0, max_workers=threads)
                except DataDirLockedError as error:
                    conn.send((LOCKED, str(error)))
                except Exception as error:  # sent back whole: the parent names it
                    conn.send(('error', f'{type(error).__name__}: {error}'))
                else:
                    running = (server, db)
                    conn.send(('ok', port))
            else:
                conn.send(('ok', None))
    finally:
        if running is not None:
            running[0].stop(grace=None)
            running[1].close()


class LiteHost:
    """Serves one Milvus Lite folder at a time from a child process; ``open`` gives the
    URI to connect to. ``threads``: the server's, for requests side by side (more than
    the caller sends at once only contend for the child's GIL). Thread-safe."""

    def __init__(self, threads: int = 4):
        self._lock = threading.Lock()
        self._threads = threads
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context('spawn')  # no copy of the caller's threads
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_host_main, args=(child, self._threads), daemon=True,
                                        name='dns-milvus-lite')
        self._process.start()
        child.close()
        self._answer('starting', START_TIMEOUT_S)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def open(self, folder: str) -> str:
        """Serve ``folder`` (closing any other); its URI. A folder another process holds
        is waited for (``vector_store.wait_for_lite``), as pymilvus's own Lite connection is."""
        def attempt() -> str:
            status, value = self._ask(('open', folder), f'opening {folder}')
            if status == LOCKED:
                raise LiteLocked(value)
            if status != 'ok':
                raise VectorStoreError(f'cannot open the Milvus Lite database {folder}: {value}')
            return f'http://127.0.0.1:{value}'
        return wait_for_lite(attempt, folder)

    def close(self) -> None:
        """Let go of the folder being served, if any (its lock is released; a child that
        died holds none)."""
        with self._lock:
            if self._process.is_alive():
                try:
                    self._conn.send(('close', None))
                    self._answer('closing')
                except (EOFError, OSError):
                    self._stop_child()

    def shutdown(self) -> None:
        with self._lock:
            self._stop_child()

    def _ask(self, message: tuple, doing: str) -> tuple:
        with self._lock:
            if not self._process.is_alive():  # it died: a fresh one, as at start
                self._stop_child()
                self._start()
            try:
                self._conn.send(message)
                return self._answer(doing)
            except (EOFError, OSError):  # it died meanwhile: once more, with a fresh one
                self._stop_child()
                self._start()
                self._conn.send(message)
                return self._answer(doing)

    def _answer(self, doing: str, timeout_s: float = ANSWER_TIMEOUT_S) -> tuple:
        if not self._conn.poll(timeout_s):
            raise VectorStoreError(f'the Milvus Lite process (pid {self.pid}) did not answer within {timeout_s:.0f} s '
                                   f'({doing})')
        return self._conn.recv()

    def _stop_child(self) -> None:
        self._conn.close()  # a live child closes its folder and exits on EOF
        self._process.join(ANSWER_TIMEOUT_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
