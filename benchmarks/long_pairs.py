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
import os
import subprocess
import sys
from pathlib import Path

import torch

from common import benchmark_parser, machine, markdown_table, matmul_peak, update_readme

STUDENTS = ('fg_att_student', 'fg_bin_student')

CHILD = r"""
import ctypes, json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import torch
from common import AnonymousPeak, package, peak_rss_mb, use_timing_weights, _status_mb
use_timing_weights()
student, tq, tt, n, time_frames = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == '1'
op = package().DistillAndSelect(student, feature_extractor=None, device='cpu')
rng = np.random.default_rng(0)

def features(t):
    x = rng.standard_normal((t, 9, 512), dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)

query = op(features(tq))
base = op(features(tt + n - 1))
targets = [base[i:i + tt] for i in range(n)]  # views: distinct targets, one video's memory
try:  # hand the heap freed while indexing back to the system: it is not the inputs
    ctypes.CDLL('libc.so.6').malloc_trim(0)
except OSError:
    pass

inputs_mb = _status_mb('RssAnon')
start, cpu = time.perf_counter(), time.process_time()
with AnonymousPeak() as anonymous:
    sims = op.similarity(query, targets)
seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
rss_mb = peak_rss_mb()
assert sims.shape == (n,) and np.isfinite(sims).all()

# The frame-to-frame part alone, on one pair, after the memory figures (its buffers would
# be counted as inputs); the first call warms the kernels up.
model, q, t = op.model, torch.from_numpy(query), torch.from_numpy(targets[0])
frame_seconds = frame_cpu_seconds = float('nan')
with torch.inference_mode():
    def frames():
        return model.frame_similarity_matrix(q, t)
    if time_frames:
        frames()
        start, cpu = time.perf_counter(), time.process_time()
        frames()
        frame_seconds, frame_cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({'student': student, 'query_frames': tq, 'target_frames': tt, 'targets': n,
                  'seconds': seconds, 'cpu_seconds': cpu_seconds, 'frame_seconds': frame_seconds,
                  'frame_cpu_seconds': frame_cpu_seconds, 'peak_rss_mb': rss_mb,
                  'inputs_anon_mb': inputs_mb, 'peak_anon_mb': anonymous.peak_mb,
                  'threads': torch.get_num_threads()}))
"""


def run(student: str, query_frames: int, target_frames: int, targets: int, time_frames: bool = True) -> dict:
    """One query against ``targets`` targets with the operator, in a fresh process: its
    figures (time_frames: also time the frame-to-frame part alone, on one pair)."""
    here = str(Path(__file__).resolve().parent)
    out = subprocess.run([sys.executable, '-c', CHILD, here, student, str(query_frames), str(target_frames),
                          str(targets), '1' if time_frames else '0'], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f'{student} failed (exit {out.returncode}):\n{out.stderr[-3000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = benchmark_parser(device=False)
    parser.add_argument('--query-frames', type=int, default=3600)
    parser.add_argument('--target-frames', type=int, default=3600)
    parser.add_argument('--targets', type=int, default=64)
    parser.add_argument('--students', nargs='+', default=list(STUDENTS), choices=STUDENTS)
    args = parser.parse_args()
    peaks = {'fp32': matmul_peak(torch.float32), 'bf16': matmul_peak(torch.bfloat16)}
    print(f"matrix-product peak (4096x512 by 512x4096): fp32 {peaks['fp32'][0]:.0f} GFLOP/s "
          f"({peaks['fp32'][1]:.0f} per CPU-second), bf16 {peaks['bf16'][0]:.0f} GFLOP/s "
          f"({peaks['bf16'][1]:.0f} per CPU-second); load average {os.getloadavg()[0]:.1f}")
    rows = []
    for student in args.students:
        r = run(student, args.query_frames, args.target_frames, args.targets)
        # Region similarity: 9 x 9 dot products of 512 dims per pair of frames.
        flop = 2 * r['query_frames'] * 9 * r['target_frames'] * 9 * 512 / 1e9
        frame_wall, frame_cpu = flop / r['frame_seconds'], flop / r['frame_cpu_seconds']
        # Shares of the peak by CPU time, which other processes on the machine disturb least.
        share = {dtype: frame_cpu / peaks[dtype][1] for dtype in peaks}
        beyond = r['peak_anon_mb'] - r['inputs_anon_mb']
        pairs_s = r['targets'] / r['seconds']
        cells_s = r['targets'] * r['query_frames'] * r['target_frames'] / r['seconds'] / 1e6
        print(f"{student}: {r['query_frames']} x {r['targets']} targets of {r['target_frames']} frames: "
              f"{r['seconds']:.1f} s ({r['cpu_seconds']:.1f} CPU-s), {pairs_s:.3f} pairs/s, {cells_s:.2f} M frame "
              f"pairs/s; peak RSS {r['peak_rss_mb']:.0f} MB, peak anonymous {r['peak_anon_mb']:.0f} MB "
              f"({beyond:.0f} MB beyond the model and inputs); frame similarities {frame_wall:.0f} GFLOP/s, "
              f"{frame_cpu:.0f} per CPU-second: {share['fp32']:.0%} of the fp32 peak, {share['bf16']:.0%} of bf16's")
        rows.append([student, f"{r['query_frames']:,}", f"{r['targets']} x {r['target_frames']:,}",
                     f"{r['seconds']:.1f}", f'{pairs_s:.3f}', f'{cells_s:.2f}', f"{r['peak_rss_mb']:.0f}",
                     f"{r['peak_anon_mb']:.0f}", f'{beyond:.0f}',
                     f"{frame_wall:.0f} ({share['bf16' if student == 'fg_bin_student' else 'fp32']:.0%})"])
    table = markdown_table(['student', 'query frames', 'targets x frames', 'seconds', 'pairs/s',
                            'M frame pairs/s', 'peak RSS (MB)', 'peak anonymous (MB)',
                            'beyond model and inputs (MB)', 'frame similarities GFLOP/s (of matmul peak)'], rows)
    if not args.no_readme:
        update_readme('long-pairs', f"{table}\n\nMatrix-product peak (4096x512 by 512x4096): fp32 "
                                    f"{peaks['fp32'][0]:.0f} GFLOP/s, bf16 {peaks['bf16'][0]:.0f} GFLOP/s; fg_att's "
                                    f"share is of the fp32 peak, fg_bin's of the bf16 one, by CPU time. "
                                    f"CPU: {machine()}.")


if __name__ == '__main__':
    main()
