"""Frames/s from decoded 360x640 frames to the cg_student vector, against the bare
torchvision ResNet-50 forward on the same batch size, and against the original
operator's approach (PIL resize per frame, the whole video in one batch); bf16 against
fp32 in speed and agreement. Updates the README's table.

    .venv/bin/python benchmarks/throughput.py [--frames 96] [--batch-size 32] [--device cpu]
"""
import time

import numpy as np
import torch
from PIL import Image
from torchvision import transforms
from torchvision.models import resnet50

from common import benchmark_parser, machine, markdown_table, package, update_readme, use_timing_weights


def frames_per_second(fn, n_frames: int, repeats: int = 2) -> float:
    fn()  # warm-up: allocator, kernels, autocast caches
    best = float('inf')
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return n_frames / best


def bare_backbone(n_frames, batch_size, device, dtype):
    model = resnet50().eval().to(device, memory_format=torch.channels_last)
    x = torch.randn(batch_size, 3, 256, 256, device=device).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def run():
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            for _ in range(n_frames // batch_size):
                model(x)
    return run


def original_approach(op, frames):
    """PIL per frame, every frame of the video in one batch."""
    pil = transforms.Compose([transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
                              transforms.CenterCrop(256)])

    @torch.inference_mode()
    def run():
        batch = np.stack([np.asarray(pil(Image.fromarray(f)), dtype=np.float32) for f in frames])
        features = op.extractor(torch.from_numpy(batch).to(op.device))
        op.model.index_video(features[None])
    return run


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
    args = parser.parse_args()
    use_timing_weights()
    dns = package()
    device = torch.device(args.device)
    n, bs = args.frames - args.frames % args.batch_size, args.batch_size
    frames = list(np.random.default_rng(0).integers(0, 256, (n, 360, 640, 3), dtype=np.uint8))
    precisions = ['fp32', 'bf16'] + (['fp16'] if device.type == 'cuda' else [])
    dtypes = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}

    rows = []
    for precision in precisions:
        bare = frames_per_second(bare_backbone(n, bs, device, dtypes[precision]), n)
        op = dns.DistillAndSelect('cg_student', device=args.device, batch_size=bs, precision=precision)
        ours = frames_per_second(lambda: op(frames), n)
        rows.append([precision, f'{bare:.1f}', f'{ours:.1f}', f'{ours / bare:.2f}'])
        print(f'{precision}: bare ResNet-50 {bare:.1f} frames/s, DnS operator end to end {ours:.1f} frames/s '
              f'({ours / bare:.2f}x)')
    op = dns.DistillAndSelect('cg_student', device=args.device, batch_size=bs)
    original = frames_per_second(original_approach(op, frames), n, repeats=1)
    print(f'original approach (PIL per frame, whole video in one batch): {original:.1f} frames/s')

    golden = dict(np.load(package().__path__[0] + '/tests/data/golden.npz'))
    cosines, gaps = agreement(dns, golden, args.device)
    print(f'bf16 vs fp32 region vectors: cosine min {cosines.min():.6f}, mean {cosines.mean():.6f}')
    for student, gap in gaps.items():
        print(f'bf16 vs fp32 {student} similarity: max |difference| {gap:.4f}')

    table = markdown_table(['precision', 'bare ResNet-50 (frames/s)', 'DnS operator, frames to cg vector (frames/s)',
                            'ratio'], rows)
    text = (f'{table}\n\nOriginal operator approach (PIL resize per frame, whole video in one batch), fp32: '
            f'{original:.1f} frames/s. bf16 against fp32 on the reference frames: region-vector cosine min '
            f'{cosines.min():.6f} (mean {cosines.mean():.6f}); largest similarity difference '
            + ', '.join(f'{s} {g:.4f}' for s, g in gaps.items())
            + f'.\n\n{n} frames of 360x640, batch size {bs}, {args.device}: {machine()}.')
    if not args.no_readme:
        update_readme(f'throughput-{device.type}', text)


if __name__ == '__main__':
    main()
