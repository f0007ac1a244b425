"""Micro-average precision of the Meta Video Similarity Challenge 2022 matching track,
on segment ground truth, in seconds.

Definition (Pizzi et al., "The 2023 Video Similarity Dataset and Challenge"): every
predicted segment of every (query, reference) pair goes into one list, ranked by score.
Going down the list, each pair's predicted segments so far are compared with its true
ones, on each axis (the query's timeline, the reference's):

    overlap  = length of the union of (prediction ∩ truth) on that axis, over the
               (prediction, true segment) couples whose boxes intersect in both axes
    precision_axis = sum over pairs of overlap / sum of lengths of predicted unions
    recall_axis    = sum over pairs of overlap / sum of lengths of true unions
    precision = sqrt(query precision x reference precision), recall alike

and the average precision is the sum of precision x (recall gained) over the ranks
(predictions of equal score enter together). A prediction in a pair with no truth only
adds to the predicted length. Unlike ``metrics.segment_scores`` (product of the axes,
axes independent), a predicted box earns overlap only where it meets a true box in both
axes at once, and the geometric mean makes these figures at least as high for one answer.
"""
import math
from itertools import groupby
from typing import Dict, List, Sequence, Tuple

from .metrics import Predictions, Truth

Box = Tuple[float, float, float, float]   # query start, query end, target start, target end


def matching_micro_ap(predictions: Predictions, truth: Truth) -> float:
    """The matching track's micro-AP of ``predictions`` ((query, target) -> Segments in
    seconds) against ``truth`` ((query, target) -> [(qs, qe, ts, te)] seconds). 0 when
    nothing is true."""
    true_boxes = {pair: [tuple(map(float, box)) for box in boxes] for pair, boxes in truth.items()}
    true_length = [sum(_union_length([(b[0], b[1]) for b in boxes]) for boxes in true_boxes.values()),
                   sum(_union_length([(b[2], b[3]) for b in boxes]) for boxes in true_boxes.values())]
    if min(true_length) <= 0:
        return 0.0
    ranked = sorted(((s.score, pair, (s.query_start, s.query_end, s.target_start, s.target_end))
                     for pair, segments in predictions.items() for s in segments), key=lambda x: -x[0])
    boxes: Dict[tuple, List[Box]] = {}
    pair_stats: Dict[tuple, Tuple[float, float, float, float]] = {}   # predicted q, t; overlap q, t
    totals = [0.0, 0.0, 0.0, 0.0]
    ap, last_recall = 0.0, 0.0
    for _, group in groupby(ranked, key=lambda x: x[0]):
        touched = set()
        for _, pair, box in group:
            if box[1] > box[0] and box[3] > box[2]:
                boxes.setdefault(pair, []).append(box)
                touched.add(pair)
        for pair in touched:
            new = _pair_stats(boxes[pair], true_boxes.get(pair, []))
            old = pair_stats.get(pair, (0.0, 0.0, 0.0, 0.0))
            totals = [t + n - o for t, n, o in zip(totals, new, old)]
            pair_stats[pair] = new
        predicted_q, predicted_t, overlap_q, overlap_t = totals
        if predicted_q <= 0 or predicted_t <= 0:
            continue
        precision = math.sqrt(overlap_q / predicted_q * overlap_t / predicted_t)
        recall = math.sqrt(overlap_q / true_length[0] * overlap_t / true_length[1])
        ap += precision * max(0.0, recall - last_recall)
        last_recall = max(last_recall, recall)
    return ap


def _pair_stats(predicted: Sequence[Box], true: Sequence[Box]) -> Tuple[float, float, float, float]:
    overlap_q, overlap_t = [], []
    for p in predicted:
        for g in true:
            q = (max(p[0], g[0]), min(p[1], g[1]))
            t = (max(p[2], g[2]), min(p[3], g[3]))
            if q[1] > q[0] and t[1] > t[0]:
                overlap_q.append(q)
                overlap_t.append(t)
    return (_union_length([(b[0], b[1]) for b in predicted]), _union_length([(b[2], b[3]) for b in predicted]),
            _union_length(overlap_q), _union_length(overlap_t))


def _union_length(intervals: Sequence[Tuple[float, float]]) -> float:
    total, end = 0.0, -math.inf
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total
