"""The clip collection of one index, kept in step with its catalog.

The catalog stays the record of what is committed. Its table ``clip_windows`` lists the
videos whose windows Milvus holds (and how many): a video's windows are upserted and
flushed before its row is written, so a crash leaves at worst windows Milvus holds
twice over by key (an upsert, harmless) and never a row whose windows are missing. A
collection holding fewer windows than the rows promise (lost, replaced) is refilled.
Windows come from the stored fine features, so an index made before clip search gains
its collection on first use, without decoding a video.
"""
import logging
from typing import Callable, List, Optional

import numpy as np

from .... import defaults
from ...storage.fine_store import CorruptFeaturesError
from ...storage.index import sample_times
from .store import ClipIndexError, ClipVectors
from .voting import ClipVote, VotingSettings, vote
from .windows import DEFAULT_SPEC, WindowSpec, pooled_windows

log = logging.getLogger(__name__)

SYNC_VIDEOS = 64


class ClipIndex:
    """Clip search over a :class:`VideoIndex` (imported lazily: the index owns this)."""

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

    # --- the collection
    def vectors(self) -> ClipVectors:
        """The clip collection, synced with the catalog when first opened."""
        if self._vectors is None:
            self.sync()
        return self._vectors

    @property
    def is_open(self) -> bool:
        return self._vectors is not None

    def release(self) -> None:
        """Forget the connection (the index closed it); the next use opens and syncs."""
        self._vectors = None

    def sync_quietly(self) -> None:
        """Sync, logging rather than raising a damaged collection's error: committing a
        video must not fail for the sake of clip search."""
        try:
            self.sync()
        except ClipIndexError as error:
            log.warning('%s', error)

    def sync(self, on_video: Optional[Callable[[], None]] = None) -> int:
        """Bring the collection in step with the catalog; return how many videos'
        windows were added. A video whose fine features are damaged is logged and left
        for the next sync."""
        if self._vectors is None:
            # The index's own connection (a Milvus Lite database admits one), coarse
            # vectors synced first.
            self._vectors = ClipVectors(self.index.vectors().client, self.collection,
                                        lite=not self.index.settings.milvus_uri, hnsw_from=self.hnsw_from)
        vectors, catalog = self._vectors, self.index.catalog
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

    # --- search
    def query_windows(self, fine: np.ndarray, times: Optional[np.ndarray] = None,
                      budget: int = defaults.QUERY_WINDOWS):
        """(starts in seconds, unit vectors) of a query's windows: every frame up to
        ``budget`` windows, else about ``budget`` spread evenly (``WindowSpec.query_stride``).
        ``times``: each sample's seconds (a variable frame rate query's holes kept), else
        sample i at i x time step."""
        stride = self.spec.query_stride(len(fine), budget)
        starts, vectors = pooled_windows(fine, self.spec, stride=stride)
        return sample_times(times, len(fine), self.index.settings.time_step)[starts], vectors

    def seconds_of(self) -> Callable[[str, int], float]:
        """The time of an indexed video's sample, from its recorded sample times (read
        once a video per search), else sample i at i x time step (indexed before times
        were recorded)."""
        step, known = self.index.settings.time_step, {}

        def seconds(video_id: str, sample: int) -> float:
            if video_id not in known:
                known[video_id] = self.index.catalog.times(video_id)
            times = known[video_id]
            return float(times[sample]) if times is not None and sample < len(times) else sample * step
        return seconds

    def candidates(self, fine: np.ndarray, limit: Optional[int] = None,
                   settings: VotingSettings = VotingSettings(), times: Optional[np.ndarray] = None) -> List[ClipVote]:
        """The videos whose windows agree with the query's, best first (at most ``limit``),
        their offsets in seconds from each one's sample times (``times``: the query's).
        Raises ClipIndexError when the collection is unusable."""
        starts, windows = self.query_windows(fine, times)
        if not len(starts):
            return []
        hits = self.vectors().search(starts, windows, settings.search_limit, self.seconds_of())
        votes = vote(hits, settings)
        known = self.index.catalog.videos([v.video_id for v in votes])
        votes = [v for v in votes if v.video_id in known]  # Milvus may lag a removal
        return votes if limit is None else votes[:limit]


__all__ = ['ClipIndex', 'ClipIndexError']
