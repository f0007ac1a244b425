"""Meta's vPDQ (video PDQ) as a weight-free baseline: PDQ hashes of a file's frames,
frames matched by Hamming distance, matches chained along the diagonal into copied
segments in seconds.

- ``file_hashes(path)``: one PDQ hash every ``seconds_per_hash`` (default: every second
  frame, vPDQ's usual density) with its time and quality, via ``vpdq.computeHash``.
- ``segments(query, target)``: the copied segments of a pair, in seconds, half-open (a
  segment ends where its last hash's span ends), scored by their number of matched hashes.
- ``similarity(query, target)``: the share of the query's hashes (of good quality) that
  match some hash of the target, as ThreatExchange's vPDQ matcher scores whole files.

Matching follows ThreatExchange's vPDQ settings: two hashes match within 31 bits of 256,
hashes of quality below 50 (flat frames, whose PDQ hash is noise) are left out. Segments:
matched cells linked when each is within ``MAX_GAP`` hashes after the other on both
timelines (a few hashes broken by an edit do not split a copy; a speed change bends the
chain), a chain of at least ``MIN_MATCHES`` matches is a segment.

``vpdq`` (PyPI, built against FFmpeg: scripts/setup-benchmarks.sh) is imported on first
use; ``available()`` says whether it is installed.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import List, NamedTuple, Optional, Union

import numpy as np

DISTANCE_THRESHOLD = 31   # bits of 256, ThreatExchange's VPDQ_DISTANCE_THRESHOLD
QUALITY_THRESHOLD = 50    # ThreatExchange's VPDQ_QUALITY_THRESHOLD
MAX_GAP = 3               # hashes a chain may skip on either timeline
MIN_MATCHES = 2


def available() -> bool:
    """Whether the ``vpdq`` package is installed."""
    return importlib.util.find_spec('vpdq') is not None


@dataclass(frozen=True)
class FileHashes:
    """A file's kept hashes: ``bits`` bool [N, 256], ``times`` seconds [N], and the span of one hash."""
    path: str
    bits: np.ndarray
    times: np.ndarray
    step: float


class VpdqSegment(NamedTuple):
    query_start: float
    query_end: float
    target_start: float
    target_end: float
    score: float  # matched hashes along the chain


def file_hashes(path: Union[str, Path], seconds_per_hash: Optional[float] = None) -> FileHashes:
    """The vPDQ hashes of ``path`` of quality at least QUALITY_THRESHOLD. ``seconds_per_hash``:
    None for every second frame of the file's frame rate; 0 for every frame."""
    import av
    import vpdq
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'no video file {path}')
    with av.open(str(path)) as container:
        rate = float(container.streams.video[0].average_rate or 25)
    frame = 1.0 / rate
    if seconds_per_hash is None:
        seconds_per_hash = 2 * frame
    # thread_count 1: the benchmark's timings are of one core, as the other methods'.
    features = vpdq.computeHash(str(path), seconds_per_hash=seconds_per_hash, thread_count=1)
    kept = [f for f in features if f.quality >= QUALITY_THRESHOLD]
    bits = np.array([[int(c, 16) >> k & 1 for c in f.hex for k in (3, 2, 1, 0)] for f in kept], bool)
    return FileHashes(str(path), bits.reshape(len(kept), 256), np.array([f.timestamp for f in kept], float),
                      max(seconds_per_hash, frame))


def distances(query: FileHashes, target: FileHashes) -> np.ndarray:
    """Hamming distances of every query hash to every target hash, int [Nq, Nt]."""
    q, t = query.bits.astype(np.float32), target.bits.astype(np.float32)
    return np.rint(q @ (1 - t).T + (1 - q) @ t.T).astype(int)


def similarity(query: FileHashes, target: FileHashes, threshold: int = DISTANCE_THRESHOLD) -> float:
    """The share of the query's hashes that match some hash of the target (0 to 1)."""
    if not len(query.times) or not len(target.times):
        return 0.0
    return float((distances(query, target) <= threshold).any(axis=1).mean())


def segments(query: FileHashes, target: FileHashes, threshold: int = DISTANCE_THRESHOLD,
             max_gap: int = MAX_GAP, min_matches: int = MIN_MATCHES) -> List[VpdqSegment]:
    """Copied segments of the pair, in seconds, best first."""
    if not len(query.times) or not len(target.times):
        return []
    rows, cols = np.nonzero(distances(query, target) <= threshold)
    # Union-find over matched cells: a cell joins any earlier one within max_gap on both axes.
    parent = list(range(len(rows)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    for a in range(len(rows)):
        for b in range(a + 1, len(rows)):
            if rows[b] - rows[a] > max_gap:
                break
            if 0 <= cols[b] - cols[a] <= max_gap and (rows[b] > rows[a] or cols[b] > cols[a]):
                parent[root(b)] = root(a)
    chains = {}
    for i in range(len(rows)):
        chains.setdefault(root(i), []).append(i)
    found = []
    for members in chains.values():
        if len(members) < min_matches:
            continue
        r, c = rows[members], cols[members]
        found.append(VpdqSegment(float(query.times[r.min()]), float(query.times[r.max()] + query.step),
                                 float(target.times[c.min()]), float(target.times[c.max()] + target.step),
                                 float(len(set(r.tolist())))))
    return sorted(found, key=lambda s: -s.score)
