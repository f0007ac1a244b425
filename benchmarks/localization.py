"""Copied-segment localization against the field's baseline, on the same similarity
matrices: the project's local alignment (``find_segments``) at its default threshold,
and the temporal network (Tan et al. 2009, as VCSL and Towhee's operator run it) at the
threshold that is best for it on this very data.

The data: the partial-copy corpus of ``tests/corpus.py`` (pieces of 3 source videos
inserted into 9 longer hosts: plain, re-encoded, cropped with a logo, flipped, sped up,
picture in picture, several pieces in one host, hosts with none), every (source, host)
pair, fg_att frame similarities of the test model whose similarities mean something
(``tests/copy_model.py``: PCA fitted on real frames, uniform attention, identity
comparator). Precision, recall and F1 of the predicted seconds on both timelines
(``localization.metrics``). Updates the README's table.

    .venv/bin/python benchmarks/localization.py [--no-readme]
"""
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from common import benchmark_parser, machine, markdown_table, package, update_readme

TIME_STEP = 1.0
TN_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def pair_matrices(corpus, device: str = 'cpu') -> Dict[Tuple[str, str], np.ndarray]:
    """The fg_att frame-to-frame similarity matrix of every (source, host) pair, from the
    videos decoded at one frame a second. The weights in torch.hub's cache are used."""
    dns = package()
    decode = __import__(f'{dns.__name__}.video_decode', fromlist=['VideoDecoder']).VideoDecoder(time_step=TIME_STEP)
    extractor = dns.DistillAndSelect('feature_extractor', device=device)
    student = dns.DistillAndSelect('fg_att_student', feature_extractor=None, device=device)
    fine = {str(p): student(extractor(decode(str(p)))) for p in [*corpus.sources, *corpus.hosts]}
    return {(str(s), str(h)): student.similarity_maps(fine[str(s)], fine[str(h)])[0]
            for s in corpus.sources for h in corpus.hosts}


def truth_of(corpus) -> Dict[Tuple[str, str], List[Tuple[float, float, float, float]]]:
    return {(q, t): [tuple(span) for span in spans] for q, targets in corpus.segments().items()
            for t, spans in targets.items()}


def ours(matrices, threshold=None):
    """Predictions (seconds) of find_segments on every pair, and the seconds it took."""
    find_segments = package().localization.find_segments
    start = time.perf_counter()
    found = {pair: [s.to_seconds(TIME_STEP) for s in find_segments(sim, threshold=threshold)]
             for pair, sim in matrices.items()}
    return found, time.perf_counter() - start


def temporal_network(matrices, threshold: float):
    tn = package().localization.temporal_network
    start = time.perf_counter()
    found = {pair: [s.to_seconds(TIME_STEP) for s in tn(sim, threshold)] for pair, sim in matrices.items()}
    return found, time.perf_counter() - start


def compare(matrices, truth) -> dict:
    """Every figure of the comparison, by method."""
    loc = package().localization
    default = loc.alignment.DEFAULT_THRESHOLD
    all_found, seconds = ours(matrices)
    at_default = loc.segment_scores(all_found, truth, threshold=default)
    best = loc.best_threshold(all_found, truth)
    figures = {'ours_default': (default, at_default, seconds),
               'ours_best': (best.threshold, loc.segment_scores(all_found, truth, threshold=best.threshold),
                             seconds)}
    tn_runs = []
    for threshold in TN_THRESHOLDS:
        found, tn_seconds = temporal_network(matrices, threshold)
        tn_runs.append((threshold, found, loc.segment_scores(found, truth), tn_seconds))
    threshold, found, scores, tn_seconds = max(tn_runs, key=lambda run: (run[2].f1, run[0]))
    figures['tn_best'] = (threshold, scores, tn_seconds)
    # The baseline's best also over a threshold on its own segment scores: generous to it.
    node_threshold, found_two, cut = max(
        ((t, f, loc.best_threshold(f, truth)) for t, f, _, _ in tn_runs if any(f.values())),
        key=lambda run: (run[2].f1, run[0]))
    figures['tn_best_two'] = ((node_threshold, cut.threshold),
                              loc.segment_scores(found_two, truth, threshold=cut.threshold), None)
    figures['found_at_default'] = {pair: [s for s in segments if s.score >= default]
                                   for pair, segments in all_found.items()}
    figures['tn_found'] = found
    return figures


def coverage(found: List, span) -> float:
    """How much of one true segment the predictions of its pair cover: the covered
    fraction of its query span times that of its target span."""
    qs, qe, ts, te = span
    def covered(intervals, a, b):
        total, reach = 0.0, a
        for s, e in sorted(intervals):
            s, e = max(s, reach), min(e, b)
            if e > s:
                total, reach = total + e - s, e
        return total / (b - a)
    return (covered([(s.query_start, s.query_end) for s in found], qs, qe)
            * covered([(s.target_start, s.target_end) for s in found], ts, te))


def main():
    parser = benchmark_parser(device=True)
    parser.add_argument('--corpus', help='a folder to build (or reuse) the partial-copy corpus in')
    args = parser.parse_args()
    from common import use_copy_model  # the weights that make localization measurable
    use_copy_model()
    from corpus import make_partial_corpus
    with tempfile.TemporaryDirectory() as tmp:
        corpus = make_partial_corpus(Path(args.corpus or tmp) / 'partial')
        start = time.perf_counter()
        matrices = pair_matrices(corpus, args.device)
        print(f'{len(matrices)} pairs extracted and compared in {time.perf_counter() - start:.1f} s')
        truth = truth_of(corpus)
        figures = compare(matrices, truth)
    rows = []
    names = {'ours_default': 'local alignment (this project), default threshold',
             'ours_best': 'local alignment, its best threshold on this data',
             'tn_best': 'temporal network, its best threshold on this data',
             'tn_best_two': 'temporal network, best node and segment-score thresholds'}
    for key, name in names.items():
        threshold, scores, seconds = figures[key]
        if key == 'tn_best_two':
            threshold = f'{threshold[0]:.2f} / {threshold[1]:.3f}'
        else:
            threshold = f'{threshold:.3f}'
        timing = '' if seconds is None else f'{1000 * seconds / len(matrices):.1f}'
        rows.append([name, threshold, f'{scores.precision:.3f}', f'{scores.recall:.3f}', f'{scores.f1:.3f}',
                     timing])
        print(f'{name}: threshold {threshold}, precision {scores.precision:.3f}, recall {scores.recall:.3f}, '
              f'F1 {scores.f1:.3f}' + (f', {timing} ms/pair' if timing else ''))
    table = markdown_table(['method', 'threshold', 'precision', 'recall', 'F1', 'ms per pair'], rows)
    kinds = []
    for insertion in corpus.insertions:
        pair = (str(insertion.source), str(insertion.host))
        span = (insertion.query_start, insertion.query_end, insertion.target_start, insertion.target_end)
        kinds.append([insertion.kind, f'{insertion.query_end - insertion.query_start:g} s',
                      f'{coverage(figures["found_at_default"].get(pair, []), span):.2f}',
                      f'{coverage(figures["tn_found"].get(pair, []), span):.2f}'])
    kind_table = markdown_table(['inserted piece', 'length', 'covered: local alignment (default)',
                                 'covered: temporal network (its best)'], kinds)
    print(kind_table)
    if not args.no_readme:
        update_readme('localization', f'{table}\n\n{kind_table}\n\n{len(matrices)} pairs ({len(corpus.sources)} '
                      f'sources x {len(corpus.hosts)} hosts, {len(corpus.insertions)} inserted pieces), frames '
                      f'sampled every {TIME_STEP:g} s; "covered" is the fraction of a true segment found on both '
                      f'timelines (query x target). {args.device}: {machine()}.')


if __name__ == '__main__':
    main()
