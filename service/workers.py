"""Uploaded videos are decoded and represented in worker processes, never in the
service's own: a file that crashes the decoder or the model, hangs, or needs more
memory than allowed ends one worker and fails one request, and the service goes on.

A bounded pool of processes started with the 'spawn' method (no copy of the service's
threads, locks or Milvus connection), each loading the models once. Each worker serves
one upload at a time over its own pipe, so the pool always knows which process holds
which request: a worker that dies (EOF on its pipe) or does not answer within the time
limit (killed with SIGKILL) is replaced by a fresh one in the background. A worker's
address space is capped (RLIMIT_AS) at its size once the models are loaded plus a
margin, so an allocation beyond it fails inside the worker (MemoryError), which then
reports it and exits. concurrent.futures.ProcessPoolExecutor is not used: one dead
worker breaks the whole executor, failing every request in flight.
"""
import math
import multiprocessing
import os
import queue
import resource
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from .. import defaults

START_TIMEOUT_S = 600.0            # loading the models in a new worker (a hang guard)
RESTART_PAUSE_S = 5.0              # between failed attempts to start a replacement
# What torch's CPU allocator says when an allocation fails (it raises RuntimeError), and
# what Python says when a thread's stack does not fit under the address-space cap.
ALLOCATION_FAILURES = ("can't allocate memory", 'not enough memory', 'out of memory', 'std::bad_alloc',
                       "can't start new thread")


class UploadFailure(Exception):
    """An upload its worker could not represent, with the HTTP status that says why."""

    def __init__(self, status: int, reason: str, retry_after: Optional[int] = None, undecodable: bool = False):
        super().__init__(reason)
        self.status, self.reason, self.retry_after, self.undecodable = status, reason, retry_after, undecodable


def default_workers() -> int:
    return max(1, min(defaults.UPLOAD_WORKERS, os.cpu_count() or 1))


@dataclass(frozen=True)
class WorkerSettings:
    fine: str                 # the index's fine student
    time_step: float          # the index's sampling, seconds
    model_options: Dict[str, Any] = field(default_factory=dict)   # keyword arguments of core.DnS
    memory_mb: Optional[float] = defaults.WORKER_MEMORY_MB   # None: no cap
    torch_threads: int = 1


def _worker_main(conn, settings: WorkerSettings) -> None:
    """A worker process: load the models, report ready, then represent one upload per
    message until the pipe closes. Answers ('ok', representation), ('decode', reason),
    ('memory', reason) (and exits: a failed allocation may leave a library's state
    half-changed) or ('error', reason)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the service, which stops the pool
    try:
        import torch
        torch.set_num_threads(settings.torch_threads)
        from ..core import DnS
        from ..retrieval.ingestion.ingest import represent_file
        from ..video_decode import VideoDecodeError
        dns = DnS(settings.fine, **settings.model_options)
        if settings.memory_mb is not None:
            _cap_address_space(settings.memory_mb)
    except BaseException as error:  # reported to the service, which fails its start-up with it
        conn.send(('failed', f'{type(error).__name__}: {error}'))
        return
    conn.send(('ready', os.getpid()))
    while True:
        try:
            path, max_seconds = conn.recv()
        except (EOFError, OSError):
            return
        try:
            # The one ingestion path, as `dns index` takes it; no thumbnails: a query is not stored.
            answer = ('ok', represent_file(path, dns, settings.time_step, thumbnails=0, max_seconds=max_seconds))
        except VideoDecodeError as error:
            answer = ('decode', error.reason)
        except MemoryError:
            answer = ('memory', 'an allocation failed')
        except RuntimeError as error:
            text = str(error)
            answer = ('memory' if any(s in text for s in ALLOCATION_FAILURES) else 'error', text.splitlines()[0])
        except Exception as error:
            answer = ('error', f'{type(error).__name__}: {error}')
        conn.send(answer)
        if answer[0] == 'memory':
            return


def _cap_address_space(margin_mb: float) -> None:
    size = _vm_size_bytes()
    limit = size + int(margin_mb * (1 << 20))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _vm_size_bytes() -> int:
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmSize:'):
                return int(line.split()[1]) * 1024
    raise OSError('no VmSize in /proc/self/status')


class _Worker:
    def __init__(self, context, settings: WorkerSettings):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, settings), daemon=True,
                                       name='dns-upload-worker')
        self.process.start()
        child.close()  # the parent keeps one end: EOF when the worker dies

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout_s: float) -> None:
        if not self.conn.poll(timeout_s):
            self.kill()
            raise RuntimeError(f'an upload worker did not load its models in {timeout_s:g} s')
        try:
            kind, value = self.conn.recv()
        except (EOFError, OSError):
            self.process.join()
            raise RuntimeError(f'an upload worker exited while starting ({_exit_reason(self.process.exitcode)})')
        if kind != 'ready':
            self.process.join()
            raise RuntimeError(f'an upload worker could not start: {value}')

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


def _exit_reason(code: Optional[int]) -> str:
    if code is None:
        return 'still running'
    if code < 0:
        try:
            return f'killed by signal {signal.Signals(-code).name}'
        except ValueError:
            return f'killed by signal {-code}'
    return f'exit status {code}'


class WorkerPool:
    """``size`` worker processes; at most ``size * (1 + queue_per_worker)`` uploads
    admitted at once (the rest: 503). ``timeout_s``: the longest one upload may take in
    its worker."""

    def __init__(self, settings: WorkerSettings, size: int = defaults.UPLOAD_WORKERS,
                 timeout_s: float = defaults.WORKER_TIMEOUT_S,
                 queue_per_worker: int = defaults.UPLOAD_QUEUE_PER_WORKER):
        if size < 1:
            raise ValueError(f'the number of upload workers must be at least 1, got {size}')
        if not timeout_s > 0:
            raise ValueError(f'the upload time limit must be positive, got {timeout_s}')
        self.settings, self.size, self.timeout_s = settings, size, timeout_s
        self.capacity = size * (1 + queue_per_worker)
        self._context = multiprocessing.get_context('spawn')
        self._idle: 'queue.Queue[_Worker]' = queue.Queue()
        self._admitted = threading.BoundedSemaphore(self.capacity)
        self._lock = threading.Lock()
        self._workers: Dict[int, _Worker] = {}
        self._busy: Dict[int, float] = {}  # pid -> when its upload started
        self._waiting = 0
        self._replaced = 0
        self._recent_s = 1.0  # a running mean of an upload's time in a worker: the Retry-After
        self._closing = threading.Event()

    def start(self) -> None:
        """Start the workers in the background: the service answers (searches by path,
        the page) while they load the models; an upload waits for the first ready."""
        for _ in range(self.size):
            self._start_in_background()

    def describe(self) -> dict:
        with self._lock:
            return {'pids': sorted(self._workers), 'busy': sorted(self._busy), 'waiting': self._waiting,
                    'replaced': self._replaced, 'capacity': self.capacity}

    def represent(self, path: str, max_seconds: float):
        """The representation of the video file ``path``, made by a worker. Raises
        UploadFailure: 503 (every worker busy and the queue full), 500 (the worker died),
        504 (past the time limit), 422 (the file: not decodable, or needing more memory
        than a worker may use)."""
        if not self._admitted.acquire(blocking=False):
            raise UploadFailure(503, f'all {self.size} upload workers are busy and {self.capacity - self.size} '
                                'uploads wait already; retry later', retry_after=self._retry_after())
        try:
            worker = self._take()
            return self._run(worker, path, max_seconds)
        finally:
            self._admitted.release()

    def _retry_after(self) -> int:
        return max(1, math.ceil(self._recent_s * self.capacity / self.size))

    def _take(self) -> '_Worker':
        """An idle, live worker; waits at most as long as the uploads ahead could take."""
        deadline = time.monotonic() + self.timeout_s * math.ceil(self.capacity / self.size) + START_TIMEOUT_S
        with self._lock:
            self._waiting += 1
        try:
            while True:
                try:
                    worker = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise UploadFailure(503, 'no upload worker became free in time (are they failing to start? '
                                        'see the service\'s log); retry later', retry_after=self._retry_after())
                if worker.process.is_alive():
                    return worker
                self._replace(worker)  # died while idle: not this request's doing
        finally:
            with self._lock:
                self._waiting -= 1

    def _run(self, worker: '_Worker', path: str, max_seconds: float):
        started = time.monotonic()
        with self._lock:
            self._busy[worker.pid] = started
        try:
            try:
                worker.conn.send((path, max_seconds))
                answered = worker.conn.poll(self.timeout_s)
                answer = worker.conn.recv() if answered else None
            except (EOFError, OSError):  # the pipe broke: the worker is gone
                answer = ('died', None)
        finally:
            with self._lock:
                self._busy.pop(worker.pid, None)
        if answer is None:
            self._replace(worker)
            raise UploadFailure(504, f'decoding and representing the upload took longer than the limit of '
                                f'{self.timeout_s:g} s; its worker was stopped')
        kind, value = answer
        if kind == 'died':
            worker.process.join()
            reason = _exit_reason(worker.process.exitcode)
            self._replace(worker)
            raise UploadFailure(500, f'the worker decoding the upload ended abnormally ({reason}); '
                                'the service goes on')
        if kind == 'memory':
            self._replace(worker)
            raise UploadFailure(422, f'the uploaded video needs more memory than a worker may use '
                                f'({self.settings.memory_mb:g} MB beyond the models): {value}')
        self._idle.put(worker)
        self._recent_s = 0.8 * self._recent_s + 0.2 * (time.monotonic() - started)
        if kind == 'decode':
            raise UploadFailure(422, value, undecodable=True)
        if kind == 'error':
            raise UploadFailure(500, f'representing the upload failed: {value}')
        return value

    def _replace(self, worker: '_Worker') -> None:
        """Stop ``worker`` and start another in the background; retried until it starts
        or the pool closes."""
        worker.kill()
        with self._lock:
            self._workers.pop(worker.pid, None)
            self._replaced += 1
        self._start_in_background()

    def _start_in_background(self) -> None:
        threading.Thread(target=self._start_one, daemon=True, name='dns-upload-worker-start').start()

    def _start_one(self) -> None:
        while not self._closing.is_set():
            fresh = _Worker(self._context, self.settings)
            try:
                fresh.wait_ready(START_TIMEOUT_S)
            except RuntimeError as error:
                print(f'dns serve: {error}; trying again', file=sys.stderr, flush=True)
                fresh.kill()
                self._closing.wait(RESTART_PAUSE_S)
                continue
            with self._lock:
                if self._closing.is_set():
                    fresh.kill()
                    return
                self._workers[fresh.pid] = fresh
            self._idle.put(fresh)
            return

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.kill()
