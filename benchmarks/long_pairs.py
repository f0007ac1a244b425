"""Fine-grained similarity of long videos: one query (default 1 hour at 1 frame/s, 3,600
frames) against many long targets (default 64 of 3,600 frames), fg_att and fg_bin, each
student in a fresh process: peak RSS, peak anonymous memory beyond the inputs, seconds,
pairs/s, and the fraction of this machine's matrix-product peak that the
frame-to-frame similarity part reaches. Updates the README's table.

    .venv/bin/python benchmarks/long_pairs.py [--query-frames 3600] [--target-frames 3600] [--targets 64]

The targets are overlapping windows of one indexed video, so they differ from each other
while the inputs take the memory of one video; the similarity code sees separate tensors.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from common import benchmark_parser, machine, markdown_table, update_readme

STUDENTS = ('fg_att_student', 'fg_bin_student')

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import torch
from common import AnonymousPeak, package, peak_rss_mb, use_timing_weights, _status_mb
use_timing_weights()
student, tq, tt, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
op = package().DistillAndSelect(student, feature_extractor=None, device='cpu')
rng = np.random.default_rng(0)

def features(t):
    x = rng.standard_normal((t, 9, 512), dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)

query = op(features(tq))
base = op(features(tt + n - 1))
targets = [base[i:i + tt] for i in range(n)]  # views: distinct targets, one video's memory

# The frame-to-frame part alone, on one pair (the first call warms the kernels up).
model, q, t = op.model, torch.from_numpy(query), torch.from_numpy(targets[0])
with torch.inference_mode():
    def frames():
        if hasattr(model, 'frame_similarity_matrix'):
            return model.frame_similarity_matrix(q, t)
        return model.frame_similarity(q, t[None])[0]  # the code before the tiled path
    frames()
    start = time.perf_counter()
    frames()
    frame_seconds = time.perf_counter() - start

inputs_mb = _status_mb('RssAnon')
start = time.perf_counter()
with AnonymousPeak() as anonymous:
    sims = op.similarity(query, targets)
seconds = time.perf_counter() - start
assert sims.shape == (n,) and np.isfinite(sims).all()
print(json.dumps({'student': student, 'query_frames': tq, 'target_frames': tt, 'targets': n,
                  'seconds': seconds, 'frame_seconds': frame_seconds, 'peak_rss_mb': peak_rss_mb(),
                  'inputs_anon_mb': inputs_mb, 'peak_anon_mb': anonymous.peak_mb,
                  'threads': torch.get_num_threads()}))
"""


def run(student: str, query_frames: int, target_frames: int, targets: int) -> dict:
    here = str(Path(__file__).resolve().parent)
    out = subprocess.run([sys.executable, '-c', CHILD, here, student, str(query_frames), str(target_frames),
                          str(targets)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f'{student} failed (exit {out.returncode}):\n{out.stderr[-3000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def matmul_peak_gflops(dtype: torch.dtype, m: int = 4096, n: int = 4096, k: int = 512) -> float:
    """Best of several large products [m, k] x [k, n]: this machine's practical peak."""
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    out = torch.empty(m, n, dtype=dtype)
    torch.mm(a, b, out=out)
    best = float('inf')
    for _ in range(5):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * m * n * k / best / 1e9


def main():
    parser = benchmark_parser(device=False)
    parser.add_argument('--query-frames', type=int, default=3600)
    parser.add_argument('--target-frames', type=int, default=3600)
    parser.add_argument('--targets', type=int, default=64)
    parser.add_argument('--students', nargs='+', default=list(STUDENTS), choices=STUDENTS)
    args = parser.parse_args()
    peaks = {'fp32': matmul_peak_gflops(torch.float32), 'bf16': matmul_peak_gflops(torch.bfloat16)}
    print(f"matrix-product peak (4096x512 by 512x4096): fp32 {peaks['fp32']:.0f} GFLOP/s, "
          f"bf16 {peaks['bf16']:.0f} GFLOP/s")
    rows = []
    for student in args.students:
        r = run(student, args.query_frames, args.target_frames, args.targets)
        # Region similarity: 9 x 9 dot products of 512 dims per pair of frames.
        frame_gflops = 2 * r['query_frames'] * 9 * r['target_frames'] * 9 * 512 / r['frame_seconds'] / 1e9
        dtype = 'bf16' if student == 'fg_bin_student' else 'fp32'
        beyond = r['peak_anon_mb'] - r['inputs_anon_mb']
        pairs_s = r['targets'] / r['seconds']
        print(f"{student}: {r['query_frames']} x {r['targets']} targets of {r['target_frames']} frames: "
              f"{r['seconds']:.1f} s, {pairs_s:.3f} pairs/s; peak RSS {r['peak_rss_mb']:.0f} MB, peak anonymous "
              f"{r['peak_anon_mb']:.0f} MB ({beyond:.0f} MB beyond the model and inputs); frame similarities "
              f"{frame_gflops:.0f} GFLOP/s = {frame_gflops / peaks['fp32']:.0%} of the fp32 peak"
              + (f" ({frame_gflops / peaks['bf16']:.0%} of the bf16 peak)" if dtype == 'bf16' else ''))
        rows.append([student, f"{r['query_frames']:,}", f"{r['targets']} x {r['target_frames']:,}",
                     f"{r['seconds']:.1f}", f'{pairs_s:.3f}', f"{r['peak_rss_mb']:.0f}", f"{r['peak_anon_mb']:.0f}",
                     f'{beyond:.0f}', f"{frame_gflops:.0f} ({frame_gflops / peaks['fp32']:.0%})"])
    table = markdown_table(['student', 'query frames', 'targets x frames', 'seconds', 'pairs/s', 'peak RSS (MB)',
                            'peak anonymous (MB)', 'beyond model and inputs (MB)',
                            'frame similarities GFLOP/s (of fp32 peak)'], rows)
    if not args.no_readme:
        update_readme('long-pairs', f"{table}\n\nfp32 matrix-product peak {peaks['fp32']:.0f} GFLOP/s, bf16 "
                                    f"{peaks['bf16']:.0f} GFLOP/s (4096x512 by 512x4096), CPU: {machine()}.")


if __name__ == '__main__':
    main()
