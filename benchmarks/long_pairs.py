"""Fine-grained similarity of long videos: one query (default 1 hour at 1 frame/s, 3,600
frames) against many long targets (default 64 of 3,600 frames), fg_att and fg_bin, each
student in a fresh process: peak RSS, peak anonymous memory beyond the inputs, seconds,
pairs/s, and the fraction of this machine's matrix-product peak that the
frame-to-frame similarity part reaches. Writes its table into docs/benchmarks.md.

    .venv/bin/python benchmarks/long_pairs.py [--query-frames 3600] [--target-frames 3600] [--targets 64]

The targets are overlapping windows of one indexed video, so they differ from each other
while the inputs take the memory of one video; the similarity code sees separate tensors.
"""
import os

import torch

from common import benchmark_parser, machine, markdown_table, matmul_peak, update_benchmarks
from support.probes import long_pairs as run  # noqa: E402  (common puts tests/ on the path)

STUDENTS = ('fg_att_student', 'fg_bin_student')

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
    if not args.print_only:
        update_benchmarks('long-pairs', f"{table}\n\nMatrix-product peak (4096x512 by 512x4096): fp32 "
                                    f"{peaks['fp32'][0]:.0f} GFLOP/s, bf16 {peaks['bf16'][0]:.0f} GFLOP/s; fg_att's "
                                    f"share is of the fp32 peak, fg_bin's of the bf16 one, by CPU time. "
                                    f"CPU: {machine()}.")


if __name__ == '__main__':
    main()
