"""Memory of a process and everything it started (a service and its worker
processes), read from /proc: the service's footprint under load, for the benchmarks."""
import threading
from pathlib import Path

from .processes import descendants


def rss_anon_mb(pid: int) -> float:
    """Anonymous resident memory (what the process allocated itself), 0 when gone."""
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('RssAnon:'):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class TreePeak:
    """Peak of the summed RssAnon of ``pid`` and its descendants while the block runs."""

    def __init__(self, pid: int, period_s: float = 0.1):
        self.pid, self.period_s, self.peak_mb = pid, period_s, 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, sum(rss_anon_mb(p) for p in descendants(self.pid)))
            if self._stop.wait(self.period_s):
                return

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
