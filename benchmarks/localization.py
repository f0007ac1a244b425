"""Copied-segment localization against the field's baseline, on the same similarity
matrices: the project's local alignment (``find_segments``) at its default threshold,
and the temporal network (Tan et al. 2009, as VCSL and Towhee's operator run it) at the
threshold that is best for it on this very data.

The data: the partial-copy corpus of ``tests/support/corpus.py`` (pieces of 3 source videos
inserted into 9 longer hosts: plain, re-encoded, cropped with a logo, flipped, sped up,
picture in picture, several pieces in one host, hosts with none), every (source, host)
pair, fg_att frame similarities of the test model whose similarities mean something
(``tests/support/copy_model.py``: PCA fitted on real frames, uniform attention, identity
comparator). Precision, recall and F1 of the predicted seconds on both timelines
(``localization.metrics``). Writes its table into docs/benchmarks.md.

    .venv/bin/python benchmarks/localization.py [--print-only]
"""
import importlib
import tempfile
import time
from pathlib import Path
from typing import Dict

import numpy as np
import torch

from common import ROOT, benchmark_parser, machine, markdown_table, package, update_benchmarks
from support.segment_scoring import TIME_STEP, compare, coverage, pair_matrices, truth_of  # noqa: E402

def hour_long_pair(frames: int = 3600) -> Dict[str, float]:
    """Seconds each method takes on one pair of 1-hour videos at 1 frame/s: unrelated
    frames (similarity 0.05 +- 0.05) with three copied pieces of 60 to 300 frames."""
    loc = package().localization
    rng = np.random.default_rng(0)
    sim = rng.normal(0.05, 0.05, (frames, frames)).astype(np.float32)
    for q0, t0, n in ((100, 2000, 300), (1500, 400, 120), (3000, 3300, 60)):
        sim[np.arange(q0, q0 + n), np.arange(t0, t0 + n)] = 0.6
    out = {}
    for name, method in (('local alignment', lambda: loc.find_segments(sim)),
                         ('temporal network', lambda: loc.temporal_network(sim, 0.35))):
        start = time.perf_counter()
        assert len(method()) >= 3
        out[name] = time.perf_counter() - start
    return out


def draw_busiest_pair(corpus, matrices, out_path) -> None:
    """`dns show`'s heatmaps of the (source, host) pair with the most inserted pieces."""
    from collections import Counter
    dns = package()
    source, host = Counter((i.source, i.host) for i in corpus.insertions).most_common(1)[0][0]
    sim = matrices[(str(source), str(host))]
    found = dns.localization.find_segments(sim)
    show = importlib.import_module(f'{dns.__name__}.retrieval.show')
    student = dns.DistillAndSelect('fg_att_student', feature_extractor=None)
    with torch.inference_mode():
        cells = student.model.visil_head(torch.from_numpy(sim)[None, None]).clamp(-1, 1)[0, 0].numpy()
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    # The video similarity is the Chamfer similarity of the comparator's output.
    show.plot_pair(sim, cells, float(cells.max(axis=1).mean()), found, source.name, host.name, TIME_STEP, 'att',
                   out_path)
    print(f'{source.name} in {host.name}: {len(found)} segments drawn in {out_path}')


def main():
    parser = benchmark_parser(device=True)
    parser.add_argument('--corpus', help='a folder to build (or reuse) the partial-copy corpus in')
    parser.add_argument('--picture', default=str(ROOT / 'docs' / 'segments.png'),
                        help='where to draw the pair with the most inserted pieces, its segments in red '
                        '(default: docs/segments.png, shown in the README)')
    args = parser.parse_args()
    from common import use_copy_model  # the weights that make localization measurable
    use_copy_model()
    from support.corpus import make_partial_corpus
    with tempfile.TemporaryDirectory() as tmp:
        corpus = make_partial_corpus(Path(args.corpus or tmp) / 'partial')
        start = time.perf_counter()
        matrices = pair_matrices(corpus, args.device)
        print(f'{len(matrices)} pairs extracted and compared in {time.perf_counter() - start:.1f} s')
        truth = truth_of(corpus)
        results = compare(matrices, truth)
        if not args.print_only:
            draw_busiest_pair(corpus, matrices, args.picture)
    names = {'ours_default': 'local alignment (this project), default threshold',
             'ours_best': 'local alignment, its best threshold on this data',
             'tn_best': 'temporal network, its best threshold on this data',
             'tn_best_two': 'temporal network, best node and segment-score thresholds'}
    rows = []
    for key, name in names.items():
        r = results[key]
        timing = '' if r.ms_per_pair is None else f'{r.ms_per_pair:.1f}'
        rows.append([name, r.threshold, f'{r.scores.precision:.3f}', f'{r.scores.recall:.3f}', f'{r.scores.f1:.3f}',
                     timing])
        print(f'{name}: threshold {r.threshold}, precision {r.scores.precision:.3f}, recall '
              f'{r.scores.recall:.3f}, F1 {r.scores.f1:.3f}' + (f', {timing} ms/pair' if timing else ''))
    table = markdown_table(['method', 'threshold', 'precision', 'recall', 'F1', 'ms per pair'], rows)
    kinds = []
    for insertion in corpus.insertions:
        pair = (str(insertion.source), str(insertion.host))
        span = (insertion.query_start, insertion.query_end, insertion.target_start, insertion.target_end)
        kinds.append([insertion.kind, f'{insertion.query_end - insertion.query_start:g} s',
                      f'{coverage(results["ours_default"].found.get(pair, []), span):.2f}',
                      f'{coverage(results["tn_best"].found.get(pair, []), span):.2f}'])
    kind_table = markdown_table(['inserted piece', 'length', 'covered: local alignment (default)',
                                 'covered: temporal network (its best)'], kinds)
    print(kind_table)
    hour = hour_long_pair()
    hour_line = ('One pair of 1-hour videos (3,600 x 3,600 frames, three copied pieces): ' +
                 ', '.join(f'{name} {seconds:.2f} s' for name, seconds in hour.items()) + '.')
    print(hour_line)
    if not args.print_only:
        update_benchmarks('localization', f'{table}\n\n{kind_table}\n\n{len(matrices)} pairs ({len(corpus.sources)} '
                      f'sources x {len(corpus.hosts)} hosts, {len(corpus.insertions)} inserted pieces), frames '
                      f'sampled every {TIME_STEP:g} s; "covered" is the fraction of a true segment found on both '
                      f'timelines (query x target). {hour_line} {args.device}: {machine()}.')


if __name__ == '__main__':
    main()
