"""How the service's request threads share one index: each thread reads through its
own SQLite connection, Milvus is opened (and synced) by one thread at a time, and
answers that cost a full pass over the index are kept per state of the index."""
import sqlite3
import threading
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path
from typing import Callable, Hashable, List, Optional

from ..retrieval.storage.catalog import BUSY_TIMEOUT_S, Catalog

CACHED_ANSWERS = 16


class PerThreadCatalog:
    """Stands in for an index's Catalog: every thread gets a connection of its own, so
    readers run side by side (SQLite in WAL mode) and one thread's transaction never
    takes in another thread's statements. Writes stay atomic: each is one transaction
    (BEGIN IMMEDIATE) on its thread's connection."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: List[Catalog] = []

    def _mine(self) -> Catalog:
        catalog = getattr(self._local, 'catalog', None)
        if catalog is None:
            catalog = self._local.catalog = Catalog(self.path)
            with self._lock:
                self._opened.append(catalog)
        return catalog

    def __getattr__(self, name):
        return getattr(self._mine(), name)

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for catalog in opened:  # connections made check_same_thread=False: closable from here
            catalog.close()


class StateCache:
    """Answers kept per state of the index: SQLite's data_version, read on a connection
    of the cache's own that never writes, changes whenever any connection (a decision,
    `dns index` in another process) commits. Concurrent requests for one answer wait
    for the one computing it instead of computing it again."""

    def __init__(self, catalog_path: Path, size: int = CACHED_ANSWERS):
        self._db = sqlite3.connect(str(catalog_path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
        self._lock = threading.Lock()
        self._answers: 'OrderedDict[Hashable, tuple]' = OrderedDict()
        self.size = size

    def version(self) -> int:
        with self._lock:
            return self._db.execute('PRAGMA data_version').fetchone()[0]

    def get(self, key: Hashable, compute: Callable[[], object], version: Optional[Hashable] = None):
        """The answer for ``key`` at the index's state now, or at ``version`` when given
        (a state the caller read itself, e.g. one that decisions leave unchanged)."""
        version = self.version() if version is None else version
        with self._lock:
            held = self._answers.get(key)
            mine = held is None or held[0] != version
            if mine:
                held = (version, Future())
                self._answers[key] = held
                while len(self._answers) > self.size:
                    self._answers.popitem(last=False)
            self._answers.move_to_end(key)
        future: Future = held[1]
        if mine:
            try:
                future.set_result(compute())
            except BaseException as error:
                future.set_exception(error)
                with self._lock:  # a failure is not kept: the next request tries again
                    if self._answers.get(key) is held:
                        del self._answers[key]
        return future.result()

    def close(self) -> None:
        self._db.close()
