"""The temporal network (TN) of Tan et al., "Scalable detection of partial near-duplicate
videos by visual-temporal consistency" (ACM MM 2009): the localization baseline.

As VCSL (He et al., CVPR 2022, ``vcsl/vta.py``) and Towhee's
``video-copy-detection/temporal-network`` operator use it on a frame-to-frame similarity
matrix S [Tq, Tt]:

* nodes: for each query frame i, its ``top_k`` most similar target frames j, kept when
  S[i, j] >= ``threshold``; a node weighs S[i, j];
* edges: (i, j) -> (i', j') when 0 < i' - i <= ``max_step`` and 0 < j' - j <= ``max_step``:
  forward in both videos, by a bounded step, so a path may follow a copy played faster
  or slower and bridge a few frames without a good match;
* the heaviest path (sum of its node weights) is a copied segment: query frames from its
  first node to its last, target frames likewise, half-open; its score is the mean
  similarity of its nodes. Its nodes are removed (with the rest of its box, see below)
  and the next heaviest path is sought.

The parameters are VCSL's ``tn_top_k``, ``tn_max_step``, ``min_sim`` (here ``threshold``)
and ``max_path`` (here ``max_segments``), with its defaults (k = 5, step 10, at most 10
paths). Differences, all deliberate:

* ``min_length`` counts a path's nodes, and the search is for the heaviest path of at
  least that many nodes (VCSL takes the heaviest path and then drops it when either span
  is <= ``min_length`` frames, so a short heavy path can hide a long lighter one). Default
  2: one frame pair is no evidence of a sequence.
* With a found path's nodes go all the other nodes inside its box (its query span x its
  target span). In a smooth video a copy's neighbouring target frames are nearly as
  similar as the copied ones, so the top-k nodes form parallel paths that would come back
  as the same copy shifted by a frame or two. VCSL zeroes the path's edges and drops later
  paths whose box overlaps an earlier one with IoU > ``max_iou`` (0.3), which lets through
  the pieces of a parallel path whose own boxes are small beside it; removing the box
  needs no such parameter. What it removes would add nothing under ``metrics`` anyway: a
  segment inside another's box covers no new second on either timeline.
* VCSL's constraint C3 (no edge jumps over a target frame already linked from the same
  source) is left out: it thins the graph for speed, which the dynamic programme below
  does not need, and without it the heaviest path is simply that of the graph above.
* Segments are not filtered by score: every path found is returned with its mean
  similarity, and the caller picks the threshold (``metrics.best_threshold``).

Implementation: a dynamic programme over query frames in order. The nodes of frame i can
only be reached from the ``top_k`` nodes of each of the ``max_step`` frames before it, so
each frame is one vectorised step over a [top_k, max_step * top_k] block of candidate
edges: O(Tq * top_k^2 * max_step) work per path, no Python loop over node pairs. To find
the heaviest path with at least L nodes each node keeps L states: the heaviest path
ending there with exactly 1, ..., L - 1 nodes, and with L or more. After a removal only
the frames from the removed box's first frame on are recomputed.
"""
import math
import numbers
from typing import List, Optional, Tuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .segment import Segment
from .similarity_matrix import check_similarity_matrix

# Edge cells (candidate predecessor x node) prepared at a time: 32 MiB of float64.
_BLOCK_CELLS = 1 << 22

DEFAULT_TOP_K = 5
DEFAULT_MAX_STEP = 10
DEFAULT_MIN_LENGTH = 2
DEFAULT_MAX_SEGMENTS = 10


def temporal_network(sim: np.ndarray, threshold: float, top_k: int = DEFAULT_TOP_K,
                     max_step: int = DEFAULT_MAX_STEP, min_length: int = DEFAULT_MIN_LENGTH,
                     max_segments: int = DEFAULT_MAX_SEGMENTS) -> List[Segment]:
    """The copied segments of a frame-to-frame similarity matrix ``sim`` [Tq, Tt] found by
    the temporal network, in frame indices (half-open), heaviest path first.

    threshold: the least similarity of a node (a matched frame pair).
    top_k: the target frames kept per query frame.
    max_step: the longest step, in frames of either video, between consecutive nodes.
    min_length: the fewest nodes of a segment's path.
    max_segments: at most this many segments are returned.
    """
    sim = check_similarity_matrix(sim)
    threshold = _check_number('threshold', threshold)
    for name, value in (('top_k', top_k), ('max_step', max_step), ('min_length', min_length),
                        ('max_segments', max_segments)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f'{name} must be a positive integer, got {value!r}')
    if sim.size == 0:
        return []
    network = _Network(sim, threshold, int(top_k), int(max_step), int(min_length))
    segments: List[Segment] = []
    while len(segments) < max_segments:
        path = network.heaviest_path()
        if path is None:
            break
        rows, cols = path
        # A path rises in both videos: its first and last nodes bound it.
        segment = Segment(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1,
                          float(np.mean(sim[rows, cols], dtype=np.float64)))
        network.remove_box(segment.query_start, segment.query_end, segment.target_start, segment.target_end)
        segments.append(segment)
    return segments


class _Network:
    """The nodes of a similarity matrix and, per node and path length, the heaviest path
    ending there. Node (i, a) is query frame i's a-th kept target frame ``cols[i, a]``."""

    def __init__(self, sim: np.ndarray, threshold: float, top_k: int, max_step: int, min_length: int):
        frames, targets = sim.shape
        self.top_k = k = min(top_k, targets)
        self.max_step = max_step
        # Predecessors lie in the window of frames before a node's; no wider than the
        # matrix however long a step may be.
        self.window = window = min(max_step, frames)
        if k < targets:
            cols = np.argpartition(sim, targets - k, axis=1)[:, targets - k:]
        else:
            cols = np.broadcast_to(np.arange(targets), (frames, targets))
        self.cols = np.ascontiguousarray(cols, dtype=np.int64)
        weights = np.take_along_axis(sim, self.cols, axis=1).astype(np.float64)
        weights[weights < threshold] = -np.inf
        self.weights = weights
        # State s < last: paths of exactly s + 1 nodes; state last: min_length nodes or
        # more. Two states at least, so that the start of a path is always state 0.
        self.states = max(min_length, 2)
        self.accepted = slice(0, self.states) if min_length == 1 else slice(self.states - 1, self.states)
        # Frames before the first have no nodes: their target (far beyond the matrix) is
        # never an edge's source, and their paths weigh -inf.
        self.padded_cols = np.concatenate([np.full((window, k), targets + max_step + 1, np.int64), self.cols])
        self.best = np.full((window + frames, k, self.states), -np.inf)
        # The node before each node on its best path per state (frame * k + rank), and
        # for the last state whether that path came from the last state too.
        self.previous = np.full((frames, k, self.states), -1, np.int64)  # state 0 stays -1
        self.from_last = np.zeros((frames, k), bool)
        self._fill(0)

    def _fill(self, first: int) -> None:
        """Recompute the best paths ending in frames ``first`` and after."""
        k, step, states, last = self.top_k, self.window, self.states, self.states - 1
        best, weights, previous, from_last = self.best, self.weights, self.previous, self.from_last
        frames = weights.shape[0]
        has_nodes = np.isfinite(weights).any(axis=1)
        candidates = np.empty((k, step * k, states))
        choice = np.empty((k, states), np.intp)
        ranks, state_ids = np.arange(k)[:, None], np.arange(states)[None, :]
        block = max(1, _BLOCK_CELLS // (k * step * k))
        for block_start in range(first, frames, block):
            block_stop = min(block_start + block, frames)
            penalty = self._edge_penalty(block_start, block_stop)
            for i in range(block_start, block_stop):
                here = best[step + i]
                if not has_nodes[i]:
                    here.fill(-np.inf)
                    continue
                # The nodes of frames i - step .. i - 1, flattened: index p * k + b is
                # frame i - step + p, rank b.
                sources = best[i:i + step].reshape(step * k, states)
                np.add(penalty[i - block_start], sources, out=candidates)   # [k, step*k, states]
                candidates.argmax(axis=1, out=choice)
                heaviest = candidates[ranks, choice, state_ids]               # [k, states]
                w = weights[i]
                here[:, 0] = w
                np.add(w[:, None], heaviest[:, :-1], out=here[:, 1:])
                longer = heaviest[:, last] > heaviest[:, last - 1]
                if longer.any():
                    here[longer, last] = w[longer] + heaviest[longer, last]
                    choice[longer, last - 1] = choice[longer, last]
                previous[i, :, 1:] = choice[:, :-1] + (i - step) * k
                from_last[i] = longer

    def _edge_penalty(self, start: int, stop: int) -> np.ndarray:
        """[frame, rank, p * k + b, 1] for frames [start, stop): 0 where frame i - step + p,
        rank b links to the node, -inf where not."""
        k, step = self.top_k, self.window
        recent = sliding_window_view(self.padded_cols[start:stop + step], step, axis=0)[:stop - start]
        sources = recent.transpose(0, 2, 1).reshape(stop - start, 1, step * k)
        jump = self.cols[start:stop, :, None] - sources
        return np.where((jump > 0) & (jump <= self.max_step), 0.0, -np.inf)[..., None]

    def heaviest_path(self) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """(query frames, target frames) of the nodes of the heaviest path with enough
        nodes, first node first; None when there is none."""
        step, k, last = self.window, self.top_k, self.states - 1
        ends = self.best[step:, :, self.accepted]
        flat = int(np.argmax(ends))
        i, a, s = np.unravel_index(flat, ends.shape)
        if not np.isfinite(ends[i, a, s]):
            return None
        s += self.accepted.start
        frames, ranks = [int(i)], [int(a)]
        while s > 0:
            node = int(self.previous[i, a, s])
            if not (s == last and self.from_last[i, a]):
                s -= 1
            i, a = divmod(node, k)
            frames.append(i)
            ranks.append(a)
        frames, ranks = np.array(frames[::-1]), np.array(ranks[::-1])
        return frames, self.cols[frames, ranks]

    def remove_box(self, query_start: int, query_end: int, target_start: int, target_end: int) -> None:
        """Take the nodes of query frames [query_start, query_end) whose target frame is in
        [target_start, target_end) out of every later path."""
        cols = self.cols[query_start:query_end]
        inside = (cols >= target_start) & (cols < target_end)
        self.weights[query_start:query_end][inside] = -np.inf
        self._fill(query_start)


def _check_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f'{name} must be a finite number, got {value!r}')
    return float(value)
