"""A second partial-copy corpus, for reporting localization on data it was not tuned on.

``make_held_out_corpus(folder)`` writes, like ``corpus.make_partial_corpus``, source
videos and longer host videos into which pieces of the sources were inserted, and
returns a :class:`corpus.PartialCorpus` with the ground truth in seconds. Everything else
differs on purpose, so that a method or threshold fitted on one corpus is measured on
something it never saw:

- generator: sources are "filmed" shots, a camera panning fast and zooming over a large
  1/f-noise landscape (the spectrum of natural images) with sharp-edged structures, soft
  textured objects crossing it and a light flicker, cut every 3 to 6 s; hosts are "broadcast" shots, a
  studio (coloured panels, a swaying presenter, a scrolling ticker) or a playing field
  (perspective stripes, running players, a score box). ``corpus.varied_scene`` draws
  neither family;
- size and rate: 176x144 (QCIF) at 5 frames a second, against 128x96 at 4;
- pieces: 3 to 5 s of the host, shorter than there: 3 to 5 frames sampled at 1 frame a second;
- edits and strengths: mirrored; a 40 % picture in picture in a corner; brightened and
  the whole host re-encoded at crf 38; a 70 % crop with a translucent banner logo; 1.5x
  faster; re-encoded at crf 35; two pieces of one source 3 s apart in the host.

Deterministic: the same arguments give the same frames and the same ground truth.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

import numpy as np

from .corpus import Insertion, PartialCorpus, center_crop, read_frames, resize, speedup_indices
from .video_files import make_video

HELD_OUT_KINDS = ('plain', 'flipped', 'pip_corner', 'bright_reencoded', 'cropped_banner', 'speedup', 'reencoded')
HELD_OUT_FPS = 5
HELD_OUT_SIZE = (144, 176)          # height, width: QCIF
HELD_OUT_SOURCE_SECONDS = 28
SPEEDUP = 1.5
CROP_KEEP = 0.7
PIP_SCALE = 0.4
BRIGHTEN = 45                       # added to every channel before the contrast stretch
CONTRAST = 1.15
CRF_BRIGHT = 38
CRF_REENCODED = 35
# Seeds apart from corpus.py's (1000 to 5999) and copy_model.py's fitting scenes (9000+).
_SOURCE_SEED, _HOST_SEED = 7000, 8000


class _Piece(NamedTuple):
    kind: str
    source: int
    query: Tuple[float, float]      # source seconds, half-open
    at: float                       # host second where it starts


# (host seconds, pieces); every time a multiple of 1/5 s.
_HOST_PLAN: Tuple[Tuple[float, Tuple[_Piece, ...]], ...] = (
    (34, (_Piece('plain', 0, (3, 8), 12.4),)),
    (30, (_Piece('flipped', 1, (10, 14), 7.2),)),
    (32, (_Piece('pip_corner', 2, (16, 20), 20.6),)),
    (28, (_Piece('bright_reencoded', 0, (18, 22), 5),)),
    (30, (_Piece('cropped_banner', 1, (20.2, 23.2), 14),)),
    (32, (_Piece('speedup', 2, (4, 10), 9.6),)),
    # One source twice, 3 s apart in the host and 5 s apart in the source.
    (40, (_Piece('plain', 0, (11, 15), 8), _Piece('plain', 0, (20, 24), 15))),
    (30, (_Piece('reencoded', 2, (7, 12), 22),)),
    (30, ()),
    (34, ()),
)
_WHOLE_HOST_CRF = {'bright_reencoded': CRF_BRIGHT, 'reencoded': CRF_REENCODED}
assert all(len(pieces) == 1 for _, pieces in _HOST_PLAN if any(p.kind in _WHOLE_HOST_CRF for p in pieces))


def draw_plan(seed: int, hosts: int, sources: int = 3, seconds: float = HELD_OUT_SOURCE_SECONDS,
              fps: int = HELD_OUT_FPS) -> Tuple[Tuple[float, Tuple[_Piece, ...]], ...]:
    """A plan like the fixed one, drawn from ``seed``: ``hosts`` hosts of 28 to 40 s; a
    seventh of them hold nothing, a seventh two plain pieces of one source 2 to 4 s apart
    in the host and 2 to 5 s in the source, the rest one piece of an edit drawn from
    HELD_OUT_KINDS; pieces of 3 to 5 s (4 to 7 s of the source when sped up), at times on
    the 1/fps grid."""
    rng = np.random.default_rng([seed, hosts])
    grid = lambda low, high: round(float(rng.integers(int(low * fps), int(high * fps) + 1)) / fps, 6)  # noqa: E731
    plan = []
    for _ in range(hosts):
        host_seconds = float(rng.integers(28, 41))
        draw = rng.random()
        if draw < 1 / 7:
            plan.append((host_seconds, ()))
            continue
        source = int(rng.integers(sources))
        kinds = ['plain', 'plain'] if draw < 2 / 7 else [str(rng.choice(HELD_OUT_KINDS))]
        pieces, at = [], grid(2, host_seconds - 14)
        for kind in kinds:
            length = grid(4, 7) if kind == 'speedup' else grid(3, 5)
            if pieces and pieces[-1].query[1] + 2 + length <= seconds:  # after the first in the source too
                start = grid(pieces[-1].query[1] + 2, min(seconds - length, pieces[-1].query[1] + 5))
            else:
                start = grid(0, seconds - length)
            pieces.append(_Piece(kind, source, (start, round(start + length, 6)), at))
            shown = length / SPEEDUP if kind == 'speedup' else length
            at = round(at + shown + grid(2, 4), 6)
        plan.append((max(host_seconds, float(np.ceil(at + 1))), tuple(pieces)))
    return tuple(plan)


def make_held_out_corpus(folder, sources: int = 3, seconds: float = HELD_OUT_SOURCE_SECONDS,
                         fps: int = HELD_OUT_FPS, size=HELD_OUT_SIZE, plan_seed: Optional[int] = None,
                         hosts: int = 10) -> PartialCorpus:
    """Write ``source{i}.mp4`` (queries, ``seconds`` long) and ``host{j}.mp4`` (targets) into
    ``folder`` and return the description. Without ``plan_seed``, the fixed plan: ten
    hosts, two of them with no insertion. With it, :func:`draw_plan` of ``hosts`` hosts, and
    sources and hosts drawn from seeds of their own (``plan_seed`` 1 to 9), so a drawn
    corpus shares no video with the fixed one or with another seed's."""
    if not isinstance(sources, int) or sources < 3:
        raise ValueError(f'sources must be an integer >= 3 (the plan uses three), got {sources!r}')
    if not isinstance(fps, int) or fps < 1:
        raise ValueError(f'fps must be a positive integer, got {fps!r}')
    if plan_seed is None:
        host_plan, source_seed, host_seed = _HOST_PLAN, _SOURCE_SEED, _HOST_SEED
    else:
        if isinstance(plan_seed, bool) or not isinstance(plan_seed, int) or not 1 <= plan_seed <= 9:
            raise ValueError(f'plan_seed must be an integer from 1 to 9, got {plan_seed!r}')
        if isinstance(hosts, bool) or not isinstance(hosts, int) or not 1 <= hosts <= 99:
            raise ValueError(f'hosts must be an integer from 1 to 99, got {hosts!r}')
        if sources > 99:
            raise ValueError(f'a drawn plan takes at most 99 sources, got {sources}')
        host_plan = draw_plan(plan_seed, hosts, sources, seconds, fps)
        source_seed, host_seed = _SOURCE_SEED + 100 * plan_seed, _HOST_SEED + 100 * plan_seed
    latest = max((p.query[1] for _, pieces in host_plan for p in pieces), default=0)
    if not isinstance(seconds, (int, float)) or not seconds >= latest:
        raise ValueError(f'seconds must be at least {latest} (where the latest piece ends), got {seconds!r}')
    h, w = size
    if h <= 0 or w <= 0 or h % 2 or w % 2:
        raise ValueError(f'yuv420p needs positive even sizes, got {h}x{w}')
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    corpus = PartialCorpus(folder, fps=fps)
    source_frames = int(round(seconds * fps))
    scenes = [filmed_scene(source_frames, h, w, fps, seed=source_seed + i) for i in range(sources)]
    for i, scene in enumerate(scenes):
        corpus.sources.append(make_video(folder / f'source{i}.mp4', scene, fps=fps))
    for j, (host_seconds, pieces) in enumerate(host_plan):
        frames = broadcast_scene(int(round(host_seconds * fps)), h, w, fps, seed=host_seed + j)
        host = folder / f'host{j}.mp4'
        crf = None
        for piece in pieces:
            first, last = (int(round(s * fps)) for s in piece.query)
            piece_frames = scenes[piece.source][first:last]
            if piece.kind == 'speedup':
                piece_frames = piece_frames[speedup_indices(len(piece_frames), SPEEDUP)]
            at = int(round(piece.at * fps))
            span = slice(at, at + len(piece_frames))
            if span.stop > len(frames):
                raise ValueError(f'host {j}: a piece ends after the host at {fps} fps')
            frames[span] = edit(piece.kind, piece_frames, frames[span])
            crf = _WHOLE_HOST_CRF.get(piece.kind, crf)
            corpus.insertions.append(Insertion(corpus.sources[piece.source], host, piece.kind, first / fps,
                                               last / fps, at / fps, span.stop / fps))
        make_video(host, frames, fps=fps)
        if crf is not None:  # a re-upload: the first file decoded and encoded worse
            make_video(host, read_frames(host), fps=fps, crf=crf)
        corpus.hosts.append(host)
    return corpus


def edit(kind: str, piece: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The piece as shown in the host (``background``: the host frames it covers).
    Whole-host re-encoding is applied by the caller."""
    _, h, w, _ = piece.shape
    if kind in ('plain', 'speedup', 'reencoded'):
        return piece
    if kind == 'flipped':
        return np.ascontiguousarray(piece[:, :, ::-1])
    if kind == 'pip_corner':
        out = background.copy()
        top, left, ih, iw = pip_corner_box(h, w)
        out[:, top:top + ih, left:left + iw] = resize(piece, ih, iw)
        return out
    if kind == 'bright_reencoded':
        return brighten(piece)
    if kind == 'cropped_banner':
        return add_banner(resize(center_crop(piece, CROP_KEEP), h, w))
    raise ValueError(f'unknown edit {kind!r}; expected one of {HELD_OUT_KINDS}')


def pip_corner_box(h: int, w: int) -> Tuple[int, int, int, int]:
    """(top, left, height, width) of the inset: PIP_SCALE of each side, bottom right."""
    ih, iw = int(h * PIP_SCALE) // 2 * 2, int(w * PIP_SCALE) // 2 * 2
    margin = max(2, h // 18) // 2 * 2
    return h - ih - margin, w - iw - margin, ih, iw


def brighten(frames: np.ndarray) -> np.ndarray:
    lifted = (frames.astype(np.float32) + BRIGHTEN - 128) * CONTRAST + 128
    return np.clip(lifted, 0, 255).astype(np.uint8)


def banner_box(h: int, w: int) -> Tuple[int, int, int, int]:
    """(top, left, height, width) of the banner: the lower left, a fifth of the height."""
    bh, bw = h // 5 // 2 * 2, int(w * 0.6) // 2 * 2
    return h - bh - 4, 4, bh, bw


def add_banner(frames: np.ndarray) -> np.ndarray:
    """A translucent white banner with dark block letters, the same on every frame."""
    out = frames.astype(np.float32)
    _, h, w, _ = out.shape
    top, left, bh, bw = banner_box(h, w)
    region = out[:, top:top + bh, left:left + bw]
    region[:] = 0.35 * region + 0.65 * 235
    yy, xx = np.mgrid[0:bh, 0:bw]
    letters = ((xx // 7) % 3 != 2) & (yy > bh // 4) & (yy < 3 * bh // 4) & ((xx * 7 + yy * 3) % 11 > 3)
    region[:, letters] = (30, 30, 60)
    return np.clip(out, 0, 255).astype(np.uint8)


# --- scene families


def pink_noise(height: int, width: int, rng: np.random.Generator, slope: float = 1.1) -> np.ndarray:
    """A colour field with a 1/f^slope amplitude spectrum (natural images' statistics),
    scaled to roughly [-1, 1], float32 [height, width, 3]."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(height, width)) ** slope
    channels = []
    for _ in range(3):
        phase = rng.uniform(0, 2 * np.pi, amplitude.shape)
        field = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(height, width))
        channels.append(field / (3 * field.std()))
    luma = channels[0]
    # Colour follows brightness, as in photographs: chroma fields are weaker.
    return np.clip(np.stack([luma + 0.4 * channels[1], luma, luma + 0.4 * channels[2]], -1), -1.5, 1.5
                   ).astype(np.float32)


def _sample(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` [H, W, C] at float coordinates, wrapping around (the
    1/f fields are periodic, so a camera may pan on for ever)."""
    ih, iw = image.shape[:2]
    ys, xs = np.mod(ys, ih), np.mod(xs, iw)
    y0, x0 = ys.astype(int), xs.astype(int)
    y1, x1 = (y0 + 1) % ih, (x0 + 1) % iw
    wy, wx = (ys - y0)[..., None], (xs - x0)[..., None]
    top = image[y0, x0] * (1 - wx) + image[y0, x1] * wx
    bottom = image[y1, x0] * (1 - wx) + image[y1, x1] * wx
    return top * (1 - wy) + bottom * wy


def _add_structures(land: np.ndarray, rng: np.random.Generator) -> None:
    """Sharp-edged things on the landscape (walls, windows, poles), as scenes have: the
    edges and corners a network sees, which smooth 1/f fields lack."""
    ph, pw, _ = land.shape
    for _ in range(int(rng.integers(12, 24))):
        h, w = int(rng.integers(4, ph // 3)), int(rng.integers(3, pw // 12))
        top, left = int(rng.integers(0, ph - h)), int(rng.integers(0, pw - w))
        land[top:top + h, left:left + w] = rng.uniform(-1.2, 1.2, 3)
        if rng.random() < 0.5:  # a grid of windows
            land[top:top + h:4, left:left + w] = rng.uniform(-1.2, 1.2, 3)


def _shot_lengths(n_frames: int, fps: int, rng: np.random.Generator) -> List[int]:
    lengths, total = [], 0
    while total < n_frames:
        lengths.append(int(rng.integers(3 * fps, 6 * fps + 1)))
        total += lengths[-1]
    return lengths


def filmed_scene(n_frames: int, height: int, width: int, fps: int, seed: int) -> np.ndarray:
    """Shots of a camera moving over a 1/f-noise landscape, soft textured objects crossing
    it, a slight flicker; uint8 [n_frames, height, width, 3]. Frame t depends only on
    ``seed``, t and the sizes."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_frames, height, width, 3), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t0 = 0
    for length in _shot_lengths(n_frames, fps, rng):
        ph, pw = int(height * 1.8), int(width * 3)
        land = pink_noise(ph, pw, rng)
        _add_structures(land, rng)
        tint = rng.uniform(70, 180, 3).astype(np.float32)
        contrast = rng.uniform(45, 80)
        start = rng.uniform([0, 0], [ph, pw])
        # A third of the picture or more a second: frames a second apart show other things.
        pan = rng.uniform(0.6, 1.2, 2) * rng.choice([-1, 1], 2) * [0.15, 1.0] * width / 2.5 / fps
        zoom = rng.uniform(-0.01, 0.015) * 4 / fps
        n_objects = int(rng.integers(1, 4))
        centre = rng.uniform([0.2, 0.1], [0.8, 0.9], (n_objects, 2)) * [height, width]
        speed = rng.uniform(-8, 8, (n_objects, 2)) * 4 / fps
        radii = rng.uniform(0.1, 0.25, (n_objects, 2)) * min(height, width)
        colour = rng.uniform(20, 235, (n_objects, 3)).astype(np.float32)
        stripes = rng.uniform(0.1, 0.5, n_objects)
        flicker = rng.uniform(0, 6)
        for k in range(length):
            t = t0 + k
            if t >= n_frames:
                return out
            z = 1 + zoom * k
            ys = start[0] + pan[0] * k + (yy - height / 2) / z + height / 2
            xs = start[1] + pan[1] * k + (xx - width / 2) / z + width / 2
            img = tint + contrast * _sample(land, ys, xs)
            for o in range(n_objects):
                cy, cx = centre[o] + speed[o] * k
                r = np.hypot((yy - cy) / radii[o, 0], (xx - cx) / radii[o, 1])
                alpha = 1 / (1 + np.exp((r - 1) * 8))
                texture = colour[o] * (0.8 + 0.2 * np.sin(stripes[o] * (xx + yy) + k))[..., None]
                img = img * (1 - alpha[..., None]) + texture * alpha[..., None]
            img *= 1 + 0.01 * flicker * np.sin(2.1 * t)
            out[t] = np.clip(img, 0, 255).astype(np.uint8)
        t0 += length
    return out


def broadcast_scene(n_frames: int, height: int, width: int, fps: int, seed: int) -> np.ndarray:
    """Shots of a studio (panels, a swaying presenter, a ticker) and of a playing field
    (perspective stripes, running players, a score box); uint8 [n_frames, height, width, 3]."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_frames, height, width, 3), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t0 = 0
    for length in _shot_lengths(n_frames, fps, rng):
        studio = bool(rng.random() < 0.5)
        if studio:
            render = _studio(height, width, fps, rng, yy, xx)
        else:
            render = _field(height, width, fps, rng, yy, xx)
        for k in range(length):
            if t0 + k >= n_frames:
                return out
            out[t0 + k] = np.clip(render(k), 0, 255).astype(np.uint8)
        t0 += length
    return out


def _studio(height, width, fps, rng, yy, xx):
    n_panels = int(rng.integers(3, 6))
    edges = np.sort(rng.uniform(0, width, n_panels - 1))
    panel = np.searchsorted(edges, xx)
    colours = rng.uniform(30, 200, (n_panels, 3)).astype(np.float32)
    backdrop = colours[panel] * (0.85 + 0.15 * (yy / height))[..., None]
    skin, suit = rng.uniform(150, 220, 3), rng.uniform(10, 90, 3)
    x0 = rng.uniform(0.3, 0.7) * width
    sway = rng.uniform(2, 6)
    ticker = rng.integers(0, 2, (6, 400)).astype(bool)
    ticker_colour = rng.uniform(0, 255, 3)
    ticker_speed = rng.uniform(3, 8) * 4 / fps
    band = int(height * 0.86)

    def render(k):
        img = backdrop.copy()
        cx = x0 + sway * np.sin(0.5 * k * 4 / fps)
        head = ((yy - height * 0.38) / (height * 0.1)) ** 2 + ((xx - cx) / (width * 0.06)) ** 2 <= 1
        body = (yy > height * 0.48) & (np.abs(xx - cx) < width * 0.14 * (1 + (yy - height * 0.48) / height))
        img[body] = suit
        img[head] = skin
        img[band:] = (245, 245, 245)
        shift = int(ticker_speed * k)
        rows = ((yy[band:] - band) * 6 / (height - band)).astype(int).clip(0, 5)
        cols = ((xx[band:] + shift) // 3).astype(int) % ticker.shape[1]
        img[band:][ticker[rows, cols]] = ticker_colour
        return img
    return render


def _field(height, width, fps, rng, yy, xx):
    grass = rng.uniform([20, 100, 20], [70, 170, 70]).astype(np.float32)
    horizon = rng.uniform(0.15, 0.3) * height
    depth = np.maximum(yy - horizon, 1)
    stripes = ((width * 4 / depth + rng.uniform(0, 1)) % 1 < 0.5)
    sky = rng.uniform(120, 220, 3)
    n_players = int(rng.integers(4, 9))
    pos = rng.uniform([horizon + 10, 0], [height, width], (n_players, 2))
    vel = rng.uniform(-3, 3, (n_players, 2)) * 4 / fps
    team = rng.uniform(0, 255, (2, 3))
    pan = rng.uniform(-2, 2) * 4 / fps

    def render(k):
        img = np.where(stripes[..., None], grass, grass * 0.8)
        img = np.where((yy < horizon)[..., None], sky, img).astype(np.float32)
        for p in range(n_players):
            cy = horizon + 10 + (pos[p, 0] + vel[p, 0] * k - horizon - 10) % (height - horizon - 10)
            cx = (pos[p, 1] + (vel[p, 1] - pan) * k) % width
            scale = 0.5 + (cy - horizon) / height
            box = (np.abs(yy - cy) < 6 * scale) & (np.abs(xx - cx) < 2.5 * scale)
            img[box] = team[p % 2]
        img[4:16, 4:40] = (20, 20, 20)
        img[7:13, 8:8 + 4 * (k // 5 % 8)] = (240, 240, 240)
        return img
    return render
