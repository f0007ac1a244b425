"""Clip search against the size of the library: a clip store grown to 10^4, 10^5 (and,
asked for, 10^6) windows, searched with queries of 10 s, 1 min and 10 min. ``auto`` is
the embedded default: the windows in files of the index folder searched with faiss,
FLAT or HNSW over 8-bit codes by size, filled as ``ClipIndex.sync`` fills it (a flush
every 64 videos, the graph made by the flush that finds the size, so the fill includes
its build). The other types are Milvus Lite collections of that index type, where the
windows were kept before. Queries take their windows as ``ClipIndex.query_windows``
does (every frame up to ``QUERY_WINDOWS``, then spread). Per size and index type: the
time to fill the store, a fresh process's time to open and load it (what every `dns
search` pays), search p50 / p99 per query length (the store's search and the votes, as
`ClipIndex.candidates` runs them), the process's peak RSS, the folder's size on disk,
and the recall of the planted copies' hosts (within the first 2 voted videos) against
exact search of the same vectors with NumPy.

The library: windows of 512 dimensions, 1,800 an hour of video (3-frame windows every
2 frames at 1 frame/s), videos of 5 minutes (150 windows). Windows are generated, not
extracted (10^6 windows are 555 hours of video): each video is a sequence of shots (4
to 10 windows), a shot a direction drawn from a shared low-rank model (so unrelated
videos are as alike as footage of one kind is) plus the video's own tint, and the
windows of a shot drift slowly. The printed statistics (a window's best similarity in
other videos; the 32nd neighbour, which clip voting takes as the background) say how
alike the library is. Copies: for each query, a piece of it is planted in one host, with
noise as a re-encode gives (similarity about 0.9 to the query's windows).

    .venv/bin/python benchmarks/scale.py [--sizes 10000 100000] [--types auto FLAT HNSW] [--print-only]
"""
import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from common import benchmark_parser, in_fresh_process, machine, markdown_table, package, unit, update_benchmarks

DIMS = 512
VIDEO_WINDOWS = 150            # a 5-minute video
QUERY_SECONDS = (10, 60, 600)
PLANTED = 8                    # copies planted, one query each per length
REPEATS = {10: 9, 60: 5, 600: 3}
RANK = 2                       # a planted host counts as found within the first RANK voted videos
LOW_RANK = 48                  # dimensions of the shared model of shots
SYNC_VIDEOS = 64               # videos a flush, as `ClipIndex.sync` writes them
TYPES = {   # 'auto': the default, FLAT or HNSW by size (defaults.CLIP_HNSW_FROM, CLIP_HNSW_BUILD, CLIP_HNSW_SEARCH)
    'auto': ({}, {}),
    'FLAT': ({}, {}),
    'HNSW': ({'M': 16, 'efConstruction': 128}, {'ef': 64}),
    'IVF_SQ8': ({'nlist': 1024}, {'nprobe': 16}),
}


def main():
    parser = benchmark_parser()
    parser.add_argument('--sizes', type=int, nargs='+', default=[10_000, 100_000])
    parser.add_argument('--types', nargs='+', default=['auto'], choices=sorted(TYPES))
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    package()
    if args.worker:
        return worker(json.loads(args.worker))
    from distill_and_select import defaults
    rows, stats = [], {}
    for size in args.sizes:
        for index_type in args.types:
            with tempfile.TemporaryDirectory(prefix='dns-scale-') as tmp:
                built = child({'step': 'build', 'size': size, 'type': index_type, 'folder': tmp})
                searched = child({'step': 'search', 'size': size, 'type': index_type, 'folder': tmp})
                disk = sum(f.stat().st_size for f in Path(tmp).rglob('*') if f.is_file())
            stats[size] = built['stats']
            shown = f'auto: {searched["index_type"]}' if index_type == 'auto' else index_type
            row = [f'{size:,}', f'{size / 1800:,.0f}', shown, f'{built["seconds"]:.0f}',
                   f'{searched["open"]:.1f}']
            for seconds in QUERY_SECONDS:
                times = searched['times'][str(seconds)]
                row.append(f'{1000 * np.percentile(times, 50):.0f} / {1000 * np.percentile(times, 99):.0f}')
            row += [f'{searched["rss_mb"] / 1024:.2f}', f'{disk / 2 ** 30:.2f}',
                    f'{searched["recall"]}/{searched["exact_recall"]}']
            rows.append(row)
            print(' | '.join(row), flush=True)
    header = ['windows', 'hours', 'index', 'fill (s)', 'open + load (s)'] + \
             [f'search {s} s query, p50 / p99 (ms)' for s in QUERY_SECONDS] + \
             ['peak RSS of the search (GB)', 'disk (GB)', f'planted hosts in the first {RANK}: index / exact']
    notes = '; '.join(f'{size:,} windows: best similarity in another video {s["best"]:.3f} (median), '
                      f'32nd neighbour {s["background"]:.3f}' for size, s in stats.items())
    markdown = (f'Clip windows of 512 dimensions, {PLANTED} planted copies a query length; index parameters: '
                + '; '.join(
                    f'auto (the default: files of the index folder, faiss): FLAT under {defaults.CLIP_HNSW_FROM:,} '
                    f'windows, then HNSW over 8-bit codes {defaults.CLIP_HNSW_BUILD} search '
                    f'{defaults.CLIP_HNSW_SEARCH}, an exact tail of up to {defaults.CLIP_TAIL_LIMIT:,} windows'
                    if t == 'auto' else
                    f'{t} on Milvus Lite {TYPES[t][0] or "-"} search {TYPES[t][1] or "-"}' for t in args.types) +
                f'. Library statistics: {notes}. {machine()}.\n\n' + markdown_table(header, rows))
    print(markdown)
    if not args.print_only:
        update_benchmarks('scale', markdown)


def child(job: dict) -> dict:
    """One step in a fresh process: its peak RSS is its own, and opening is cold."""
    return in_fresh_process(__file__, job)


# --- the library
def _queries(size: int, seed: int = 1):
    """Per (query seconds, number): the query's windows (one at every frame; a search
    takes those of :func:`_query_windows`), the host
    video a piece of it is planted in, where, and the planted windows."""
    rng = np.random.default_rng(seed)
    basis = _basis()
    videos = -(-size // VIDEO_WINDOWS)
    out = {}
    for seconds in QUERY_SECONDS:
        windows = seconds - 2          # 3-frame windows at every frame of the query
        for p in range(PLANTED):
            query = _video(rng, basis, windows)
            host = int(rng.integers(0, videos))
            piece = min(windows, 30)   # 30 s of the query (all of a shorter one) are in the host
            at_query = int(rng.integers(0, windows - piece + 1))
            at_host = int(rng.integers(0, VIDEO_WINDOWS - piece // 2))
            # The host's windows start every 2 frames: it holds every second query window,
            # with the noise of a re-encode (similarity about 0.9).
            planted = query[at_query:at_query + piece:2]
            planted = unit(planted + 0.45 * rng.standard_normal(planted.shape).astype(np.float32) / np.sqrt(DIMS))
            out[(seconds, p)] = (query, host, at_host, planted)
    return out


def _library(size: int, queries, seed: int = 0) -> np.ndarray:
    """[size, 512] window vectors, video after video, with the planted pieces."""
    rng = np.random.default_rng(seed)
    basis = _basis()
    videos = -(-size // VIDEO_WINDOWS)
    vectors = np.empty((videos * VIDEO_WINDOWS, DIMS), np.float32)
    for v in range(videos):
        vectors[v * VIDEO_WINDOWS:(v + 1) * VIDEO_WINDOWS] = _video(rng, basis, VIDEO_WINDOWS)
    for _, host, at_host, planted in queries.values():
        first = host * VIDEO_WINDOWS + at_host
        n = min(len(planted), VIDEO_WINDOWS - at_host)
        vectors[first:first + n] = planted[:n]
    return vectors[:size]


def _ids(size: int):
    return [f'v{i // VIDEO_WINDOWS:07d}' for i in range(size)], [2 * (i % VIDEO_WINDOWS) for i in range(size)]


def _basis() -> np.ndarray:
    return np.random.default_rng(12345).standard_normal((LOW_RANK, DIMS)).astype(np.float32)


def _video(rng, basis, windows: int) -> np.ndarray:
    tint = rng.standard_normal(DIMS).astype(np.float32) / np.sqrt(DIMS)
    out, i = np.empty((windows, DIMS), np.float32), 0
    while i < windows:
        length = int(rng.integers(4, 11))
        shot = rng.standard_normal(LOW_RANK).astype(np.float32) @ basis / np.sqrt(LOW_RANK * DIMS)
        own = rng.standard_normal(DIMS).astype(np.float32) / np.sqrt(DIMS)
        for _ in range(min(length, windows - i)):
            own = own + 0.25 * rng.standard_normal(DIMS).astype(np.float32) / np.sqrt(DIMS)
            out[i] = shot + 0.9 * own + 0.6 * tint
            i += 1
    return unit(out)


# --- the steps
def worker(job: dict) -> None:
    from distill_and_select.retrieval.searching.clips.voting import VotingSettings, vote
    folder, size, index_type = Path(job['folder']), job['size'], job['type']
    queries = _queries(size)
    ids, starts = _ids(size)
    if job['step'] == 'build':
        vectors = _library(size, queries)
        t0 = time.perf_counter()
        store = _store(folder, index_type, create=True)
        for first in range(0, size, VIDEO_WINDOWS):
            store.upsert(ids[first], starts[first:first + VIDEO_WINDOWS], vectors[first:first + VIDEO_WINDOWS])
            if (first // VIDEO_WINDOWS + 1) % SYNC_VIDEOS == 0:
                store.flush()   # as `ClipIndex.sync` flushes, a batch of videos at a time
        store.flush()
        store.fit_index(size)   # as `ClipIndex.sync` ends: the index type chosen by size
        seconds = time.perf_counter() - t0
        video_of = np.array([int(i[1:]) for i in ids])
        best, background = [], []
        sample = np.random.default_rng(2).choice(size, min(size, 200), replace=False)
        for first in range(0, len(sample), 50):   # 50 windows a pass over the library
            chunk = sample[first:first + 50]
            for i, sims in zip(chunk, vectors[chunk] @ vectors.T):
                sims[video_of == video_of[i]] = -1
                top = -np.sort(-sims[np.argpartition(-sims, 32)[:32]])
                best.append(top[0])
                background.append(top[31])
        stats = {'best': float(np.median(best)), 'background': float(np.median(background))}
        print(json.dumps({'seconds': seconds, 'stats': stats}))
        return
    t0 = time.perf_counter()
    store = _store(folder, index_type)
    opened = time.perf_counter() - t0
    settings = VotingSettings()
    times, found, exact_found = {}, 0, 0
    voted = {}
    for seconds in QUERY_SECONDS:
        times[str(seconds)] = []
        for p in range(PLANTED):
            query, q_starts = _query_windows(queries[(seconds, p)][0], seconds)
            for r in range(REPEATS[seconds] if p == 0 else 1):
                t = time.perf_counter()
                hits = store.search(q_starts, query, settings.search_limit, _seconds,
                                    None if index_type == 'auto' else TYPES[index_type][1])
                votes = vote(hits, settings)
                times[str(seconds)].append(time.perf_counter() - t)
            voted[(seconds, p)] = [v.video_id for v in votes[:RANK]]
    rss = _rss_mb()   # what the searching process holds; the exact search's copy of the library comes after
    vectors = _library(size, queries)
    for (seconds, p), (query, host, _, _) in queries.items():
        query, q_starts = _query_windows(query, seconds)
        found += f'v{host:07d}' in voted[(seconds, p)]
        exact = _exact(vectors, ids, starts, query, q_starts, settings.search_limit)
        exact_found += f'v{host:07d}' in [v.video_id for v in vote(exact, settings)[:RANK]]
    print(json.dumps({'open': opened, 'times': times, 'recall': found, 'exact_recall': exact_found,
                      'rss_mb': rss, 'index_type': store.index_type}))


def _store(folder: Path, index_type: str, create: bool = False):
    """'auto': the clip store of the embedded default (files of the index folder, faiss);
    the others: a Milvus Lite collection of that index type (where the windows were kept
    before)."""
    if index_type == 'auto':
        from distill_and_select.retrieval.storage.clip_window_files import ClipWindowFiles
        return ClipWindowFiles(folder / 'clip-windows')
    from pymilvus import DataType, MilvusClient
    from distill_and_select.retrieval.storage.clip_vectors import ClipVectors
    client = MilvusClient(str(folder / 'milvus.db'))
    if create:
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field('id', DataType.VARCHAR, is_primary=True, max_length=80)
        schema.add_field('video', DataType.VARCHAR, max_length=64)
        schema.add_field('start', DataType.INT64)
        schema.add_field('vector', DataType.FLOAT_VECTOR, dim=DIMS)
        params = client.prepare_index_params()
        params.add_index('vector', index_type=index_type, metric_type='IP', params=TYPES[index_type][0])
        client.create_collection('clips', schema=schema, index_params=params)
    return ClipVectors(client, 'clips', lite=True, hnsw_from=10 ** 12)   # the type as made, kept


def _query_windows(query: np.ndarray, seconds: int):
    """The windows a query of ``seconds`` frames searches with (every frame up to
    ``QUERY_WINDOWS``, then spread, as `ClipIndex.query_windows` takes them), and their starts."""
    from distill_and_select import defaults
    from distill_and_select.retrieval.storage.clip_windows import DEFAULT_SPEC
    starts = DEFAULT_SPEC.starts(seconds, DEFAULT_SPEC.query_stride(seconds, defaults.QUERY_WINDOWS))
    return query[starts], starts.astype(np.float64)


def _seconds(video: str, frame: int) -> float:
    return float(frame)   # 1 frame/s


def _exact(vectors, ids, starts, query, q_starts, limit):
    from distill_and_select.retrieval.searching.clips.voting import WindowHits
    out = []
    all_sims = query @ vectors.T   # one pass over the library for all the query's windows
    for q, sims in zip(q_starts, all_sims):
        top = np.argpartition(-sims, limit)[:limit]
        top = top[np.argsort(-sims[top])]
        out.append(WindowHits(float(q), [ids[i] for i in top], [float(starts[i]) for i in top],
                              [float(sims[i]) for i in top]))
    return out


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == '__main__':
    main()
