"""Shared by the benchmark scripts: the package, weights to time with, the machine,
and writing results into docs/benchmarks.md."""
import argparse
import json
import os
import platform
import re
import subprocess
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


def unit(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (last axis) scaled to length 1."""
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def shot_frames(rng: np.random.Generator, basis: np.ndarray, frames: int) -> np.ndarray:
    """Generated fine features [frames, 9, 512] of one video, unit regions: shots of 4 to
    10 frames, each a direction of the shared low-rank ``basis`` [rank, 512] (so unrelated
    videos are as alike as footage of one kind is), plus regions drifting slowly along
    the shot and the video's own tint."""
    dims = basis.shape[1]
    tint = rng.standard_normal(dims).astype(np.float32) / np.sqrt(dims)
    out, i = np.empty((frames, 9, dims), np.float32), 0
    while i < frames:
        shot = rng.standard_normal(len(basis)).astype(np.float32) @ basis / np.sqrt(dims)
        regions = rng.standard_normal((9, dims)).astype(np.float32) / np.sqrt(dims)
        for _ in range(min(int(rng.integers(4, 11)), frames - i)):
            regions = regions + 0.25 * rng.standard_normal((9, dims)).astype(np.float32) / np.sqrt(dims)
            out[i] = shot + 0.9 * regions + 0.6 * tint
            i += 1
    return unit(out)


def in_fresh_process(script: str, job: dict) -> dict:
    """Run ``script --worker JOB`` in a fresh Python process (its peak RSS its own, its
    opening cold) and return the JSON its last line prints."""
    out = subprocess.run([sys.executable, script, '--worker', json.dumps(job)], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


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
