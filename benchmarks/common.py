"""Shared by the benchmark scripts: the package, weights to time with, the machine,
and writing results into docs/benchmarks.md."""
import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Tuple

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / 'docs' / 'benchmarks.md'
sys.path.insert(0, str(ROOT / 'tests'))

from support.measure import (AnonymousPeak, package, peak_rss_mb, torch_home_for_subprocesses,  # noqa: E402,F401
                             use_copy_model, use_timing_weights)


def matmul_peak(dtype: torch.dtype, m: int = 4096, n: int = 4096, k: int = 512) -> Tuple[float, float]:
    """This machine's practical peak: the best of several large products [m, k] x [k, n],
    in GFLOP per second of wall-clock time and per second of CPU time (all threads)."""
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    out = torch.empty(m, n, dtype=dtype)
    torch.mm(a, b, out=out)
    wall = cpu = float('inf')
    for _ in range(5):
        start, cpu_start = time.perf_counter(), time.process_time()
        torch.mm(a, b, out=out)
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - cpu_start)
    flop = 2 * m * n * k / 1e9
    return flop / wall, flop / cpu


def region_features(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Random unit region vectors [frames, 9, 512], float32: the feature extractor's
    output shape, for timing what follows it."""
    x = rng.standard_normal((frames, 9, 512)).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def timed(fn):
    """``fn()``'s result and the seconds it took."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f', {torch.cuda.get_device_name()}' if torch.cuda.is_available() else ''
    # The vector instructions decide bf16's speed: without AVX-512 it is emulated.
    return (f'{cpu} ({torch.backends.cpu.get_cpu_capability()}), {os.cpu_count()} cores{gpu}; '
            f'torch {torch.__version__}, {torch.get_num_threads()} threads')


def update_benchmarks(name: str, markdown: str) -> None:
    """Replace the block between <!-- bench:NAME --> and <!-- /bench:NAME --> of
    docs/benchmarks.md, or add it at the end under a heading when it is new."""
    text = BENCHMARKS.read_text() if BENCHMARKS.is_file() else '# Benchmarks\n'
    start, end = f'<!-- bench:{name} -->', f'<!-- /bench:{name} -->'
    block = f'{start}\n{markdown.strip()}\n{end}'
    if start in text:
        pattern = re.compile(re.escape(start) + '.*?' + re.escape(end), re.S)
        text = pattern.sub(lambda _: block, text)
    else:
        text = f'{text.rstrip()}\n\n## {name}\n\n{block}\n'
    BENCHMARKS.write_text(text)
    print(f'{BENCHMARKS.relative_to(ROOT)}: block {name} updated')


def markdown_table(header, rows) -> str:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def benchmark_parser(device: bool = False) -> argparse.ArgumentParser:
    """The options every benchmark shares: --print-only, and --device where it applies."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--print-only', action='store_true', help='print the figures only')
    if device:
        parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return parser
