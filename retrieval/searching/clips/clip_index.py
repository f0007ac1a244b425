"""Clip search over an index's clip collection (``storage/clip_collection.py``): the
query's windows against the indexed ones, and the votes they cast for videos."""
from typing import Callable, List, Optional

import numpy as np

from .... import defaults
from ...storage.clip_vectors import ClipIndexError, ClipVectors
from ...storage.clip_windows import pooled_windows
from ...storage.index import sample_times
from .voting import ClipVote, VotingSettings, vote


class ClipIndex:
    """Clip search over a :class:`VideoIndex`: its clip collection, read as it is."""

    def __init__(self, index):
        self.index = index
        self.collection = index.clip_collection
        self.spec = self.collection.spec

    def vectors(self) -> ClipVectors:
        return self.collection.vectors()

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
