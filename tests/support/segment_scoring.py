"""Copied-segment localization scored on a corpus with known copies: the frame
similarity matrices of its pairs, its ground truth, and the project's method against the
temporal network, each at its default settings, at its best on the corpus, and at the
settings tuned on another corpus."""
import importlib
import math
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from .measure import package

TIME_STEP = 1.0


def _localization():
    """The checkout's localization package (the package root imports it lazily)."""
    return importlib.import_module(f'{package().__name__}.localization')


Pair = Tuple[str, str]
Levels = Tuple[Optional[np.ndarray], Optional[np.ndarray]]


def fine_features(corpus, device: str = 'cpu') -> Dict[str, np.ndarray]:
    """The fg_att features of every video of the corpus, decoded at one frame a second.
    The weights in torch.hub's cache are used."""
    dns = package()
    decode = importlib.import_module(f'{dns.__name__}.video_decode').VideoDecoder(time_step=TIME_STEP)
    extractor = dns.DistillAndSelect('feature_extractor', device=device)
    student = dns.DistillAndSelect('fg_att_student', feature_extractor=None, device=device)
    return {str(p): student(extractor(decode(str(p)))) for p in [*corpus.sources, *corpus.hosts]}


def pair_matrices(corpus, fine: Dict[str, np.ndarray], device: str = 'cpu') -> Dict[Pair, np.ndarray]:
    """The fg_att frame-to-frame similarity matrix of every (source, host) pair."""
    student = package().DistillAndSelect('fg_att_student', feature_extractor=None, device=device)
    return {(str(s), str(h)): student.similarity_maps(fine[str(s)], fine[str(h)])[0]
            for s in corpus.sources for h in corpus.hosts}


def library_levels(corpus, fine: Dict[str, np.ndarray], device: str = 'cpu') -> Dict[Pair, Levels]:
    """The library levels of both videos of every (source, host) pair as `dns search
    --segments --segment-background on` gives them when the hosts are the library: every
    host other than the pair's own is background (the corpora hold fewer than
    BACKGROUND_VIDEOS)."""
    dns = package()
    segments = importlib.import_module(f'{dns.__name__}.retrieval.searching.segments')
    models = dns.DnS('att', device=device)
    background = {str(h): fine[str(h)] for h in corpus.hosts}
    out = {}
    for source in map(str, corpus.sources):
        query_matches = segments.background_matches_by_id(models, fine[source], background)
        for host in background:
            out[(source, host)] = segments.pair_levels(models, query_matches, fine[host], host, background)
    return out


def unrelated_similarities(rows: int, cols: int, correlation: float, rng: np.random.Generator) -> np.ndarray:
    """A simulated similarity matrix of two unrelated videos: 0.05 +- 0.05, as the fine
    students give unrelated frames, neighbouring frames alike on both axes (Gaussian
    correlation over ``correlation`` frames, cut at 3 of them, as within a shot; 0: none)."""
    z = rng.normal(0, 1, (rows, cols))
    if correlation:
        z = _smoothing(rows, correlation) @ z @ _smoothing(cols, correlation).T
        z /= z.std()
    return (0.05 + 0.05 * z).astype(np.float32)


def _smoothing(frames: int, correlation: float) -> np.ndarray:
    offsets = np.subtract.outer(np.arange(frames), np.arange(frames))
    return np.exp(-0.5 * (offsets / correlation) ** 2) * (np.abs(offsets) <= 3 * correlation)


def truth_of(corpus) -> Dict[Tuple[str, str], List[Tuple[float, float, float, float]]]:
    return {(q, t): [tuple(span) for span in spans] for q, targets in corpus.segments().items()
            for t, spans in targets.items()}


# The temporal network's parameters searched for its best on a corpus: the node
# threshold always; with ``wide`` also top-k and the longest step (VCSL's defaults, k 5
# and step 10, among them), otherwise those stay at VCSL's defaults.
TN_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))
TN_TOP_K = (3, 5, 10)
TN_MAX_STEP = (3, 5, 10)


@dataclass(frozen=True)
class TnParams:
    threshold: float
    top_k: int
    max_step: int

    def __str__(self) -> str:
        return f'node {self.threshold:.2f}, k {self.top_k}, step {self.max_step}'


@dataclass
class Result:
    """One method's segments (seconds) on every pair, at the settings it ran with."""
    settings: str
    scores: object                 # localization.SegmentScores
    found: Dict[Tuple[str, str], list]
    ms_per_pair: Optional[float]   # None: a re-cut of another run, not timed again


def _located(method, matrices) -> Tuple[Dict[Tuple[str, str], list], float]:
    start = time.perf_counter()
    found = {pair: [s.to_seconds(TIME_STEP) for s in method(sim)] for pair, sim in matrices.items()}
    return found, 1000 * (time.perf_counter() - start) / len(matrices)


def _aligned(matrices, levels: Optional[Dict[Pair, Levels]]) -> Tuple[Dict[Tuple[str, str], list], float]:
    """The local alignment's segments of every pair, all of them (no threshold), measured
    against the library where ``levels`` are given."""
    loc = _localization()
    start = time.perf_counter()
    found = {pair: [s.to_seconds(TIME_STEP) for s in
                    loc.find_segments(sim, threshold=None, **_levels_of(levels, pair))]
             for pair, sim in matrices.items()}
    return found, 1000 * (time.perf_counter() - start) / len(matrices)


def _levels_of(levels: Optional[Dict[Pair, Levels]], pair: Pair) -> dict:
    query, target = (None, None) if levels is None else levels[pair]
    return {'query_levels': query, 'target_levels': target}


def _kept(found, threshold: float):
    return {pair: [s for s in segments if s.score >= threshold] for pair, segments in found.items()}


def _temporal_network_runs(matrices, truth, wide: bool):
    """Every parameter set's segments, and the best set (highest F1; of equals, the
    highest node threshold, then the smallest k and step)."""
    loc = _localization()
    # The package exports the function under the submodule's name: import the module.
    module = importlib.import_module(f'{loc.__name__}.temporal_network')
    defaults = module.DEFAULT_TOP_K, module.DEFAULT_MAX_STEP
    runs = {}
    for k in TN_TOP_K if wide else defaults[:1]:
        for step in TN_MAX_STEP if wide else defaults[1:]:
            for t in TN_THRESHOLDS:
                params = TnParams(t, k, step)
                runs[params] = _located(lambda sim: loc.temporal_network(sim, t, top_k=k, max_step=step), matrices)
    f1 = {p: loc.segment_scores(found, truth).f1 for p, (found, _) in runs.items()}
    best = max(runs, key=lambda p: (f1[p], p.threshold, -p.top_k, -p.max_step))
    return runs, best


def tune(matrices, truth, wide: bool = True, levels: Optional[Dict[Pair, Levels]] = None) -> Tuple[float, TnParams]:
    """The settings of best F1 on one corpus, to be used on another: the local
    alignment's segment threshold (against the library where ``levels`` are given) and
    the temporal network's parameters (``wide``: node threshold, top-k and step;
    otherwise the node threshold only)."""
    loc = _localization()
    found, _ = _aligned(matrices, levels)
    return loc.best_threshold(found, truth).threshold, _temporal_network_runs(matrices, truth, wide)[1]


def alignment_results(matrices, truth, levels: Optional[Dict[Pair, Levels]] = None,
                      tuned_threshold: Optional[float] = None) -> Dict[str, Result]:
    """The local alignment on one corpus, against the library where ``levels`` are
    given: at its default threshold (``ours_default``), at its best on this data
    (``ours_best``) and at ``tuned_threshold`` (``ours_tuned``) if given."""
    loc = _localization()
    scores = loc.segment_scores
    found, ms = _aligned(matrices, levels)
    thresholds = {'ours_default': loc.alignment.DEFAULT_THRESHOLD,
                  'ours_best': loc.best_threshold(found, truth).threshold}
    if tuned_threshold is not None:
        thresholds['ours_tuned'] = tuned_threshold
    return {key: Result(f'{t:.3f}', scores(found, truth, t), _kept(found, t), None if key == 'ours_tuned' else ms)
            for key, t in thresholds.items()}


def compare(matrices, truth, tuned: Optional[Tuple[float, TnParams]] = None, wide: bool = False,
            levels: Optional[Dict[Pair, Levels]] = None) -> Dict[str, Result]:
    """Both methods on one corpus. The local alignment at its default threshold
    (``ours_default``) and at its best on this data (``ours_best``); the temporal network
    at its best parameters on this data (``tn_best``: the node threshold, and with
    ``wide`` also top-k and step), and with its segment scores thresholded at their best
    too (``tn_best_two``, generous to the baseline). With ``tuned`` (:func:`tune` on
    another corpus): both methods at those settings (``ours_tuned``, ``tn_tuned``). With
    ``levels`` (:func:`library_levels`), the local alignment measures against the library
    as search does."""
    loc = _localization()
    scores = loc.segment_scores
    results = alignment_results(matrices, truth, levels, None if tuned is None else tuned[0])
    runs, params = _temporal_network_runs(matrices, truth, wide)
    results['tn_best'] = Result(str(params), scores(runs[params][0], truth), *runs[params])
    cuts = {p: loc.best_threshold(f, truth) for p, (f, _) in runs.items() if any(f.values())}
    params = max(cuts, key=lambda p: (cuts[p].f1, p.threshold, -p.top_k, -p.max_step))
    cut = cuts[params].threshold
    results['tn_best_two'] = Result(f'{params}, score {cut:.3f}', scores(runs[params][0], truth, cut),
                                    _kept(runs[params][0], cut), None)
    if tuned is not None:
        params = tuned[1]
        if params not in runs:
            runs[params] = _located(lambda sim: loc.temporal_network(sim, params.threshold, top_k=params.top_k,
                                                                     max_step=params.max_step), matrices)
        results['tn_tuned'] = Result(str(params), scores(runs[params][0], truth), *runs[params])
    return results


def kind_scores(corpus, found) -> Dict[str, object]:
    """Segment scores per kind of inserted piece: each kind's true segments against the
    predictions of the pairs holding them (a pair with two kinds counts for both)."""
    loc = _localization()
    by_kind: Dict[str, Dict[Tuple[str, str], list]] = {}
    for insertion in corpus.insertions:
        pair = (str(insertion.source), str(insertion.host))
        by_kind.setdefault(insertion.kind, {}).setdefault(pair, []).append(tuple(insertion.segment()))
    return {kind: loc.segment_scores({pair: found.get(pair, []) for pair in truth}, truth)
            for kind, truth in by_kind.items()}


def coverage(found: List, span) -> float:
    """How much of one true segment the predictions of its pair cover: the covered
    fraction of its query span times that of its target span (the metric's recalls)."""
    pair = ('query', 'target')
    scores = _localization().segment_scores({pair: found}, {pair: [tuple(span)]})
    return scores.query_recall * scores.target_recall


@dataclass(frozen=True)
class Contrast:
    """How one inserted piece stands in the frame similarities: ``copy``, the mean over its
    source frames of each one's best match within a frame of where the host shows it;
    ``look_alike``, the higher of two means: its source frames' best matches in the hosts
    that hold nothing of that source, and its host frames' best matches in the other
    sources. No method that reads only these similarities can find a piece whose copy is
    no higher than its look-alikes without also finding them."""
    kind: str
    copy: float
    look_alike: float

    def stands_above(self, margin: float = 0.0) -> bool:
        """Whether the copy stands more than ``margin`` above its look-alikes."""
        return self.copy > self.look_alike + margin


def copy_contrast(corpus, matrices: Dict[Pair, np.ndarray]) -> List[Contrast]:
    """:class:`Contrast` of every inserted piece of ``corpus`` (frames every TIME_STEP s)."""
    holding: Dict[str, set] = {}
    for insertion in corpus.insertions:
        holding.setdefault(str(insertion.source), set()).add(str(insertion.host))
    out = []
    for insertion in corpus.insertions:
        source, host = str(insertion.source), str(insertion.host)
        sim = matrices[(source, host)]
        q0, q1, t0, t1 = (s / TIME_STEP for s in insertion.segment())
        rows = np.arange(int(np.floor(q0)), min(int(np.ceil(q1)), sim.shape[0]))
        cols = np.arange(int(np.floor(t0)), min(int(np.ceil(t1)), sim.shape[1]))
        if not len(rows) or not len(cols):
            raise ValueError(f'{insertion.kind} piece {insertion.segment()} lies outside its pair {sim.shape}')
        # Where the host shows each source frame, on the piece's own slope (a speed-up's too).
        shown = t0 + (rows - q0) * (t1 - t0) / (q1 - q0)
        centres = np.minimum(np.round(shown).astype(int), sim.shape[1] - 1)
        copy = [sim[r, max(0, c - 1):c + 2].max() for r, c in zip(rows, centres)]
        unrelated_hosts = [str(h) for h in corpus.hosts if str(h) not in holding[source]]
        other_sources = [str(s) for s in corpus.sources if str(s) != source]
        looks = [np.mean(np.max([matrices[(source, h)][rows].max(axis=1) for h in unrelated_hosts], axis=0))
                 if unrelated_hosts else -np.inf,
                 np.mean(np.max([matrices[(s, host)][:, cols].max(axis=0) for s in other_sources], axis=0))
                 if other_sources else -np.inf]
        out.append(Contrast(insertion.kind, float(np.mean(copy)), float(max(looks))))
    return out


def contrast_ceiling(corpus, contrasts: List[Contrast], margin: float = 0.0):
    """Segment scores (``localization.SegmentScores``) of an oracle that knows the truth
    but reads these similarities: for every piece whose copy stands more than ``margin``
    above its look-alikes (``contrasts``, :func:`copy_contrast`), exactly the frames
    sampled inside it (every TIME_STEP s from 0), in seconds as the methods report them;
    nothing else. No method on these similarities and this frame sampling is expected to
    do better."""
    loc = _localization()
    found: Dict[Pair, list] = {}
    for insertion, contrast in zip(corpus.insertions, contrasts, strict=True):
        pair = (str(insertion.source), str(insertion.host))
        found.setdefault(pair, [])
        if contrast.stands_above(margin):
            first_last = [math.ceil(s / TIME_STEP - 1e-9) for s in insertion.segment()]
            found[pair].append(loc.Segment(*first_last, 1.0).to_seconds(TIME_STEP))
    return loc.segment_scores(found, truth_of(corpus))
