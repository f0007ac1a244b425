"""Files the way they come from the field (tests/support/field_files.py: an MPEG-TS
starting at 1.48 s, an MP4 with a 30.5 s start offset, anamorphic pixels, letterbox and
pillarbox bars, a variable frame rate with a 3 s hole, an animated GIF, a rotation flag),
made from source clips and compared with them by the copy model's fine student. Per
variant: its fine similarity to its source against the plain re-encode's (the ratio:
goal 0.9 or more), against the best unrelated clip's, and the copied segment's times
against the truth (seconds from each file's first frame; goal: within one sample).
The border detector's threshold was tuned on clips of the seeds of ``TUNE_SEEDS``; the
table reports on others. Writes the block `real-files` of docs/benchmarks.md.

    .venv/bin/python benchmarks/real_files.py [--sources 3] [--seconds 10]
"""
import tempfile
from pathlib import Path

import numpy as np

from common import benchmark_parser, machine, markdown_table, package, update_benchmarks, use_copy_model

REPORT_SEED = 7100   # sources reported on; the border detector was tuned on TUNE_SEEDS
TUNE_SEEDS = (7000, 7001, 7002)
UNRELATED_SEED = 7200
SIZE = (144, 192)    # height, width of the source clips
FPS = 8


def main():
    parser = benchmark_parser()
    parser.add_argument('--sources', type=int, default=3)
    parser.add_argument('--unrelated', type=int, default=3)
    parser.add_argument('--seconds', type=int, default=10)
    args = parser.parse_args()
    use_copy_model()
    package()
    with tempfile.TemporaryDirectory() as tmp:
        table = run(Path(tmp), args)
    print(table)
    if not args.print_only:
        update_benchmarks('real-files', table)


def run(work: Path, args) -> str:
    from support.corpus import varied_scene
    from support.field_files import VARIANTS, make_variant
    from support.video_files import make_video
    from distill_and_select.core import DnS
    from distill_and_select.retrieval.ingest import represent_file
    from distill_and_select.retrieval.index import sample_times

    models = DnS('att', device='cpu')
    n = args.seconds * FPS

    def represent(path):
        return represent_file(path, models, 1.0, thumbnails=0)

    unrelated = [represent(make_video(work / f'unrelated{j}.mp4', varied_scene(n, *SIZE, seed=UNRELATED_SEED + j),
                                      fps=FPS)) for j in range(args.unrelated)]
    rows = {kind: [] for kind in VARIANTS}
    for i in range(args.sources):
        frames = varied_scene(n, *SIZE, seed=REPORT_SEED + i)
        source = represent(make_video(work / f'source{i}.mp4', frames, fps=FPS))
        best_unrelated = max(float(models.fine_similarity(source.fine, u.fine)) for u in unrelated)
        plain = None
        for kind, variant in VARIANTS.items():
            copy = represent(make_variant(kind, work, frames, FPS, name=f'source{i}'))
            similarity = float(models.fine_similarity(source.fine, copy.fine))
            plain = similarity if kind == 'reencode' else plain
            found = [piece for segment in models.segments(source.fine, copy.fine)
                     for piece in segment.on_timelines(sample_times(source.times, source.frames, 1.0),
                                                       sample_times(copy.times, copy.frames, 1.0), 1.0)]
            rows[kind].append((similarity, similarity / plain, similarity > best_unrelated,
                               time_error(found, variant.truth(args.seconds)),
                               len(copy.fine), copy.width, copy.height))
    header = ('variant', 'fine similarity', 'of the re-encode\'s', 'above every unrelated clip',
              'segment time error (s)', 'samples', 'display size')
    table = []
    for kind, values in rows.items():
        sims, ratios, above, errors, samples, widths, heights = zip(*values)
        table.append((kind, f'{np.mean(sims):.3f}', f'{min(ratios):.2f}', f'{sum(above)}/{len(above)}',
                      'none found' if any(e is None for e in errors) else f'{max(errors):.2f}',
                      samples[0], f'{widths[0]}x{heights[0]}'))
    return (f'{args.sources} source clips of {args.seconds} s ({SIZE[1]}x{SIZE[0]}, {FPS} frames/s, seeds from '
            f'{REPORT_SEED}), {args.unrelated} unrelated clips, one sample a second, the copy model '
            f'(tests/support/copy_model.py). Similarity: the mean over the sources; "of the re-encode\'s": the '
            f'least ratio to the plain x264 re-encode\'s similarity; time error: the largest distance of a found '
            f'segment\'s bounds (source and file timelines) from the truth\'s, seconds from each file\'s '
            f'first frame. {machine()}.\n\n' + markdown_table(header, table))


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
