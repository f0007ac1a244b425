"""Copied-segment localization scored on a corpus with known copies: the frame
similarity matrices of its pairs, its ground truth, and the project's method against the
temporal network, each at its default and at its best threshold."""
import importlib
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from .measure import package

TIME_STEP = 1.0
TN_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def pair_matrices(corpus, device: str = 'cpu') -> Dict[Tuple[str, str], np.ndarray]:
    """The fg_att frame-to-frame similarity matrix of every (source, host) pair, from the
    videos decoded at one frame a second. The weights in torch.hub's cache are used."""
    dns = package()
    decode = importlib.import_module(f'{dns.__name__}.video_decode').VideoDecoder(time_step=TIME_STEP)
    extractor = dns.DistillAndSelect('feature_extractor', device=device)
    student = dns.DistillAndSelect('fg_att_student', feature_extractor=None, device=device)
    fine = {str(p): student(extractor(decode(str(p)))) for p in [*corpus.sources, *corpus.hosts]}
    return {(str(s), str(h)): student.similarity_maps(fine[str(s)], fine[str(h)])[0]
            for s in corpus.sources for h in corpus.hosts}


def truth_of(corpus) -> Dict[Tuple[str, str], List[Tuple[float, float, float, float]]]:
    return {(q, t): [tuple(span) for span in spans] for q, targets in corpus.segments().items()
            for t, spans in targets.items()}


@dataclass
class Result:
    """One method's segments (seconds) on every pair, at the threshold(s) it ran with."""
    threshold: str
    scores: object                 # localization.SegmentScores
    found: Dict[Tuple[str, str], list]
    ms_per_pair: Optional[float]   # None: a re-cut of another run, not timed again


def _located(method, matrices) -> Tuple[Dict[Tuple[str, str], list], float]:
    start = time.perf_counter()
    found = {pair: [s.to_seconds(TIME_STEP) for s in method(sim)] for pair, sim in matrices.items()}
    return found, 1000 * (time.perf_counter() - start) / len(matrices)


def _kept(found, threshold: float):
    return {pair: [s for s in segments if s.score >= threshold] for pair, segments in found.items()}


def compare(matrices, truth) -> Dict[str, Result]:
    """The local alignment at its default threshold and at its best on this data; the
    temporal network at its best node threshold, and at its best node and segment-score
    thresholds together (generous to the baseline)."""
    loc = package().localization
    scores = loc.segment_scores
    default = loc.alignment.DEFAULT_THRESHOLD
    found, ms = _located(lambda sim: loc.find_segments(sim, threshold=None), matrices)
    best = loc.best_threshold(found, truth).threshold
    results = {'ours_default': Result(f'{default:.3f}', scores(found, truth, default), _kept(found, default), ms),
               'ours_best': Result(f'{best:.3f}', scores(found, truth, best), _kept(found, best), ms)}
    runs = {t: _located(lambda sim: loc.temporal_network(sim, t), matrices) for t in TN_THRESHOLDS}
    t = max(runs, key=lambda t: (scores(runs[t][0], truth).f1, t))
    results['tn_best'] = Result(f'{t:.2f}', scores(runs[t][0], truth), *runs[t])
    cuts = {t: loc.best_threshold(f, truth) for t, (f, _) in runs.items() if any(f.values())}
    t = max(cuts, key=lambda t: (cuts[t].f1, t))
    cut = cuts[t].threshold
    results['tn_best_two'] = Result(f'{t:.2f} / {cut:.3f}', scores(runs[t][0], truth, cut), _kept(runs[t][0], cut),
                                    None)
    return results


def coverage(found: List, span) -> float:
    """How much of one true segment the predictions of its pair cover: the covered
    fraction of its query span times that of its target span (the metric's recalls)."""
    pair = ('query', 'target')
    scores = package().localization.segment_scores({pair: found}, {pair: [tuple(span)]})
    return scores.query_recall * scores.target_recall
