"""The `dns` command: index a collection of videos, search it, find its duplicates,
evaluate it against a ground truth, and look at one pair."""
import argparse
import csv
import json
import logging
import os
import sys
from pathlib import Path
from typing import Iterator, Optional, Sequence

from ..service.limits import DEFAULT_MAX_UPLOAD_MB
from .index import DEFAULT_INDEX, IndexSettingsError, VideoIndex

VIDEO_SUFFIXES = {'.mp4', '.m4v', '.mov', '.mkv', '.webm', '.avi', '.flv', '.wmv', '.mpg', '.mpeg', '.ts',
                  '.m2ts', '.mts', '.3gp', '.ogv', '.vob', '.mxf'}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format='dns: %(message)s', level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return args.run(args)
    except (IndexSettingsError, ValueError) as error:
        print(f'dns {args.command}: error: {error}', file=sys.stderr)
        return 2
    except Exception as error:  # a clear line, not a traceback, for what users can fix
        from ..video_decode import VideoDecodeError
        from ..weights import WeightsError
        from .fine_store import CorruptFeaturesError
        from .vector_store import VectorStoreError
        if isinstance(error, (VideoDecodeError, WeightsError, CorruptFeaturesError, VectorStoreError)):
            print(f'dns {args.command}: error: {error}', file=sys.stderr)
            return 1
        raise


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--index', default=DEFAULT_INDEX, metavar='DIR',
                        help=f'the folder of the index (default: ./{DEFAULT_INDEX})')
    common.add_argument('--milvus-uri', help='a Milvus server or cluster for the coarse vectors, e.g. '
                        'http://host:19530 (default: a Milvus Lite database inside the index folder); '
                        'recorded in the index when it is made')
    common.add_argument('--milvus-token', default=os.environ.get('DNS_MILVUS_TOKEN'),
                        help='Milvus token, "user:password" or an API key (default: $DNS_MILVUS_TOKEN)')
    common.add_argument('--device', help='cpu, cuda, cuda:1, ... (default: cuda when available)')
    common.add_argument('--precision', default='fp32', choices=['fp32', 'bf16', 'fp16'],
                        help='autocast of the feature extractor (default: fp32)')
    common.add_argument('--batch-size', type=int, default=32, help='frames per batch (default: 32)')
    common.add_argument('--compile', action=argparse.BooleanOptionalAction, default=False,
                        help='compile the feature extractor with torch.compile: 1.3x the frames/s on CPU after '
                        'a one-time cost (default: on for `dns index` unless DNS_COMPILE=0, off for the others)')
    common.add_argument('-v', '--verbose', action='store_true')

    parser = argparse.ArgumentParser(prog='dns', description=__doc__)
    commands = parser.add_subparsers(dest='command', required=True)

    p = commands.add_parser('index', parents=[common], help='index video files and folders (recursive)')
    p.add_argument('paths', nargs='+', metavar='PATH')
    p.add_argument('--fine', choices=['att', 'bin'], help='the fine-grained student, chosen when the index is '
                   'made (default: att)')
    p.add_argument('--fine-dtype', choices=['float16', 'float32'],
                   help='storage of fg_att features (default: float16; fg_bin is always 1 bit per element)')
    p.add_argument('--time-step', type=float, help='seconds between sampled frames, chosen when the index is made '
                   '(default: 1)')
    p.add_argument('--ray', action='store_true', help='index on a Ray cluster: the one named by $RAY_ADDRESS, '
                   'else a local Ray instance; this process alone writes the index')
    p.add_argument('--ray-actors', type=int, metavar='N', help='with --ray: model-holding actors (default: one per '
                   'GPU of the cluster; on CPUs only, half of its CPUs in actors of up to 4)')
    p.add_argument('--strict', action='store_true', help='exit with status 1 when a file fails')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    # Indexing jobs are long: compiling pays after a few hundred frames.
    p.set_defaults(run=run_index, compile=os.environ.get('DNS_COMPILE', '1') != '0')

    p = commands.add_parser('search', parents=[common], help='the videos most similar to a query video')
    p.add_argument('query', metavar='QUERY_VIDEO')
    p.add_argument('-k', type=int, default=10, help='results to show (default: 10)')
    p.add_argument('--rerank', type=float, default=0.1, help='fraction of the candidates, chosen by the selector, '
                   're-ranked by the fine-grained student (default: 0.1)')
    p.add_argument('--candidates', type=int, default=1000,
                   help='candidate videos the selector considers, in all: nearest by coarse similarity, in turns '
                   'with those whose short windows match the query\'s (default: 1000; Milvus caps it at 16384)')
    p.add_argument('--clips', action=argparse.BooleanOptionalAction, default=True,
                   help='candidates from clip hits too, so that a short clip inside a long video is found '
                   '(default: on)')
    _segment_options(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument('--json', action='store_true', help='machine-readable output')
    out.add_argument('--csv', action='store_true', help='the copied segments as CSV in the format of the Video '
                     'Similarity Challenge\'s matching track: query_id,ref_id,query_start,query_end,ref_start,'
                     'ref_end,score (seconds; implies --segments)')
    p.set_defaults(run=run_search)

    p = commands.add_parser('dedup', parents=[common], help='groups of near-duplicate videos in the index')
    p.add_argument('--threshold', type=float,
                   help='least score of a duplicate pair (default: the index\'s calibrated threshold, else 0.75, '
                   'i.e. fg similarity 0.5)')
    p.add_argument('--rerank', type=float, default=1.0, help='fraction of each video\'s neighbours scored by the '
                   'fine-grained student (default: 1, all)')
    p.add_argument('--neighbours', type=int, default=100, help='nearest videos considered per video (default: 100)')
    _segment_options(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument('--json', action='store_true', help='groups as JSON')
    out.add_argument('--csv', action='store_true', help='groups as CSV: group,path')
    p.set_defaults(run=run_dedup)

    p = commands.add_parser('decisions', parents=[common], help='reviewers\' decisions on pairs (copy / not a '
                            'copy), which dedup follows')
    p.add_argument('--csv', metavar='FILE', help='write them as CSV (a,b,decision,decided_at); - for stdout')
    p.add_argument('--mark', nargs=3, metavar=('A', 'B', 'DECISION'),
                   help='record a decision on the pair of files A and B (paths as given at index time): copy, '
                   'not_copy, or none to forget it')
    p.set_defaults(run=run_decisions)

    p = commands.add_parser('serve', parents=[common], help='the search service and the review page (HTTP)')
    p.add_argument('--host', default='127.0.0.1', help='address to bind (default: 127.0.0.1; any other needs '
                   'a token)')
    p.add_argument('--port', type=int, default=8000, help='port (default: 8000)')
    p.add_argument('--token', default=os.environ.get('DNS_TOKEN'),
                   help='a secret every request must send as "Authorization: Bearer TOKEN" (default: $DNS_TOKEN); '
                   'required to bind an address other than loopback')
    p.add_argument('--max-upload-mb', type=float, default=DEFAULT_MAX_UPLOAD_MB,
                   help=f'largest uploaded video (default: {DEFAULT_MAX_UPLOAD_MB} MB)')
    p.set_defaults(run=run_serve)

    p = commands.add_parser('evaluate', parents=[common], help='mAP and time per query at re-rank fractions '
                            '0%%, 5%%, ..., 100%%; precision, recall and the best threshold of copy decisions '
                            'and copied segments')
    p.add_argument('ground_truth', metavar='GROUND_TRUTH',
                   help='JSON: {"query.mp4": ["copy1.mp4", ...], ...}, or segments in seconds: '
                   '{"query.mp4": {"copy1.mp4": [[qs, qe, ts, te], ...]}, ...}; paths relative to this file')
    p.add_argument('--candidates', type=int, help='nearest videos considered per query (default: the whole index)')
    p.add_argument('--plot', default='dns-evaluate.png', help='the PNG of the curve (default: dns-evaluate.png); '
                   'the precision/recall curves go beside it, NAME-pr.png')
    p.add_argument('--calibrate', action='store_true', help='store the thresholds of best F1 in the index, where '
                   'search, dedup, show and segments use them')
    p.add_argument('--json', action='store_true', help='machine-readable output')
    p.set_defaults(run=run_evaluate)

    p = commands.add_parser('show', parents=[common], help='heatmap of the fine-grained similarity of two videos')
    p.add_argument('query', metavar='QUERY')
    p.add_argument('target', metavar='TARGET')
    p.add_argument('--out', default='dns-show.png', help='the PNG to write (default: dns-show.png)')
    p.add_argument('--segment-threshold', type=float, metavar='T',
                   help='least score of a drawn segment (default: the index\'s calibrated threshold, else 0.3)')
    p.set_defaults(run=run_show)
    return parser


def _segment_options(p: argparse.ArgumentParser) -> None:
    p.add_argument('--segments', action='store_true', help='add the copied segments of each pair: where the copy '
                   'is in both videos, in seconds')
    p.add_argument('--segment-threshold', type=float, metavar='T',
                   help='least score of a copied segment (default: the index\'s calibrated threshold, else 0.3)')


def _open(args, create: bool = False, **settings) -> VideoIndex:
    return VideoIndex(args.index, create=create, milvus_uri=args.milvus_uri, milvus_token=args.milvus_token,
                      **settings)


def _model_options(args) -> dict:
    """The keyword arguments of ``VideoIndex.make_models`` given on the command line."""
    return {'device': args.device, 'precision': args.precision, 'batch_size': args.batch_size,
            'compile': args.compile}


def _models(index: VideoIndex, args):
    return index.make_models(**_model_options(args))


def find_videos(paths: Sequence[str]) -> Iterator[str]:
    """Files given by name (whatever their suffix), and the video files under folders."""
    for given in paths:
        if os.path.isdir(given):
            for root, dirs, files in os.walk(given):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in VIDEO_SUFFIXES:
                        yield os.path.join(root, name)
        else:
            yield given


def run_index(args) -> int:
    from .tally import IndexTally
    files = list(find_videos(args.paths))
    fine_dtype = 'bits' if args.fine == 'bin' else args.fine_dtype
    with _open(args, create=True, fine=args.fine, fine_dtype=fine_dtype, time_step=args.time_step) as index:
        index.remove_leftovers()
        tally = IndexTally(len(files), progress=not args.no_progress)
        try:
            if args.ray:
                from .ray_engine import index_on_ray
                index_on_ray(index, files, _model_options(args), tally, actors=args.ray_actors)
            else:
                index_files(index, files, _models(index, args), tally)
        finally:
            tally.close()
        index.sync()
        index.clips().sync()  # windows of the new videos, and of older ones an earlier version indexed
        print(tally.summary(len(index), index.settings.fine))
    return 1 if args.strict and tally.counts['failed'] else 0


def index_files(index: VideoIndex, files: Sequence[str], models, tally) -> None:
    """The plain engine: one file after the other, in this process."""
    from ..video_decode import VideoDecodeError
    for path in files:
        try:
            result = index.add(path, models, on_frame=tally.frame)
        except VideoDecodeError as error:
            tally.failed(str(error))
        else:
            tally.done(path, result)


def run_search(args) -> int:
    from .search import search
    with _open(args) as index:
        models = _models(index, args)
        query = index.representation_of_file(args.query, models)
        segments = args.segments or args.csv
        matches = search(index, models, query, k=args.k, rerank=args.rerank, candidates=args.candidates,
                         segments=segments, segment_threshold=args.segment_threshold, clips=args.clips)
        copy_threshold = index.thresholds().copy
    if args.json:
        from .results import search_json
        print(json.dumps(search_json(args.query, args.rerank, matches), indent=2))
        return 0
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(['query_id', 'ref_id', 'query_start', 'query_end', 'ref_start', 'ref_end', 'score'])
        for m in matches:
            writer.writerows([args.query, m.path, _seconds(s.query_start), _seconds(s.query_end),
                              _seconds(s.target_start), _seconds(s.target_end), round(s.score, 6)]
                             for s in m.segments)
        return 0
    print(f'{"rank":>4}  {"score":>7}  {"coarse":>7}  {"selector":>8}  {"fine":>7}  path')
    for m in matches:
        fine = '-' if m.fine_similarity is None else f'{m.fine_similarity:7.4f}'
        copy = '  (copy)' if m.score >= copy_threshold else ''
        print(f'{m.rank:>4}  {m.score:7.4f}  {m.coarse_similarity:7.4f}  {m.selector_score:8.4f}  {fine:>7}  '
              f'{m.path}{copy}')
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


def run_dedup(args) -> int:
    from .dedup import find_duplicates
    with _open(args) as index:
        threshold = index.thresholds().copy if args.threshold is None else args.threshold
        groups = find_duplicates(index, _models(index, args), threshold=threshold, rerank=args.rerank,
                                 neighbours=args.neighbours, segments=args.segments,
                                 segment_threshold=args.segment_threshold)
        decisions = index.catalog.decisions()
    if args.json:
        from .results import dedup_json
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


def run_decisions(args) -> int:
    from .results import write_decisions_csv
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


def run_serve(args) -> int:
    from ..service.app import serve
    return serve(args.index, host=args.host, port=args.port, token=args.token, model_options=_model_options(args),
                 milvus_uri=args.milvus_uri, milvus_token=args.milvus_token, max_upload_mb=args.max_upload_mb)


def run_evaluate(args) -> int:
    from .evaluate import (evaluate, evaluate_copies, evaluate_segments, load_ground_truth, plot_curve,
                           plot_precision_recall)
    ground_truth = load_ground_truth(args.ground_truth)
    with _open(args) as index:
        models = _models(index, args)
        # Shared by the three evaluations, which fill it with the queries each one uses:
        # a query outside the index is decoded and extracted once.
        queries = {}
        curve = evaluate(index, models, ground_truth, candidates=args.candidates, representations=queries)
        reports = {'videos': evaluate_copies(index, models, ground_truth, candidates=args.candidates,
                                             representations=queries)}
        if ground_truth.segments is not None:
            reports['segments'] = evaluate_segments(index, models, ground_truth, candidates=args.candidates,
                                                    representations=queries)
        if args.calibrate:
            index.calibrate(copy=reports['videos'].best.threshold,
                            segment=reports['segments'].best.threshold if 'segments' in reports else None)
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


def run_show(args) -> int:
    from .show import draw_pair
    with _open(args) as index:
        similarity, found = draw_pair(index, _models(index, args), args.query, args.target, args.out,
                                      segment_threshold=args.segment_threshold)
    print(f'fg similarity {similarity:.4f}, {len(found)} copied segment(s): {args.out}')
    for segment in found:
        print(f'  {_describe(segment)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
