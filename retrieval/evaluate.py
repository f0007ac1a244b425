"""Evaluation of an index against a labelled sample, and the thresholds it implies.

- The paper's accuracy/cost curve: mAP and the time per query at re-rank fractions
  from 0% to 100%.
- Copy decisions: precision and recall of "score >= threshold" over every (query,
  indexed video) pair, and the threshold of best F1.
- With segment ground truth, copied segments: precision and recall of the predicted
  seconds on both timelines (``localization.metrics``), and the threshold of best F1.

Ground truth, paths absolute or relative to the ground-truth file's folder; either the
positives (copies) of each query::

    {"queries/a.mp4": ["db/a_copy.mp4", "db/a_cropped.mp4"], ...}

or the copied segments of each (query, target) pair, in seconds, half-open::

    {"queries/a.mp4": {"db/a_copy.mp4": [[12, 40, 63, 91], [50, 55, 0, 5]]}, ...}

whose targets are the query's positives. A query that is itself in the index is left
out of its own ranking (its other files with the same content are not). Positives that
are not in the index are reported and left out; so are queries left with no positive.
"""
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..localization import Segment, ThresholdPoint, best_threshold, precision_recall_curve, segment_scores
from .storage.index import VideoIndex
from ..core import DnS, VideoRepresentation
from .ingestion.ingest import query_representation
from .searching.segments import locate_copies
from .searching.search import search

log = logging.getLogger(__name__)
DEFAULT_FRACTIONS = tuple(round(0.05 * i, 2) for i in range(21))
# Copy decisions are measured on the scores dedup uses: every pair re-ranked.
DECISION_RERANK = 1.0
Span = Tuple[float, float, float, float]


@dataclass
class CurvePoint:
    fraction: float
    mean_ap: float
    seconds_per_query: float


@dataclass
class GroundTruth:
    """Absolute query path -> absolute positive paths, and (segment ground truth only)
    absolute query path -> absolute target path -> true segments in seconds."""
    positives: Dict[str, List[str]]
    segments: Optional[Dict[str, Dict[str, List[Span]]]] = None


@dataclass
class DecisionReport:
    """Precision, recall and F1 of copy decisions (pairs, or seconds of segments) at the
    threshold in use, at the threshold of best F1, and over every threshold."""
    current: ThresholdPoint
    best: ThresholdPoint
    curve: List[ThresholdPoint] = field(default_factory=list)
    axes: Dict[str, float] = field(default_factory=dict)  # segments: per-axis precision and recall
    micro_ap: Optional[float] = None  # segments: the Video Similarity Challenge matching track's micro-AP


def load_ground_truth(path: Union[str, os.PathLike]) -> GroundTruth:
    """Read either form of ground truth (see the module's docstring)."""
    path = Path(path)
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f'cannot read the ground truth {path}: {error}') from error
    base = path.parent

    def resolve(p: str) -> str:
        return os.path.abspath(p if os.path.isabs(p) else base / p)
    if isinstance(content, dict) and content and all(isinstance(t, dict) for t in content.values()):
        segments = {resolve(q): {resolve(t): _spans(path, q, t, spans) for t, spans in targets.items()}
                    for q, targets in content.items()}
        return GroundTruth({q: list(targets) for q, targets in segments.items()}, segments)
    if not isinstance(content, dict) or not all(
            isinstance(q, str) and isinstance(p, list) and all(isinstance(x, str) for x in p)
            for q, p in content.items()):
        raise ValueError(f'{path}: expected a JSON object mapping each query path to a list of positive paths, '
                         'or to an object mapping each target path to its segments [[qs, qe, ts, te], ...]')
    return GroundTruth({resolve(q): [resolve(p) for p in positives] for q, positives in content.items()})


def _spans(path: Path, query: str, target: str, spans) -> List[Span]:
    where = f'{path}: the segments of {query!r} in {target!r}'
    if not isinstance(spans, list):
        raise ValueError(f'{where} must be a list of [query_start, query_end, target_start, target_end]')
    out = []
    for span in spans:
        if (not isinstance(span, list) or len(span) != 4
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                           for x in span)):
            raise ValueError(f'{where}: expected [query_start, query_end, target_start, target_end] in seconds, '
                             f'got {span!r}')
        qs, qe, ts, te = map(float, span)
        if not (0 <= qs < qe and 0 <= ts < te):
            raise ValueError(f'{where}: a segment needs 0 <= start < end on both videos, got {span!r}')
        out.append((qs, qe, ts, te))
    return out


def average_precision(ranked: Sequence[str], positives: set) -> float:
    """AP of a ranking: mean over positives of the precision at each one's rank; a
    positive missing from the ranking counts as found at no rank (precision 0)."""
    if not positives:
        return 0.0
    hits, total = 0, 0.0
    for rank, item in enumerate(ranked, 1):
        if item in positives:
            hits += 1
            total += hits / rank
    return total / len(positives)


def represent_queries(index: VideoIndex, dns: DnS,
                      queries: Iterable[str]) -> Dict[str, VideoRepresentation]:
    """Each query's representation: stored if indexed, else extracted, once for every
    evaluation below (pass it as ``representations``)."""
    return {query: query_representation(index, query, dns) for query in queries}


def _represented(index, dns, queries, representations) -> Dict[str, VideoRepresentation]:
    """``representations`` with the ``queries`` it lacks made. A dict is filled in place,
    so evaluations that share one make each query once, and only the queries they use."""
    if not isinstance(representations, dict):
        representations = dict(representations or {})
    for query in queries:
        if query not in representations:
            representations[query] = query_representation(index, query, dns)
    return representations


def evaluate(index: VideoIndex, dns: DnS, ground_truth: Union[GroundTruth, Dict[str, List[str]]],
             fractions: Sequence[float] = DEFAULT_FRACTIONS, candidates: Optional[int] = None,
             representations: Optional[Mapping[str, VideoRepresentation]] = None) -> List[CurvePoint]:
    """mAP and mean seconds per query (search only: the query's own representation is
    made once, before timing) at each re-rank fraction."""
    indexed = _indexed_positives(index, ground_truth)
    representations = _represented(index, dns, indexed, representations)
    index.vectors()  # connect once, outside the timings
    curve = []
    for fraction in fractions:
        aps, seconds = [], 0.0
        for query, positives in indexed.items():
            start = time.perf_counter()
            matches = search(index, dns, representations[query], k=None, rerank=fraction,
                             candidates=candidates, exclude_paths=[query])
            seconds += time.perf_counter() - start
            abspaths = [os.path.abspath(m.path) for m in matches]
            aps.append(average_precision(abspaths, positives))
        curve.append(CurvePoint(fraction, float(np.mean(aps)), seconds / max(len(indexed), 1)))
    return curve


def evaluate_copies(index: VideoIndex, dns: DnS, ground_truth: Union[GroundTruth, Dict[str, List[str]]],
                    candidates: Optional[int] = None,
                    representations: Optional[Mapping[str, VideoRepresentation]] = None) -> DecisionReport:
    """Copy decisions over every (query, indexed video) pair, at the scores ``dns dedup``
    uses (every pair re-ranked): the index's threshold, and the threshold of best F1."""
    indexed = _indexed_positives(index, ground_truth)
    representations = _represented(index, dns, indexed, representations)
    scored: List[Tuple[float, bool]] = []
    for query, positives in indexed.items():
        matches = search(index, dns, representations[query], k=None, rerank=DECISION_RERANK,
                         candidates=candidates, exclude_paths=[query])
        scored += [(m.score, os.path.abspath(m.path) in positives) for m in matches]
    total = sum(len(p) for p in indexed.values())
    curve = _decision_curve(scored, total)
    current = index.thresholds().copy
    return DecisionReport(_at(scored, total, current), max(curve, key=lambda p: (p.f1, p.threshold)), curve)


def evaluate_segments(index: VideoIndex, dns: DnS, ground_truth: GroundTruth,
                      candidates: Optional[int] = None,
                      representations: Optional[Mapping[str, VideoRepresentation]] = None,
                      segment_background: Optional[bool] = None) -> DecisionReport:
    """Copied segments of every (query, indexed video) pair against the true segments:
    precision and recall of the predicted seconds on both timelines, at the index's
    segment threshold and at the threshold of best F1; measured against the library too
    with ``segment_background`` (None: as the index was calibrated)."""
    if ground_truth.segments is None:
        raise ValueError('segment evaluation needs segment ground truth: {query: {target: [[qs, qe, ts, te], ...]}}')
    _indexed_positives(index, ground_truth)  # reports what is missing
    truth = {(q, t): spans for q, targets in ground_truth.segments.items() for t, spans in targets.items()}
    representations = _represented(index, dns, ground_truth.segments, representations)
    predictions: Dict[Tuple[str, str], List[Segment]] = {}
    for query in ground_truth.segments:
        representation = representations[query]
        matches = search(index, dns, representation, k=None, rerank=0, candidates=candidates,
                         exclude_paths=[query])
        found = locate_copies(index, dns, representation, {m.video_id for m in matches}, all_found=True,
                                background=segment_background)
        for m in matches:
            if found.get(m.video_id):
                predictions[(query, os.path.abspath(m.path))] = found[m.video_id]
    current = index.thresholds().segment
    at = segment_scores(predictions, truth, threshold=current)
    curve = precision_recall_curve(predictions, truth)
    # With nothing found there is no threshold to choose: the one in use stands.
    best = best_threshold(predictions, truth) if predictions else ThresholdPoint(current, at.precision, at.recall,
                                                                                  at.f1)
    axes = {'query_precision': at.query_precision, 'query_recall': at.query_recall,
            'target_precision': at.target_precision, 'target_recall': at.target_recall}
    from ..localization.matching_ap import matching_micro_ap
    return DecisionReport(ThresholdPoint(current, at.precision, at.recall, at.f1), best, curve, axes,
                          matching_micro_ap(predictions, truth))


def _decision_curve(scored: List[Tuple[float, bool]], total_positives: int) -> List[ThresholdPoint]:
    """One point per distinct score, thresholds descending: decisions 'score >= t'."""
    ordered = sorted(scored, key=lambda x: -x[0])
    curve, hits = [], 0
    for n, (score, positive) in enumerate(ordered, 1):
        hits += positive
        if n == len(ordered) or ordered[n][0] != score:
            curve.append(_point(score, hits, n, total_positives))
    return curve


def _at(scored: List[Tuple[float, bool]], total_positives: int, threshold: float) -> ThresholdPoint:
    kept = [positive for score, positive in scored if score >= threshold]
    return _point(threshold, sum(kept), len(kept), total_positives)


def _point(threshold: float, hits: int, predicted: int, positives: int) -> ThresholdPoint:
    precision = hits / predicted if predicted else 1.0
    recall = hits / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ThresholdPoint(float(threshold), precision, recall, f1)


def _indexed_positives(index: VideoIndex, ground_truth) -> Dict[str, set]:
    positives_of = ground_truth.positives if isinstance(ground_truth, GroundTruth) else ground_truth
    indexed = {}
    for query, positives in positives_of.items():
        found = [p for p in positives if index.video_id_of(p) is not None]
        for missing in sorted(set(positives) - set(found)):
            log.warning('positive %s of query %s is not in the index; left out', missing, query)
        if found:
            indexed[query] = set(found)
        else:
            log.warning('query %s has no positive in the index; left out of the mAP', query)
    if not indexed:
        raise ValueError('no query of the ground truth has a positive in the index')
    return indexed


def plot_curve(curve: Sequence[CurvePoint], path: Union[str, os.PathLike]) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fractions = [100 * p.fraction for p in curve]
    fig, left = plt.subplots(figsize=(6.4, 4))
    left.plot(fractions, [p.mean_ap for p in curve], 'o-', color='tab:blue')
    left.set_xlabel('pairs re-ranked by the fine-grained student (%)')
    left.set_ylabel('mAP', color='tab:blue')
    right = left.twinx()
    right.plot(fractions, [1000 * p.seconds_per_query for p in curve], 's--', color='tab:orange')
    right.set_ylabel('ms per query', color='tab:orange')
    left.set_title('DnS: accuracy and cost against the re-ranked fraction')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_precision_recall(reports: Dict[str, DecisionReport], path: Union[str, os.PathLike]) -> None:
    """Precision against recall over the thresholds, each report's threshold in use and
    best threshold marked."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for (name, report), colour in zip(reports.items(), ('tab:blue', 'tab:green')):
        ax.plot([p.recall for p in report.curve], [p.precision for p in report.curve], '-', color=colour,
                label=f'{name}: best F1 {report.best.f1:.3f} at {report.best.threshold:.3f}')
        ax.plot([report.best.recall], [report.best.precision], 'o', color=colour)
        ax.plot([report.current.recall], [report.current.precision], 'x', color=colour, markersize=9,
                label=f'{name}: F1 {report.current.f1:.3f} at the threshold in use ({report.current.threshold:.3f})')
    ax.set_xlabel('recall')
    ax.set_ylabel('precision')
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc='lower left')
    ax.set_title('DnS copy decisions: precision and recall over the threshold')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
