"""The one service object every route works on: the index (its catalog read per
thread), its models, the upload workers and the caches, opened once at start-up and
handed to the routes by FastAPI's dependency ``ServiceDep``."""
import os
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

from fastapi import Depends, Request

from .. import defaults
from ..retrieval.storage.index import VideoIndex
from ..file_hash import sha256_of
from .sharing import StateCache
from .workers import WorkerPool


class Service:
    """The shared state: the index (its catalog read per thread), its models, the
    upload workers and the cache of /duplicates.

    A Milvus Lite database admits one process at a time: after
    ``defaults.LITE_IDLE_RELEASE_S`` without a request the service lets go of it
    (reopening it takes some 20 ms), so `dns index`, `dns dedup` and `dns search` can
    run beside the service. A Milvus server stays connected."""

    def __init__(self, index: VideoIndex, models, workers: WorkerPool, max_query_seconds: float,
                 token: Optional[str] = None):
        self.index, self.models, self.workers = index, models, workers
        self.max_query_seconds = max_query_seconds
        self.token = token  # None: no token asked; else the secret video keys are made from
        self.duplicates = StateCache(index.catalog.path)  # the answers, per state of the catalog
        # their searches, per state of the videos
        self.scored = StateCache(index.catalog.path, size=defaults.SCORED_SETTINGS_KEPT)
        self.plotting = threading.Lock()  # matplotlib's pyplot state is one per process
        self._state = threading.Condition()
        # Work on the index is Python under one GIL: more threads at it than cores keep
        # each other waiting and add switching, no throughput. Requests beyond the slots
        # wait their turn here; a thread waiting on an upload worker holds none.
        self._slots = threading.BoundedSemaphore(index_slots())
        self._active = 0
        self._contents: dict = {}  # (file, size, mtime) -> sha256 of its content
        self.frames: 'OrderedDict[tuple, bytes]' = OrderedDict()  # (video id, ms) -> a thumbnail made then
        self.last_used = time.monotonic()
        self._stop = threading.Event()
        self._releaser = threading.Thread(target=self._release_when_idle, daemon=True)
        if not index.settings.milvus_uri:
            self._releaser.start()

    def unchanged(self, file: Path, stat: os.stat_result, video_id: str) -> bool:
        """Whether ``file`` still holds the content ``video_id``: hashed once per
        (size, mtime) seen, not on every range request of a player."""
        key = (str(file), stat.st_size, stat.st_mtime_ns)
        with self._state:
            known = self._contents.get(key)
        if known is None:
            try:
                known = sha256_of(file)
            except OSError:
                return False
            with self._state:
                self._contents[key] = known
        return known == video_id

    def frame_thumbnail(self, key: tuple, make) -> bytes:
        """A thumbnail at a segment's time, made once and kept (the most recent ones)."""
        with self._state:
            made = self.frames.get(key)
        if made is None:
            made = make()
            with self._state:
                self.frames[key] = made
                while len(self.frames) > defaults.SEGMENT_THUMBNAILS_KEPT:
                    self.frames.popitem(last=False)
        return made

    @property
    def busy(self) -> bool:
        return self._active > 0

    @contextmanager
    def using(self, vectors: bool = True):
        """Use the index and the models for one request, beside at most a few other
        requests. With ``vectors`` (searches), Milvus is (re)opened here, by one request
        at a time (what indexers synced since is there); a request that reads only the catalog and the stored
        features does without: Milvus Lite is let go after 2 s idle, and reopening it
        would more than double a reviewer's decision."""
        with self._slots:
            with self._state:
                if vectors:
                    host = self.index.lite_host
                    if host is not None and not host.alive:
                        # Its Milvus Lite process died (killed, out of memory): every search
                        # would fail until the idle release. Reopen now, through a fresh one.
                        self.index.release_vectors()
                    self.index.vectors()
                self._active += 1
            try:
                yield
            finally:
                with self._state:
                    self._active -= 1
                    self.last_used = time.monotonic()

    def _release_when_idle(self) -> None:
        while not self._stop.wait(0.25):
            with self._state:
                if not self._active and time.monotonic() - self.last_used > defaults.LITE_IDLE_RELEASE_S:
                    self.index.release_vectors()

    def close(self) -> None:
        self._stop.set()
        if self._releaser.is_alive():
            self._releaser.join()
        self.workers.close()
        self.duplicates.close()
        self.scored.close()
        self.index.close()
        if self.index.lite_host is not None:
            self.index.lite_host.shutdown()


def index_slots() -> int:
    return defaults.INDEX_SLOTS_PER_CORE * (os.cpu_count() or 1)


async def current_service(request: Request) -> Service:
    """The app's service object (async: resolved on the event loop, no thread hop)."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(current_service)]
