"""Where a default search's time goes as the library grows in videos: a 1-minute query
searched with every setting at its default (`dns search`'s and the service's path,
``retrieval.search``) in libraries of five-minute videos, one torch thread as the
service gives each request.

The clip store's own cost against the number of windows is ``benchmarks/scale.py``'s;
this one follows the rest of a search, which grows with the number of candidates rather
than with the library: the coarse search in Milvus, the clip candidates, the selector
over the candidates, reading the fine features of those the fine student compares and
the comparisons themselves (the top ``--rerank`` fraction of the video-level candidates
whole, each clip candidate on its copied part). Past ``--candidates`` videos (1,000) the
number of comparisons stops growing, so a library of a few thousand videos shows what a
search costs at any size above it.

Library: videos of 300 frames (1 frame/s), each frame 9 region vectors of 512
dimensions, drawn as shots from a shared low-rank model (``common.shot_frames``),
committed straight into a real index (fine features stored as float16, coarse vectors,
then one sync: Milvus Lite for the coarse vectors, the clip windows' files). The query:
frames 100 to 160 of the first video with noise, and a coarse vector near that video's.
Deterministic test weights (timings do not depend on weight values; which candidates the
selector picks does, not how many). Per size: the fill, the search's p50 over repeats,
and per stage its time and count. Writes block ``search-cost`` of docs/benchmarks.md.

    .venv/bin/python benchmarks/search_cost.py [--videos 100 1000] [--print-only]
"""
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from common import benchmark_parser, machine, markdown_table, shot_frames, unit, update_benchmarks, use_timing_weights

FRAMES = 300          # a five-minute video at 1 frame/s
QUERY = (100, 160)    # the query's frames of the first video: one minute
REPEATS = 5
LOW_RANK = 48
# The settings beside the defaults: the two levers on the number of fine comparisons.
BESIDE = ({'candidates': 100}, {'rerank': 0.02})


def main():
    parser = benchmark_parser()
    parser.add_argument('--videos', type=int, nargs='+', default=[100, 1000])
    args = parser.parse_args()
    use_timing_weights()
    import torch
    torch.set_num_threads(1)   # as the service runs each request
    rows = []
    for videos in args.videos:
        with tempfile.TemporaryDirectory(prefix='dns-search-cost-') as tmp:
            start = time.perf_counter()
            index, query = library(Path(tmp) / 'index', videos)
            fill = time.perf_counter() - start
            disk = sum(f.stat().st_size for f in Path(tmp).rglob('*') if f.is_file())
            for settings in ({}, *BESIDE):
                total, stages = timed_search(index, query, settings)
                rows.append(row(videos, fill, disk, settings, total, stages))
                print(' | '.join(rows[-1]), flush=True)
            index.close()
    from distill_and_select import defaults
    header = ['videos', 'fill (s)', 'disk (GB)', 'settings', 'search p50 (ms)', 'coarse search (ms)',
              'clip candidates (ms)', 'selector (ms)', 'fine features read (ms, videos)',
              'fine comparisons (ms, calls / pairs)', 'other (ms)']
    text = (markdown_table(header, rows) + '\n\n'
            f'A 1-minute query ({QUERY[1] - QUERY[0]} frames) in libraries of five-minute videos ({FRAMES} frames '
            f'each), in process with one torch thread (as the service gives each request); defaults: candidates '
            f'{defaults.CANDIDATES}, re-rank {defaults.RERANK}, clip search on. p50 of {REPEATS} searches after a '
            f'warm-up; the stages are the same searches\' sums divided by {REPEATS}. Fine features generated and '
            f'committed straight into the index. Deterministic test weights. {machine()}')
    print(text)
    if not args.print_only:
        update_benchmarks('search-cost', text)


def library(folder: Path, videos: int, seed: int = 0):
    """A real index of ``videos`` generated five-minute videos, synced; and the query."""
    from distill_and_select.core import VideoRepresentation
    from distill_and_select.retrieval import VideoIndex
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((LOW_RANK, 512)).astype(np.float32) / np.sqrt(LOW_RANK)
    index = VideoIndex(folder, create=True)
    first = None
    for v in range(videos):
        fine = shot_frames(rng, basis, FRAMES)
        coarse = unit(rng.standard_normal(1024).astype(np.float32))
        index.commit(str(folder.parent / f'video{v:05d}.mp4'), f'{v:064x}', VideoRepresentation(fine, coarse, 0.5))
        if first is None:
            first = (fine, coarse)
    index.sync()
    fine, coarse = first
    piece = fine[QUERY[0]:QUERY[1]] + 0.3 * rng.standard_normal((QUERY[1] - QUERY[0], 9, 512)).astype(np.float32) \
        / np.sqrt(512)
    near = coarse + 0.05 * rng.standard_normal(1024).astype(np.float32) / np.sqrt(1024)
    return index, VideoRepresentation(unit(piece).astype(np.float32), unit(near), 0.5)


def timed_search(index, query, settings: dict):
    """p50 of the search (ms) and, per stage, (ms per search, calls per search, items per
    search), from the stages' functions wrapped for the timing."""
    from distill_and_select import DnS
    from distill_and_select.retrieval.searching import search as search_module
    models = DnS(index.settings.fine, device='cpu')
    spent = defaultdict(float)
    counts = defaultdict(int)
    items = defaultdict(int)

    def wrap(owner, name, stage, size=lambda args, out: 0):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            out = original(*args, **kwargs)
            spent[stage] += time.perf_counter() - start
            counts[stage] += 1
            items[stage] += size(args, out)
            return out
        setattr(owner, name, timed)
        return original

    vectors = index.vectors()
    saved = [(search_module, 'selector_scores', wrap(search_module, 'selector_scores', 'selector')),
             (search_module, 'fine_similarity', wrap(search_module, 'fine_similarity', 'fine',
                                                    lambda a, out: np.size(out))),
             (search_module, '_with_clip_candidates', wrap(search_module, '_with_clip_candidates', 'clips')),
             (vectors, 'search', wrap(vectors, 'search', 'coarse')),
             (index, 'fine_features', wrap(index, 'fine_features', 'read', lambda a, out: 1))]
    try:
        search_module.search(index, models, query, **settings)   # warm-up
        for stage in list(spent):
            spent[stage], counts[stage], items[stage] = 0.0, 0, 0
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            search_module.search(index, models, query, **settings)
            times.append(time.perf_counter() - start)
    finally:
        for owner, name, original in saved:
            if owner is index or owner is vectors:
                delattr(owner, name)   # the instance's wrapper goes; the class's method shows again
            else:
                setattr(owner, name, original)
    total = statistics.median(times)
    stages = {stage: (1000 * spent[stage] / REPEATS, counts[stage] / REPEATS, items[stage] / REPEATS)
              for stage in ('coarse', 'clips', 'selector', 'read', 'fine')}
    # The clip candidates' time includes the coarse similarities it computes, not the coarse search.
    stages['other'] = (1000 * sum(times) / REPEATS - sum(ms for ms, _, _ in stages.values()), 0, 0)
    return 1000 * total, stages


def row(videos, fill, disk, settings, total, stages) -> list:
    shown = ', '.join(f'{k} {v}' for k, v in settings.items()) or 'defaults'
    read, fine = stages['read'], stages['fine']
    return [f'{videos:,}', f'{fill:.0f}', f'{disk / 2 ** 30:.2f}', shown, f'{total:.0f}',
            f'{stages["coarse"][0]:.0f}', f'{stages["clips"][0]:.0f}', f'{stages["selector"][0]:.0f}',
            f'{read[0]:.0f} ({read[2]:.0f})', f'{fine[0]:.0f} ({fine[1]:.0f} / {fine[2]:.0f})',
            f'{stages["other"][0]:.0f}']


if __name__ == '__main__':
    main()
