"""Memory of a process and everything it started (a service and its worker
processes), read from /proc: the service's footprint under load, for the benchmarks."""
from pathlib import Path

from .measure import AnonymousPeak
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


def tree_peak(pid: int, period_s: float = 0.1) -> AnonymousPeak:
    """Peak of the summed RssAnon of ``pid`` and its descendants while the block runs."""
    return AnonymousPeak(period_s, measure=lambda: sum(rss_anon_mb(p) for p in descendants(pid)))
