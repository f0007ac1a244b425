"""The clip collection of one index, kept in step with its catalog.

The catalog stays the record of what is committed. Its table ``clip_windows`` lists the
videos whose windows Milvus holds (and how many): a video's windows are upserted and
flushed before its row is written, so a crash leaves at worst windows Milvus holds
twice over by key (an upsert, harmless) and never a row whose windows are missing. A
collection holding fewer windows than the rows promise (lost, replaced) is refilled.
Windows come from the stored fine features, so an index made before clip search gains
its collection on first use, without decoding a video.

Where the windows are: on the embedded default, files of the index folder searched with
faiss (``window_files.ClipWindowFiles``); with a Milvus server, a collection beside the
coarse one (``store.ClipVectors``). The catalog's meta ``clip_store`` records which one
the bookkeeping describes: an index made when Milvus Lite held the windows, or moved
between the two, finds the windows missing from the new place and makes them there,
from the stored features, once (the old Lite collection is then dropped: it only
repeated what the features give).
"""
import logging
from typing import Callable, List, Optional

import numpy as np

from .... import defaults
from ...storage.fine_store import CorruptFeaturesError
from ...storage.index import sample_times
from .store import ClipIndexError, ClipVectors
from .window_files import ClipWindowFiles
from .voting import ClipVote, VotingSettings, vote
from .windows import DEFAULT_SPEC, WindowSpec, pooled_windows

log = logging.getLogger(__name__)

SYNC_VIDEOS = 64
FILES_FOLDER = 'clip-windows'   # in the index folder
FILES_PLACE = 'files'           # meta clip_store of the files; a server's is its URI


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
        self._vectors = None           # the store in use: ClipWindowFiles or ClipVectors
        self._files: Optional[ClipWindowFiles] = None   # kept loaded between uses

    # --- the collection
    def vectors(self):
        """The clip collection, synced with the catalog when first opened."""
        if self._vectors is None:
            self.sync()
        return self._vectors

    @property
    def is_open(self) -> bool:
        return self._vectors is not None

    def release(self) -> None:
        """Forget the connection (the index closed it); the next use opens and syncs
        (the files stay loaded, read again only if another process changed them)."""
        self._vectors = None

    def _open(self):
        index = self.index
        uri = index.settings.milvus_uri
        # The index's own connection (a Milvus Lite database admits one), coarse vectors
        # synced first; on Lite its lock keeps other processes from writing the files too.
        client = index.vectors().client
        if uri:
            store = ClipVectors(client, self.collection, lite=False, hnsw_from=self.hnsw_from)
        else:
            if self._files is None:
                self._files = ClipWindowFiles(index.folder / FILES_FOLDER, hnsw_from=self.hnsw_from)
            else:
                self._files.refresh()
            store = self._files
        place = uri or FILES_PLACE
        recorded = index.catalog.meta().get('clip_store')
        if recorded is not None and recorded != place:
            # Moved (`dns move-vectors`) since the windows were recorded: what this place
            # holds, if anything, is from an earlier stay.
            log.info('the clip windows are now at %s: making them there', place)
            store.clear()
            index.catalog.forget_clip_windows()
        return store

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
            self._vectors = self._open()
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
                self._settle_place()
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

    def _settle_place(self) -> None:
        """Record where the windows are, once they are all there; on the embedded default,
        drop the Milvus Lite collection an earlier version kept them in."""
        place = self.index.settings.milvus_uri or FILES_PLACE
        if self.index.catalog.meta().get('clip_store') == place:
            return
        if place == FILES_PLACE:
            client = self.index.vectors().client
            if client.has_collection(self.collection):
                client.drop_collection(self.collection)
                log.info('the clip windows moved from Milvus Lite\'s collection %s to %s', self.collection,
                         self.index.folder / FILES_FOLDER)
        self.index.catalog.set_meta({'clip_store': place})

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
