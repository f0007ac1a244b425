"""`dns dedup` against the number of videos: an index of N short videos, each searched
against the others as `dns dedup` searches them (``retrieval.find_duplicates`` with the
package defaults: ``defaults.NEIGHBOURS`` nearest videos by coarse similarity, all of
them re-ranked by the fine student, clip candidates merged in, the index's threshold).

Per size, in fresh processes (the fill, then the dedup, so the dedup's peak RSS and
its opening of the index are its own): the time to fill the index (commits, then one
``VideoIndex.sync``: coarse vectors and clip windows), the dedup's wall time, that time
per video and per (video x neighbour) (which must level off as N grows: the work is N
searches of a bounded number of candidates), the dedup process's peak RSS, and the
index folder's size on disk. Past ``--searched`` videos (1,000) the dedup's searches of
that many videos drawn at random are run (``score_pairs(videos=...)``, each against the
whole index), and the whole dedup is their time a video times the videos.

The library: videos of ``FRAMES`` sampled frames (1 frame/s), fine features [20, 9,
512] made of shots drawn from a shared low-rank model plus the video's own tint (so
unrelated videos are as alike as footage of one kind is, as in scale.py and
service.py's long hosts), coarse vectors [1024] likewise. ``COPIES`` of the videos are
near copies of an earlier one: its fine features with a re-encode's noise, its coarse
vector moved a little (similarity about 0.9). Features and vectors are generated and
committed straight into the index, not extracted.

The models carry the deterministic timing weights (``common.use_timing_weights``),
so fine similarities, and so the pairs reported at the threshold, mean nothing: the
recall reported is that of the planted pairs among the candidates considered (the
copy's original within its video's ``NEIGHBOURS`` nearest by coarse similarity, and
the other way round), which is what the dedup's cost buys; the pairs over the
threshold are printed for the record only.

The second table times the one step whose cost a video grows with N, each video's
coarse neighbours: as dedup finds them (blocks of videos against all, from the
catalog's vectors) and as one Milvus Lite search a video found them before.

Time on 2 cores: 10^3 videos fill in 8 s and dedup in 70 s; 10^4 fill in 81 s and
their 1,000 searches take 161 s; 10^5 fill in 25 minutes (19 GB of fine features on
disk) and their searches take 194 s (docs/benchmarks.md, block dedup-scale). The
neighbour table takes some 3 minutes (10^5 vectors into Milvus Lite).

    .venv/bin/python benchmarks/dedup_scale.py [--sizes 1000 10000 100000] [--searched 1000] [--profile FILE] [--print-only]
"""
import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import benchmark_parser, in_fresh_process, machine, markdown_table, package, shot_frames, unit, update_benchmarks

FRAMES = 20          # sampled frames a video (1 frame/s)
DIMS = 512
COARSE_DIMS = 1024
LOW_RANK = 48        # dimensions of the shared model of shots
COPIES = 0.01        # fraction of the videos that are near copies of another
COMMIT_REPORT = 1000  # progress line every so many commits
NEIGHBOUR_VIDEOS = 5000   # videos whose neighbours are timed (blocks of them) a size
MILVUS_SEARCHES = 40
SEARCHED = 1000    # past this many videos, the dedup's searches of this many (a random sample) are run


def main():
    parser = benchmark_parser()
    parser.add_argument('--sizes', type=int, nargs='*', default=[1000, 10_000, 100_000])
    parser.add_argument('--searched', type=int, default=SEARCHED,
                        help='videos whose dedup searches are run at a size larger than this (a random sample); '
                             'at this size or smaller, the whole dedup')
    parser.add_argument('--neighbour-sizes', type=int, nargs='*', default=[1000, 10_000, 100_000],
                        help='sizes at which to time finding one video\'s coarse neighbours alone')
    parser.add_argument('--profile', metavar='FILE',
                        help='run the dedup of the last size under cProfile and write its stats to FILE')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    package()
    if args.worker:
        return worker(json.loads(args.worker))
    from distill_and_select import defaults
    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix='dns-dedup-scale-') as tmp:
            folder = Path(tmp) / 'index'
            filled = child({'step': 'fill', 'size': size, 'folder': str(folder)})
            disk = sum(f.stat().st_size for f in folder.rglob('*') if f.is_file())
            profile = args.profile if size == args.sizes[-1] else None
            done = child({'step': 'dedup', 'size': size, 'folder': str(folder), 'profile': profile,
                          'searched': args.searched})
        per_video = done['seconds'] / done['searched']
        whole = (f'{done["seconds"]:.0f}' if done['searched'] == size
                 else f'{per_video * size:,.0f} ({done["searched"]:,} searched)')
        rows.append([f'{size:,}', f'{filled["seconds"]:,.0f}', whole,
                     f'{done["cpu"] / done["seconds"]:.2f}',
                     f'{1000 * per_video:.1f}', f'{1e6 * per_video / defaults.NEIGHBOURS:.0f}',
                     f'{done["rss_mb"] / 1024:.2f}', f'{disk / 2 ** 30:.2f}',
                     f'{done["recall"]}/{done["planted"]}', f'{done["pairs"]:,}'])
        print(' | '.join(rows[-1]), flush=True)
    header = ['videos', 'fill (s)', 'dedup (s)', 'cores busy', 'dedup per video (ms)',
              'per (video x neighbour) (us)', 'peak RSS of the dedup (GB)', 'disk (GB)',
              'planted pairs among the candidates', 'pairs over the threshold']
    markdown = (f'`dns dedup` with its defaults ({defaults.NEIGHBOURS} neighbours a video, re-rank '
                f'{defaults.DEDUP_RERANK:g}, clip candidates {"on" if defaults.CLIPS else "off"}, threshold '
                f'{defaults.COPY_THRESHOLD:g}) on indexes of videos of {FRAMES} frames (1 frame/s, fine features '
                f'{defaults.FINE_DTYPE[defaults.FINE_STUDENT]}), {COPIES:.0%} of them near copies of another; '
                'features generated and committed straight into the index; one fresh process fills it, another '
                f'dedups. Past {args.searched:,} videos, the dedup\'s searches of {args.searched:,} videos drawn at '
                'random are run (`score_pairs(videos=...)`, each against the whole index) and the whole dedup is '
                'their time a video times the videos. Deterministic test weights: the pairs over the threshold '
                'mean nothing, the planted pairs are counted among the candidates the dedup considers (both '
                f'directions, from the searched videos). {machine()}.\n\n' + markdown_table(header, rows)) if rows else ''
    if args.neighbour_sizes:
        markdown += ('\n\n' if markdown else '') + neighbour_table(args.neighbour_sizes)
    print(markdown)
    if not args.print_only:
        update_benchmarks('dedup-scale', markdown)


def child(job: dict) -> dict:
    """One step in a fresh process: its peak RSS is its own, and opening is cold."""
    return in_fresh_process(__file__, job)


def neighbour_table(sizes) -> str:
    """The one step whose cost a video grows with N: its coarse neighbours, as dedup
    finds them (``dedup.CoarseNeighbours``, blocks of videos against all) and as one
    Milvus Lite search a video (FLAT, how the coarse collection is searched) found them."""
    from distill_and_select import defaults
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix='dns-dedup-neighbours-') as tmp:
            got = child({'step': 'neighbours', 'size': size, 'folder': tmp})
        rows.append([f'{size:,}', f'{got["blocks"]:.2f}', f'{got["blocks"] * size / 1000:.0f}',
                     f'{got["milvus"]:.1f}', f'{got["milvus"] * size / 1000:,.0f}'])
        print(' | '.join(rows[-1]), flush=True)
    return (f'Each video\'s {defaults.NEIGHBOURS} nearest by coarse similarity alone (random unit vectors of '
            f'{COARSE_DIMS} dimensions; the Milvus Lite figure from {MILVUS_SEARCHES} searches):\n\n' +
            markdown_table(['videos', 'dedup\'s blocks, per video (ms)', 'all videos (s)',
                            'a Milvus Lite search per video (ms)', 'all videos (s)'], rows))


# --- the library
def _planted(size: int, seed: int = 1) -> dict:
    """copy -> original: the videos that are near copies of an earlier one."""
    rng = np.random.default_rng(seed)
    copies = rng.choice(np.arange(1, size), max(1, int(COPIES * size)), replace=False)
    return {int(c): int(rng.integers(0, c)) for c in sorted(copies)}


class Library:
    """Video after video, the fine features and coarse vector of each (made on demand:
    10^4 videos' features are 3.7 GB as float32)."""

    def __init__(self, size: int, seed: int = 0):
        self.size, self.planted = size, _planted(size)
        rng = np.random.default_rng(12345)
        self.fine_basis = rng.standard_normal((LOW_RANK, DIMS)).astype(np.float32) / np.sqrt(LOW_RANK)
        self.coarse_basis = rng.standard_normal((LOW_RANK, COARSE_DIMS)).astype(np.float32) / np.sqrt(LOW_RANK)
        self.seed = seed
        self._kept = {}   # originals of copies still to come

    def videos(self):
        wanted = set(self.planted.values())
        for i in range(self.size):
            rng = np.random.default_rng([self.seed, i])
            if i in self.planted:
                fine, coarse = self._kept[self.planted[i]]
                # A re-encode's noise: frames and vector stay close to the original's.
                fine = unit(fine + 0.3 * rng.standard_normal(fine.shape).astype(np.float32) / np.sqrt(DIMS))
                coarse = unit(coarse + 0.5 * rng.standard_normal(COARSE_DIMS).astype(np.float32)
                               / np.sqrt(COARSE_DIMS))
            else:
                fine, coarse = self._video(rng)
            if i in wanted:
                self._kept[i] = (fine, coarse)
            yield i, fine, coarse

    def _video(self, rng):
        frames = shot_frames(rng, self.fine_basis, FRAMES)
        coarse = (rng.standard_normal(LOW_RANK).astype(np.float32) @ self.coarse_basis
                  + rng.standard_normal(COARSE_DIMS).astype(np.float32)) / np.sqrt(COARSE_DIMS)
        return frames, unit(coarse)


def _path(folder: Path, i: int) -> str:
    return str(folder.parent / f'v{i:06d}.mp4')


def _sha(i: int) -> str:
    return f'{i:064x}'


# --- the steps
def worker(job: dict) -> None:
    folder, size = Path(job['folder']), job['size']
    if job['step'] == 'neighbours':
        print(json.dumps(neighbours(folder, size)))
        return
    if job['step'] == 'fill':
        print(json.dumps({'seconds': fill(folder, size)}))
        return
    from common import use_timing_weights
    from distill_and_select import defaults
    from distill_and_select.core import DnS
    from distill_and_select.retrieval import VideoIndex
    from distill_and_select.retrieval.searching.dedup import CoarseNeighbours, score_pairs
    use_timing_weights()
    with VideoIndex(folder) as index:
        dns = DnS(index.settings.fine, device='cpu')    # as `dns dedup` makes them, its defaults
        ids = index.catalog.video_ids()
        searched = ids if size <= job['searched'] else sorted(
            np.random.default_rng(7).choice(ids, job['searched'], replace=False).tolist())
        start, cpu_start = time.perf_counter(), time.process_time()
        run = lambda: score_pairs(index, dns, videos=None if searched is ids else searched)  # noqa: E731
        if job.get('profile'):
            import cProfile
            profiler = cProfile.Profile()
            scored = profiler.runcall(run)
            profiler.dump_stats(job['profile'])
        else:
            scored = run()
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_start   # all threads: under 1 core busy means others shared the CPU
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        recall = planted = 0
        nearest = CoarseNeighbours(index, searched)   # where the dedup's candidates start
        asked = set(searched)
        for copy, original in _planted(size).items():
            for a, b in ((copy, original), (original, copy)):
                if _sha(a) in asked:
                    planted += 1
                    recall += _sha(b) in {video_id for video_id, _ in nearest.hits(_sha(a), defaults.NEIGHBOURS)}
    print(json.dumps({'seconds': seconds, 'cpu': cpu, 'rss_mb': rss, 'recall': recall, 'planted': planted,
                      'pairs': len(scored.pairs), 'searched': len(searched)}))


def neighbours(folder: Path, size: int) -> dict:
    from distill_and_select import defaults
    from distill_and_select.retrieval.searching.dedup import CoarseNeighbours
    from distill_and_select.retrieval.storage.vector_store import CoarseVectors
    rng = np.random.default_rng(0)
    vectors = unit(rng.standard_normal((size, COARSE_DIMS)).astype(np.float32))
    ids = [_sha(i) for i in range(size)]

    class Catalog:   # what CoarseNeighbours reads of an index
        @staticmethod
        def coarse_vectors():
            return ids, vectors
    found = CoarseNeighbours(type('Index', (), {'catalog': Catalog})(), ids)
    start, done = time.perf_counter(), 0
    while done < min(size, NEIGHBOUR_VIDEOS):
        found.hits(ids[done], defaults.NEIGHBOURS)
        done += found.rows    # a block a call: the others of its block are answered
    blocks = (time.perf_counter() - start) / min(done, size)
    milvus = CoarseVectors(str(folder / 'milvus.db'), 'coarse', lite=True)
    for first in range(0, size, 5000):
        milvus.upsert(ids[first:first + 5000], vectors[first:first + 5000])
    milvus.flush()
    milvus.search(vectors[0], defaults.NEIGHBOURS)   # loaded
    start = time.perf_counter()
    for i in range(MILVUS_SEARCHES):
        milvus.search(vectors[i], defaults.NEIGHBOURS)
    searched = (time.perf_counter() - start) / MILVUS_SEARCHES
    milvus.close()
    return {'blocks': 1000 * blocks, 'milvus': 1000 * searched}


def fill(folder: Path, size: int) -> float:
    """Commit ``size`` generated videos, then sync, as `dns index` ends; the seconds it took."""
    from distill_and_select.core import VideoRepresentation
    from distill_and_select.retrieval import VideoIndex
    start = time.perf_counter()
    with VideoIndex(folder, create=True) as index:
        for i, fine, coarse in Library(size).videos():
            index.commit(_path(folder, i), _sha(i), VideoRepresentation(fine, coarse, 0.5))
            if (i + 1) % COMMIT_REPORT == 0:
                print(f'{i + 1} committed, {time.perf_counter() - start:.0f} s', file=sys.stderr, flush=True)
        index.sync()
    return time.perf_counter() - start


if __name__ == '__main__':
    main()
