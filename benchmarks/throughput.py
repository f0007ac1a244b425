"""Frames/s from decoded 360x640 frames to the cg_student vector, eager and compiled
(torch.compile, Inductor with freezing), fp32 and bf16, against the bare torchvision
ResNet-50 run the same way on the same batch, and as a share of this machine's
matrix-product peak; videos of 8 and of 1,000 frames (the fixed batch shapes at work);
the compile cost in this process and a second process's start-up from the disk cache;
the original operator's approach; bf16 against fp32 in agreement. All in one run.
Writes its table into docs/benchmarks.md.

    .venv/bin/python benchmarks/throughput.py [--frames 96] [--batch-size 32] [--device cpu]
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms
from torchvision.models import resnet50

from common import (benchmark_parser, machine, markdown_table, matmul_peak, package, update_benchmarks,
                    use_timing_weights)

DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def seconds(fn) -> float:
    synchronize()
    start = time.perf_counter()
    fn()
    synchronize()
    return time.perf_counter() - start


def frames_per_second(fn, n_frames: int, repeats: int = 2) -> float:
    fn()  # warm-up: allocator, kernels, autocast caches, compilation
    return n_frames / min(seconds(fn) for _ in range(repeats))


def bare_backbone(n_frames, batch_size, device, dtype, compile: bool):
    """torchvision's ResNet-50 (all of it, classifier included) on batches of 256x256,
    compiled with the operator's own settings when ``compile``."""
    from distill_and_select.compilation import COMPILE_OPTIONS
    model = resnet50().eval().to(device, memory_format=torch.channels_last)
    if compile:
        model = torch.compile(model, dynamic=False, **COMPILE_OPTIONS[device.type])
    x = torch.randn(batch_size, 3, 256, 256, device=device).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def run():
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            for _ in range(n_frames // batch_size):
                model(x)
    return run


def gflop_per_frame(op) -> float:
    """Floating-point operations of the feature extractor and cg student on one frame."""
    counter = FlopCounterMode(display=False)
    frame = torch.zeros(1, 256, 256, 3, device=op.device)
    with counter, torch.inference_mode():
        op.model.index_video(op.encoder.network(frame)[None])
    return counter.get_total_flops() / 1e9


def original_approach(op, frames):
    """PIL per frame, every frame of the video in one batch."""
    pil = transforms.Compose([transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
                              transforms.CenterCrop(256)])

    @torch.inference_mode()
    def run():
        batch = np.stack([np.asarray(pil(Image.fromarray(f)), dtype=np.float32) for f in frames])
        features = op.encoder.network(torch.from_numpy(batch).to(op.device))
        op.model.index_video(features[None])
    return run


def videos_per_length(op, frames, length: int, total: int) -> float:
    """Frames/s on videos of ``length`` frames, ``total`` frames in all (frames reused)."""
    videos = [[frames[i % len(frames)] for i in range(length)] for _ in range(max(1, total // length))]

    def run():
        for video in videos:
            op(video)
    return frames_per_second(run, length * len(videos), repeats=1)


START_CHILD = r"""
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import numpy as np
from common import package, use_timing_weights
use_timing_weights()
op = package().DistillAndSelect('cg_student', device=sys.argv[2], batch_size=int(sys.argv[3]), compile=True)
frames = list(np.random.default_rng(0).integers(0, 256, (int(sys.argv[3]), 360, 640, 3), dtype=np.uint8))
op(frames)
print(json.dumps({'seconds': time.perf_counter() - start}))
"""


def second_process_start(device: str, batch_size: int) -> float:
    """A new process: imports, weights, compiling one batch shape from the disk cache
    this process filled, the first batch."""
    out = subprocess.run([sys.executable, '-c', START_CHILD, str(Path(__file__).resolve().parent), device,
                          str(batch_size)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])['seconds']


def agreement(dns, golden, device):
    """bf16 against fp32 on the reference frames: region-vector cosines, similarity gaps."""
    fp32 = dns.DistillAndSelect('feature_extractor', device=device)
    bf16 = dns.DistillAndSelect('feature_extractor', device=device, precision='bf16')
    feats = {v: (fp32(golden[f'frames_{v}']), bf16(golden[f'frames_{v}'])) for v in 'ABC'}
    cosines = np.concatenate([(a * b).sum(-1).ravel() for a, b in feats.values()])
    gaps = {}
    for student in ('fg_att_student', 'fg_bin_student', 'cg_student'):
        op = dns.DistillAndSelect(student, feature_extractor=None, device=device)
        gaps[student] = max(abs(op.similarity(op(feats[q][0]), op(feats[t][0]))
                                - op.similarity(op(feats[q][1]), op(feats[t][1])))
                            for q, t in ('AB', 'BA', 'AC', 'AA'))
    return cosines, gaps


def main():
    parser = benchmark_parser(device=True)
    parser.add_argument('--frames', type=int, default=96)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--long-video', type=int, default=1000, help='frames of the long videos')
    args = parser.parse_args()
    use_timing_weights()
    dns = package()
    device = torch.device(args.device)
    n, bs = args.frames - args.frames % args.batch_size, args.batch_size
    frames = list(np.random.default_rng(0).integers(0, 256, (n, 360, 640, 3), dtype=np.uint8))
    precisions = ['fp32', 'bf16'] + (['fp16'] if device.type == 'cuda' else [])
    peaks = {'fp32': matmul_peak(torch.float32)[0], 'bf16': matmul_peak(torch.bfloat16)[0]} \
        if device.type == 'cpu' else {}

    rows, operators, compile_seconds = [], {}, {}
    flop = gflop_per_frame(dns.DistillAndSelect('cg_student', device=args.device, batch_size=bs))
    for precision in precisions:
        for compile in (False, True):
            bare = frames_per_second(bare_backbone(n, bs, device, DTYPES[precision], compile), n)
            op = dns.DistillAndSelect('cg_student', device=args.device, batch_size=bs, precision=precision,
                                      compile=compile)
            first = seconds(lambda: op(frames))
            ours = frames_per_second(lambda: op(frames), n)
            if compile:
                compile_seconds[precision] = first - n / ours
            operators[precision, compile] = op
            share = f'{ours * flop / peaks[precision]:.0%}' if precision in peaks else 'n/a'
            rows.append([precision, 'compiled' if compile else 'eager', f'{bare:.1f}', f'{ours:.1f}',
                         f'{ours / bare:.2f}', f'{ours * flop:.0f}', share])
            print(f'{precision} {"compiled" if compile else "eager"}: bare ResNet-50 {bare:.1f} frames/s, DnS '
                  f'frames to cg vector {ours:.1f} frames/s ({ours / bare:.2f}x the bare network run the same way; '
                  f'{ours * flop:.0f} GFLOP/s, {share} of the matmul figure)', flush=True)

    lengths = []
    for length in (8, args.long_video):
        eager = videos_per_length(operators['fp32', False], frames, length, max(length, 4 * bs))
        compiled = videos_per_length(operators['fp32', True], frames, length, max(length, 4 * bs))
        lengths.append([length, f'{eager:.1f}', f'{compiled:.1f}', f'{compiled / eager:.2f}'])
        print(f'videos of {length} frames, fp32: eager {eager:.1f}, compiled {compiled:.1f} frames/s', flush=True)
    restart = second_process_start(args.device, bs)
    print(f'compiling in this process: fp32 {compile_seconds["fp32"]:.0f} s, bf16 {compile_seconds["bf16"]:.0f} s '
          f'(one batch shape); a second process, imports to first batch out, from the disk cache: {restart:.1f} s')

    op = operators['fp32', False]
    original = frames_per_second(original_approach(op, frames), n, repeats=1)
    print(f'original approach (PIL per frame, whole video in one batch): {original:.1f} frames/s')
    golden = dict(np.load(package().__path__[0] + '/tests/data/golden.npz'))
    cosines, gaps = agreement(dns, golden, args.device)
    print(f'bf16 vs fp32 region vectors: cosine min {cosines.min():.6f}, mean {cosines.mean():.6f}')
    for student, gap in gaps.items():
        print(f'bf16 vs fp32 {student} similarity: max |difference| {gap:.4f}')

    table = markdown_table(['precision', 'path', 'bare ResNet-50 run the same way (frames/s)',
                            'DnS operator, frames to cg vector (frames/s)', 'ratio', 'GFLOP/s',
                            'of the matmul figure'], rows)
    per_length = markdown_table(['video length (frames)', 'eager fp32 (frames/s)', 'compiled fp32 (frames/s)',
                                 'speed-up'], lengths)
    peak_text = (f"Matmul figure (the best 4096x512 by 512x4096 product): fp32 {peaks['fp32']:.0f}, "
                 f"bf16 {peaks['bf16']:.0f} GFLOP/s; the operator does {flop:.1f} GFLOP per frame. " if peaks else '')
    text = (f'{table}\n\n{per_length}\n\n{peak_text}Compiling costs {compile_seconds["fp32"]:.0f} s (fp32) and '
            f'{compile_seconds["bf16"]:.0f} s (bf16) per batch shape in the first process; a second process '
            f'takes {restart:.1f} s from start to its first batch of {bs} frames out, compiling from the disk cache. '
            f'Original operator approach (PIL resize per frame, whole video in one batch), fp32 eager: '
            f'{original:.1f} frames/s. bf16 against fp32 on the reference frames: region-vector cosine min '
            f'{cosines.min():.6f} (mean {cosines.mean():.6f}); largest similarity difference '
            + ', '.join(f'{s} {g:.4f}' for s, g in gaps.items())
            + f'.\n\n{n} frames of 360x640, batch size {bs}, {args.device}: {machine()}.')
    if not args.print_only:
        update_benchmarks(f'throughput-{device.type}', text)


if __name__ == '__main__':
    main()
