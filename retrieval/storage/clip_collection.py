"""The clip collection of one index, kept in step with its catalog.

The catalog stays the record of what is committed. Its table ``clip_windows`` lists the
videos whose windows Milvus holds (and how many): a video's windows are upserted and
flushed before its row is written, so a crash leaves at worst windows Milvus holds
twice over by key (an upsert, harmless) and never a row whose windows are missing. A
collection holding fewer windows than the rows promise (lost, replaced) is refilled.
Windows come from the stored fine features, so an index made before clip search gains
its collection at its next sync, without decoding a video.

Only a sync writes the collection (indexing, removing, ``dns sync``); opening it to
search reads what is there and says what it lacks.
"""
import logging
from typing import Callable, Optional

from ... import defaults
from .clip_vectors import ClipIndexError, ClipVectors
from .clip_windows import DEFAULT_SPEC, WindowSpec, pooled_windows
from .fine_store import CorruptFeaturesError

log = logging.getLogger(__name__)

SYNC_VIDEOS = 64


class ClipCollection:
    """The window vectors of a :class:`VideoIndex`'s videos (``index.clip_collection``)."""

    def __init__(self, index, spec: Optional[WindowSpec] = None, hnsw_from: int = defaults.CLIP_HNSW_FROM):
        self.index, self.hnsw_from = index, hnsw_from
        catalog = index.catalog
        catalog.start_clip_windows()
        meta = catalog.meta()
        if 'clip_length' not in meta:
            spec = spec or DEFAULT_SPEC
            catalog.set_meta({'clip_length': str(spec.length), 'clip_stride': str(spec.stride)})
            meta = catalog.meta()
        self.spec = WindowSpec(int(meta['clip_length']), int(meta['clip_stride']))
        if spec is not None and spec != self.spec:
            raise ValueError(f'the clip windows of {index.folder} are {self.spec}, not {spec}')
        self.collection = f'{index.settings.collection}_clips'
        self._vectors: Optional[ClipVectors] = None

    def vectors(self) -> ClipVectors:
        """The clip collection as it is (a lag behind the catalog is logged, not mended:
        that is :meth:`sync`'s job)."""
        if self._vectors is None:
            vectors, catalog = self._open(), self.index.catalog
            lag = catalog.clip_window_lag()
            if lag or vectors.count() < catalog.clip_window_count():
                log.warning('the clip collection of %s is behind its catalog (%d video(s) indexed or removed since '
                            'its last sync, or windows lost): `dns sync --index %s` brings it in step',
                            self.index.folder, lag, self.index.folder)
        return self._vectors

    def _open(self) -> ClipVectors:
        if self._vectors is None:
            # The index's own connection (a Milvus Lite database admits one).
            self._vectors = ClipVectors(self.index.vectors().client, self.collection,
                                        lite=not self.index.settings.milvus_uri, hnsw_from=self.hnsw_from)
        return self._vectors

    @property
    def is_open(self) -> bool:
        return self._vectors is not None

    def release(self) -> None:
        """Forget the connection (the index closed it); the next use opens it again."""
        self._vectors = None

    def sync_quietly(self) -> int:
        """:meth:`sync`, logging rather than raising a damaged collection's error (0 added):
        indexing must not fail for the sake of clip search."""
        try:
            return self.sync()
        except ClipIndexError as error:
            log.warning('%s', error)
            return 0

    def sync(self, on_video: Optional[Callable[[], None]] = None) -> int:
        """Bring the collection in step with the catalog; return how many videos'
        windows were added. A video whose fine features are damaged is logged and left
        for the next sync."""
        vectors, catalog = self._open(), self.index.catalog
        # Removed videos, and videos extracted again (``Catalog.commit_video``).
        stale = catalog.stale_clip_windows()
        if stale:
            vectors.delete_videos(stale)
            vectors.flush()
            catalog.forget_clip_windows(stale)
        promised = catalog.clip_window_count()
        if promised and vectors.count() < promised:
            log.warning('the clip collection %s lacks windows; refilling it from the stored features', self.collection)
            catalog.forget_clip_windows()
        added, after = 0, ''
        while True:
            rows = catalog.videos_without_clip_windows(after, SYNC_VIDEOS)
            if not rows:
                if vectors.fit_index(self.window_count()):
                    log.info('the clip collection %s holds %d windows or more: its index is now HNSW',
                             self.collection, self.hnsw_from)
                return added
            after = rows[-1]
            records = catalog.videos(rows)
            done = []
            for video_id, record in records.items():
                try:
                    fine = self.index.fine_features(record)
                except CorruptFeaturesError as error:
                    log.warning('%s; its clip windows are left out', error)
                    continue
                starts, windows = pooled_windows(fine, self.spec)
                vectors.upsert(video_id, starts, windows)
                done.append((video_id, len(starts)))
                if on_video is not None:
                    on_video()
            if done:
                vectors.flush()
                catalog.record_clip_windows(done)
                added += len(done)

    def window_count(self) -> int:
        return self.index.catalog.clip_window_count()
