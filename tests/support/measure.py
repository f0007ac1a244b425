"""What tests and benchmarks share to measure the package: this checkout imported as
Towhee imports it, test weights in torch.hub's cache, and memory figures of a process."""
import atexit
import json
import resource
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable, Optional

import torch

from .checkout import ROOT
from .checkout import import_checkout as package  # noqa: F401  (this checkout, as Towhee imports it)


def use_timing_weights() -> None:
    """Timings do not depend on weight values: without the published files in the
    torch.hub cache, time with the deterministic test weights in .bench-hub/."""
    published = Path(torch.hub.get_dir()) / 'checkpoints'
    if all((published / f).is_file() for f in ('resnet50-0676ba61.pth', 'dns_cg_student.pth')):
        return
    hub = ROOT / '.bench-hub'
    if not (hub / 'checkpoints' / 'dns_selector_cg-fg_bin.pth').is_file():
        from support.golden_weights import write_all
        write_all(hub / 'checkpoints')
    torch.hub.set_dir(str(hub))


def use_copy_model() -> Path:
    """Point torch.hub at the copy model (tests/support/copy_model.py): test weights whose
    fine-grained similarities tell copies from unrelated videos, for benchmarks of
    re-ranking, localization or calibration. Written once into .bench-copy-hub/ (40 s to
    2 min on 2 cores), again when copy_model's settings change. Returns the hub dir."""
    from support.copy_model import MARKER_FILE, SETTINGS, write_copy_model
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


def torch_home_for_subprocesses() -> Path:
    """A TORCH_HOME whose hub/ is this process's torch.hub dir (a symlink in a new
    temporary folder): subprocesses and Ray workers find weights through TORCH_HOME."""
    home = Path(tempfile.mkdtemp(prefix='dns-bench-torch-'))
    (home / 'hub').symlink_to(Path(torch.hub.get_dir()).resolve())
    # Gone when this process ends: the link only, never the hub it points at.
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class AnonymousPeak:
    """Peak anonymous memory (RssAnon) while the block runs, sampled every 20 ms.

    Peak RSS also counts the pages of shared libraries mapped from the page cache, which
    vary between runs of the same code with the machine's state (torch's CUDA build maps
    over a GB of them); anonymous memory is what the code itself allocates. ``measure``:
    another figure to sample (MB), e.g. of other processes."""

    def __init__(self, period_s: float = 0.02, measure: Optional[Callable[[], float]] = None):
        self.period_s, self.peak_mb = period_s, 0.0
        self.measure = measure or (lambda: status_mb('RssAnon'))
        self._stop = threading.Event()

    def _sample(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, self.measure())
            if self._stop.wait(self.period_s):
                return

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self.measure())


def status_mb(field: str) -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1]) / 1024
    return 0.0
