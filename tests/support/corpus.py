"""A small copy-detection corpus of real H.264 files (PyAV, libx264, yuv420p).

``make_corpus(folder)`` writes originals (moving synthetic scenes), for each original
its copies under the transformations a near-duplicate retrieval system must see
through, and unrelated videos; the returned :class:`Corpus` gives the ground truth.

Copy kinds (files ``orig{i}_{kind}.mp4``):

- ``exact``: a byte-identical copy of the original file;
- ``reencoded``: the original file decoded and encoded again at a low quality (crf 38);
- ``cropped``: the central 75 % (each side), resized back to the full size;
- ``flipped``: mirrored left-right;
- ``shifted``: starts 2 s later and ends 2 s later (same length; the scene continues);
- ``speedup``: 1.5x faster at the same fps (2 frames of every 3 kept);
- ``logo``: an opaque patterned rectangle over ~15 % of the picture, top right;
- ``pip``: the original at half size inside an unrelated moving background.

``make_partial_corpus(folder)`` writes a second corpus for copied-segment
localization: source videos, and longer unrelated host videos into which pieces of the
sources were inserted (see its docstring); the returned :class:`PartialCorpus` gives the
ground truth in seconds.

Everything is deterministic: the same arguments give the same frames.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, NamedTuple, Tuple

import av
import numpy as np

from .video_files import make_video

COPY_KINDS = ('exact', 'reencoded', 'cropped', 'flipped', 'shifted', 'speedup', 'logo', 'pip')
SHIFT_SECONDS = 2
SPEEDUP = 1.5
REENCODE_CRF = 38
CROP_KEEP = 0.75

# Seed ranges kept apart, so that originals, PiP backgrounds and unrelated videos never share a scene.
_ORIGINAL_SEED, _BACKGROUND_SEED, _UNRELATED_SEED = 1000, 2000, 3000
_SOURCE_SEED, _HOST_SEED = 4000, 5000


@dataclass
class Corpus:
    folder: Path
    originals: List[Path] = field(default_factory=list)
    copies: Dict[Path, Dict[str, Path]] = field(default_factory=dict)
    unrelated: List[Path] = field(default_factory=list)

    def all_videos(self) -> List[Path]:
        """Originals, then every copy (original by original, in ``COPY_KINDS`` order), then unrelated."""
        return [*self.originals, *(p for o in self.originals for p in self.copies[o].values()), *self.unrelated]

    def ground_truth(self) -> Dict[str, List[str]]:
        """``str(original) -> [str(copy), ...]``, all kinds."""
        return {str(o): [str(p) for p in self.copies[o].values()] for o in self.originals}


def make_corpus(folder, originals: int = 3, unrelated: int = 3, seconds: int = 8, fps: int = 4,
                size=(96, 128)) -> Corpus:
    """Write the corpus into ``folder`` (created if missing) and return its description."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    if h % 2 or w % 2:
        raise ValueError(f'yuv420p needs even sizes, got {h}x{w}')
    n = seconds * fps
    shift = SHIFT_SECONDS * fps
    corpus = Corpus(folder)
    for i in range(originals):
        # Rendered SHIFT_SECONDS longer, so that the shifted copy continues the same scene.
        scene = varied_scene(n + shift, h, w, seed=_ORIGINAL_SEED + i)
        frames = scene[:n]
        original = make_video(folder / f'orig{i}.mp4', frames, fps=fps)
        corpus.originals.append(original)

        def out(kind):
            return folder / f'orig{i}_{kind}.mp4'

        copies = {
            'exact': Path(shutil.copy(original, out('exact'))),
            'reencoded': make_video(out('reencoded'), read_frames(original), fps=fps, crf=REENCODE_CRF),
            'cropped': make_video(out('cropped'), resize(center_crop(frames, CROP_KEEP), h, w), fps=fps),
            'flipped': make_video(out('flipped'), np.ascontiguousarray(frames[:, :, ::-1]), fps=fps),
            'shifted': make_video(out('shifted'), scene[shift:shift + n], fps=fps),
            'speedup': make_video(out('speedup'), frames[speedup_indices(n, SPEEDUP)], fps=fps),
            'logo': make_video(out('logo'), add_logo(frames), fps=fps),
            'pip': make_video(out('pip'), picture_in_picture(
                frames, varied_scene(n, h, w, seed=_BACKGROUND_SEED + i)), fps=fps),
        }
        assert tuple(copies) == COPY_KINDS
        corpus.copies[original] = copies
    for j in range(unrelated):
        corpus.unrelated.append(make_video(folder / f'unrelated{j}.mp4',
                                           varied_scene(n, h, w, seed=_UNRELATED_SEED + j), fps=fps))
    return corpus


def read_frames(path) -> np.ndarray:
    """Decode every frame of ``path`` to uint8 RGB [T, H, W, 3]."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format='rgb24') for f in container.decode(video=0)])


def speedup_indices(n: int, factor: float) -> np.ndarray:
    """Frame indices kept when playing ``n`` frames ``factor`` times faster at the same fps."""
    return np.arange(0, n, factor).astype(int)


def varied_scene(n_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic moving scene whose whole layout depends on ``seed``.

    Unlike ``video_files.moving_scene`` (whose gradient direction and sliding bar are the
    same for every seed), everything here is drawn from the seed: a blurred random
    texture drifting in a random direction, a colour gradient of random orientation and
    frequency, moving discs and rectangles of random number, size, colour and speed, and
    a bar sliding at a random speed, horizontally or vertically. Frame ``t`` depends only
    on ``seed`` and ``t``, so a longer rendering starts with the shorter one.
    Returns uint8 [n_frames, height, width, 3].
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    # Texture: coarse noise upsampled (nearest, then a box blur), tiled so it can drift with wrap-around.
    cell = int(rng.integers(6, 14))
    coarse = rng.uniform(-1, 1, size=(height // cell + 2, width // cell + 2, 3)).astype(np.float32)
    texture = np.repeat(np.repeat(coarse, cell, axis=0), cell, axis=1)[:height, :width]
    for axis in (0, 1):
        texture = (np.roll(texture, 2, axis) + np.roll(texture, -2, axis) + texture) / 3
    tex_velocity = rng.uniform(-2, 2, size=2)
    tex_amp = rng.uniform(30, 60)
    # Gradient.
    angle = rng.uniform(0, 2 * np.pi)
    freq = rng.uniform(0.5, 2.0)
    proj = (np.cos(angle) * xx / width + np.sin(angle) * yy / height) * freq
    phase = rng.uniform(0, 2 * np.pi, size=3)
    grad_speed = rng.uniform(0.05, 0.25) * rng.choice([-1, 1])
    base = rng.uniform(80, 170, size=3)
    # Moving shapes.
    n_shapes = int(rng.integers(3, 7))
    centres = rng.uniform([0, 0], [height, width], size=(n_shapes, 2))
    velocity = rng.uniform(-4, 4, size=(n_shapes, 2))
    sizes = rng.uniform(0.08, 0.22, size=(n_shapes, 2)) * min(height, width)
    is_disc = rng.random(n_shapes) < 0.5
    colours = rng.integers(0, 256, size=(n_shapes, 3)).astype(np.float32)
    # Sliding bar.
    vertical_bar = bool(rng.random() < 0.5)
    bar_speed = rng.uniform(2, 6)
    bar_width = int(rng.integers(2, max(3, min(height, width) // 10)))
    bar_colour = rng.integers(0, 256, size=3).astype(np.float32)

    out = np.empty((n_frames, height, width, 3), np.uint8)
    for t in range(n_frames):
        dy, dx = np.round(tex_velocity * t).astype(int)
        img = base + tex_amp * np.roll(texture, (dy, dx), axis=(0, 1))
        img = img + 60 * np.sin(2 * np.pi * proj[..., None] + phase + grad_speed * t)
        for s in range(n_shapes):
            cy, cx = (centres[s] + velocity[s] * t) % (height, width)
            # Distances with wrap-around, so shapes leaving one side come back on the other.
            ddy = np.abs((yy - cy + height / 2) % height - height / 2)
            ddx = np.abs((xx - cx + width / 2) % width - width / 2)
            ry, rx = sizes[s]
            if is_disc[s]:
                mask = (ddy / ry) ** 2 + (ddx / rx) ** 2 <= 1
            else:
                mask = (ddy <= ry) & (ddx <= rx)
            img[mask] = colours[s]
        if vertical_bar:
            pos = int(bar_speed * t) % width
            img[:, pos:pos + bar_width] = bar_colour
        else:
            pos = int(bar_speed * t) % height
            img[pos:pos + bar_width] = bar_colour
        out[t] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def center_crop(frames: np.ndarray, keep: float) -> np.ndarray:
    """The central ``keep`` fraction of each side."""
    _, h, w, _ = frames.shape
    ch, cw = int(round(h * keep)), int(round(w * keep))
    top, left = (h - ch) // 2, (w - cw) // 2
    return frames[:, top:top + ch, left:left + cw]


def resize(frames: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize of uint8 [T, H, W, 3] to [T, h, w, 3], numpy only."""
    _, fh, fw, _ = frames.shape
    ys = np.clip((np.arange(h) + 0.5) * fh / h - 0.5, 0, fh - 1)
    xs = np.clip((np.arange(w) + 0.5) * fw / w - 0.5, 0, fw - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, fh - 1), np.minimum(x0 + 1, fw - 1)
    wy = (ys - y0).astype(np.float32)[None, :, None, None]
    wx = (xs - x0).astype(np.float32)[None, None, :, None]
    f = frames.astype(np.float32)
    top = f[:, y0][:, :, x0] * (1 - wx) + f[:, y0][:, :, x1] * wx
    bottom = f[:, y1][:, :, x0] * (1 - wx) + f[:, y1][:, :, x1] * wx
    return np.ascontiguousarray(np.clip(np.round(top * (1 - wy) + bottom * wy), 0, 255).astype(np.uint8))


def logo_box(h: int, w: int):
    """(top, left, height, width) of the logo: top-right corner, ~15 % of the picture."""
    lh, lw = int(h * 0.36) // 2 * 2, int(w * 0.42) // 2 * 2
    margin = max(2, min(h, w) // 24)
    return margin, w - lw - margin, lh, lw


def add_logo(frames: np.ndarray) -> np.ndarray:
    """An opaque two-colour checkerboard with a border, the same on every frame."""
    out = frames.copy()
    _, h, w, _ = out.shape
    top, left, lh, lw = logo_box(h, w)
    yy, xx = np.mgrid[0:lh, 0:lw]
    check = ((yy // 6 + xx // 6) % 2).astype(bool)
    logo = np.where(check[..., None], np.array([230, 40, 40], np.uint8), np.array([250, 220, 30], np.uint8))
    border = (yy < 2) | (yy >= lh - 2) | (xx < 2) | (xx >= lw - 2)
    logo[border] = (20, 20, 120)
    out[:, top:top + lh, left:left + lw] = logo
    return out


def pip_box(h: int, w: int):
    """(top, left, height, width) of the inset original: half size (even), centred."""
    sh, sw = h // 2 // 2 * 2, w // 2 // 2 * 2
    return (h - sh) // 2, (w - sw) // 2, sh, sw


def picture_in_picture(frames: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``frames`` at half size, framed and centred over ``background`` (same shape as ``frames``)."""
    out = background.copy()
    _, h, w, _ = frames.shape
    top, left, sh, sw = pip_box(h, w)
    # A 2-pixel dark frame around the inset, as players draw one.
    out[:, max(0, top - 2):top + sh + 2, max(0, left - 2):left + sw + 2] = 16
    out[:, top:top + sh, left:left + sw] = resize(frames, sh, sw)
    return out


# Partial copies: pieces of source videos inserted into longer unrelated host videos.

PARTIAL_KINDS = ('plain', 'reencoded', 'cropped_logo', 'flipped', 'speedup', 'pip')
PARTIAL_SOURCE_SECONDS = 24


@dataclass
class Insertion:
    """Source seconds [query_start, query_end) shown at host seconds [target_start, target_end).

    Both spans are half-open and frame-exact: with fps ``f``, source frames [i, j) put on
    host frames [k, k + n) give ``i/f, j/f, k/f, (k + n)/f`` (n < j - i only for speedup).
    """
    source: Path
    host: Path
    kind: str
    query_start: float
    query_end: float
    target_start: float
    target_end: float

    def segment(self) -> List[float]:
        """``[query_start, query_end, target_start, target_end]``."""
        return [self.query_start, self.query_end, self.target_start, self.target_end]


@dataclass
class PartialCorpus:
    """What :func:`make_partial_corpus` wrote: sources (queries), hosts (targets), and the
    ground truth as :class:`Insertion` records (absolute paths, seconds at ``fps``)."""
    folder: Path
    sources: List[Path] = field(default_factory=list)
    hosts: List[Path] = field(default_factory=list)  # every host, including those with no insertion
    insertions: List[Insertion] = field(default_factory=list)
    fps: int = 4

    def segments(self) -> Dict[str, Dict[str, List[List[float]]]]:
        """``{str(source): {str(host): [[qs, qe, ts, te], ...]}}`` for every pair with an insertion,
        segments in the order of their target start."""
        out: Dict[str, Dict[str, List[List[float]]]] = {}
        for ins in self.insertions:
            out.setdefault(str(ins.source), {}).setdefault(str(ins.host), []).append(ins.segment())
        for targets in out.values():
            for segs in targets.values():
                segs.sort(key=lambda s: s[2])
        return out

    def write_ground_truth(self, path) -> Path:
        """Write :meth:`segments` as JSON to ``path``, video paths relative to its folder
        (``{query: {target: [[qs, qe, ts, te], ...]}}``, seconds). Returns the path."""
        path = Path(path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)

        def rel(p: str) -> str:
            return Path(os.path.relpath(Path(p).resolve(), path.parent)).as_posix()

        data = {rel(q): {rel(t): segs for t, segs in targets.items()} for q, targets in self.segments().items()}
        # One line per (query, target) pair, so that the file reads as a table.
        pairs = ',\n'.join(' %s: {\n%s\n }' % (json.dumps(q), ',\n'.join(
            f'  {json.dumps(t)}: {json.dumps(segs)}' for t, segs in targets.items())) for q, targets in data.items())
        path.write_text('{\n' + pairs + '\n}\n')
        return path


def read_ground_truth(path) -> Dict[str, Dict[str, List[List[float]]]]:
    """Read a file of :meth:`PartialCorpus.write_ground_truth`, paths resolved against its folder."""
    path = Path(path)
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a JSON object {{query: {{target: segments}}}}')
    root = path.resolve().parent
    return {str((root / q).resolve()): {str((root / t).resolve()): segs for t, segs in targets.items()}
            for q, targets in data.items()}


class _Piece(NamedTuple):
    kind: str
    source: int  # source index, taken modulo the number of sources
    query: Tuple[float, float]  # seconds in the source, half-open
    at: float  # the host second where it starts


# The plan, in seconds (each a multiple of 1/4 s, so whole frames at the default 4 fps):
# (host length, pieces). Pieces replace host frames; the host's scene goes on around them.
_HOST_PLAN: Tuple[Tuple[float, Tuple[_Piece, ...]], ...] = (
    (36, (_Piece('plain', 0, (10, 22), 9.5),)),  # long, starts off a whole second
    (30, (_Piece('reencoded', 1, (6, 10), 26),)),  # short, ends the host
    (36, (_Piece('cropped_logo', 2, (5.25, 19.25), 14),)),  # long, query off a whole second
    (32, (_Piece('flipped', 0, (15, 18.5), 6.75),)),  # short
    (36, (_Piece('speedup', 1, (8, 20), 5),)),  # 12 s of source in 8 s
    (40, (_Piece('pip', 2, (10, 22), 24),)),
    (44, (_Piece('plain', 0, (2, 6), 3),  # the same source twice, and a second source
          _Piece('plain', 0, (16, 20), 14.5),
          _Piece('plain', 1, (12.5, 22.5), 30.25))),
    (30, ()),
    (30, ()),
)
_PLAN_QUERY_END = max(p.query[1] for _, pieces in _HOST_PLAN for p in pieces)
# Re-encoding applies to the whole host, so such a host holds nothing else.
assert all(len(pieces) == 1 for _, pieces in _HOST_PLAN if any(p.kind == 'reencoded' for p in pieces))


class _Placement(NamedTuple):
    kind: str
    source: int
    first: int  # source frames [first, last)
    last: int
    at: int  # host frames [at, at + shown)
    shown: int


def _layout(sources: int, source_frames: int, fps: int) -> List[Tuple[int, List[_Placement]]]:
    """The plan in frames at ``fps``: per host, its frame count and placements (checked to fit)."""
    layout = []
    for j, (host_seconds, pieces) in enumerate(_HOST_PLAN):
        host_frames = int(round(host_seconds * fps))
        placed: List[_Placement] = []
        for piece in pieces:
            first, last = int(round(piece.query[0] * fps)), int(round(piece.query[1] * fps))
            at = int(round(piece.at * fps))
            shown = len(speedup_indices(last - first, SPEEDUP)) if piece.kind == 'speedup' else last - first
            if not 0 <= first < last <= source_frames:
                raise ValueError(f'host {j}: a piece of source frames [{first}, {last}) does not fit '
                                 f'a source of {source_frames} frames at {fps} fps')
            if at < 0 or at + shown > host_frames:
                raise ValueError(f'host {j}: host frames [{at}, {at + shown}) do not fit its '
                                 f'{host_frames} frames at {fps} fps')
            if any(at < p.at + p.shown and p.at < at + shown for p in placed):
                raise ValueError(f'host {j}: pieces overlap at {fps} fps')
            placed.append(_Placement(piece.kind, piece.source % sources, first, last, at, shown))
        layout.append((host_frames, placed))
    return layout


def _appearance(kind: str, piece: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The piece as shown in the host; ``background``: the host frames it covers."""
    _, h, w, _ = piece.shape
    if kind in ('plain', 'reencoded', 'speedup'):  # speedup's frames are already picked
        return piece
    if kind == 'cropped_logo':
        return add_logo(resize(center_crop(piece, CROP_KEEP), h, w))
    if kind == 'flipped':
        return np.ascontiguousarray(piece[:, :, ::-1])
    if kind == 'pip':
        return picture_in_picture(piece, background)
    raise ValueError(f'unknown insertion kind {kind!r}; expected one of {PARTIAL_KINDS}')


def make_partial_corpus(folder, sources: int = 3, seconds: float = PARTIAL_SOURCE_SECONDS, fps: int = 4,
                        size=(96, 128)) -> PartialCorpus:
    """Write source videos and host videos holding pieces of them into ``folder``.

    ``source{i}.mp4`` (``seconds`` long) are the queries; ``host{j}.mp4`` are longer
    unrelated scenes in which pieces of the sources replace a span of the host's frames
    (the host's own scene goes on around them). The nine hosts (386 s of video with the
    sources, at the defaults) hold: a plain long piece at 9.5 s; a short piece ending the
    host, the whole host re-encoded at crf 38; a centre crop with a logo; a mirrored piece;
    a piece played 1.5x faster; a half-size picture in picture over the host's own frames;
    three plain pieces (one source twice, a second source once); and two hosts hold
    nothing. Plan times are rounded to frames at ``fps``; the ground truth in
    :attr:`PartialCorpus.insertions` is computed from the frames, so it is exact at any fps.
    Sources beyond the third have no insertion. Deterministic.
    """
    if not isinstance(sources, int) or sources < 1:
        raise ValueError(f'sources must be a positive integer, got {sources!r}')
    if not isinstance(fps, int) or fps < 1:
        raise ValueError(f'fps must be a positive integer, got {fps!r}')
    if not isinstance(seconds, (int, float)) or not seconds >= _PLAN_QUERY_END:
        raise ValueError(f'seconds must be at least {_PLAN_QUERY_END} (where the latest piece ends), got {seconds!r}')
    h, w = size
    if h <= 0 or w <= 0 or h % 2 or w % 2:
        raise ValueError(f'yuv420p needs positive even sizes, got {h}x{w}')
    source_frames = int(round(seconds * fps))
    layout = _layout(sources, source_frames, fps)  # raises before anything is written

    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    corpus = PartialCorpus(folder, fps=fps)
    scenes = [varied_scene(source_frames, h, w, seed=_SOURCE_SEED + i) for i in range(sources)]
    for i, scene in enumerate(scenes):
        corpus.sources.append(make_video(folder / f'source{i}.mp4', scene, fps=fps))
    for j, (host_frames, placed) in enumerate(layout):
        frames = varied_scene(host_frames, h, w, seed=_HOST_SEED + j)
        host = folder / f'host{j}.mp4'
        for p in placed:
            piece = scenes[p.source][p.first:p.last]
            if p.kind == 'speedup':
                piece = piece[speedup_indices(len(piece), SPEEDUP)]
            span = slice(p.at, p.at + p.shown)
            frames[span] = _appearance(p.kind, piece, frames[span])
            corpus.insertions.append(Insertion(corpus.sources[p.source], host, p.kind, p.first / fps, p.last / fps,
                                               p.at / fps, (p.at + p.shown) / fps))
        make_video(host, frames, fps=fps)
        if any(p.kind == 'reencoded' for p in placed):
            # A second generation, as a re-upload would be: decode the first file, encode it worse.
            make_video(host, read_frames(host), fps=fps, crf=REENCODE_CRF)
        corpus.hosts.append(host)
    return corpus
