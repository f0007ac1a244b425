"""Peak RSS of the operator (frames to cg_student vector, 360x640, CPU) at several video
lengths, fed an iterator (frames made one at a time, as a decoder yields them) and a
list (frames already in memory; reported beyond the list's own size). Each length runs
in a fresh process. Writes its table into docs/benchmarks.md.

    .venv/bin/python benchmarks/memory.py [--lengths 300 1200 3600] [--list-lengths 300 1200]
"""

from common import benchmark_parser, machine, markdown_table, update_benchmarks
from support.probes import operator_memory as run  # noqa: E402  (common puts tests/ on the path)

def main():
    parser = benchmark_parser(device=False)
    parser.add_argument('--lengths', type=int, nargs='+', default=[300, 1200, 3600])
    parser.add_argument('--list-lengths', type=int, nargs='+', default=[300, 1200])
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--compile', action='store_true', help='the compiled feature extractor (first video '
                        'compiles; the figures include it)')
    args = parser.parse_args()
    rows = []
    for mode, lengths in (('iterator', args.lengths), ('list', args.list_lengths)):
        for n in lengths:
            r = run(n, mode, args.batch_size, args.compile)
            beyond = r['peak_rss_mb'] - r['data_mb']
            print(f"{mode:8s} {n:5d} frames: peak RSS {r['peak_rss_mb']:.0f} MB (models loaded: "
                  f"{r['model_rss_mb']:.0f} MB, frames held: {r['data_mb']:.0f} MB, beyond them: {beyond:.0f} MB), "
                  f"peak anonymous {r['peak_anon_mb']:.0f} MB, {n / r['seconds']:.1f} frames/s")
            rows.append([mode, n, f"{r['peak_rss_mb']:.0f}", f"{r['data_mb']:.0f}", f'{beyond:.0f}',
                         f"{r['peak_anon_mb']:.0f}", f"{n / r['seconds']:.1f}"])
    table = markdown_table(['input', 'frames (360x640)', 'peak RSS (MB)', 'frames held by the caller (MB)',
                            'peak RSS beyond them (MB)', 'peak anonymous memory (MB)', 'frames/s'], rows)
    if not args.print_only:
        name = 'memory-compiled' if args.compile else 'memory'
        update_benchmarks(name, f'{table}\n\nbatch size {args.batch_size}, CPU: {machine()}.')


if __name__ == '__main__':
    main()
