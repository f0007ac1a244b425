"""A clip-search corpus: short edited clips of long host videos, among many distractor
hosts (real H.264 files, PyAV), with frame-exact ground truth; seeded, deterministic.

Hosts are made of scenes (``varied_scene``) of 6 to 20 s cut one after another, as
long videos are. Each copy query is a piece of 4 to 20 s of one host, edited in one of
``CLIP_EDITS`` and encoded on its own; no-copy queries are scenes no host shows. The
frame size is small (160x90 by default) so that encoding and feature extraction stay
cheap; the feature extractor scales every frame to 256 pixels anyway.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .corpus import add_logo, center_crop, read_frames, resize, varied_scene
from .video_files import make_video

CLIP_EDITS = ('reencode', 'crop', 'logo', 'brightness', 'speed')
REENCODE_CRF = 36
CROP_KEEP = 0.8
BRIGHTNESS = 45
SPEEDS = (0.8, 1.25)
SCENE_SECONDS = (6, 20)
CLIP_SECONDS = (4, 20)
# Seeds apart from corpus.py's ranges (1000 to 5999) and the copy model's (9000+).
_HOST_SEED, _NEGATIVE_SEED = 20000, 90000


@dataclass
class ClipQuery:
    path: Path
    edit: str
    seconds: float                 # the query's length
    host: Optional[Path] = None    # None: a query that holds no copy
    host_start: float = 0.0        # the host span the query copies, seconds, half-open
    host_end: float = 0.0
    speed: float = 1.0
    # Other hosts holding the same piece (``shared``): (host, start, end) seconds.
    also: List[Tuple[Path, float, float]] = field(default_factory=list)

    def segment(self) -> List[float]:
        """[query start, query end, host start, host end] seconds: all of the query."""
        return [0.0, self.seconds, self.host_start, self.host_end]

    def truth(self) -> Dict[str, List[List[float]]]:
        """{host path: [segment]} of every host holding the piece."""
        out = {str(self.host): [self.segment()]}
        out.update({str(h): [[0.0, self.seconds, a, b]] for h, a, b in self.also})
        return out


@dataclass
class ClipCorpus:
    folder: Path
    fps: int
    hosts: List[Path] = field(default_factory=list)
    queries: List[ClipQuery] = field(default_factory=list)

    @property
    def copies(self) -> List[ClipQuery]:
        return [q for q in self.queries if q.host is not None]

    @property
    def negatives(self) -> List[ClipQuery]:
        return [q for q in self.queries if q.host is None]

    def ground_truth(self) -> Dict[str, Dict[str, List[List[float]]]]:
        """{query path: {host path: [segment]}} for the copy queries (absolute paths)."""
        return {str(q.path): q.truth() for q in self.copies}

    def write_ground_truth(self, path) -> Path:
        """The ground truth as `dns evaluate` reads it, paths relative to the file's folder."""
        path = Path(path).resolve()
        rel = lambda p: Path(os.path.relpath(Path(p).resolve(), path.parent)).as_posix()  # noqa: E731
        path.write_text(json.dumps({rel(q): {rel(h): s for h, s in t.items()} for q, t in self.ground_truth().items()},
                                   indent=1) + '\n')
        return path


def make_clip_corpus(folder, hosts: int = 24, copies: int = 10, negatives: int = 4, host_seconds: int = 240,
                     fps: int = 2, size=(90, 160), seed: int = 0, shared: int = 0) -> ClipCorpus:
    """Write ``hosts`` host videos of ``host_seconds`` and ``copies`` + ``negatives``
    queries into ``folder``; copy queries take pieces of distinct hosts (cycling through
    them), edits in turn through ``CLIP_EDITS``; the pieces of the first ``shared`` copies
    are pasted into a second host as well (half the hosts further on). Returns the corpus
    with its truth."""
    if hosts < 1 or copies < 0 or negatives < 0:
        raise ValueError('hosts must be positive, copies and negatives not negative')
    if host_seconds < CLIP_SECONDS[1] + 1:
        raise ValueError(f'hosts must be longer than the longest clip ({CLIP_SECONDS[1]} s), got {host_seconds}')
    h, w = size
    if h % 2 or w % 2:
        raise ValueError(f'yuv420p needs even sizes, got {h}x{w}')
    rng = np.random.default_rng(seed)
    folder = Path(folder).resolve()
    (folder / 'hosts').mkdir(parents=True, exist_ok=True)
    (folder / 'queries').mkdir(parents=True, exist_ok=True)
    corpus = ClipCorpus(folder, fps)
    host_frames = []
    for j in range(hosts):
        host_frames.append(_scenes(host_seconds * fps, h, w, fps, rng, _HOST_SEED + 1000 * seed + 100 * j))
        corpus.hosts.append(folder / 'hosts' / f'host{j:03d}.mp4')
    originals = [f.copy() for f in host_frames] if shared else host_frames
    pasting = np.random.default_rng(seed + 7777)   # apart, so that shared=0 corpora stay as they were
    for i in range(copies):
        j = i % hosts
        edit = CLIP_EDITS[i % len(CLIP_EDITS)]
        length = int(rng.integers(CLIP_SECONDS[0] * fps, CLIP_SECONDS[1] * fps + 1))
        start = int(rng.integers(0, host_seconds * fps - length + 1))
        piece = originals[j][start:start + length]
        speed = float(rng.uniform(*SPEEDS)) if edit == 'speed' else 1.0
        frames = apply_edit(edit, piece, speed)
        path = folder / 'queries' / f'copy{i:03d}_{edit}.mp4'
        make_video(path, frames, fps=fps)
        if edit == 'reencode':
            make_video(path, read_frames(path), fps=fps, crf=REENCODE_CRF)
        query = ClipQuery(path, edit, len(frames) / fps, corpus.hosts[j], start / fps, (start + length) / fps, speed)
        if i < shared and hosts > 1:
            other = (j + max(1, hosts // 2)) % hosts
            at = int(pasting.integers(0, host_seconds * fps - length + 1))
            host_frames[other][at:at + length] = piece
            query.also.append((corpus.hosts[other], at / fps, (at + length) / fps))
        corpus.queries.append(query)
    for path, frames in zip(corpus.hosts, host_frames):
        make_video(path, frames, fps=fps)
    for i in range(negatives):
        length = int(rng.integers(CLIP_SECONDS[0] * fps, CLIP_SECONDS[1] * fps + 1))
        frames = varied_scene(length, h, w, seed=_NEGATIVE_SEED + 1000 * seed + i)
        path = make_video(folder / 'queries' / f'none{i:03d}.mp4', frames, fps=fps)
        corpus.queries.append(ClipQuery(path, 'none', length / fps))
    return corpus


def apply_edit(edit: str, piece: np.ndarray, speed: float = 1.0) -> np.ndarray:
    """The clip as a re-uploader would show it (``reencode``'s loss comes from encoding)."""
    _, h, w, _ = piece.shape
    if edit == 'reencode':
        return piece
    if edit == 'crop':
        return resize(center_crop(piece, CROP_KEEP), h, w)
    if edit == 'logo':
        return add_logo(piece)
    if edit == 'brightness':
        return np.clip(piece.astype(np.int16) + BRIGHTNESS, 0, 255).astype(np.uint8)
    if edit == 'speed':
        # Played ``speed`` times as fast at the same frame rate: frames resampled.
        picks = np.round(np.arange(0, len(piece), speed)).astype(int)
        return piece[np.minimum(picks, len(piece) - 1)]
    raise ValueError(f'unknown edit {edit!r}; expected one of {CLIP_EDITS}')


def _scenes(frames: int, h: int, w: int, fps: int, rng: np.random.Generator, seed: int) -> np.ndarray:
    out, k = [], 0
    while sum(len(s) for s in out) < frames:
        length = int(rng.integers(SCENE_SECONDS[0] * fps, SCENE_SECONDS[1] * fps + 1))
        out.append(varied_scene(length, h, w, seed=seed + k))
        k += 1
    return np.concatenate(out)[:frames]
