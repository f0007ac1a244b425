"""Window vectors in files of the index folder, searched with faiss: the clip store of
the embedded default (Milvus Lite holds only the coarse vectors).

Why not Milvus Lite: it is pure Python and keeps every window three times in memory
(the Parquet table, a float32 copy for brute force, and its faiss index's own copy),
turns every hit into Python objects and reloads all of it on every open; at 2 x 10^5
windows a fresh process took 4.1 s to open the collection and held 2.1 GB
(docs/scaling.md). Here a window is kept once, as the faiss index holds it, and keys are
integers: row ``r`` of the index is ``video_ids[row_video[r]]`` at ``row_start[r]``.

Layout (folder ``clip-windows``): ``base-G.faiss``, the faiss index of the first
``base_rows`` rows (exact ``IndexFlatIP`` while the store is small, HNSW over 8-bit codes
from ``hnsw_from`` windows on), and ``rows-G.npz``, the keys, which rows are live and the
vectors of the rows added since the base was written (the tail, searched exactly: adding
a video does not rewrite the graph). ``CURRENT`` names the two files of the latest flush
and is replaced atomically, so a reader sees one flush or the next, never a mixture.
Removed videos' rows are masked (faiss's HNSW cannot remove) until they are a quarter of
the rows, when the base is made again from the live rows.

One writer at a time: the store is written by a process that holds the index's Milvus
Lite folder (its lock keeps other processes out). Searches from many threads run beside
one another (faiss lets go of the GIL); a flush swaps in new objects, it never changes
the ones a search may be reading.
"""
import json
import os
import threading
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ... import defaults
from ...atomic_files import replacing, write_atomically
from .clip_vectors import ClipIndexError, WindowHits
from .clip_windows import WINDOW_DIMS

CURRENT = 'CURRENT'
FORMAT = 1
INDEX_TYPES = ('FLAT', 'HNSW')
CODE_RANGE_MARGIN = 0.1   # of each dimension's range, either side


class ClipWindowFiles:
    """The clip store in ``folder`` (made when missing). ``hnsw_from``: windows from
    which a flush (or :meth:`fit_index`) makes the base an HNSW graph; ``tail_limit``: rows kept
    beside the graph, searched exactly, before a flush adds them to it;
    ``compact_dead``: the share of removed rows at which a flush makes the base again."""

    def __init__(self, folder: Path, hnsw_from: int = defaults.CLIP_HNSW_FROM,
                 tail_limit: int = defaults.CLIP_TAIL_LIMIT, compact_dead: float = defaults.CLIP_COMPACT_DEAD):
        if hnsw_from < 1:
            raise ValueError(f'the size to move the clip collection to HNSW at must be positive, got {hnsw_from}')
        if tail_limit < 1 or not 0 < compact_dead <= 1:
            raise ValueError(f'the clip store needs a positive tail limit and a share of removed rows in (0, 1], '
                             f'got {tail_limit} and {compact_dead}')
        self.folder, self.hnsw_from, self.tail_limit, self.compact_dead = Path(folder), hnsw_from, tail_limit, compact_dead
        self._lock = threading.Lock()
        self._generation = 0
        self._base_file: Optional[str] = None   # the base file of the last flush, kept until it changes
        self._current: Optional[str] = None     # the text of CURRENT read or written last
        self._base_changed = True
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ClipIndexError(f'the folder of the clip windows {self.folder} cannot be made: {error}') from error
        if (self.folder / CURRENT).exists():
            self._load()
        else:
            self._reset()

    # --- state
    def _reset(self) -> None:
        import faiss
        self._base = faiss.IndexFlatIP(WINDOW_DIMS)
        self.index_type = 'FLAT'
        self._video_ids: List[str] = []
        self._video_number: Dict[str, int] = {}
        self._row_video = np.zeros(0, np.int32)
        self._row_start = np.zeros(0, np.int32)
        self._live = np.zeros(0, bool)
        self._tail = np.zeros((0, WINDOW_DIMS), np.float32)
        self._pending: list = []
        self._base_changed = True

    def _load(self) -> None:
        try:
            self._read()
        except ClipIndexError:
            raise
        except Exception as error:
            raise ClipIndexError(f'the clip windows in {self.folder} cannot be read: {error}; '
                                 'delete the folder to make them again from the index') from error

    def _read(self) -> None:
        import faiss
        text = (self.folder / CURRENT).read_text()
        current = json.loads(text)
        if current.get('format') != FORMAT:
            raise ClipIndexError(f'the clip windows in {self.folder} are of format {current.get("format")}, '
                                 f'not {FORMAT}; delete the folder to make them again from the index')
        with np.load(self.folder / current['rows'], allow_pickle=False) as rows:
            video_ids = [str(v) for v in rows['video_ids']]
            row_video, row_start, live, tail = rows['row_video'], rows['row_start'], rows['live'], rows['tail']
        base = faiss.read_index(str(self.folder / current['base']))
        if base.d != WINDOW_DIMS or base.ntotal + len(tail) != len(row_video) \
                or not len(row_video) == len(row_start) == len(live):
            raise ClipIndexError(f'the clip windows in {self.folder} do not add up ({base.ntotal} indexed and '
                                 f'{len(tail)} pending rows for {len(row_video)} keys, {base.d}-d); '
                                 'delete the folder to make them again from the index')
        self._base, self.index_type, self._tail = base, current['index_type'], tail
        self._video_ids, self._row_video, self._row_start, self._live = video_ids, row_video, row_start, live
        self._video_number = {v: i for i, v in enumerate(video_ids)}
        self._pending = []
        self._generation, self._base_file, self._base_changed = current['generation'], current['base'], False
        self._current = text

    def refresh(self) -> None:
        """Read the files again if another process flushed since (or removed them)."""
        try:
            text = (self.folder / CURRENT).read_text()
        except FileNotFoundError:
            text = None
        with self._lock:
            if text is None:
                if self._current is not None:
                    self._reset()
                    self._generation, self._base_file, self._current = 0, None, None
            elif text != self._current:
                self._load()

    def clear(self) -> None:
        """Forget every window (written at the next flush)."""
        with self._lock:
            self._reset()

    # --- the interface of the clip store (ClipVectors is the one on a Milvus server)
    def count(self) -> int:
        with self._lock:
            self._settle()
            return int(self._live.sum())

    def search_params(self) -> dict:
        """The search parameters of the base's index type."""
        return dict(defaults.CLIP_HNSW_SEARCH) if self.index_type == 'HNSW' else {}

    def upsert(self, video_id: str, starts: Sequence[int], vectors: np.ndarray) -> None:
        """A video's windows (in place of those it had), held until :meth:`flush`."""
        vectors = np.ascontiguousarray(vectors, np.float32).reshape(-1, WINDOW_DIMS)
        starts = np.asarray(starts, np.int32)
        if len(starts) != len(vectors):
            raise ValueError(f'{len(starts)} window starts for {len(vectors)} window vectors')
        with self._lock:
            number = self._video_number.get(video_id)
            if number is None:
                number = self._video_number[video_id] = len(self._video_ids)
                self._video_ids = self._video_ids + [video_id]
            else:
                self._drop([number])
            # Gathered, joined to the arrays at the next read: one copy for many videos.
            self._pending.append((number, starts, vectors))

    def _drop(self, numbers: List[int]) -> None:
        self._live = self._live & ~np.isin(self._row_video, numbers)   # a new array: searches keep theirs
        self._pending = [p for p in self._pending if p[0] not in numbers]

    def _settle(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            self._row_video = np.concatenate([self._row_video] + [np.full(len(s), n, np.int32) for n, s, _ in pending])
            self._row_start = np.concatenate([self._row_start] + [s for _, s, _ in pending])
            self._live = np.concatenate([self._live, np.ones(sum(len(s) for _, s, _ in pending), bool)])
            self._tail = np.concatenate([self._tail] + [v for _, _, v in pending])

    def video_windows(self, video_id: str) -> Dict[int, np.ndarray]:
        """A video's windows by start (frames), as stored (8-bit codes decoded)."""
        with self._lock:
            self._settle()
            number = self._video_number.get(video_id)
            if number is None:
                return {}
            rows = np.flatnonzero(self._live & (self._row_video == number))
            return dict(zip(self._row_start[rows].tolist(), self._vectors(rows)))

    def delete_videos(self, video_ids: Sequence[str]) -> None:
        with self._lock:
            numbers = [self._video_number[v] for v in video_ids if v in self._video_number]
            if numbers:
                self._drop(numbers)

    def fit_index(self, windows: int) -> bool:
        """Make a FLAT base of ``windows`` windows or more an HNSW graph (never back: a
        shrinking store keeps its graph), and write it; True when it moved."""
        if windows < self.hnsw_from or self.index_type != 'FLAT':
            return False
        self.rebuild_index('HNSW')
        return True

    def rebuild_index(self, index_type: str) -> None:
        """Make the base again as ``index_type`` ('FLAT' or 'HNSW', with
        ``defaults.CLIP_HNSW_BUILD``) from the live rows, and write it."""
        if index_type not in INDEX_TYPES:
            raise ValueError(f"the clip collection's index type is FLAT or HNSW, not {index_type!r}")
        with self._lock:
            self._settle()
            self._rebuild(index_type)
        self.flush(by_size=False)

    def flush(self, by_size: bool = True) -> None:
        """Write what changed: a FLAT base past ``hnsw_from`` windows becomes HNSW (with
        ``by_size``), the tail joins the base past ``tail_limit`` rows (the base is made
        again once a ``compact_dead`` share of it is removed rows), then the files, then
        ``CURRENT`` in one rename."""
        with self._lock:
            self._settle()
            rows, live = len(self._live), int(self._live.sum())
            if by_size and self.index_type == 'FLAT' and live >= self.hnsw_from:
                self._rebuild('HNSW')   # past the size: made once, not grown exact and rewritten
            elif rows and rows - live >= self.compact_dead * rows:
                self._rebuild(self.index_type)
            elif len(self._tail) >= (self.tail_limit if self.index_type == 'HNSW' else 1):
                self._merge_tail()
            try:
                self._write()
            except Exception as error:   # faiss reports a failed write as a RuntimeError
                raise ClipIndexError(f'writing the clip windows in {self.folder} failed: {error}') from error

    def search(self, query_starts: Sequence[float], vectors: np.ndarray, limit: int,
               seconds_of: Callable[[str, int], float], params: Optional[dict] = None) -> List[WindowHits]:
        """The ``limit`` nearest live windows of each query window (the base through its
        index, the tail exactly); starts in seconds (``seconds_of(video, start frame)``).
        ``params``: ``ef`` for an HNSW base (by default ``defaults.CLIP_HNSW_SEARCH``)."""
        import faiss
        with self._lock:   # one consistent state; the search itself runs outside the lock
            self._settle()
            base, index_type, live, tail = self._base, self.index_type, self._live, self._tail
            row_video, row_start, video_ids = self._row_video, self._row_start, self._video_ids
        queries = np.ascontiguousarray(vectors, np.float32).reshape(-1, WINDOW_DIMS)
        limit = min(int(limit), int(live.sum()))
        if not len(queries) or limit < 1:
            return [WindowHits(float(q), [], [], []) for q in query_starts[:len(queries)]]
        based = base.ntotal
        base_live = live[:based]
        search = faiss.SearchParametersHNSW() if index_type == 'HNSW' else faiss.SearchParameters()
        if index_type == 'HNSW':
            ef = int((self.search_params() if params is None else params).get('ef', defaults.CLIP_HNSW_SEARCH['ef']))
            search.efSearch = max(ef, limit)   # HNSW answers at most ef hits
        bits = None
        if not base_live.all():
            bits = np.packbits(base_live, bitorder='little')   # kept alive while faiss reads it
            search.sel = faiss.IDSelectorBitmap(based, faiss.swig_ptr(bits))
        # One OpenMP thread: a query's few dozen windows take a few ms on one, and faiss's
        # threads, spinning on after its parallel region, slowed the fine student's products
        # that follow (a dedup's copied parts, 105 -> 46 ms a video). The setting is this
        # thread's own; restored for a build that may follow here.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            similarities, rows = (base.search(queries, min(limit, based), params=search) if based else
                                  (np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)))
        finally:
            faiss.omp_set_num_threads(threads)
        if len(tail):
            tail_sims = queries @ tail.T
            tail_sims[:, ~live[based:]] = -np.inf
            k = min(limit, len(tail))
            best = np.argpartition(-tail_sims, k - 1, axis=1)[:, :k]
            similarities = np.concatenate([similarities, np.take_along_axis(tail_sims, best, 1)], axis=1)
            rows = np.concatenate([rows, best + based], axis=1)
        order = np.argsort(-similarities, axis=1, kind='stable')[:, :limit]
        similarities, rows = np.take_along_axis(similarities, order, 1), np.take_along_axis(rows, order, 1)
        del bits
        out: List[WindowHits] = []
        for q, sims, found in zip(query_starts, similarities, rows):
            keep = (found >= 0) & np.isfinite(sims)
            found, sims = found[keep], sims[keep]
            videos = [video_ids[v] for v in row_video[found].tolist()]
            out.append(WindowHits(float(q), videos,
                                  [seconds_of(v, s) for v, s in zip(videos, row_start[found].tolist())],
                                  sims.astype(float).tolist()))
        return out

    # --- building (under the lock)
    def _rebuild(self, index_type: str) -> None:
        """A new base of the live rows only (keys renumbered, removed videos gone)."""
        live = np.flatnonzero(self._live)
        vectors = self._vectors(live)
        used = np.unique(self._row_video[live])
        renumber = np.full(len(self._video_ids), -1, np.int32)
        renumber[used] = np.arange(len(used), dtype=np.int32)
        self._video_ids = [self._video_ids[i] for i in used]
        self._video_number = {v: i for i, v in enumerate(self._video_ids)}
        self._row_video, self._row_start = renumber[self._row_video[live]], self._row_start[live]
        self._live = np.ones(len(live), bool)
        if not len(live):
            index_type = 'FLAT'   # no windows to set the codes' range by: start over, exact
        self._base = _new_index(index_type, vectors)
        self._tail = np.zeros((0, WINDOW_DIMS), np.float32)
        self.index_type, self._base_changed = index_type, True

    def _merge_tail(self) -> None:
        import faiss
        base = faiss.clone_index(self._base)   # a search may be reading the current one
        base.add(self._tail)
        self._base, self._tail, self._base_changed = base, np.zeros((0, WINDOW_DIMS), np.float32), True

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows`` (as the base holds them: 8-bit codes decoded)."""
        based = self._base.ntotal
        if based == 0 and len(rows) == len(self._tail) and (rows == np.arange(len(rows))).all():
            return self._tail   # all of them, as they came: no copy
        out = np.empty((len(rows), WINDOW_DIMS), np.float32)
        in_base = rows < based
        if in_base.any():
            out[in_base] = self._base.reconstruct_batch(rows[in_base].astype(np.int64))
        out[~in_base] = self._tail[rows[~in_base] - based]
        return out

    def _write(self) -> None:
        import faiss
        generation = self._generation + 1
        self.folder.mkdir(parents=True, exist_ok=True)
        base = self._base_file
        if self._base_changed or base is None:
            base = f'base-{generation}.faiss'
            faiss.write_index(self._base, str(self.folder / base))
            _sync_file(self.folder / base)
        rows = f'rows-{generation}.npz'
        with replacing(self.folder / rows) as f:
            np.savez(f, video_ids=np.array(self._video_ids, dtype=str), row_video=self._row_video,
                     row_start=self._row_start, live=self._live, tail=self._tail)
        current = {'format': FORMAT, 'generation': generation, 'base': base, 'rows': rows,
                   'index_type': self.index_type}
        text = json.dumps(current)
        write_atomically(self.folder / CURRENT, text.encode())
        self._generation, self._base_file, self._base_changed, self._current = generation, base, False, text
        for old in self.folder.iterdir():   # earlier flushes' files (a reader holds what it opened)
            if old.name not in (CURRENT, base, rows) and old.suffix in ('.faiss', '.npz'):
                old.unlink(missing_ok=True)


def _new_index(index_type: str, vectors: np.ndarray):
    """An exact index, or an HNSW graph over 8-bit codes (a quarter of float32's memory;
    similarities within about 0.005 of the exact ones, docs/scaling.md)."""
    import faiss
    if index_type == 'FLAT':
        index = faiss.IndexFlatIP(WINDOW_DIMS)
    else:
        build = defaults.CLIP_HNSW_BUILD
        index = faiss.IndexHNSWSQ(WINDOW_DIMS, faiss.ScalarQuantizer.QT_8bit, int(build['M']),
                                  faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(build['efConstruction'])
        # The codes' range per dimension, from the windows at hand and a margin: a later
        # window outside it is clipped, by little (a compaction or rebuild trains again).
        faiss.downcast_index(index.storage).sq.rangestat_arg = CODE_RANGE_MARGIN
        index.train(vectors)
    index.add(vectors)
    return index


def _sync_file(path: Path) -> None:
    with open(path, 'rb+') as f:
        os.fsync(f.fileno())
