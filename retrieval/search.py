"""DnS retrieval: coarse similarity over the whole index, the selector's choice of
pairs, fine-grained re-ranking of the chosen ones."""
import logging
import math
import os
from dataclasses import asdict, dataclass
from typing import Collection, Dict, List, Optional

import numpy as np

from ..localization import Segment
from .fine_store import CorruptFeaturesError
from .index import VideoIndex
from .. import defaults
from ..core import DnS, VideoRepresentation

log = logging.getLogger(__name__)


@dataclass
class Match:
    rank: int
    path: str                  # as given at index time
    score: float               # what the ranking uses
    coarse_similarity: float
    selector_score: float
    fine_similarity: Optional[float]  # the fg student's similarity, for re-ranked pairs
    video_id: str
    segments: Optional[List[Segment]] = None  # copied segments in seconds, when asked for

    def as_dict(self, copy_threshold: Optional[float] = None) -> Dict:
        """The fields by name; with ``copy_threshold`` (the index's), ``copy``: whether
        the score reaches it, the verdict the text output shows as '(copy)'."""
        out = asdict(self)  # segments included, as dicts
        if self.segments is None:
            del out['segments']
        if copy_threshold is not None:
            out['copy'] = bool(self.score >= copy_threshold)
        return out


def search(index: VideoIndex, dns: DnS, query: VideoRepresentation, k: Optional[int] = defaults.K,
           rerank: float = defaults.RERANK, candidates: Optional[int] = defaults.CANDIDATES,
           exclude_paths: Collection[str] = (), segments: bool = False,
           segment_threshold: Optional[float] = None, clips: bool = True,
           segment_background: Optional[bool] = None) -> List[Match]:
    """The ``k`` best matches of ``query`` (None: all candidates).

    1. The ``candidates`` videos nearest by cg similarity, from Milvus (None: the whole index);
       with ``clips``, in turns with the videos whose short windows match the query's
       (``retrieval.clips``: a clip copied into a long video), ``candidates`` in all.
    2. The selector scores each (query, candidate) pair.
    3. The top ``rerank`` fraction of the candidates by selector score take the fg
       student's similarity rescaled to s/2 + 0.5; the others keep their cg similarity.
    Files that share one content are separate matches with the same scores;
    ``exclude_paths`` (e.g. the query's own file) are left out. ``segments=True`` adds
    each returned match's copied segments (seconds) scoring at least
    ``segment_threshold`` (None: the index's threshold), measured against the library too
    with ``segment_background`` (``segments.copied_segments``; None: as the index was
    calibrated).
    """
    if not 0 <= rerank <= 1:
        raise ValueError(f'rerank must be a fraction in [0, 1], got {rerank}')
    if candidates is not None and candidates < 1:
        raise ValueError(f'candidates must be positive, got {candidates}')
    vectors = index.vectors()
    limit = len(index) if candidates is None else candidates
    hits = vectors.search(query.coarse, limit)
    if clips and candidates is not None:
        hits = _with_clip_candidates(index, query, hits, candidates)
    records = index.catalog.videos([video_id for video_id, _ in hits])
    # Milvus may hold vectors the catalog no longer does (replaced files): skip them.
    hits = [(video_id, similarity) for video_id, similarity in hits if video_id in records]
    if not hits:
        return []
    ids = [video_id for video_id, _ in hits]
    coarse = np.array([similarity for _, similarity in hits], np.float32)
    selector = np.atleast_1d(dns.selector_scores(
        query.selector, [records[i].selector for i in ids], coarse)).astype(np.float32)
    fine: List[Optional[float]] = [None] * len(ids)
    chosen = np.argsort(-selector, kind='stable')[:math.ceil(rerank * len(ids))]
    targets, positions = [], []
    for position in chosen:
        try:
            targets.append(index.fine(records[ids[position]]))
            positions.append(position)
        except CorruptFeaturesError as error:
            log.warning('%s; it keeps its coarse similarity', error)
    if targets:
        for position, similarity in zip(positions, dns.fine_similarity(query.fine, targets)):
            fine[position] = float(similarity)
    scores = [coarse[i] if fine[i] is None else fine[i] / 2 + 0.5 for i in range(len(ids))]
    paths = index.catalog.paths(ids)
    excluded = {os.path.abspath(p) for p in exclude_paths}
    matches = []
    for i in sorted(range(len(ids)), key=lambda i: -scores[i]):
        for path, abspath in paths.get(ids[i], []):
            if abspath not in excluded:
                matches.append(Match(len(matches) + 1, path, float(scores[i]), float(coarse[i]),
                                     float(selector[i]), fine[i], ids[i]))
    matches = matches if k is None else matches[:k]
    if segments:
        from .segments import copied_segments
        found = copied_segments(index, dns, query, {m.video_id for m in matches}, segment_threshold,
                                background=segment_background)
        for match in matches:
            match.segments = found.get(match.video_id, [])
    return matches


def _with_clip_candidates(index: VideoIndex, query: VideoRepresentation, hits: List[tuple], cap: int) -> List[tuple]:
    """The video-level hits merged with the clip candidates (their coarse similarity
    computed here); a damaged clip collection is logged and video-level search goes on."""
    from .clips.merge import merge_candidates
    from .clips.store import ClipIndexError
    try:
        votes = index.clips().candidates(query.fine, limit=cap)
    except ClipIndexError as error:
        log.warning('clip search is unavailable: %s; searching by whole videos only', error)
        return hits
    coarse = dict(hits)
    ids = merge_candidates([v.video_id for v in votes], [video_id for video_id, _ in hits], cap)
    for video_id in ids:
        if video_id not in coarse:
            coarse[video_id] = float(np.dot(query.coarse, index.catalog.coarse(video_id)))
    return [(video_id, coarse[video_id]) for video_id in ids]
