"""Clip search: short edited clips (4 to 20 s) of long hosts (4 minutes) among distractor
hosts. On one index, for each query: where its host ranks and whether its segment is
found, at --candidates 1, 2, 5 and all, with clip candidates and by whole videos only,
at the default re-rank and with the fine student on every candidate (--rerank 1); where
the clip votes put each true host (some pieces sit in two hosts), by edit and copy length;
no-copy queries' best score against the copy threshold; time per query;
window vectors per hour and the indexing cost they add; window settings compared on a
second corpus (tuning) and reported on the main one; approximate (IVF) search's recall
against exact search. Writes the block `clip-retrieval` of docs/benchmarks.md.

    .venv/bin/python benchmarks/clip_retrieval.py [--hosts 24] [--copies 10] [--shared 5] [--negatives 4]
"""
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import benchmark_parser, machine, markdown_table, package, update_benchmarks, use_copy_model

BUDGETS = (1, 2, 5, None)
VOTE_RANKS = (1, 2, 5, 10)
VARIANTS = ((1, 1), (2, 1), (2, 2), (3, 1), (3, 2), (4, 1))   # (length, stride) frames, all cover a 4-frame copy


def main():
    parser = benchmark_parser(device=False)
    parser.add_argument('--hosts', type=int, default=24)
    parser.add_argument('--copies', type=int, default=10)
    parser.add_argument('--negatives', type=int, default=4)
    parser.add_argument('--shared', type=int, default=5, help='copies whose piece sits in a second host too')
    parser.add_argument('--host-seconds', type=int, default=240)
    parser.add_argument('--tune-hosts', type=int, default=6, help='hosts of a second corpus to compare window '
                        'settings on (0: none)')
    parser.add_argument('--workdir', help='keep corpora and indexes here (default: a temporary folder)')
    args = parser.parse_args()
    use_copy_model()
    package()
    if args.workdir:
        run(Path(args.workdir), args)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(Path(tmp), args)


def run(work: Path, args):
    from support.clip_corpus import make_clip_corpus
    from distill_and_select.core import DnS
    from distill_and_select.retrieval import VideoIndex
    from distill_and_select.retrieval.ingestion.ingest import query_representation
    t0 = time.perf_counter()
    main_corpus = make_clip_corpus(work / 'main', hosts=args.hosts, copies=args.copies, negatives=args.negatives,
                                   host_seconds=args.host_seconds, seed=0, shared=args.shared)
    print(f'corpora written in {time.perf_counter() - t0:.0f} s', flush=True)
    index = VideoIndex(work / 'main-index', create=True)
    models = DnS(index.settings.fine, device='cpu')
    tune_table = None
    if args.tune_hosts:
        tune = make_clip_corpus(work / 'tune', hosts=args.tune_hosts, copies=args.tune_hosts, negatives=0,
                                host_seconds=args.host_seconds, seed=1)
        tune_index = VideoIndex(work / 'tune-index', create=True)
        tune_features, _ = index_keeping_features(tune_index, tune.hosts, models)
        tune_table = window_table(tune_index, tune, tune_features, models)
        tune_index.close()
        print(markdown_table(*tune_table), flush=True)

    features, index_s = index_keeping_features(index, main_corpus.hosts, models)
    main_table = window_table(index, main_corpus, features, models)
    del features
    print(markdown_table(*main_table), flush=True)
    start = time.perf_counter()
    index.clip_collection.sync()   # the clip windows' part of the sync that ends indexing
    clip_s = time.perf_counter() - start
    index.sync()
    hours = sum(index.catalog.video(index.video_id_of(h)).frames for h in main_corpus.hosts) \
        * index.settings.time_step / 3600
    windows = index.clip_collection.window_count()
    queries = {q.path: query_representation(index, q.path, models) for q in main_corpus.queries}
    results, times = search_table(index, models, main_corpus, queries)
    votes = vote_table(index, main_corpus, queries)
    negatives = negative_scores(index, models, main_corpus, queries)
    micro = micro_aps(index, models, main_corpus, queries)
    ann = ann_recall(index, queries)
    index.close()

    spec = index_spec()
    from distill_and_select import defaults
    budget_rows = [[f'{label}, --rerank {rerank:g}{" (default)" if rerank == defaults.RERANK else ""}']
                   + [results[(label, rerank, b)] for b in BUDGETS]
                   for label in ('video-level', 'with clips') for rerank in (defaults.RERANK, 1.0)]
    shared = sum(bool(q.also) for q in main_corpus.copies)
    tables = [
        markdown_table(['candidates'] + [str(b or 'all') for b in BUDGETS], budget_rows),
        'Each cell: a true host at rank 1 / a true host in the top 10 / a true host at rank 1 with a segment '
        'overlapping the true one / every true host within the first 2 x hosts, of '
        f'{len(main_corpus.copies)} copy queries ({shared} of them copied into two hosts). Default settings but '
        '--candidates and --rerank (1: the fine student scores every video-level candidate); --candidates all: '
        'the whole index, by whole videos. '
        f'Queries: {", ".join(q.path.name.split("_", 1)[1][:-4] for q in main_corpus.copies)}; 4 to 20 s; hosts '
        f'{args.hosts} of {args.host_seconds} s (1 frame/s sampled), 160x90 H.264, scenes of 6 to 20 s.',
        'Where the clip votes alone put the true hosts (true hosts within the first N voted videos, of all true '
        'hosts; last column: queries whose every true host is within the first 2 x hosts):',
        markdown_table(*votes),
        'Micro-AP of the matching track (segments of the top 10, --candidates 2, default re-rank): video-level '
        f'{micro[False]:.3f}, with clips {micro[True]:.3f}.',
        f'No-copy queries ({len(main_corpus.negatives)}): best score {negatives["best"]:.3f} (with clips, '
        f'--candidates 2, default re-rank) against the copy threshold {negatives["threshold"]:.3f} '
        f'({negatives["kind"]}); copy queries\' true host scores: lowest {negatives["lowest_copy"]:.3f}.',
        'Time per query (representation given, segments included): ' + ', '.join(f'{k} {1000 * v:.0f} ms' for k, v in times.items())
        + '.',
        f'Windows of {spec.length} frames every {spec.stride} ({spec.length + spec.stride - 1} s covers one '
        f'wholly at 1 frame/s): {windows / hours:.0f} vectors per hour of video, {windows / hours * 2048 / 1e6:.1f} '
        'MB per hour as float32 (512 dimensions). Indexing cost added: building the clip collection from the '
        f'stored features took {clip_s:.1f} s for {hours:.2f} h of video ({clip_s / hours:.1f} s per hour of '
        f'video), against {index_s / hours:.0f} s per hour of video for decoding and feature extraction '
        f'({100 * clip_s / index_s:.1f} %).',
        'Window vectors compared (clip candidates alone, exact search: host rank 1 / top 10 of the copy queries)'
        + (', on a tuning corpus (seed 1):\n\n' + markdown_table(*tune_table) + '\n\nand on the main corpus (seed 0):'
           if tune_table else ' on this corpus:'),
        markdown_table(*main_table),
        f'Approximate search: IVF_FLAT (nlist {ann["nlist"]}, nprobe {ann["nprobe"]}) finds {100 * ann["recall"]:.1f} % '
        f'of the exact top {ann["k"]} windows of the query windows ({ann["queries"]} query windows).',
        'The coarse student of the test weights is the golden (random) one: its row measures the method with '
        'untrained weights. Copy-model test weights, not the published ones. ' + machine() + '.',
    ]
    text = '\n\n'.join(tables)
    print(text)
    if not args.print_only:
        update_benchmarks('clip-retrieval', text)


def index_keeping_features(index, paths, models):
    """Index ``paths`` as `dns index` does (decode, extract, represent, commit), keeping
    the extractor's features for the window comparison. Returns them and the seconds."""
    from distill_and_select.retrieval.ingestion.stages import decoded_frames, file_sha256
    features = {}
    start = time.perf_counter()
    for path in paths:
        with torch.inference_mode():
            extracted = models.encoder(decoded_frames(str(path), index.settings.time_step))
        representation = models.represent_features(extracted)
        video_id = file_sha256(str(path))
        index.commit(str(path), video_id, representation)
        features[video_id] = extracted.float().cpu().numpy()
        print(f'  indexed {path.name}: {len(extracted)} frames, {time.perf_counter() - start:.0f} s', flush=True)
    return features, time.perf_counter() - start


def window_table(index, corpus, features, models):
    """Host rank 1 / top 10 by clip voting alone, exact search in numpy, per window variant."""
    from distill_and_select.retrieval.searching.clips.voting import VotingSettings, WindowHits, vote
    from distill_and_select.retrieval.storage.clip_windows import WindowSpec, coarse_windows, pooled_windows
    from distill_and_select.core import embed
    from distill_and_select.retrieval.ingestion.stages import decoded_frames, file_sha256
    step = index.settings.time_step
    ids = list(features)
    query_features = {}
    for q in corpus.copies:
        with torch.inference_mode():
            query_features[q.path] = models.encoder(decoded_frames(str(q.path), step)).float().cpu().numpy()
    true = {q.path: file_sha256(str(q.host)) for q in corpus.copies}
    student = lambda network, x: embed(network, torch.from_numpy(x).to(models.device))  # noqa: E731
    fine = {i: student(models.fine_student, features[i]) for i in ids}
    cg = lambda x: student(models.coarse_student, x)  # noqa: E731

    rows = []
    for kind, variants in (('pooled fine', VARIANTS), ('coarse student', ((3, 2),))):
        for length, stride in variants:
            spec = WindowSpec(length, stride)
            owners, starts, vectors = [], [], []
            for i in ids:
                s, v = (pooled_windows(fine[i], spec) if kind == 'pooled fine'
                        else coarse_windows(features[i], cg, spec))
                owners += [i] * len(s)
                starts.append(s)
                vectors.append(v)
            owners, starts, vectors = np.array(owners), np.concatenate(starts), np.concatenate(vectors)
            top1 = top10 = 0
            for q in corpus.copies:
                x = query_features[q.path]
                qs, qv = (pooled_windows(student(models.fine_student, x), spec, 1) if kind == 'pooled fine'
                          else coarse_windows(x, cg, spec, 1))
                settings = VotingSettings()
                sims = qv @ vectors.T
                order = np.argsort(-sims, axis=1)[:, :settings.search_limit]
                hits = [WindowHits(float(a * step), owners[o].tolist(), (starts[o] * step).tolist(), sims[r, o].tolist())
                        for r, (a, o) in enumerate(zip(qs, order))]
                ranked = [v.video_id for v in vote(hits, settings)]
                top1 += bool(ranked) and ranked[0] == true[q.path]
                top10 += true[q.path] in ranked[:10]
            per_hour = 3600 / (stride * step)
            rows.append([kind, length, stride, f'{per_hour:.0f}', f'{top1}/{len(corpus.copies)}',
                         f'{top10}/{len(corpus.copies)}'])
    return ['window vector', 'length (frames)', 'stride', 'vectors per hour', 'host rank 1', 'host top 10'], rows


def search_table(index, models, corpus, queries):
    from distill_and_select.retrieval import search
    from distill_and_select.retrieval.searching.clips.clip_index import ClipIndex
    from distill_and_select import defaults
    results, times = {}, {}
    for clips, label in ((False, 'video-level'), (True, 'with clips')):
        for rerank in (defaults.RERANK, 1.0):
            for budget in BUDGETS:
                top1 = top10 = segment = every = 0
                spent = []
                for q in corpus.copies:
                    truth = q.truth()
                    start = time.perf_counter()
                    matches = search(index, models, queries[q.path], k=max(10, 2 * len(truth)), rerank=rerank,
                                     candidates=budget, clips=clips, segments=True)
                    spent.append(time.perf_counter() - start)
                    paths = [m.path for m in matches]
                    top10 += any(p in truth for p in paths[:10])
                    every += set(truth) <= set(paths[:2 * len(truth)])
                    if paths and paths[0] in truth:
                        top1 += 1
                        _, _, a, b = truth[paths[0]][0]
                        segment += any(s.target_start < b and a < s.target_end for s in matches[0].segments)
                results[(label, rerank, budget)] = f'{top1} / {top10} / {segment} / {every}'
                if budget == 2 and rerank == defaults.RERANK:
                    times[f'{label}, --candidates 2'] = float(np.median(spent))
    start = time.perf_counter()
    for q in corpus.copies:
        ClipIndex(index).candidates(queries[q.path].fine, limit=2)
    times['clip candidates alone'] = (time.perf_counter() - start) / len(corpus.copies)
    return results, times


def vote_table(index, corpus, queries):
    """True hosts within the first N clip votes, by edit and by copy length."""
    from distill_and_select.retrieval.searching.clips.clip_index import ClipIndex
    groups = [(f'edit: {edit}', [q for q in corpus.copies if q.edit == edit])
              for edit in dict.fromkeys(q.edit for q in corpus.copies)]
    groups += [('4 to 8 s', [q for q in corpus.copies if q.seconds <= 8]),
               ('over 8 s', [q for q in corpus.copies if q.seconds > 8]),
               ('in two hosts', [q for q in corpus.copies if q.also]), ('all', corpus.copies)]
    rows = []
    for name, group in groups:
        if not group:
            continue
        within = {n: 0 for n in VOTE_RANKS}
        hosts = every = 0
        for q in group:
            voted = [v.video_id for v in ClipIndex(index).candidates(queries[q.path].fine)]
            ranks = [voted.index(i) + 1 if i in voted else None for i in (index.video_id_of(h) for h in q.truth())]
            hosts += len(ranks)
            for n in VOTE_RANKS:
                within[n] += sum(r is not None and r <= n for r in ranks)
            every += all(r is not None and r <= 2 * len(ranks) for r in ranks)
        rows.append([name, len(group)] + [f'{within[n]}/{hosts}' for n in VOTE_RANKS] + [f'{every}/{len(group)}'])
    return ['queries', 'n'] + [f'first {n}' for n in VOTE_RANKS] + ['all within 2 x hosts'], rows


def negative_scores(index, models, corpus, queries):
    from distill_and_select.retrieval import search
    best = max((search(index, models, queries[q.path], k=1, candidates=2)[0].score
                for q in corpus.negatives), default=float('nan'))
    lowest = min((next((m.score for m in search(index, models, queries[q.path], k=10, candidates=2)
                        if m.path in q.truth()), float('nan')) for q in corpus.copies), default=float('nan'))
    thresholds = index.thresholds()
    return {'best': best, 'lowest_copy': lowest, 'threshold': thresholds.copy,
            'kind': 'calibrated' if thresholds.copy_calibrated else 'the default, uncalibrated'}


def micro_aps(index, models, corpus, queries):
    from distill_and_select.localization.matching_ap import matching_micro_ap
    from distill_and_select.retrieval import search
    truth = {(str(q.path), host): [tuple(s) for s in segments] for q in corpus.copies
             for host, segments in q.truth().items()}
    out = {}
    for clips in (False, True):
        predictions = {}
        for q in corpus.queries:
            for m in search(index, models, queries[q.path], k=10, candidates=2, clips=clips,
                            segments=True, segment_threshold=-1.0):
                if m.segments:
                    predictions[(str(q.path), m.path)] = m.segments
        out[clips] = matching_micro_ap(predictions, truth)
    return out


def ann_recall(index, queries, k: int = 16, nlist: int = 64, nprobe: int = 8):
    """Recall of an IVF_FLAT copy of the clip collection against the exact (FLAT) one."""
    from pymilvus import DataType
    from distill_and_select.retrieval.searching.clips.clip_index import ClipIndex
    exact = index.clip_collection.vectors()
    client = exact.client
    rows = client.query(exact.collection, filter='', output_fields=['id', 'vector'], limit=16384)
    name = exact.collection + '_ivf'
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field('id', DataType.VARCHAR, is_primary=True, max_length=80)
    schema.add_field('vector', DataType.FLOAT_VECTOR, dim=512)
    params = client.prepare_index_params()
    params.add_index('vector', index_type='IVF_FLAT', metric_type='IP', params={'nlist': nlist})
    client.create_collection(name, schema=schema, index_params=params)
    for i in range(0, len(rows), 2000):
        client.insert(name, [{'id': r['id'], 'vector': r['vector']} for r in rows[i:i + 2000]])
    client.flush(name)
    client.load_collection(name)
    found = total = 0
    n = 0
    for representation in list(queries.values())[:4]:
        _, vectors = ClipIndex(index).query_windows(representation.fine)
        data = vectors.tolist()
        a = client.search(exact.collection, data=data, anns_field='vector', limit=k, search_params={'metric_type': 'IP'})
        b = client.search(name, data=data, anns_field='vector', limit=k,
                          search_params={'metric_type': 'IP', 'params': {'nprobe': nprobe}})
        for x, y in zip(a, b):
            found += len({h['id'] for h in x} & {h['id'] for h in y})
            total += len(x)
        n += len(data)
    client.drop_collection(name)
    return {'recall': found / max(total, 1), 'k': k, 'nlist': nlist, 'nprobe': nprobe, 'queries': n,
            'windows': len(rows)}


def index_spec():
    from distill_and_select.retrieval.storage.clip_windows import DEFAULT_SPEC
    return DEFAULT_SPEC


if __name__ == '__main__':
    main()
