"""End-to-end indexing throughput, in video-seconds per second and sampled frames per
second: the plain engine (`dns index`) and the Ray engine (`dns index --ray`, a local Ray
instance here) on the same videos, against the bare backbone (the feature extractor on
full batches of crops, on the same device) and against decoding alone (decode, resize
and crop in one process, as one Ray decode task does it). Checks that both engines
build equal indexes. Writes its table into docs/benchmarks.md.

    .venv/bin/python benchmarks/indexing.py [--videos 12] [--seconds 8] [--device cpu]
"""
import importlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from common import (benchmark_parser, machine, markdown_table, package, timed, torch_home_for_subprocesses,
                    update_benchmarks, use_timing_weights)
from support.video_files import make_video, moving_scene

FPS = 25
SIZE = (360, 640)


def make_videos(folder: Path, count: int, seconds: int) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    return [str(make_video(folder / f'v{i:03d}.mp4', moving_scene(seconds * FPS, *SIZE, seed=i), fps=FPS, crf=23))
            for i in range(count)]


def decode_alone(files, time_step: float) -> int:
    stages = importlib.import_module(package().__name__ + '.retrieval.ingestion.ray_engine.stages')
    frames = 0
    for path in files:
        (row,) = stages.decode_crops({'path': path, 'file': path, 'video_id': ''}, time_step)
        frames += len(row['crops'])
    return frames


def bare_backbone(models, frames: int) -> int:
    """The extractor on full batches of crops, at least ``frames``; returns how many."""
    crops = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (models.encoder.batch_size, 256, 256, 3),
                                                                dtype=np.uint8))
    encoder = models.encoder
    batches = -(-frames // len(crops))
    for _ in range(batches):
        out = encoder.encode_crops(crops)
    out.cpu()  # wait for the device
    return batches * len(crops)


def main():
    parser = benchmark_parser(device=True)
    parser.add_argument('--videos', type=int, default=12)
    parser.add_argument('--seconds', type=int, default=8)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--compile', action='store_true', help='compiled feature extractors in both engines')
    args = parser.parse_args()
    use_timing_weights()
    os.environ['TORCH_HOME'] = str(torch_home_for_subprocesses())  # Ray's workers find the weights there
    os.environ.setdefault('RAY_USAGE_STATS_ENABLED', '0')
    retrieval = importlib.import_module(package().__name__ + '.retrieval')
    ingest = importlib.import_module(package().__name__ + '.retrieval.ingestion.ingest')
    tally_module = importlib.import_module(package().__name__ + '.retrieval.ingestion.tally')
    driver = importlib.import_module(package().__name__ + '.retrieval.ingestion.ray_engine.driver')
    options = {'device': args.device, 'precision': 'fp32', 'batch_size': args.batch_size, 'compile': args.compile}
    video_seconds = args.videos * args.seconds
    rows = []

    def row(what, seconds, frames, note=''):
        rows.append([what, f'{seconds:.1f}', f'{video_seconds / seconds:.2f}', f'{frames / seconds:.2f}', note])
        print(f'{what}: {seconds:.1f} s, {rows[-1][2]} video-s/s, {rows[-1][3]} frames/s {note}')

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = make_videos(tmp / 'videos', args.videos, args.seconds)
        frames, seconds = timed(lambda: decode_alone(files, 1.0))
        row('decoding alone (decode, resize, crop; 1 process)', seconds, frames)

        plain = retrieval.VideoIndex(tmp / 'plain', create=True)
        models, load_s = timed(lambda: package().DnS(plain.settings.fine, **options))
        models.encoder.encode_crops(torch.zeros(1, 256, 256, 3, dtype=torch.uint8))  # warm-up
        backbone_frames, seconds = timed(lambda: bare_backbone(models, frames))
        row(f'bare backbone (batches of {args.batch_size})', seconds * frames / backbone_frames, frames)
        tally = tally_module.IndexTally(len(files), progress=False)
        _, seconds = timed(lambda: ingest.index_files(plain, files, models, tally))
        assert tally.counts['indexed'] == len(files)
        row('`dns index`', seconds, frames, f'models built before, in {load_s:.1f} s')
        plain.close()

        _, ray_start_s = timed(driver.connect)
        import ray
        where = driver.placement(ray.cluster_resources(), options)
        with retrieval.VideoIndex(tmp / 'ray', create=True) as index:
            tally = tally_module.IndexTally(len(files), progress=False)
            _, seconds = timed(lambda: driver.index_on_ray(index, files, options, tally))
            assert tally.counts['indexed'] == len(files)
        row('`dns index --ray`', seconds, frames, f'{where.actors} actor(s) of {where.num_cpus:g} CPU; actors '
            f'built in the run; Ray started before, in {ray_start_s:.1f} s')
        ray.shutdown()
        with retrieval.VideoIndex(tmp / 'ray') as a, retrieval.VideoIndex(tmp / 'plain') as b:
            for video_id in b.catalog.video_ids():
                np.testing.assert_allclose(a.representation(video_id).coarse, b.representation(video_id).coarse,
                                           atol=1e-4)
    table = markdown_table(['what', 's', 'video-s/s', 'frames/s', 'note'], rows)
    text = (f'{table}\n\n{args.videos} H.264 videos of {args.seconds} s, {SIZE[1]}x{SIZE[0]} at {FPS} frames/s, '
            f'sampled at 1 frame/s ({frames} frames), on {args.device}: {machine()}. Both engines built equal '
            'indexes.')
    if not args.print_only:
        update_benchmarks(f'indexing-{torch.device(args.device).type}', text)


if __name__ == '__main__':
    main()
