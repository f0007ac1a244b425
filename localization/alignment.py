"""Copied segments of a video pair: local alignment of its frame-to-frame similarity.

A copied segment shows in the similarity matrix S [Tq, Tt] as a line of high cells: a
diagonal for a copy played at the original speed, a line of another slope for one played
faster or slower. Finding it is the local-alignment problem of sequence comparison
(Smith and Waterman, 1981). Its substitution scores are the similarities as evidence,
Z = ``background.standardized(S)``: how many robust standard deviations each cell stands
above the background of its row and its column (nearly every cell of a pair pairs
unrelated frames, and how similar those are varies from pair to pair):

    H[i, j] = max(0, Z[i, j] - margin + max(H[i-1, j-1],             one frame each
                                             H[i-1, j-2] - gap,       the target skips one
                                             H[i-2, j-1] - gap,       the query skips one
                                             0))                      a segment starts here

A cell more than ``margin`` above the background extends a segment, a cell below it
costs, so a segment ends where the copy ends: through noise it would lose more than it
gains.

A long segment has gained enough to cross a stretch of noise to another copied piece,
though; so a path is cut where more than ``max_gap`` of its frames in a row are below
the margin, and each piece is a segment of its own. The three moves admit slopes from
1/2 to 2 (slow motion to double speed) and let a path bridge a few damaged
frames, which a path of fixed slope cannot. The best cell of H ends the best segment;
tracing its moves back gives the segment's frames. Its cells are then masked and the
rows below recomputed, for the next segment, so one pair yields every copied piece,
wherever they are and however many.

A segment's score is its mean evidence, shrunk towards 0 for short segments, less what
chance alone reaches in a pair of this size:
``sum(Z on the path) / (cells + PRIOR_CELLS) - chance_offset(Tq, Tt)``, in standard
deviations above the pair's background. Measured against each pair's own background, a
threshold carries from one collection to another far better than on the similarity scale
(docs/localization.md has the figures); a match of a frame or two, which noise produces,
has to stand out far to count. A bigger pair offers more places for noise to line up, so
its best chance segment scores higher (like a BLAST hit in a bigger database): the offset
keeps one threshold meaning the same for a 1-minute pair and a 1-hour one.

Each row of H depends only on the two rows above it, so the recurrence runs a row at a
time over whole numpy rows: O(Tq Tt) work and memory of 9 bytes a cell, no Python loop
over cells.
"""
import math
from typing import List, Optional

import numpy as np

from ..defaults import SEGMENT_THRESHOLD
from .background import standardized
from .segment import Segment
from .similarity_matrix import check_similarity_matrix

# Cells less than this many standard deviations above the background count against a
# segment: low enough that heavily transformed copies still extend their segment (1.5 to
# 2.5 compared on the tuning corpus; 2 best).
DEFAULT_MARGIN = 2.0
# Cost of a frame skipped by the query or the target (a slope other than 1), in the same
# units: about one spread of unrelated frames' similarities (1 and 2.5 compared on the
# tuning corpus; 1 best).
DEFAULT_GAP = 1.0
# Segments scoring at least this are copies, unless the index holds a calibrated value
# (`dns evaluate --calibrate`).
DEFAULT_THRESHOLD = SEGMENT_THRESHOLD
# A pseudo-cell of zero evidence added to every segment's mean: a 1-frame match 8 standard
# deviations above the background scores 4, a 4-frame one 6.4, a 30-frame one 7.7.
PRIOR_CELLS = 1
# The best segment of unrelated pairs grows with the log of the pair's cells: in simulated
# ones (benchmarks/localization.py) its 99th percentile goes from about 2.8 at 60 x 60
# sampled frames to 3.2 at 600 x 600 and 3.5 at 3,600 x 3,600. Of the slopes 0.09 to 0.15
# compared, 0.13 is the least that keeps the share of pairs up to 1,200 x 1,200 with a
# segment above the default threshold within a few percent, as at the reference size.
# Pairs up to the reference size, where the default threshold was set, are not offset.
SIZE_REFERENCE_CELLS = 60 * 60
SIZE_SLOPE = 0.13
DEFAULT_MAX_SEGMENTS = 20
DEFAULT_MIN_FRAMES = 2
# Frames in a row below the margin that a segment bridges (damaged or re-edited frames).
DEFAULT_MAX_GAP = 3

_START, _DIAGONAL, _TARGET_SKIPS, _QUERY_SKIPS = 0, 1, 2, 3
# Back-steps (query, target) of each move.
_STEPS = {_DIAGONAL: (1, 1), _TARGET_SKIPS: (1, 2), _QUERY_SKIPS: (2, 1)}


def find_segments(sim: np.ndarray, threshold: Optional[float] = DEFAULT_THRESHOLD, margin: float = DEFAULT_MARGIN,
                  gap: float = DEFAULT_GAP, max_segments: int = DEFAULT_MAX_SEGMENTS,
                  min_frames: int = DEFAULT_MIN_FRAMES, max_gap: int = DEFAULT_MAX_GAP,
                  query_levels: Optional[np.ndarray] = None,
                  target_levels: Optional[np.ndarray] = None) -> List[Segment]:
    """The copied segments in a frame-to-frame similarity matrix ``sim`` [Tq, Tt], in
    frame indices (half-open), best first.

    threshold: the least score of a segment that counts (None: every segment found, for
        choosing a threshold from their scores).
    margin: how many robust standard deviations above its row's and column's background
        a frame similarity must be to extend a segment.
    gap: the cost of a frame skipped by one of the videos, in the same units.
    max_segments: at most this many segments are looked for and returned.
    min_frames: a segment spans at least this many frames of each video (or the whole
        of a shorter video).
    max_gap: frames in a row below the margin inside one segment; more cut it.
    query_levels, target_levels: the library levels of the query's frames [Tq] and the
        target's [Tt] (``background.library_levels``; None: the pair's background alone).
        A cell extends a segment only as far as it rises above both.
    """
    sim = check_similarity_matrix(sim)
    if max_segments < 1:
        raise ValueError(f'max_segments must be positive, got {max_segments}')
    if min_frames < 1:
        raise ValueError(f'min_frames must be positive, got {min_frames}')
    if not 0 <= gap:
        raise ValueError(f'gap must be >= 0, got {gap}')
    if max_gap < 0:
        raise ValueError(f'max_gap must be >= 0, got {max_gap}')
    query_levels = _checked_levels(query_levels, sim.shape[0], 'query')
    target_levels = _checked_levels(target_levels, sim.shape[1], 'target')
    segments: List[Segment] = []
    if sim.size == 0:
        return segments
    min_frames = min(min_frames, *sim.shape)
    evidence = standardized(sim, query_levels, target_levels, at_level=margin)
    offset = chance_offset(*sim.shape)
    aligner = _Aligner(evidence - np.float32(margin), np.float32(gap))
    for _ in range(max_segments):
        path = aligner.best_path()
        if path is None:
            break
        pieces = _cut(*path, aligner.gain[path], max_gap)  # the path's cells are not masked yet
        aligner.mask([(rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) for rows, cols in pieces])
        for rows, cols in pieces:
            if rows[-1] - rows[0] + 1 < min_frames or cols[-1] - cols[0] + 1 < min_frames:
                continue
            score = float(evidence[rows, cols].sum() / (len(rows) + PRIOR_CELLS)) - offset
            if threshold is None or score >= threshold:
                segments.append(Segment(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1, score))
        if len(segments) >= max_segments:
            break
    return sorted(segments, key=lambda s: -s.score)[:max_segments]


def chance_offset(query_frames: int, target_frames: int) -> float:
    """How much higher than in a pair of SIZE_REFERENCE_CELLS chance alone lets the best
    segment of a ``query_frames`` x ``target_frames`` pair score, in standard deviations
    (0 for pairs up to that size)."""
    return SIZE_SLOPE * max(0.0, math.log(query_frames * target_frames / SIZE_REFERENCE_CELLS))


def _checked_levels(levels: Optional[np.ndarray], frames: int, video: str) -> Optional[np.ndarray]:
    if levels is None:
        return None
    levels = np.asarray(levels, dtype=np.float32)
    if levels.shape != (frames,):
        raise ValueError(f'{video}_levels must have one value per {video} frame ({frames}), got shape {levels.shape}')
    if not np.isfinite(levels).all():
        raise ValueError(f'{video}_levels must be finite')
    return levels


def _cut(rows: np.ndarray, cols: np.ndarray, gains: np.ndarray, max_gap: int):
    """The pieces of a path between its runs of more than ``max_gap`` cells below the
    margin, each trimmed to its best-scoring stretch (a stray noisy cell next to a run
    of low ones is no part of the copy)."""
    pieces, start, low = [], None, 0
    for n, gain in enumerate(gains):
        if gain >= 0:
            if start is None:
                start = n
            elif low > max_gap:
                pieces.append(_best_stretch(gains, start, last + 1))
                start = n
            last, low = n, 0
        else:
            low += 1
    if start is not None:
        pieces.append(_best_stretch(gains, start, last + 1))
    return [(rows[a:b], cols[a:b]) for a, b in pieces]


def _best_stretch(gains: np.ndarray, start: int, end: int):
    """The [a, b) within [start, end) of the largest sum of gains (Kadane's scan)."""
    best, best_span, total, first = -np.inf, (start, end), 0.0, start
    for n in range(start, end):
        if total <= 0:
            total, first = 0.0, n
        total += gains[n]
        if total > best:
            best, best_span = total, (first, n + 1)
    return best_span


class _Aligner:
    """H and the move that reached each cell, recomputed from a row down after a mask."""

    def __init__(self, gain: np.ndarray, gap: np.float32):
        self.gain = gain
        self.gap = gap
        rows, cols = gain.shape
        # Two rows and columns of zeros in front: the moves' predecessors outside the matrix.
        self.score = np.zeros((rows + 2, cols + 2), np.float32)
        self.move = np.zeros((rows, cols), np.int8)
        self._fill(0)

    def _fill(self, first_row: int) -> None:
        h, gain, move, gap = self.score, self.gain, self.move, self.gap
        cols = gain.shape[1]
        best, candidate, row = (np.empty(cols, np.float32) for _ in range(3))
        better, choice = np.empty(cols, bool), np.empty(cols, np.int8)
        for i in range(first_row, gain.shape[0]):
            above, two_above = h[i + 1], h[i]  # rows i-1 and i-2 of H, padded
            np.copyto(best, above[1:cols + 1])                            # H[i-1, j-1]
            choice.fill(_DIAGONAL)
            np.subtract(above[0:cols], gap, out=candidate)                # H[i-1, j-2]
            np.greater(candidate, best, out=better)
            np.maximum(best, candidate, out=best)
            choice[better] = _TARGET_SKIPS
            np.subtract(two_above[1:cols + 1], gap, out=candidate)        # H[i-2, j-1]
            np.greater(candidate, best, out=better)
            np.maximum(best, candidate, out=best)
            choice[better] = _QUERY_SKIPS
            np.maximum(best, 0, out=best)  # no positive predecessor: a segment starts here
            np.add(best, gain[i], out=row)
            np.less_equal(row, 0, out=better)
            np.maximum(row, 0, out=h[i + 2, 2:])
            choice[best <= 0] = _START
            choice[better] = _START
            move[i] = choice

    def best_path(self):
        """(rows, cols) of the cells of the best remaining path, start first; None when
        no cell is above the margin."""
        h = self.score[2:, 2:]
        flat = int(np.argmax(h))
        i, j = divmod(flat, h.shape[1])
        if h[i, j] <= 0:
            return None
        rows, cols = [i], [j]
        while self.move[i, j] != _START:
            di, dj = _STEPS[int(self.move[i, j])]
            i, j = i - di, j - dj
            rows.append(i)
            cols.append(j)
        return np.array(rows[::-1]), np.array(cols[::-1])

    def mask(self, boxes) -> None:
        """Take found segments' cells (boxes of rows and columns, half-open) out of every
        later path."""
        for row0, row1, col0, col1 in boxes:
            self.gain[row0:row1, col0:col1] = -np.inf
        self._fill(min(box[0] for box in boxes))
