"""Students at scale: one query against 1,000 targets (30 +- 10 frames each): targets/s
of fg_att and fg_bin similarity (padded batches), cg similarity and selector scores.
Writes its table into docs/benchmarks.md.

    .venv/bin/python benchmarks/students.py [--targets 1000] [--frames 30]
"""
import time

import numpy as np
import torch

from common import (benchmark_parser, machine, markdown_table, package, region_features, update_benchmarks,
                    use_timing_weights)


def timed(fn, repeats=2):
    fn()
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = benchmark_parser(device=True)
    parser.add_argument('--targets', type=int, default=1000)
    parser.add_argument('--frames', type=int, default=30)
    args = parser.parse_args()
    use_timing_weights()
    dns = package()
    rng = np.random.default_rng(0)
    lengths = rng.integers(args.frames - 10, args.frames + 11, args.targets)
    videos = [region_features(rng, t) for t in lengths]
    query = region_features(rng, args.frames)

    rows = []
    for student in ('fg_att_student', 'fg_bin_student', 'cg_student'):
        op = dns.DistillAndSelect(student, feature_extractor=None, device=args.device)
        q, targets = op(query), [op(v) for v in videos]
        seconds = timed(lambda: op.similarity(q, targets))
        rows.append([student, f'{args.targets / seconds:,.0f}'])
        print(f'{student}: {args.targets / seconds:,.0f} targets/s')
    selector = dns.DistillAndSelect('selector_att', feature_extractor=None, device=args.device)
    values = np.array([float(selector(v)) for v in videos[:50]] * (args.targets // 50 + 1))[:args.targets]
    seconds = timed(lambda: selector.score(0.1, values, rng.random(args.targets)))
    rows.append(['selector_att score', f'{args.targets / seconds:,.0f}'])
    print(f'selector score: {args.targets / seconds:,.0f} pairs/s')
    table = markdown_table(['comparison', 'targets/s'], rows)
    if not args.print_only:
        update_benchmarks(f'students-{torch.device(args.device).type}',
                      f'{table}\n\nOne query of {args.frames} frames against {args.targets} targets of '
                      f'{args.frames - 10} to {args.frames + 10} frames, {args.device}: {machine()}.')


if __name__ == '__main__':
    main()
