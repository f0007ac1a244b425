"""How well predicted copied segments match the true ones: precision, recall and F1 in
seconds, on both videos' timelines.

Definition. Only predicted segments scoring at least the threshold count. For each video
pair (query, target) and each time axis (the query's timeline, the target's), take the
union of the predicted intervals on that axis and the union of the true intervals; their
overlap is the length of the intersection of the two unions. Summed over all pairs (a
micro average: a pair only in the predictions is wholly false positive, a pair only in
the truth wholly missed):

    axis precision = sum of overlaps / sum of predicted lengths
    axis recall    = sum of overlaps / sum of true lengths
    precision = query precision x target precision
    recall    = query recall x target recall
    F1        = 2 precision recall / (precision + recall)      (0 when both are 0)

The product asks a prediction to be right on both videos' timelines: half the right query
seconds matched to half the right target seconds scores 1/4. Unions count each second once,
so overlapping predictions are neither rewarded nor punished twice.

Empty sums: a ratio 0 / 0 is 1. Nothing predicted: precision 1 (no predicted second is
wrong; it also starts the precision-recall curve at the usual (recall 0, precision 1)),
and recall 0, so F1 0: an empty answer scores nothing, through its recall. Nothing true:
recall 1 (nothing was missed); any prediction then has precision 0 and F1 0.

Compared with the references:

* VCSL (He et al., CVPR 2022, ``vcsl/metric.py``) uses the same product of the two axes,
  but computes it per pair and averages over each video's pairs and then over videos (a
  macro average), sums predicted lengths box by box rather than over their union, and
  counts an overlap only where a predicted box overlaps a true box in both axes at once;
  a pair with predictions and no truth scores precision 0, recall 1, as here.
* The Meta Video Similarity Challenge 2022 matching track (``vsc2022/vsc/metrics.py``)
  micro-averages over unions as here, but takes the geometric mean of the two axes (the
  square root of the product, so at least as high as these numbers for the same answer),
  counts a true segment in the overlap only when some prediction overlaps it in both axes,
  and reports the average precision over the score-ranked predictions rather than F1.
* Here the two axes are compared independently: in a pair with several true segments, a
  prediction with one segment's query span and another's target span gets credit. Such
  pairs are rare, and independent axes keep the definition simple and the curve cheap.

``precision_recall_curve`` sorts the predictions once and adds them best first, keeping per
pair and axis the union of the predicted intervals as sorted disjoint intervals: adding an
interval merges the ones it touches, and its overlap with the true union comes from prefix
sums by binary search: O(n log n) for n segments, some 30 microseconds a segment in
Python (5,000 segments over 300 pairs: about 0.15 s).
"""
import math
import numbers
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate, groupby
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple

from .segment import Segment

Truth = Dict[Tuple[str, str], List[Tuple[float, float, float, float]]]   # (query, target) -> [(qs, qe, ts, te)]
Predictions = Dict[Tuple[str, str], List[Segment]]                       # seconds

Interval = Tuple[float, float]


@dataclass(frozen=True)
class SegmentScores:
    """Segment-level precision, recall and F1, and the per-axis values they come from."""
    precision: float
    recall: float
    f1: float
    query_precision: float
    query_recall: float
    target_precision: float
    target_recall: float


@dataclass(frozen=True)
class ThresholdPoint:
    """Scores when the decisions (segments, or video pairs) scoring at least ``threshold``
    count: one point of a precision-recall curve."""
    threshold: float
    precision: float
    recall: float
    f1: float


def segment_scores(predictions: Predictions, truth: Truth, threshold: float = -math.inf) -> SegmentScores:
    """Precision, recall and F1 of the predicted segments scoring at least ``threshold``
    (all by default) against the true ones, both in seconds (see the module's docstring)."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or math.isnan(threshold):
        raise ValueError(f'threshold must be a number, got {threshold!r}')
    sweep = _Sweep(predictions, truth)
    totals = sweep.totals()
    for score, step_totals in sweep:
        if score < threshold:
            break
        totals = step_totals
    return _scores(totals)


def precision_recall_curve(predictions: Predictions, truth: Truth) -> List[ThresholdPoint]:
    """The scores at each distinct predicted score taken as the threshold, highest
    threshold first (empty when nothing is predicted)."""
    curve = []
    for score, totals in _Sweep(predictions, truth):
        scores = _scores(totals)
        curve.append(ThresholdPoint(score, scores.precision, scores.recall, scores.f1))
    return curve


def best_threshold(predictions: Predictions, truth: Truth) -> ThresholdPoint:
    """The point of the precision-recall curve with the highest F1; of equal ones, the
    one with the highest threshold."""
    curve = precision_recall_curve(predictions, truth)
    if not curve:
        raise ValueError('no predicted segments: there is no threshold to choose')
    return max(curve, key=lambda point: point.f1)  # max keeps the first of equals


class _Timeline:
    """One time axis of one pair: the union of its true intervals, fixed, and the union
    of its predicted intervals, which grows one interval at a time."""

    def __init__(self, true_intervals: Iterable[Interval]):
        merged = _union(true_intervals)
        self.true_starts = [start for start, _ in merged]
        self.true_ends = [end for _, end in merged]
        # True length before each true interval.
        self.true_before = list(accumulate((end - start for start, end in merged), initial=0.0))
        self.true_length = self.true_before[-1]
        self.starts: List[float] = []
        self.ends: List[float] = []

    def add(self, start: float, end: float) -> Tuple[float, float]:
        """Add a predicted interval; return how much the predicted length and its overlap
        with the truth grew."""
        if end <= start:
            return 0.0, 0.0
        first = bisect_left(self.ends, start)      # the first interval that ends at or after start
        stop = bisect_right(self.starts, end)      # past the last one that starts at or before end
        old_length = old_overlap = 0.0
        if first < stop:
            for old_start, old_end in zip(self.starts[first:stop], self.ends[first:stop]):
                old_length += old_end - old_start
                old_overlap += self._overlap(old_start, old_end)
            start, end = min(start, self.starts[first]), max(end, self.ends[stop - 1])
        self.starts[first:stop] = [start]
        self.ends[first:stop] = [end]
        return (end - start) - old_length, self._overlap(start, end) - old_overlap

    def _overlap(self, start: float, end: float) -> float:
        return self._true_before(end) - self._true_before(start)

    def _true_before(self, time: float) -> float:
        """True length before ``time``."""
        k = bisect_right(self.true_starts, time) - 1
        if k < 0:
            return 0.0
        return self.true_before[k] + min(time, self.true_ends[k]) - self.true_starts[k]


# Indices of the sums kept per axis.
_OVERLAP, _PREDICTED, _TRUE = range(3)


class _Sweep:
    """Adds the predictions best first; iterating yields, after each distinct score, that
    score and the sums so far: (query sums, target sums), each (overlap, predicted, true)."""

    def __init__(self, predictions: Predictions, truth: Truth):
        true_pairs = _check_truth(truth)
        self.ranked = sorted(_check_predictions(predictions), key=lambda item: -item[1].score)
        self.timelines = {pair: (_Timeline([(qs, qe) for qs, qe, _, _ in segments]),
                                 _Timeline([(ts, te) for _, _, ts, te in segments]))
                          for pair, segments in true_pairs.items()}
        self.sums = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
        for timelines in self.timelines.values():
            for axis, timeline in enumerate(timelines):
                self.sums[axis][_TRUE] += timeline.true_length

    def totals(self) -> Tuple[Tuple[float, float, float], Tuple[float, float, float]]:
        return tuple(self.sums[0]), tuple(self.sums[1])

    def __iter__(self) -> Iterator[Tuple[float, Tuple]]:
        for score, group in groupby(self.ranked, key=lambda item: item[1].score):
            for pair, segment in group:
                timelines = self.timelines.get(pair)
                if timelines is None:
                    timelines = self.timelines[pair] = (_Timeline(()), _Timeline(()))
                intervals = ((segment.query_start, segment.query_end), (segment.target_start, segment.target_end))
                for axis, (timeline, (start, end)) in enumerate(zip(timelines, intervals)):
                    added, overlap = timeline.add(start, end)
                    self.sums[axis][_PREDICTED] += added
                    self.sums[axis][_OVERLAP] += overlap
            yield score, self.totals()


def _scores(totals) -> SegmentScores:
    (query_precision, query_recall), (target_precision, target_recall) = (
        (_ratio(axis[_OVERLAP], axis[_PREDICTED]), _ratio(axis[_OVERLAP], axis[_TRUE])) for axis in totals)
    precision = query_precision * target_precision
    recall = query_recall * target_recall
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return SegmentScores(precision, recall, f1, query_precision, query_recall, target_precision, target_recall)


def _ratio(part: float, whole: float) -> float:
    # Sums of float lengths can leave the part a hair above the whole.
    return min(1.0, part / whole) if whole > 0 else 1.0


def _union(intervals: Iterable[Interval]) -> List[Interval]:
    """Sorted disjoint intervals covering the same time as ``intervals``."""
    merged: List[List[float]] = []
    for start, end in sorted(interval for interval in intervals if interval[1] > interval[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def _check_pair(pair, what: str) -> None:
    if not isinstance(pair, tuple) or len(pair) != 2:
        raise ValueError(f'{what} keys must be (query_id, target_id) tuples, got {pair!r}')


def _check_truth(truth: Truth) -> Dict[Tuple, List[Tuple[float, float, float, float]]]:
    if not isinstance(truth, dict):
        raise ValueError(f'truth must be a dict (query_id, target_id) -> [(qs, qe, ts, te), ...], '
                         f'got {type(truth).__name__}')
    checked = {}
    for pair, segments in truth.items():
        _check_pair(pair, 'truth')
        rows = []
        for segment in _as_list(segments, f'truth[{pair!r}]'):
            if isinstance(segment, (str, bytes)) or not isinstance(segment, Sequence) or len(segment) != 4:
                raise ValueError(f'truth[{pair!r}] holds {segment!r}, expected (qs, qe, ts, te) in seconds')
            if not all(not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
                       for value in segment):
                raise ValueError(f'truth[{pair!r}] holds {segment!r}: times must be finite numbers')
            qs, qe, ts, te = (float(value) for value in segment)
            if qe < qs or te < ts:
                raise ValueError(f'truth[{pair!r}] holds {segment!r}: an end is before its start')
            rows.append((qs, qe, ts, te))
        checked[pair] = rows
    return checked


def _check_predictions(predictions: Predictions) -> List[Tuple[Tuple, Segment]]:
    if not isinstance(predictions, dict):
        raise ValueError(f'predictions must be a dict (query_id, target_id) -> [Segment, ...], '
                         f'got {type(predictions).__name__}')
    items = []
    for pair, segments in predictions.items():
        _check_pair(pair, 'predictions')
        for segment in _as_list(segments, f'predictions[{pair!r}]'):
            if not isinstance(segment, Segment):
                # Any object with Segment's fields will do (another copy of this package's
                # Segment, say); building a Segment checks them.
                try:
                    segment = Segment(*(getattr(segment, name) for name in
                                        ('query_start', 'query_end', 'target_start', 'target_end', 'score')))
                except AttributeError:
                    raise ValueError(f'predictions[{pair!r}] holds {segment!r}, expected Segments') from None
            items.append((pair, segment))
    return items


def _as_list(segments, where: str) -> list:
    if isinstance(segments, (str, bytes, dict)) or not isinstance(segments, Iterable):
        raise ValueError(f'{where} must be a list of segments, got {type(segments).__name__}')
    return list(segments)
