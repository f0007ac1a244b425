"""Shared by the benchmark scripts: the package, weights to time with, the machine,
and writing results into the README."""
import argparse
import json
import os
import platform
import re
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Tuple

import torch

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / 'README.md'
sys.path.insert(0, str(ROOT / 'tests'))

from checkout import import_checkout as package  # noqa: E402  (this checkout, as Towhee imports it)


def use_timing_weights() -> None:
    """Timings do not depend on weight values: without the published files in the
    torch.hub cache, time with the deterministic test weights in .bench-hub/."""
    published = Path(torch.hub.get_dir()) / 'checkpoints'
    if all((published / f).is_file() for f in ('resnet50-0676ba61.pth', 'dns_cg_student.pth')):
        return
    hub = ROOT / '.bench-hub'
    if not (hub / 'checkpoints' / 'dns_selector_cg-fg_bin.pth').is_file():
        from golden_weights import write_all
        write_all(hub / 'checkpoints')
    torch.hub.set_dir(str(hub))


def use_copy_model() -> Path:
    """Point torch.hub at the copy model (tests/copy_model.py): test weights whose
    fine-grained similarities tell copies from unrelated videos, for benchmarks of
    re-ranking, localization or calibration. Written once into .bench-copy-hub/ (40 s to
    2 min on 2 cores), again when copy_model's settings change. Returns the hub dir."""
    from copy_model import MARKER_FILE, SETTINGS, write_copy_model
    hub = ROOT / '.bench-copy-hub'
    marker = hub / 'checkpoints' / MARKER_FILE
    try:
        current = json.loads(marker.read_text()) == SETTINGS
    except (OSError, ValueError):  # not written yet, or cut short
        current = False
    if not current:
        write_copy_model(hub / 'checkpoints')
    torch.hub.set_dir(str(hub))
    return hub


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


def timed(fn):
    """``fn()``'s result and the seconds it took."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def torch_home_for_subprocesses() -> Path:
    """A TORCH_HOME whose hub/ is this process's torch.hub dir (a symlink in a new
    temporary folder): subprocesses and Ray workers find weights through TORCH_HOME."""
    home = Path(tempfile.mkdtemp(prefix='dns-bench-torch-'))
    (home / 'hub').symlink_to(Path(torch.hub.get_dir()).resolve())
    return home


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
    return f'{cpu}, {os.cpu_count()} cores{gpu}; torch {torch.__version__}, {torch.get_num_threads()} threads'


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class AnonymousPeak:
    """Peak anonymous memory (RssAnon) while the block runs, sampled every 20 ms.

    Peak RSS also counts the pages of shared libraries mapped from the page cache, which
    vary between runs of the same code with the machine's state (torch's CUDA build maps
    over a GB of them); anonymous memory is what the code itself allocates."""

    def __init__(self, period_s: float = 0.02):
        self.period_s, self.peak_mb = period_s, 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, _status_mb('RssAnon'))
            if self._stop.wait(self.period_s):
                return

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, _status_mb('RssAnon'))


def _status_mb(field: str) -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1]) / 1024
    return 0.0


def update_readme(name: str, markdown: str) -> None:
    """Replace the README's block between <!-- bench:NAME --> and <!-- /bench:NAME -->."""
    text = README.read_text()
    start, end = f'<!-- bench:{name} -->', f'<!-- /bench:{name} -->'
    if start not in text:
        print(f'README has no {start} block; not updated')
        return
    pattern = re.compile(re.escape(start) + '.*?' + re.escape(end), re.S)
    README.write_text(pattern.sub(lambda _: f'{start}\n{markdown.strip()}\n{end}', text))
    print(f'README block {name} updated')


def markdown_table(header, rows) -> str:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def benchmark_parser(device: bool = False) -> argparse.ArgumentParser:
    """The options every benchmark shares: --no-readme, and --device where it applies."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--no-readme', action='store_true', help='print the figures only')
    if device:
        parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return parser
