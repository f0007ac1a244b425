"""DnS retrieval on the test corpus (originals, 8 kinds of copies, unrelated videos):
where each kind of copy ranks at re-rank fractions 0, 0.1 (the default) and 1, every other
setting at its default (clip candidates included), indexing and search
times, and the effect of storing fg_att features as float16. Writes its table into docs/benchmarks.md.

    .venv/bin/python benchmarks/retrieval.py [--originals 3] [--unrelated 3]
"""
import tempfile
import time
from pathlib import Path

import numpy as np

from common import benchmark_parser, machine, markdown_table, package, update_benchmarks, use_timing_weights

FRACTIONS = (0.0, 0.1, 1.0)


def main():
    parser = benchmark_parser(device=False)
    parser.add_argument('--originals', type=int, default=3)
    parser.add_argument('--unrelated', type=int, default=3)
    args = parser.parse_args()
    use_timing_weights()
    package()
    from support.corpus import COPY_KINDS, make_corpus
    from distill_and_select import DnS
    from distill_and_select.core import fine_similarity
    from distill_and_select.retrieval import VideoIndex, add_file, search
    from distill_and_select.retrieval.storage import fine_store

    with tempfile.TemporaryDirectory() as tmp:
        corpus = make_corpus(Path(tmp) / 'videos', originals=args.originals, unrelated=args.unrelated)
        index = VideoIndex(Path(tmp) / 'index', create=True, fine='att')
        models = DnS(index.settings.fine, device='cpu')
        start = time.perf_counter()
        frames = sum(add_file(index, str(p), models).frames for p in corpus.all_videos())
        index_s = time.perf_counter() - start
        index.vectors()  # connect outside the search timings

        ranks = {(kind, f): [] for kind in COPY_KINDS for f in FRACTIONS}
        search_s = {f: [] for f in FRACTIONS}
        for original in corpus.originals:
            query = index.representation(index.video_id_of(original))
            for fraction in FRACTIONS:
                t = time.perf_counter()
                matches = search(index, models, query, k=None, rerank=fraction, exclude_paths=[str(original)])
                search_s[fraction].append(time.perf_counter() - t)
                paths = [m.path for m in matches]
                for kind, path in corpus.copies[original].items():
                    ranks[(kind, fraction)].append(paths.index(str(path)) + 1)

        videos, total = len(index), len(corpus.all_videos())
        per_frame = {dtype: fine_store.encoded_size(1, dtype) for dtype in ('float32', 'float16', 'bits')}
        index.close()

    # float16 against float32 storage, on features computed afresh in float32.
    with tempfile.TemporaryDirectory() as tmp:
        corpus16 = make_corpus(Path(tmp) / 'videos', originals=1, unrelated=args.unrelated)
        index32 = VideoIndex(Path(tmp) / 'i32', create=True, fine='att', fine_dtype='float32')
        for p in corpus16.all_videos():
            add_file(index32, str(p), models)
        reps = [index32.representation(index32.video_id_of(p)) for p in corpus16.all_videos()]
        half = [r.fine.astype(np.float16).astype(np.float32) for r in reps]
        diffs = [np.abs(fine_similarity(models.fine_student, r.fine, [x.fine for x in reps])
                        - fine_similarity(models.fine_student, h, half)).max() for r, h in zip(reps, half)]
        fp16_diff = float(max(diffs))
        index32.close()

    from distill_and_select import defaults
    rows = [[kind] + [f'{np.mean(ranks[(kind, f)]):.1f}' for f in FRACTIONS] for kind in COPY_KINDS]
    header = ['copy kind'] + [f'mean rank, re-rank {f:g}{" (default)" if f == defaults.RERANK else ""}'
                              for f in FRACTIONS]
    print(markdown_table(header, rows))
    timing = (f'{total} files ({videos} distinct contents, {frames} frames at 1 frame/s) indexed in {index_s:.1f} s '
              f'({total / index_s:.1f} videos/s, feature extraction included); search at the default '
              f'--candidates ({defaults.CANDIDATES}: every video of this index, and the clip candidates), '
              'query representation given: ' + ', '.join(f're-rank {f:g}: {1000 * np.mean(search_s[f]):.0f} ms'
                                                         for f in FRACTIONS) + '.')
    storage = (f'Fine features on disk per frame: fg_att float32 {per_frame["float32"]} B, float16 '
               f'{per_frame["float16"]} B (the default), fg_bin {per_frame["bits"]} B. float16 storage changes '
               f'fg_att similarities by at most {fp16_diff:.1e} (all pairs of a {len(corpus16.all_videos())}-video '
               'corpus).')
    print(timing)
    print(storage)
    if not args.print_only:
        update_benchmarks('retrieval', '\n\n'.join([
            markdown_table(header, rows),
            f'{args.originals} originals, each with its {len(COPY_KINDS)} copies, and {args.unrelated} unrelated videos; a perfect ranking puts the {len(COPY_KINDS)} copies at ranks 1 to {len(COPY_KINDS)}. '
            'Deterministic test weights, not the published ones.',
            timing, storage, machine()]))


if __name__ == '__main__':
    main()
