"""Window vectors in Milvus: a second collection beside the coarse one, one row per
window, keyed by video id and window start. The clip store on a Milvus server; the
embedded default keeps its windows in files instead (``clip_window_files.py``), and a
Milvus Lite collection is what earlier versions made (and what ``benchmarks/scale.py``
compares with)."""
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ... import defaults
from .clip_windows import WINDOW_DIMS
from .vector_store import ID_LENGTH, MAX_LIMIT, VectorStoreError, _quiet, count_rows

# Rows per upsert and query vectors per search call: bounded request sizes (Milvus
# refuses messages over 64 MB; 256 x 512 floats as JSON-like lists stay far below).
UPSERT_BATCH = 2000
SEARCH_BATCH = 256
FIELDS = {'id', 'video', 'start', 'vector'}


@dataclass(frozen=True)
class WindowHits:
    """The hits of one query window, best first: indexed video ids, their window starts
    (seconds) and similarities."""
    query_start: float
    videos: Sequence[str]
    starts: Sequence[float]
    similarities: Sequence[float]


class ClipIndexError(VectorStoreError):
    """The clip collection is missing, damaged or holds something else."""


class ClipVectors:
    """``client``: the index's MilvusClient (one connection serves both collections,
    which a Milvus Lite database requires). ``lite``: exact search (FLAT) until
    :meth:`fit_index` finds ``hnsw_from`` windows, then HNSW; a server picks its own
    index (AUTOINDEX). The index type is Milvus's record of the collection, read when
    it opens."""

    def __init__(self, client, collection: str, lite: bool, hnsw_from: int = defaults.CLIP_HNSW_FROM):
        if hnsw_from < 1:
            raise ValueError(f'the size to move the clip collection to HNSW at must be positive, got {hnsw_from}')
        self.client, self.collection, self.lite, self.hnsw_from = client, collection, lite, hnsw_from
        self.index_type = ''
        try:
            if not client.has_collection(collection):
                try:
                    with _quiet('grpc'), _quiet('pymilvus'):
                        self._create()
                except Exception:
                    if not client.has_collection(collection):
                        raise
            self._check()
            if not client.list_indexes(collection):   # a rebuild cut short between drop and create
                client.create_index(collection, self._index_params('FLAT' if lite else 'AUTOINDEX'))
            client.load_collection(collection)
            self.index_type = self._read_index_type()
        except ClipIndexError:
            raise
        except Exception as error:
            raise ClipIndexError(f'the clip collection {collection} cannot be opened: {error}') from error

    def _create(self) -> None:
        from pymilvus import DataType
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field('id', DataType.VARCHAR, is_primary=True, max_length=ID_LENGTH + 12)
        schema.add_field('video', DataType.VARCHAR, max_length=ID_LENGTH)
        schema.add_field('start', DataType.INT64)
        schema.add_field('vector', DataType.FLOAT_VECTOR, dim=WINDOW_DIMS)
        self.client.create_collection(self.collection, schema=schema,
                                      index_params=self._index_params('FLAT' if self.lite else 'AUTOINDEX'))

    def _index_params(self, index_type: str):
        params = self.client.prepare_index_params()
        params.add_index('vector', index_type=index_type, metric_type='IP',
                         params=dict(defaults.CLIP_HNSW_BUILD) if index_type == 'HNSW' else {})
        return params

    def _check(self) -> None:
        fields = {f['name']: f for f in self.client.describe_collection(self.collection)['fields']}
        if set(fields) != FIELDS:
            raise ClipIndexError(f'the Milvus collection {self.collection} is not a clip collection '
                                 f'(fields {", ".join(sorted(fields))}); drop it to rebuild it from the index')
        dim = int(fields['vector'].get('params', {}).get('dim', -1))
        if dim != WINDOW_DIMS:
            raise ClipIndexError(f'the clip collection {self.collection} holds {dim}-d vectors, not {WINDOW_DIMS}; '
                                 'drop it to rebuild it from the index')

    def _read_index_type(self) -> str:
        names = self.client.list_indexes(self.collection)
        return self.client.describe_index(self.collection, names[0]).get('index_type', '') if names else ''

    def fit_index(self, windows: int) -> bool:
        """On Milvus Lite, move a FLAT collection of ``windows`` windows or more to
        HNSW (never back: a shrinking collection keeps its graph); True when it moved."""
        if not self.lite or windows < self.hnsw_from or self.index_type != 'FLAT':
            return False
        self.rebuild_index('HNSW')
        return True

    def rebuild_index(self, index_type: str) -> None:
        """Make the collection's index again as ``index_type`` ('FLAT' or 'HNSW', with
        ``defaults.CLIP_HNSW_BUILD``); its windows stay."""
        if index_type not in ('FLAT', 'HNSW'):
            raise ValueError(f"the clip collection's index type is FLAT or HNSW, not {index_type!r}")
        try:
            self.client.release_collection(self.collection)
            for name in self.client.list_indexes(self.collection):
                self.client.drop_index(self.collection, name)
            self.client.create_index(self.collection, self._index_params(index_type))
            self.client.load_collection(self.collection)
            self.index_type = self._read_index_type()
        except Exception as error:
            raise ClipIndexError(f'making the index of the clip collection {self.collection} as {index_type} '
                                 f'failed: {error}') from error

    def search_params(self) -> dict:
        """The search parameters of the collection's index type."""
        return dict(defaults.CLIP_HNSW_SEARCH) if self.index_type == 'HNSW' else {}

    def upsert(self, video_id: str, starts: Sequence[int], vectors: np.ndarray) -> None:
        rows = [{'id': row_id(video_id, int(s)), 'video': video_id, 'start': int(s),
                 'vector': np.asarray(v, np.float32).tolist()} for s, v in zip(starts, vectors)]
        for i in range(0, len(rows), UPSERT_BATCH):
            self.client.upsert(self.collection, rows[i:i + UPSERT_BATCH])

    def delete_videos(self, video_ids: Iterable[str]) -> None:
        ids = list(video_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            self.client.delete(self.collection, filter=f'video in {list(chunk)!r}'.replace("'", '"'))

    def flush(self) -> None:
        self.client.flush(self.collection)

    def video_windows(self, video_id: str) -> Dict[int, np.ndarray]:
        """A video's windows by start (frames)."""
        rows = self.client.query(self.collection, filter=f'video == "{video_id}"', output_fields=['start', 'vector'],
                                 limit=MAX_LIMIT)
        return {int(row['start']): np.asarray(row['vector'], np.float32) for row in rows}

    def clear(self) -> None:
        """Delete every window."""
        self.client.delete(self.collection, filter='start >= 0')
        self.client.flush(self.collection)

    def count(self) -> int:
        return count_rows(self.client, self.collection)

    def search(self, query_starts: Sequence[float], vectors: np.ndarray, limit: int,
               seconds_of: Callable[[str, int], float], params: Optional[dict] = None) -> List[WindowHits]:
        """The ``limit`` nearest indexed windows of each query window, searched
        ``SEARCH_BATCH`` at a time; starts in seconds (``seconds_of(video, start frame)``:
        the time of an indexed video's sample). ``params``: the index type's search
        parameters (``ef``, ``nprobe``; by default those of the collection's own type)."""
        limit = min(limit, MAX_LIMIT)
        params = self.search_params() if params is None else params
        if 'ef' in params:   # HNSW answers at most ef hits
            params = {**params, 'ef': max(int(params['ef']), limit)}
        search_params = {'metric_type': 'IP', **({'params': params} if params else {})}
        out: List[WindowHits] = []
        for i in range(0, len(vectors), SEARCH_BATCH):
            batch = np.asarray(vectors[i:i + SEARCH_BATCH], np.float32)
            try:
                # The window is read from its primary key, the one field asked for: Milvus
                # Lite's search costs grow with each field it returns (all, vectors included,
                # when none is named).
                results = self.client.search(self.collection, data=batch.tolist(), anns_field='vector', limit=limit,
                                             output_fields=['id'], search_params=search_params)
            except Exception as error:
                raise ClipIndexError(f'searching the clip collection {self.collection} failed: {error}') from error
            for q, hits in zip(query_starts[i:i + SEARCH_BATCH], results):
                windows = [parse_row_id(h['id']) for h in hits]
                out.append(WindowHits(float(q), [video for video, _ in windows],
                                      [seconds_of(video, start) for video, start in windows],
                                      [float(h['distance']) for h in hits]))
        return out


def row_id(video_id: str, start: int) -> str:
    return f'{video_id}:{start}'


def parse_row_id(text: str) -> Tuple[str, int]:
    """(video id, start frame) of a ``row_id``."""
    video_id, start = text.rsplit(':', 1)
    return video_id, int(start)

