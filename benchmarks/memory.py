"""Peak RSS of the operator (frames to cg_student vector, 360x640, CPU) at several video
lengths, fed an iterator (frames made one at a time, as a decoder yields them) and a
list (frames already in memory; reported beyond the list's own size). Each length runs
in a fresh process. Updates the README's table.

    .venv/bin/python benchmarks/memory.py [--lengths 300 1200 3600] [--list-lengths 300 1200]
"""
import json
import subprocess
import sys
from pathlib import Path

from common import benchmark_parser, machine, markdown_table, update_readme

CHILD = r"""
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from common import AnonymousPeak, package, peak_rss_mb, use_timing_weights
use_timing_weights()
n, mode, batch_size, compile = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5] == 'compile'
op = package().DistillAndSelect('cg_student', device='cpu', batch_size=batch_size, compile=compile)
base = np.random.default_rng(0).integers(0, 256, (360, 640 + n, 3), dtype=np.uint8)

def frames():  # a moving window: every frame differs, one at a time in memory
    for i in range(n):
        yield np.ascontiguousarray(base[:, i:i + 640])

before = peak_rss_mb()
if mode == 'list':
    video = list(frames())
    data_mb = sum(f.nbytes for f in video) / 2**20
else:
    video, data_mb = frames(), 0.0
start = time.perf_counter()
with AnonymousPeak() as anonymous:
    vec = op(video)
elapsed = time.perf_counter() - start
assert vec.shape == (1024,)
print(json.dumps({'frames': n, 'mode': mode, 'peak_rss_mb': peak_rss_mb(), 'model_rss_mb': before,
                  'peak_anon_mb': anonymous.peak_mb, 'data_mb': data_mb, 'seconds': elapsed}))
"""


def run(n: int, mode: str, batch_size: int, compile: bool = False) -> dict:
    here = str(Path(__file__).resolve().parent)
    out = subprocess.run([sys.executable, '-c', CHILD, here, str(n), mode, str(batch_size),
                          'compile' if compile else 'eager'],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
    if not args.no_readme:
        name = 'memory-compiled' if args.compile else 'memory'
        update_readme(name, f'{table}\n\nbatch size {args.batch_size}, CPU: {machine()}.')


if __name__ == '__main__':
    main()
