"""Where a copy is: the copied segments of indexed pairs, in seconds."""
import logging
from typing import Dict, Iterable, List, Optional

from ..localization import Segment
from .fine_store import CorruptFeaturesError
from .index import VideoIndex
from ..core import DnS, VideoRepresentation

log = logging.getLogger(__name__)


def copied_segments(index: VideoIndex, dns: DnS, query: VideoRepresentation,
                    target_ids: Iterable[str], threshold: Optional[float] = None,
                    all_found: bool = False) -> Dict[str, List[Segment]]:
    """The copied segments of ``query`` in each indexed video of ``target_ids``, in
    seconds on both timelines (a sampled frame spans one time step), best first.

    threshold: the least segment score (None: the index's calibrated threshold, else the
        default). ``all_found=True`` keeps every segment found whatever its score, for
        choosing a threshold.
    A target whose fine features are damaged is logged and left out.
    """
    if threshold is None and not all_found:
        threshold = index.thresholds().segment
    step = index.settings.time_step
    records = index.catalog.videos(list(target_ids))
    out = {}
    for video_id, record in records.items():
        try:
            target = index.fine(record)
        except CorruptFeaturesError as error:
            log.warning('%s; its segments are left out', error)
            continue
        found = dns.segments(query.fine, target, threshold=None if all_found else threshold)
        out[video_id] = [segment.to_seconds(step) for segment in found]
    return out
