"""The `dns` command's options: every default comes from ``defaults``."""
import argparse
import os

from .. import defaults
from ..service.options import add_serving_options
from . import commands as run

DESCRIPTION = """The `dns` command: index a collection of videos (and forget files), search it, find
its duplicates, evaluate it against a ground truth, look at one pair, and serve it to reviewers."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--index', default=defaults.INDEX_FOLDER, metavar='DIR',
                        help=f'the folder of the index (default: ./{defaults.INDEX_FOLDER})')
    common.add_argument('--milvus-uri', help='a Milvus server or cluster for the coarse vectors, e.g. '
                        'http://host:19530 (default: a Milvus Lite database inside the index folder); '
                        'recorded in the index when it is made')
    common.add_argument('--milvus-token', default=os.environ.get('DNS_MILVUS_TOKEN'),
                        help='Milvus token, "user:password" or an API key (default: $DNS_MILVUS_TOKEN)')
    common.add_argument('--device', help='cpu, cuda, cuda:1, ... (default: cuda when available)')
    common.add_argument('--precision', default=defaults.PRECISION, choices=['fp32', 'bf16', 'fp16'],
                        help=f'autocast of the feature extractor (default: {defaults.PRECISION})')
    common.add_argument('--batch-size', type=int, default=defaults.BATCH_SIZE,
                        help=f'frames per batch (default: {defaults.BATCH_SIZE})')
    # Its default depends on the command (commands.compile_default): set_defaults on one
    # subcommand would change this action's default for all of them, parents sharing it.
    common.add_argument('--compile', action=argparse.BooleanOptionalAction, default=None,
                        help='compile the feature extractor with torch.compile: 1.3x the frames/s on CPU after '
                        'a one-time cost (default: on for `dns index` unless DNS_COMPILE=0, off for the others)')
    common.add_argument('-v', '--verbose', action='store_true')

    parser = argparse.ArgumentParser(prog='dns', description=DESCRIPTION)
    commands = parser.add_subparsers(dest='command', required=True)

    p = commands.add_parser('index', parents=[common], help='index video files and folders (recursive)')
    p.add_argument('paths', nargs='+', metavar='PATH')
    p.add_argument('--fine', choices=['att', 'bin'], help='the fine-grained student, chosen when the index is '
                   f'made (default: {defaults.FINE_STUDENT})')
    p.add_argument('--fine-dtype', choices=['float16', 'float32'],
                   help=f'storage of fg_att features (default: {defaults.FINE_DTYPE["att"]}; fg_bin is always 1 bit per element)')
    p.add_argument('--time-step', type=float, help='seconds between sampled frames, chosen when the index is made '
                   f'(default: {defaults.TIME_STEP:g})')
    p.add_argument('--ray', action='store_true', help='index on a Ray cluster: the one named by $RAY_ADDRESS, '
                   'else a local Ray instance; this process alone writes the index')
    p.add_argument('--ray-actors', type=int, metavar='N', help='with --ray: model-holding actors (default: one per '
                   'GPU of the cluster; on CPUs only, half of its CPUs in actors of up to 4)')
    p.add_argument('--strict', action='store_true', help='exit with status 1 when a file fails')
    p.add_argument('--exact-decode', action='store_true', help='decode every frame and resize full-size '
                   'frames (no skipping, no scaling while converting): slower, the same sampled frames')
    p.add_argument('--reread', action='store_true', help='extract again the videos indexed by an earlier '
                   'version that this one reads differently (start time, sample aspect ratio, borders), '
                   'each replaced atomically; without it, they are named and kept')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    p.set_defaults(run=run.run_index)

    p = commands.add_parser('search', parents=[common], help='the videos most similar to a query video')
    p.add_argument('query', metavar='QUERY_VIDEO')
    p.add_argument('-k', type=int, default=defaults.K, help=f'results to show (default: {defaults.K})')
    p.add_argument('--rerank', type=float, default=defaults.RERANK, help='fraction of the candidates, chosen by the '
                   f'selector, re-ranked by the fine-grained student (default: {defaults.RERANK:g})')
    p.add_argument('--candidates', type=int, default=defaults.CANDIDATES,
                   help='candidate videos the selector considers, in all: nearest by coarse similarity, in turns '
                   'with those whose short windows match the query\'s '
                   f'(default: {defaults.CANDIDATES}; Milvus caps it at 16384)')
    p.add_argument('--clips', action=argparse.BooleanOptionalAction, default=defaults.CLIPS,
                   help='candidates from clip hits too, so that a short clip inside a long video is found '
                   f'(default: {"on" if defaults.CLIPS else "off"})')
    _segment_options(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument('--json', action='store_true', help='machine-readable output')
    out.add_argument('--csv', action='store_true', help='the copied segments as CSV in the format of the Video '
                     'Similarity Challenge\'s matching track: query_id,ref_id,query_start,query_end,ref_start,'
                     'ref_end,score (seconds; implies --segments)')
    p.set_defaults(run=run.run_search)

    p = commands.add_parser('dedup', parents=[common], help='groups of near-duplicate videos in the index')
    p.add_argument('--threshold', type=float,
                   help='least score of a duplicate pair (default: the index\'s calibrated threshold, else '
                   f'{defaults.COPY_THRESHOLD:g})')
    p.add_argument('--rerank', type=float, default=defaults.DEDUP_RERANK, help='fraction of each video\'s neighbours '
                   f'scored by the fine-grained student (default: {defaults.DEDUP_RERANK:g})')
    p.add_argument('--neighbours', type=int, default=defaults.NEIGHBOURS,
                   help=f'nearest videos considered per video (default: {defaults.NEIGHBOURS})')
    _segment_options(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument('--json', action='store_true', help='groups as JSON')
    out.add_argument('--csv', action='store_true', help='groups as CSV: group,path')
    p.set_defaults(run=run.run_dedup)

    p = commands.add_parser('decisions', parents=[common], help='reviewers\' decisions on pairs (copy / not a '
                            'copy), which dedup follows')
    p.add_argument('--csv', metavar='FILE',
                   help='write them as CSV (a,b,decision,decided_at,score,segments,reviewer); - for stdout')
    p.add_argument('--mark', nargs=3, metavar=('A', 'B', 'DECISION'),
                   help='record a decision on the pair of files A and B (paths as given at index time): copy, '
                   'not_copy, or none to forget it')
    p.set_defaults(run=run.run_decisions)

    p = commands.add_parser('remove', parents=[common], help='forget indexed files and folders of them (the '
                            'files are not touched); a video leaves the index with its last file')
    p.add_argument('paths', nargs='*', metavar='PATH', help='an indexed file, or a folder: every indexed file below '
                   'it (the files need not exist any more)')
    p.add_argument('--missing', action='store_true', help='also every indexed file that no longer exists')
    p.add_argument('--dry-run', action='store_true', help='list what would be removed; change nothing')
    p.set_defaults(run=run.run_remove)

    p = commands.add_parser('sync', parents=[common], help='bring Milvus in step with the catalog: what an indexer '
                            'committed but did not sync (stopped or killed), and clip windows an earlier version '
                            'did not make (`dns index` and `dns remove` end with it; searches never write)')
    p.set_defaults(run=run.run_sync)

    p = commands.add_parser('move-vectors', parents=[common], help='put the index\'s vector collections on another '
                            'Milvus, nothing extracted again (--milvus-uri names the index\'s current one, if asked)')
    p.add_argument('to', metavar='URI', help='a Milvus server or cluster, e.g. http://milvus:19530, or "lite" for '
                   'the Milvus Lite database inside the index folder; --milvus-token is its token')
    p.set_defaults(run=run.run_move_vectors)

    p = commands.add_parser('serve', parents=[common], help='the search service and the review page (HTTP)')
    p.add_argument('--host', default=defaults.HOST, help=f'address to bind (default: {defaults.HOST}; any other needs '
                   'a token)')
    p.add_argument('--port', type=int, default=defaults.PORT, help=f'port (default: {defaults.PORT})')
    p.add_argument('--token', default=os.environ.get('DNS_TOKEN'),
                   help='a secret every request must send as "Authorization: Bearer TOKEN" (default: $DNS_TOKEN); '
                   'required to bind an address other than loopback')
    p.add_argument('--max-upload-mb', type=float, default=defaults.MAX_UPLOAD_MB,
                   help=f'largest uploaded video (default: {defaults.MAX_UPLOAD_MB:g} MB)')
    add_serving_options(p)
    p.set_defaults(run=run.run_serve)

    p = commands.add_parser('evaluate', parents=[common], help='mAP and time per query at re-rank fractions '
                            '0%%, 5%%, ..., 100%%; precision, recall and the best threshold of copy decisions '
                            'and copied segments')
    p.add_argument('ground_truth', metavar='GROUND_TRUTH',
                   help='JSON: {"query.mp4": ["copy1.mp4", ...], ...}, or segments in seconds: '
                   '{"query.mp4": {"copy1.mp4": [[qs, qe, ts, te], ...]}, ...}; paths relative to this file')
    p.add_argument('--candidates', type=int, help='nearest videos considered per query (default: the whole index)')
    p.add_argument('--plot', default=defaults.EVALUATE_PLOT,
                   help=f'the PNG of the curve (default: {defaults.EVALUATE_PLOT}); '
                   'the precision/recall curves go beside it, NAME-pr.png')
    p.add_argument('--calibrate', action='store_true', help='store the thresholds of best F1 in the index, where '
                   'search, dedup, show and segments use them (and whether segments were measured against the '
                   'library)')
    _segment_background_option(p)
    p.add_argument('--json', action='store_true', help='machine-readable output')
    p.set_defaults(run=run.run_evaluate)

    p = commands.add_parser('show', parents=[common], help='heatmap of the fine-grained similarity of two videos')
    p.add_argument('query', metavar='QUERY')
    p.add_argument('target', metavar='TARGET')
    p.add_argument('--out', default=defaults.SHOW_PLOT, help=f'the PNG to write (default: {defaults.SHOW_PLOT})')
    p.add_argument('--segment-threshold', type=float, metavar='T',
                   help='least score of a drawn segment (default: the index\'s calibrated threshold, else '
                   f'{defaults.SEGMENT_THRESHOLD:g})')
    _segment_background_option(p)
    p.set_defaults(run=run.run_show)
    return parser


def _segment_options(p: argparse.ArgumentParser) -> None:
    p.add_argument('--segments', action='store_true', help='add the copied segments of each pair: where the copy '
                   'is in both videos, in seconds')
    p.add_argument('--segment-threshold', type=float, metavar='T',
                   help='least score of a copied segment, in standard deviations above its pair\'s background and '
                   'what chance reaches in a pair of its size '
                   f'(default: the index\'s calibrated threshold, else {defaults.SEGMENT_THRESHOLD:g})')
    _segment_background_option(p)


def _segment_background_option(p: argparse.ArgumentParser) -> None:
    p.add_argument('--segment-background', choices=('on', 'off'),
                   help='measure segments against the library too: up to '
                   f'{defaults.BACKGROUND_VIDEOS} other indexed videos give each frame the similarity that '
                   'look-alikes reach, and a match must rise above it; look-alikes (two landscapes, two studios) '
                   'stop making segments, and so does a piece three of those videos hold (default: as the index '
                   'was calibrated, else off)')
