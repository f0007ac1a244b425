"""DnS retrieval: coarse similarity over the whole index, the selector's choice of
pairs, fine-grained re-ranking of the chosen ones."""
import logging
import math
import os
from dataclasses import asdict, dataclass
from typing import Collection, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...localization import Segment
from .clips.voting import ClipVote, VotingSettings
from ..storage.fine_store import CorruptFeaturesError
from ..storage.index import VideoIndex, sample_times
from ... import defaults
from ...core import DnS, VideoRepresentation, fine_pair_similarities, fine_similarity, selector_scores

log = logging.getLogger(__name__)

# Bytes of clip candidates' copied parts read before they are compared (in batches).
COPIED_PARTS_HELD = 256 * 2 ** 20


@dataclass
class Match:
    rank: int
    path: str                  # as given at index time
    score: float               # what the ranking uses
    coarse_similarity: float
    selector_score: float
    fine_similarity: Optional[float]  # the fg student's similarity, for re-ranked pairs
    video_id: str
    # Where the candidate came from: 'video' (nearest by coarse similarity), 'clip' (clip
    # votes), 'both'.
    source: str = 'video'
    # The fg student's similarity of the copied part the clip votes point at (the query's
    # voting stretch against the candidate's at the votes' offset), for clip candidates
    # that are not re-ranked whole (those have ``fine_similarity``, their score).
    clip_similarity: Optional[float] = None
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
           segment_threshold: Optional[float] = None, clips: bool = defaults.CLIPS,
           segment_background: Optional[bool] = None,
           nearest: Optional[List[Tuple[str, float]]] = None) -> List[Match]:
    """The ``k`` best matches of ``query`` (None: all candidates).

    1. The ``candidates`` videos nearest by cg similarity, from Milvus (None: the whole index);
       with ``clips``, in turns with the videos whose short windows match the query's
       (``retrieval.searching.clips``: a clip copied into a long video), ``candidates`` in all.
    2. The selector scores each (query, candidate) pair.
    3. The top ``rerank`` fraction of the video-level candidates by selector score take
       the fg student's similarity rescaled to s/2 + 0.5, the others keep their cg
       similarity; clip candidates take the fg student's similarity of their copied part
       (:func:`copied_part`) rescaled the same way, whatever ``rerank`` says; a candidate
       of both lists not re-ranked takes the better of its cg similarity and that.
       ``Match.source`` says where each came from.
    Files that share one content are separate matches with the same scores;
    ``exclude_paths`` (e.g. the query's own file) are left out. ``segments=True`` adds
    each returned match's copied segments (seconds) scoring at least
    ``segment_threshold`` (None: the index's threshold), measured against the library too
    with ``segment_background`` (``segments.locate_copies``; None: as the index was
    calibrated). ``nearest``: step 1's answer, (video id, coarse similarity) best first,
    when the caller has it already (a dedup finds every video's at once).
    """
    if not 0 <= rerank <= 1:
        raise ValueError(f'rerank must be a fraction in [0, 1], got {rerank}')
    if candidates is not None and candidates < 1:
        raise ValueError(f'candidates must be positive, got {candidates}')
    limit = len(index) if candidates is None else candidates
    hits = index.vectors().search(query.coarse, limit) if nearest is None else list(nearest[:limit])
    video_level = {video_id for video_id, _ in hits}
    votes: Dict[str, ClipVote] = {}
    if clips and candidates is not None:
        hits, votes = _with_clip_candidates(index, query, hits, candidates)
    records = index.catalog.videos([video_id for video_id, _ in hits])
    # Milvus may hold vectors the catalog no longer does (replaced files): skip them.
    hits = [(video_id, similarity) for video_id, similarity in hits if video_id in records]
    if not hits:
        return []
    ids = [video_id for video_id, _ in hits]
    sources = [('both' if i in video_level else 'clip') if i in votes else 'video' for i in ids]
    coarse = np.array([similarity for _, similarity in hits], np.float32)
    selector = np.atleast_1d(selector_scores(
        dns.selector, query.selector, [records[i].selector for i in ids], coarse)).astype(np.float32)
    # ``rerank`` keeps its meaning for the video-level candidates: the selector picks that
    # fraction of them for the fg student.
    video_positions = [p for p in range(len(ids)) if sources[p] != 'clip']
    video_positions.sort(key=lambda p: -selector[p])
    chosen = video_positions[:math.ceil(rerank * len(video_positions))]
    # A clip candidate's coarse similarity is the whole video's, which a few seconds inside
    # a long video hardly move: it is judged by the fg student on its copied part, whatever
    # ``rerank`` says (one short comparison per clip candidate, so at most ``candidates``).
    # One the fg student compares whole is not compared again on a part: the whole pair's
    # similarity is its score, and the part of a long copy costs as much as the whole.
    whole = set(chosen)
    clip_fine = _copied_part_similarities(
        index, dns, query, records, [i if i in votes and p not in whole else None for p, i in enumerate(ids)], votes)
    fine: List[Optional[float]] = [None] * len(ids)
    targets, positions = [], []
    for position in chosen:
        try:
            targets.append(index.fine_features(records[ids[position]]))
            positions.append(position)
        except CorruptFeaturesError as error:
            log.warning('%s; it keeps its coarse similarity', error)
    if targets:
        for position, similarity in zip(positions, fine_similarity(dns.fine_student, query.fine, targets)):
            fine[position] = float(similarity)
    scores = [_score(coarse[i], fine[i], clip_fine[i], sources[i]) for i in range(len(ids))]
    paths = index.catalog.paths(ids)
    excluded = {os.path.abspath(p) for p in exclude_paths}
    matches = []
    for i in sorted(range(len(ids)), key=lambda i: -scores[i]):
        for path, abspath in paths.get(ids[i], []):
            if abspath not in excluded:
                matches.append(Match(len(matches) + 1, path, float(scores[i]), float(coarse[i]),
                                     float(selector[i]), fine[i], ids[i], sources[i], clip_fine[i]))
    matches = matches if k is None else matches[:k]
    if segments:
        from .segments import locate_copies
        found = locate_copies(index, dns, query, {m.video_id for m in matches}, segment_threshold,
                                background=segment_background)
        for match in matches:
            match.segments = found.get(match.video_id, [])
    return matches


def _score(coarse: float, fine: Optional[float], clip_fine: Optional[float], source: str) -> float:
    """A re-ranked pair's score is its fg similarity (s/2 + 0.5): the fg student's word on
    the whole pair is the fullest there is. Otherwise a video-level candidate keeps its cg
    similarity, a clip candidate takes its copied part's fg similarity (s/2 + 0.5), and a
    candidate of both the better of the two."""
    if fine is not None:
        return fine / 2 + 0.5
    clip = None if clip_fine is None else clip_fine / 2 + 0.5
    if source == 'clip':
        return float(coarse) if clip is None else clip   # no usable vote: what is known
    return float(coarse) if clip is None else max(float(coarse), clip)


def _with_clip_candidates(index: VideoIndex, query: VideoRepresentation, hits: List[tuple],
                          cap: int) -> Tuple[List[tuple], Dict[str, ClipVote]]:
    """The video-level hits merged with the clip candidates (their coarse similarity
    computed here), and the clip votes of the candidates kept; a damaged clip collection
    is logged and video-level search goes on."""
    from ..storage.clip_vectors import ClipIndexError
    from .clips.clip_index import ClipIndex
    from .clips.merge import merge_candidates
    try:
        votes = ClipIndex(index).candidates(query.fine, limit=cap, times=query.times)
    except ClipIndexError as error:
        log.warning('clip search is unavailable: %s; searching by whole videos only', error)
        return hits, {}
    coarse = dict(hits)
    ids = merge_candidates([v.video_id for v in votes], [video_id for video_id, _ in hits], cap)
    for video_id in ids:
        if video_id not in coarse:
            coarse[video_id] = float(np.dot(query.coarse, index.catalog.coarse(video_id)))
    kept = set(ids)
    return [(video_id, coarse[video_id]) for video_id in ids], {v.video_id: v for v in votes if v.video_id in kept}


def copied_part(vote: ClipVote, query_frames: int, target_frames: int, window: int,
                time_step: float, bin_seconds: float, query_times: Optional[np.ndarray] = None,
                target_times: Optional[np.ndarray] = None) -> Optional[Tuple[slice, slice]]:
    """(query frames, target frames) of the part a clip vote points at: the query's
    voting windows, at least ``2 * window`` frames, and the target's frames at the vote's
    offset, widened by the offset bins' width and a quarter of the part (a speed change
    drifts); None when the offset puts it outside the target. ``query_times``,
    ``target_times``: each one's sample times in seconds (a variable frame rate video's
    holes kept), else sample i at i x ``time_step``."""
    if not query_frames or not target_frames:
        return None
    query_times = sample_times(query_times, query_frames, time_step)
    target_times = sample_times(target_times, target_frames, time_step)
    first = max(0, _sample_at(query_times, vote.query_first, time_step))
    end = min(query_frames, _sample_at(query_times, vote.query_last, time_step) + window)
    short = 2 * window - (end - first)
    if short > 0:  # a lone window's pooled frames are too little for the fg student's word
        first = max(0, first - short // 2)
        end = min(query_frames, max(end, first + 2 * window))
        first = max(0, min(first, end - 2 * window))
    if end - first < 1:
        return None
    pad = int(math.ceil(bin_seconds / time_step)) + (end - first) // 4
    start = _sample_at(target_times, query_times[first] + vote.offset, time_step) - pad
    stop = _sample_at(target_times, query_times[end - 1] + vote.offset, time_step) + 1 + pad
    start, stop = max(0, start), min(target_frames, stop)
    if stop - start < 1:
        return None
    return slice(first, end), slice(start, stop)


def _sample_at(times: np.ndarray, seconds: float, time_step: float) -> int:
    """The sample nearest ``seconds`` on a timeline of sample times; before its first or
    past its last, counted on at ``time_step`` (so that an offset off the timeline stays
    off it)."""
    if seconds < times[0]:
        return int(round((seconds - times[0]) / time_step))
    if seconds > times[-1]:
        return len(times) - 1 + int(round((seconds - times[-1]) / time_step))
    at = int(np.searchsorted(times, seconds))
    return at - 1 if at > 0 and seconds - times[at - 1] <= times[at] - seconds else at


def _copied_part_similarities(index: VideoIndex, dns: DnS, query: VideoRepresentation, records,
                              clip_ids: Sequence[Optional[str]], votes: Dict[str, ClipVote]) -> List[Optional[float]]:
    """The fg student's similarity of each clip candidate's copied part (None where
    there is no vote, or its features are damaged)."""
    out: List[Optional[float]] = [None] * len(clip_ids)
    if not votes:
        return out
    window, bin_seconds = index.clip_collection.spec.length, VotingSettings().bin_seconds
    # The parts go to the fg student together: one call compares them in padded batches,
    # each value that of its pair alone, where one call a part paid the comparator's
    # overheads each (in a dedup of short videos, most of its time).
    held: List[Tuple[int, np.ndarray, np.ndarray]] = []
    held_bytes = 0

    def compare_held():
        similarities = fine_pair_similarities(dns.fine_student, [(q, t) for _, q, t in held])
        for (position, _, _), similarity in zip(held, similarities):
            out[position] = float(similarity)
        held.clear()

    for position, video_id in enumerate(clip_ids):
        if video_id is None:
            continue
        try:
            target = index.fine_features(records[video_id])
        except CorruptFeaturesError as error:
            log.warning('%s; it keeps its coarse similarity', error)
            continue
        part = copied_part(votes[video_id], len(query.fine), len(target), window, index.settings.time_step,
                           bin_seconds, query.times, index.catalog.times(video_id))
        if part is None:
            continue
        # A copy: the part alone is kept, not the whole video's features; memory stays
        # bounded however many long parts a long query has.
        target_part = target[part[1]].copy()
        held.append((position, query.fine[part[0]], target_part))
        held_bytes += target_part.nbytes
        if held_bytes >= COPIED_PARTS_HELD:
            compare_held()
            held_bytes = 0
    if held:
        compare_held()
    return out
