"""Near-duplicate groups of an index: every video searched against the others, pairs
above a threshold joined into groups."""
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ...localization import Segment

from ..storage.catalog import Decision, pair_key
from ..storage.index import VideoIndex, video_duration
from ... import defaults
from ...core import DnS
from .segments import locate_copies
from .search import search


@dataclass
class DuplicateGroup:
    videos: List[str]                                   # paths as given at index time
    # (path, path, score); score None for a pair a reviewer joined that scored below the threshold
    pairs: List[Tuple[str, str, Optional[float]]] = field(default_factory=list)
    # (path, path) -> the copied segments of a in b, seconds; with segments=True only.
    segments: Optional[Dict[Tuple[str, str], List[Segment]]] = None
    video_ids: Dict[str, str] = field(default_factory=dict)    # path -> the id of its content
    decided: Dict[Tuple[str, str], str] = field(default_factory=dict)  # pairs a reviewer marked 'copy'

    def as_dict(self) -> Dict:
        pairs = []
        for a, b, score in self.pairs:
            pair = {'a': a, 'b': b, 'score': score}
            if (a, b) in self.decided:
                pair['decision'] = self.decided[(a, b)]
            if self.segments is not None:
                pair['segments'] = [s.as_dict() for s in self.segments.get((a, b), [])]
            pairs.append(pair)
        return {'videos': self.videos, 'video_ids': self.video_ids, 'pairs': pairs}


@dataclass
class ScoredPairs:
    """The expensive part of the groups: every pair scoring at or above the threshold,
    before reviewers' decisions. It depends on the indexed videos and the settings only,
    so a decision leaves it valid."""
    pairs: Dict[Tuple[str, str], float]
    found: Dict[Tuple[str, str], List[Segment]]  # with segments=True only
    ids: Dict[str, str]                          # path -> the id of its content
    segments: bool


def find_duplicates(index: VideoIndex, dns: DnS, threshold: Optional[float] = None,
                    rerank: float = defaults.DEDUP_RERANK, neighbours: int = defaults.NEIGHBOURS,
                    segments: bool = False, segment_threshold: Optional[float] = None,
                    segment_background: Optional[bool] = None) -> List[DuplicateGroup]:
    """Groups of videos linked by search scores >= ``threshold`` (transitively; None:
    the index's calibrated threshold, else 0.75), each video's ``neighbours`` nearest by
    cg similarity considered. With ``rerank=1`` (the default) every considered pair is
    scored by the fg student, s/2 + 0.5; files with the same content are duplicates with
    score 1. ``segments=True`` adds the copied segments of each pair (a in b, seconds)
    scoring at least ``segment_threshold`` (None: the index's), against the library too
    with ``segment_background`` (None: as the index was calibrated).

    Reviewers' decisions (``index.catalog.decide``) win over scores: a pair marked
    'not_copy' is never joined, one marked 'copy' always is (its score None when it
    scored below the threshold)."""
    scored = score_pairs(index, dns, threshold, rerank, neighbours, segments, segment_threshold, segment_background)
    return group_pairs(scored, index.catalog.decisions())


def score_pairs(index: VideoIndex, dns: DnS, threshold: Optional[float] = None,
                rerank: float = defaults.DEDUP_RERANK, neighbours: int = defaults.NEIGHBOURS,
                segments: bool = False, segment_threshold: Optional[float] = None,
                segment_background: Optional[bool] = None, videos: Optional[Sequence[str]] = None) -> ScoredPairs:
    """The pairs of ``find_duplicates`` (same arguments) before any decision: a search
    per video, and the copied segments of each pair with ``segments=True``. ``videos``:
    the ids of the videos searched (None: every indexed video), each against the whole
    index; a pair is then found from a searched video's side only."""
    if threshold is None:
        threshold = index.thresholds().copy
    pairs: Dict[Tuple[str, str], float] = {}
    found: Dict[Tuple[str, str], List[Segment]] = {}
    ids: Dict[str, str] = {}
    video_ids = index.catalog.video_ids() if videos is None else list(videos)
    paths_of = index.catalog.paths(video_ids)  # one query, not one per video
    neighbours_of = CoarseNeighbours(index, video_ids)
    for video_id in video_ids:
        own_paths = [given for given, _ in paths_of.get(video_id, [])]
        ids.update((path, video_id) for path in own_paths)
        if segments and len(own_paths) > 1:  # files with one content: the whole video, frame for frame
            record = index.catalog.video(video_id)
            whole = video_duration(index.catalog.times(video_id), record.frames, index.settings.time_step)
        for other in own_paths[1:]:
            key = pair_key(own_paths[0], other)
            pairs[key] = 1.0
            if segments:
                found[key] = [Segment(0.0, whole, 0.0, whole, 1.0)]
        if not own_paths:
            continue
        query = index.representation(video_id)
        matches = [m for m in search(index, dns, query, k=None, rerank=rerank, candidates=neighbours,
                                     nearest=neighbours_of.hits(video_id, neighbours))
                   if m.video_id != video_id and m.score >= threshold]
        new_pairs = {}
        for match in matches:
            key = pair_key(own_paths[0], match.path)
            pairs[key] = max(pairs.get(key, match.score), match.score)
            if segments and key not in found:
                new_pairs[key] = match.video_id
        if new_pairs:  # each pair is localized once, from whichever side meets it first
            located = locate_copies(index, dns, query, set(new_pairs.values()), segment_threshold,
                                      background=segment_background)
            for key, other in new_pairs.items():
                # Kept as segments of a in b: the query here may be b.
                found[key] = [s if key[0] == own_paths[0] else _swap(s) for s in located.get(other, [])]
    return ScoredPairs(pairs, found, ids, segments)


class CoarseNeighbours:
    """The nearest indexed videos by coarse similarity (inner product, exact, the video
    itself included: what a search of the coarse collection answers) of each of
    ``queries`` (indexed videos, asked in that order), from the catalog's vectors.

    A dedup asks this of every video: one Milvus Lite (FLAT) search a video costs about
    2.5 microseconds per indexed video (25 ms at 10^4 videos, 250 ms at 10^5), so N
    searches grew as N^2 with a constant that outweighed the fine student's work from a
    few 10^4 videos on. Blocks of queries against all videos, a matrix product a block,
    answer the same with a constant some 100 times smaller (the products still grow as
    N^2, a small part of the dedup up to 10^6 videos). The vectors take 4 KB a video,
    as Milvus Lite's loaded collection does."""

    def __init__(self, index: VideoIndex, queries: Sequence[str], block: int = defaults.DEDUP_BLOCK):
        self.ids, self.vectors = index.catalog.coarse_vectors()
        self._row = {video_id: i for i, video_id in enumerate(self.ids)}
        self.queries = list(queries)
        unknown = [video_id for video_id in self.queries if video_id not in self._row]
        if unknown:
            raise ValueError(f'{len(unknown)} video id(s) to search are not in the index: {", ".join(unknown[:5])}')
        self._query_at = {video_id: i for i, video_id in enumerate(self.queries)}
        self.rows = max(1, block // max(1, len(self.ids)))   # queries a block: block similarities at once
        self._first, self._order = -1, np.empty((0, 0), np.int64)
        self._similarities = np.empty((0, 0), np.float32)
        self._limit = 0

    def hits(self, video_id: str, limit: int) -> List[Tuple[str, float]]:
        """(video id, coarse similarity) of the ``limit`` nearest to ``video_id`` (one of
        the queries), best first."""
        limit = min(limit, len(self.ids))
        if limit < 1:
            return []
        at = self._query_at[video_id]
        if not self._first <= at < self._first + len(self._order) or limit > self._limit:
            self._compute(at - at % self.rows, limit)
        row = at - self._first
        return [(self.ids[j], float(s)) for j, s in zip(self._order[row, :limit], self._similarities[row, :limit])]

    def _compute(self, first: int, limit: int) -> None:
        rows = [self._row[video_id] for video_id in self.queries[first:first + self.rows]]
        similarities = self.vectors[rows] @ self.vectors.T
        top = np.argpartition(-similarities, limit - 1, axis=1)[:, :limit]
        top_similarities = np.take_along_axis(similarities, top, 1)
        order = np.argsort(-top_similarities, axis=1, kind='stable')
        self._first, self._limit = first, limit
        self._order = np.take_along_axis(top, order, 1)
        self._similarities = np.take_along_axis(top_similarities, order, 1)


def group_pairs(scored: ScoredPairs, decisions: Mapping[Tuple[str, str], Decision]) -> List[DuplicateGroup]:
    """The groups of ``scored`` once reviewers' ``decisions`` are applied (cheap: no
    search); ``scored`` is left as it was."""
    pairs: Dict[Tuple[str, str], Optional[float]] = dict(scored.pairs)
    ids, found, segments = scored.ids, scored.found, scored.segments
    joined = _apply_decisions(decisions, pairs, ids)
    links = UnionFind()
    for key in pairs:
        links.join(*key)
    groups: Dict[str, DuplicateGroup] = {}
    for members in links.groups():
        group = DuplicateGroup(sorted(members), video_ids={path: ids[path] for path in sorted(members)})
        for member in members:
            groups[member] = group
    for (a, b), score in sorted(pairs.items()):
        groups[a].pairs.append((a, b, None if score is None else round(score, 6)))
        if (a, b) in joined:
            groups[a].decided[(a, b)] = 'copy'
        if segments:
            groups[a].segments = groups[a].segments or {}
            groups[a].segments[(a, b)] = found.get((a, b), [])
    return sorted({id(g): g for g in groups.values()}.values(), key=lambda g: g.videos)


def _apply_decisions(decisions: Mapping[Tuple[str, str], Decision],
                      pairs: Dict[Tuple[str, str], Optional[float]], ids: Dict[str, str]) -> set:
    """Drop the pairs marked 'not_copy' from ``pairs``, add those marked 'copy' (when
    both files are still indexed: ``ids`` holds every indexed path); return the keys
    marked 'copy'."""
    copies = set()
    for key, decision in decisions.items():
        if decision.decision == 'not_copy':
            pairs.pop(key, None)
        elif all(path in ids for path in key):
            pairs.setdefault(key, None)
            copies.add(key)
    return copies


def _swap(segment: Segment) -> Segment:
    return Segment(segment.target_start, segment.target_end, segment.query_start, segment.query_end, segment.score)


class UnionFind:
    def __init__(self):
        self.parent: Dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)

    def groups(self) -> Iterator[List[str]]:
        members: Dict[str, List[str]] = {}
        for item in self.parent:
            members.setdefault(self.find(item), []).append(item)
        return iter(members.values())
