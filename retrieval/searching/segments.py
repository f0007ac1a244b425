"""Where a copy is: the copied segments of indexed pairs, in seconds, measured against
the pair's own background and against the rest of the library."""
import logging
import random
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from ... import defaults
from ...localization import Segment
from ..storage.fine_store import CorruptFeaturesError
from ..storage.index import VideoIndex, sample_times
from ...core import DnS, VideoRepresentation, background_matches, copied_segments, frame_levels

log = logging.getLogger(__name__)


def locate_copies(index: VideoIndex, dns: DnS, query: VideoRepresentation,
                  target_ids: Iterable[str], threshold: Optional[float] = None,
                  all_found: bool = False,
                  background: Optional[bool] = None) -> Dict[str, List[Segment]]:
    """The copied segments (``core.copied_segments``) of ``query`` in each indexed video of ``target_ids``, in
    seconds on both timelines (from each video's first frame, by its samples'
    timestamps; a sampled frame spans one time step; a segment across a hole in a
    variable frame rate video is cut there), best first.

    threshold: the least segment score (None: the index's calibrated threshold, else the
        default). ``all_found=True`` keeps every segment found whatever its score, for
        choosing a threshold.
    background: measure each pair against the library too (``localization.background``):
        up to BACKGROUND_VIDEOS indexed videos other than its target
        (:func:`background_sample`) give each frame of both videos its library level
        (copies of a video are no background of it). Look-alikes then stop making
        segments, and so does a piece that three or more of those videos hold. None: as
        the index was calibrated (``Thresholds.segment_background``; off by default).
    A target whose fine features are damaged is logged and left out.
    """
    threshold, background = segment_settings(index, threshold, background)
    step = index.settings.time_step
    records = index.catalog.videos(list(target_ids))
    background = background_sample(index) if background else {}
    query_matches = background_matches_by_id(dns, query.fine, background)
    query_times = sample_times(query.times, len(query.fine), step)
    out = {}
    for video_id, record in records.items():
        try:
            target = index.fine_features(record)
        except CorruptFeaturesError as error:
            log.warning('%s; its segments are left out', error)
            continue
        query_levels, target_levels = pair_levels(dns, query_matches, target, video_id, background)
        found = copied_segments(dns.fine_student, query.fine, target, None if all_found else threshold,
                                query_levels, target_levels)
        target_times = sample_times(index.catalog.times(video_id), record.frames, step)
        out[video_id] = [piece for segment in found
                         for piece in segment.on_timelines(query_times, target_times, step)]
    return out


def segment_settings(index: VideoIndex, threshold: Optional[float], background: Optional[bool]
                     ) -> Tuple[float, bool]:
    """The segment threshold and whether to measure against the library: those given,
    else the index's (as calibrated, else the defaults)."""
    if threshold is not None and background is not None:
        return threshold, background
    stored = index.thresholds()
    return (stored.segment if threshold is None else threshold,
            stored.segment_background if background is None else background)


def background_matches_by_id(dns: DnS, video: np.ndarray, background: Dict[str, np.ndarray]
                             ) -> Dict[str, Optional[np.ndarray]]:
    """``core.background_matches`` of one video, by background video id."""
    return dict(zip(background, background_matches(dns.fine_student, video, list(background.values()))))


def pair_levels(dns: DnS, query_matches: Dict[str, Optional[np.ndarray]], target: np.ndarray,
                target_id: Optional[str], background: Dict[str, np.ndarray]
                ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """The library levels of a pair's query and target frames: every background video but
    the target itself (``query_matches``: :func:`background_matches_by_id` of the query)."""
    others = {other: fine for other, fine in background.items() if other != target_id}
    return (frame_levels([query_matches[other] for other in others]),
            frame_levels(background_matches(dns.fine_student, target, list(others.values()))))


def background_sample(index: VideoIndex, size: int = defaults.BACKGROUND_VIDEOS) -> Dict[str, np.ndarray]:
    """The fine features of up to ``size`` indexed videos drawn at random, the same draw
    for the same videos indexed (reproducible results); damaged ones are left out."""
    ids = sorted(index.catalog.video_ids())
    chosen = random.Random(len(ids)).sample(ids, min(size, len(ids)))
    out = {}
    for video_id, record in sorted(index.catalog.videos(chosen).items()):
        try:
            out[video_id] = index.fine_features(record)
        except CorruptFeaturesError as error:
            log.warning('%s; it is left out of the background', error)
    return out
