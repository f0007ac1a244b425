"""Draw docs/clip-search.png: how clip search turns window hits into a candidate video.

Synthetic fine features (no model needed): 12 indexed videos of 4 minutes; the query
is 16 s of video 5 from 130 s on, with noise as an edit adds. The windows, the exact
nearest-neighbour search, the normalisation and the offset votes are the package's own
(retrieval/searching/clips); only the search runs in numpy instead of Milvus.

    .venv/bin/python tools/draw_clip_search.py [--out docs/clip-search.png]
"""
import argparse
import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tests'))
from support.checkout import import_checkout  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', default=str(ROOT / 'docs' / 'clip-search.png'))
    args = parser.parse_args()
    package = import_checkout()
    from importlib import import_module
    windows = import_module(f'{package.__name__}.retrieval.storage.clip_windows')
    voting = import_module(f'{package.__name__}.retrieval.searching.clips.voting')

    rng = np.random.default_rng(3)
    videos = {f'video {i}': rng.standard_normal((240, 9, 512)).astype(np.float32) for i in range(12)}
    # Scenes: frames of a scene share much of their content, as real frames do.
    for fine in videos.values():
        for start in range(0, 240, 12):
            fine[start:start + 12] += 1.5 * rng.standard_normal((1, 9, 512)).astype(np.float32)
    host, at, length = 'video 5', 130, 16
    query = videos[host][at:at + length] + 1.2 * rng.standard_normal((length, 9, 512)).astype(np.float32)

    spec = windows.DEFAULT_SPEC
    owners, starts, vectors = [], [], []
    for name, fine in videos.items():
        s, v = windows.pooled_windows(fine, spec)
        owners += [name] * len(s)
        starts.append(s)
        vectors.append(v)
    owners, starts, vectors = np.array(owners), np.concatenate(starts), np.concatenate(vectors)
    q_starts, q_vectors = windows.pooled_windows(query, spec, stride=1)
    settings = voting.VotingSettings()
    sims = q_vectors @ vectors.T
    order = np.argsort(-sims, axis=1)[:, :settings.search_limit]
    hits = [voting.WindowHits(float(a), owners[o].tolist(), starts[o].astype(float).tolist(), sims[r, o].tolist())
            for r, (a, o) in enumerate(zip(q_starts, order))]
    votes = voting.vote(hits, settings)

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={'width_ratios': [1.1, 1]})
    colours = {name: plt.cm.tab20(i % 20) for i, name in enumerate(videos)}
    for h in hits:
        margins = voting.normalise(np.asarray(h.similarities), settings.background_rank)[:settings.hits_per_window]
        for video, start, margin in zip(h.videos, h.starts, margins):
            if margin > 0:
                left.scatter(h.query_start, start, s=20 + 400 * margin, color=colours[video],
                             edgecolor='k' if video == host else 'none', linewidth=0.6, alpha=0.8)
    left.set_xlabel('query window start (s)')
    left.set_ylabel('start of the hit window in its video (s)')
    left.set_title(f'Hits above each query window\'s background\n(dot size: margin; outlined: {host})')
    left.axhline(at, color='grey', lw=0.5, ls=':')

    bin_s = settings.bin_seconds
    for v in votes[:6]:
        totals = {}
        for h in hits:
            m = voting.normalise(np.asarray(h.similarities), settings.background_rank)[:settings.hits_per_window]
            best = {}  # one vote per query window and bin: its best hit there
            for video, start, margin in zip(h.videos, h.starts, m):
                if video == v.video_id and margin > 0:
                    b = np.floor((start - h.query_start) / bin_s)
                    best[b] = max(best.get(b, 0), margin)
            for b, margin in best.items():
                totals[b] = totals.get(b, 0) + margin
        right.bar(np.array(list(totals)) * bin_s + bin_s / 2, list(totals.values()), width=bin_s * 0.9,
                  color=colours[v.video_id], alpha=0.8, label=f'{v.video_id}: score {v.score:.2f}')
    right.set_xlabel('offset: video time - query time (s), bins of %g s' % bin_s)
    right.set_ylabel('summed margin (votes)')
    right.set_title('Votes along the offset line: the copy\'s run stands out')
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f'{args.out}: {votes[0].video_id} first, offset {votes[0].offset:g} s (true {at} s)')


if __name__ == '__main__':
    main()
