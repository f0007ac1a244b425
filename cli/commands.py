"""What each `dns` subcommand does with its parsed options: open the index, build the
models, call the retrieval API (or start the service), print the answer."""
import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Optional

from ..core import DnS
from ..retrieval.storage.index import VideoIndex
from ..retrieval.ingestion.ingest import index_files, query_representation, scan_paths

def _open(args, create: bool = False, **settings) -> VideoIndex:
    return VideoIndex(args.index, create=create, milvus_uri=args.milvus_uri, milvus_token=args.milvus_token,
                      **settings)


def compile_default(command: str) -> bool:
    """Whether ``command`` compiles the feature extractor when neither --compile nor
    --no-compile is given: indexing jobs are long, and compiling pays after a few hundred
    frames; a search, a service's upload or a dedup would wait on it."""
    return command == 'index' and os.environ.get('DNS_COMPILE', '1') != '0'


def _model_options(args) -> dict:
    """The keyword arguments of ``DnS`` given on the command line."""
    compile = compile_default(args.command) if args.compile is None else args.compile
    return {'device': args.device, 'precision': args.precision, 'batch_size': args.batch_size, 'compile': compile}


def _switch(value: Optional[str]) -> Optional[bool]:
    """An 'on'/'off' option as a bool (None: not given)."""
    return None if value is None else value == 'on'


def _models(index: VideoIndex, args) -> DnS:
    """The networks of this index (its fine student and selector)."""
    return DnS(index.settings.fine, **_model_options(args))


def run_index(args: argparse.Namespace) -> int:
    from ..retrieval.ingestion.tally import IndexTally
    scan = scan_paths(args.paths)
    files = scan.videos
    fine_dtype = 'bits' if args.fine == 'bin' else args.fine_dtype
    with _open(args, create=True, fine=args.fine, fine_dtype=fine_dtype, time_step=args.time_step) as index:
        index.remove_leftovers()
        index.reread = args.reread
        tally = IndexTally(len(files), progress=not args.no_progress)
        try:
            if args.ray:
                from ..retrieval.ingestion.ray_engine import index_on_ray
                index_on_ray(index, files, _model_options(args), tally, actors=args.ray_actors)
            else:
                index_files(index, files, _models(index, args), tally, exact=args.exact_decode)
        finally:
            tally.close()
        print(tally.summary(len(index), index.settings.fine))
        if scan.skipped:
            print(scan.skipped_summary())
    return 1 if args.strict and tally.counts['failed'] else 0


def run_search(args: argparse.Namespace) -> int:
    from ..retrieval.searching.search import search
    with _open(args) as index:
        models = _models(index, args)
        query = query_representation(index, args.query, models)
        segments = args.segments or args.csv
        matches = search(index, models, query, k=args.k, rerank=args.rerank, candidates=args.candidates,
                         segments=segments, segment_threshold=args.segment_threshold, clips=args.clips,
                         segment_background=_switch(args.segment_background))
        copy_threshold = index.thresholds().copy
    if args.json:
        from ..retrieval.searching.results import search_json
        print(json.dumps(search_json(args.query, args.rerank, matches, copy_threshold), indent=2))
        return 0
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(['query_id', 'ref_id', 'query_start', 'query_end', 'ref_start', 'ref_end', 'score'])
        for m in matches:
            writer.writerows([args.query, m.path, _seconds(s.query_start), _seconds(s.query_end),
                              _seconds(s.target_start), _seconds(s.target_end), round(s.score, 6)]
                             for s in m.segments)
        return 0
    print(f'{"rank":>4}  {"score":>7}  {"coarse":>7}  {"selector":>8}  {"fine":>7}  {"clip":>7}  path')
    for m in matches:
        fine = '-' if m.fine_similarity is None else f'{m.fine_similarity:7.4f}'
        clip = '-' if m.clip_similarity is None else f'{m.clip_similarity:7.4f}'
        copy = '  (copy)' if m.score >= copy_threshold else ''
        print(f'{m.rank:>4}  {m.score:7.4f}  {m.coarse_similarity:7.4f}  {m.selector_score:8.4f}  {fine:>7}  '
              f'{clip:>7}  {m.path}{copy}')
        for segment in m.segments or []:
            print(f'{"":>6}{_describe(segment)}')
    return 0


def _seconds(value: float) -> float:
    return round(float(value), 3)


def _describe(segment) -> str:
    return (f'copied {_clock(segment.query_start)}-{_clock(segment.query_end)} -> '
            f'{_clock(segment.target_start)}-{_clock(segment.target_end)} (segment score {segment.score:.3f})')


def _clock(seconds: float) -> str:
    minutes, rest = divmod(float(seconds), 60)
    return f'{int(minutes)}:{rest:04.1f}'


def run_dedup(args: argparse.Namespace) -> int:
    from ..retrieval.searching.dedup import find_duplicates
    with _open(args) as index:
        threshold = index.thresholds().copy if args.threshold is None else args.threshold
        groups = find_duplicates(index, _models(index, args), threshold=threshold, rerank=args.rerank,
                                 neighbours=args.neighbours, segments=args.segments,
                                 segment_threshold=args.segment_threshold,
                                 segment_background=_switch(args.segment_background))
        decisions = index.catalog.decisions()
    if args.json:
        from ..retrieval.searching.results import dedup_json
        print(json.dumps(dedup_json(threshold, groups, decisions), indent=2))
    elif args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(['group', 'path'])
        for number, group in enumerate(groups, 1):
            writer.writerows([number, path] for path in group.videos)
    else:
        for number, group in enumerate(groups, 1):
            print(f'group {number} ({len(group.videos)} videos):')
            for path in group.videos:
                print(f'  {path}')
            for (a, b), decision in group.decided.items():
                print(f'  {a} and {b}: marked {decision} by a reviewer')
            for (a, b), found in (group.segments or {}).items():
                print(f'  {a} in {b}:')
                for segment in found:
                    print(f'    {_describe(segment)}')
        print(f'{len(groups)} groups of near-duplicates, {sum(len(g.videos) for g in groups)} videos')
        apart = sum(d.decision == 'not_copy' for d in decisions.values())
        if apart:
            print(f'{apart} pair(s) marked not a copy by a reviewer were kept apart')
    return 0


def run_decisions(args: argparse.Namespace) -> int:
    from ..retrieval.searching.results import write_decisions_csv
    with _open(args) as index:
        if args.mark:
            index.catalog.decide([tuple(args.mark[:2])], None if args.mark[2] == 'none' else args.mark[2])
        decisions = index.catalog.decisions()
    if args.csv == '-':
        write_decisions_csv(decisions, sys.stdout)
    elif args.csv:
        with open(args.csv, 'w', newline='') as out:
            count = write_decisions_csv(decisions, out)
        print(f'{count} decision(s) written to {args.csv}')
    else:
        for d in decisions.values():
            print(f'{d.decision:8s}  {d.a}  {d.b}')
        print(f'{len(decisions)} decision(s)')
    return 0


def run_remove(args: argparse.Namespace) -> int:
    if not args.paths and not args.missing:
        raise ValueError('give the indexed files or folders to remove, or --missing')
    with _open(args) as index:
        files = index.files_at(args.paths) if args.paths else []
        if args.missing:
            files = sorted(set(files) | set(index.missing_files()))
        if args.dry_run:
            for file in files:
                print(f'would remove {file.given}')
            print(f'{len(files)} file(s) would be removed; nothing changed')
            return 0
        removal = index.remove(files)
        for given in removal.files:
            print(f'removed {given}')
        print(f'removed {len(removal.files)} file(s), {len(removal.videos)} video(s) with them; '
              f'the index holds {len(index)} videos')
    return 0


def run_sync(args: argparse.Namespace) -> int:
    with _open(args) as index:
        synced = index.sync()
        print(f'synced the index in {index.folder}: the coarse vectors of {synced.videos} and the clip windows of '
              f'{synced.clip_videos} video(s) copied into Milvus; it holds {len(index)} videos')
    return 0


def run_move_vectors(args: argparse.Namespace) -> int:
    to = '' if args.to == 'lite' else args.to
    with VideoIndex(args.index, milvus_uri=args.milvus_uri) as index:
        coarse, clips = index.move_vectors(to, args.milvus_token)
        print(f'the vectors of {len(index)} videos are at {to or "the Milvus Lite database in " + str(index.folder)}: '
              f'{coarse} coarse vectors and the clip windows of {clips} videos copied from the index, nothing '
              'extracted again')
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from ..service.app import serve
    from ..service.options import serving_options
    return serve(args.index, host=args.host, port=args.port, token=args.token, model_options=_model_options(args),
                 milvus_uri=args.milvus_uri, milvus_token=args.milvus_token, max_upload_mb=args.max_upload_mb,
                 **serving_options(args))


def run_evaluate(args: argparse.Namespace) -> int:
    from ..retrieval.evaluate import (evaluate, evaluate_copies, evaluate_segments, load_ground_truth, plot_curve,
                           plot_precision_recall)
    from ..retrieval.searching.segments import segment_settings
    ground_truth = load_ground_truth(args.ground_truth)
    with _open(args) as index:
        models = _models(index, args)
        _, background = segment_settings(index, None, _switch(args.segment_background))
        # Shared by the three evaluations, which fill it with the queries each one uses:
        # a query outside the index is decoded and extracted once.
        queries = {}
        curve = evaluate(index, models, ground_truth, candidates=args.candidates, representations=queries)
        reports = {'videos': evaluate_copies(index, models, ground_truth, candidates=args.candidates,
                                             representations=queries)}
        if ground_truth.segments is not None:
            reports['segments'] = evaluate_segments(index, models, ground_truth, candidates=args.candidates,
                                                    representations=queries, segment_background=background)
        if args.calibrate:
            index.calibrate(copy=reports['videos'].best.threshold,
                            segment=reports['segments'].best.threshold if 'segments' in reports else None,
                            segment_background=background)
    plot_curve(curve, args.plot)
    pr_plot = str(Path(args.plot).with_name(Path(args.plot).stem + '-pr.png'))
    plot_precision_recall(reports, pr_plot)
    if args.json:
        print(json.dumps({'queries': len(ground_truth.positives), 'plot': args.plot, 'precision_recall_plot': pr_plot,
                          'curve': [vars(p) for p in curve], 'calibrated': args.calibrate,
                          **{name: _report_json(report) for name, report in reports.items()}}, indent=2))
        return 0
    print(f'{"re-ranked":>9}  {"mAP":>6}  {"ms/query":>8}')
    for p in curve:
        print(f'{100 * p.fraction:>8.0f}%  {p.mean_ap:6.4f}  {1000 * p.seconds_per_query:8.1f}')
    print(f'{len(ground_truth.positives)} queries; plot: {args.plot}')
    names = {'videos': 'copied videos (pairs)', 'segments': 'copied segments (seconds on both timelines)'}
    for name, report in reports.items():
        print(f'{names[name]}:')
        for label, point in (('threshold in use', report.current), ('best threshold', report.best)):
            print(f'  {label:16s} {point.threshold:.4f}: precision {point.precision:.3f}, recall {point.recall:.3f}, '
                  f'F1 {point.f1:.3f}')
        if report.axes:
            print('  at the threshold in use: query timeline precision {query_precision:.3f} recall '
                  '{query_recall:.3f}; target timeline precision {target_precision:.3f} recall '
                  '{target_recall:.3f}'.format(**report.axes))
        if report.micro_ap is not None:
            print(f'  micro-AP (Video Similarity Challenge matching track): {report.micro_ap:.4f}')
    print(f'precision/recall curves: {pr_plot}')
    if args.calibrate:
        print('calibrated: ' + ', '.join(f'{name} threshold {report.best.threshold:.4f}'
                                         for name, report in reports.items()) + f', stored in {args.index}')
    return 0


def _report_json(report) -> dict:
    out = {'current': vars(report.current), 'best': vars(report.best), 'axes': report.axes,
           'curve': [vars(p) for p in report.curve]}
    if report.micro_ap is not None:
        out['micro_ap'] = report.micro_ap
    return out


def run_show(args: argparse.Namespace) -> int:
    from ..retrieval.searching.show import draw_pair
    with _open(args) as index:
        similarity, found = draw_pair(index, _models(index, args), args.query, args.target, args.out,
                                      segment_threshold=args.segment_threshold,
                                      segment_background=_switch(args.segment_background))
    print(f'fg similarity {similarity:.4f}, {len(found)} copied segment(s): {args.out}')
    for segment in found:
        print(f'  {_describe(segment)}')
    return 0
