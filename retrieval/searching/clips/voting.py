"""From window hits to candidate videos: normalise each query window's similarities
against a background, then let hits that agree on the time offset vote together.

Normalisation. A query window of a plain scene (a black frame, a studio shot) is near
many indexed windows, copy or not. Its hits are scored by how much they beat its own
background: the similarity of its ``background_rank``-th nearest indexed window, which
with many videos indexed is an unrelated one. Only hits above it count.

Voting. A copy that runs for n windows gives n hits on one video at one offset
(video window start - query window start); unrelated videos get scattered hits at
random offsets. Offsets are binned (``bin_seconds``) and each video's score is the best
sum, over two adjacent bins (so a run split by a bin edge, or drifting with a speed
change, stays together), of one hit per query window (its best in those bins).
"""
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from ...storage.clip_vectors import WindowHits


@dataclass(frozen=True)
class VotingSettings:
    hits_per_window: int = 16      # nearest indexed windows kept per query window
    background_rank: int = 32      # the neighbour whose similarity is the background
    bin_seconds: float = 2.0       # width of an offset bin

    def __post_init__(self):
        if self.hits_per_window < 1 or self.background_rank < 1:
            raise ValueError('hits_per_window and background_rank must be positive')
        if not self.bin_seconds > 0:
            raise ValueError(f'bin_seconds must be positive, got {self.bin_seconds}')

    @property
    def search_limit(self) -> int:
        return max(self.hits_per_window, self.background_rank)


@dataclass(frozen=True)
class ClipVote:
    video_id: str
    score: float         # summed normalised similarity of the best offset
    offset: float        # video time - query time, seconds (the best bin's centre)
    windows: int         # query windows that voted for it
    query_first: float = 0.0   # start (s) of the first and the last query window that voted
    query_last: float = 0.0    # at the best offset: the part of the query it holds


def normalise(similarities: np.ndarray, background_rank: int) -> np.ndarray:
    """Each hit's margin over its window's background: the similarity at
    ``background_rank`` (1-based; the last hit when there are fewer), floored at 0."""
    similarities = np.asarray(similarities, np.float32)
    if not len(similarities):
        return similarities
    background = similarities[min(background_rank, len(similarities)) - 1]
    return np.maximum(similarities - background, 0.0)


def vote(window_hits: Sequence[WindowHits], settings: VotingSettings = VotingSettings()) -> List[ClipVote]:
    """One vote total per video with any positive hit, best first."""
    queries, videos, offsets, scores = [], [], [], []
    for q, hits in enumerate(window_hits):
        margins = normalise(np.asarray(hits.similarities, np.float32), settings.background_rank)
        for video, start, margin in zip(hits.videos[:settings.hits_per_window],
                                        hits.starts[:settings.hits_per_window],
                                        margins[:settings.hits_per_window]):
            if margin > 0:
                queries.append(hits.query_start)
                videos.append(video)
                offsets.append(start - hits.query_start)
                scores.append(margin)
    if not scores:
        return []
    return tally(np.array(queries, np.float64), np.array(videos, dtype=object), np.array(offsets, np.float64),
                 np.array(scores, np.float32), settings.bin_seconds)


def tally(queries: np.ndarray, videos: np.ndarray, offsets: np.ndarray, scores: np.ndarray,
          bin_seconds: float) -> List[ClipVote]:
    """Hits as parallel arrays (query window start s, video id, offset s, margin) -> votes."""
    bins = np.floor(offsets / bin_seconds).astype(np.int64)
    order = np.argsort(videos, kind='stable')
    votes = []
    video_sorted = videos[order]
    edges = np.flatnonzero(video_sorted[1:] != video_sorted[:-1]) + 1
    for group in np.split(order, edges):
        votes.append(_best_offset(videos[group[0]], queries[group], bins[group], scores[group], bin_seconds))
    votes.sort(key=lambda v: (-v.score, v.video_id))
    return votes


def _best_offset(video_id: str, queries: np.ndarray, bins: np.ndarray, scores: np.ndarray,
                 bin_seconds: float) -> ClipVote:
    # Each hit counts in the pair of bins starting at its own bin and at the one before.
    lows = np.concatenate([bins, bins - 1])
    qs = np.concatenate([queries, queries])
    ss = np.concatenate([scores, scores])
    # One vote per (pair of bins, query window): its best hit there.
    order = np.lexsort((-ss, qs, lows))
    lows, qs, ss = lows[order], qs[order], ss[order]
    first = np.ones(len(lows), bool)
    first[1:] = (lows[1:] != lows[:-1]) | (qs[1:] != qs[:-1])
    lows, qs, ss = lows[first], qs[first], ss[first]
    unique, at = np.unique(lows, return_index=True)
    totals = np.add.reduceat(ss.astype(np.float64), at)
    counts = np.diff(np.append(at, len(lows)))
    best = int(np.argmax(totals))
    voters = qs[at[best]:at[best] + counts[best]]
    return ClipVote(video_id, float(totals[best]), float((unique[best] + 1) * bin_seconds), int(counts[best]),
                    float(voters.min()), float(voters.max()))
