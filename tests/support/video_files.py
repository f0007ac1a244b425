"""Make real encoded test videos with PyAV (libx264, yuv420p)."""
from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_video(path, frames: np.ndarray, fps: int = 5, codec: str = 'libx264', *, crf: int = 18,
               x264_defaults: bool = False) -> Path:
    """Encode ``frames`` (uint8 [T, H, W, 3] RGB, H and W even) into ``path``.

    ``crf``: x264's quality (18 near lossless, 35+ visibly degraded). ``x264_defaults``:
    x264's own preset (medium: 3 B-frames, B-pyramid, a key frame every 250 frames),
    as most files are made, instead of veryfast with a key frame every 2 s. The container
    follows the file extension; an ``.mp4`` is written with ``+faststart``
    (index at the front) so that a truncated copy still opens.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f'frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}')
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f'yuv420p needs even sizes, got {height}x{width}')
    options = {'movflags': '+faststart'} if path.suffix.lower() in ('.mp4', '.mov') else {}
    with av.open(str(path), mode='w', options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = 'yuv420p'
        stream.time_base = Fraction(1, fps)
        if codec == 'libx264':
            stream.options = ({'crf': str(crf)} if x264_defaults
                              else {'crf': str(crf), 'preset': 'veryfast', 'g': str(2 * fps)})
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(yuv420p(rgb), format='yuv420p')
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())  # flush
    return path


def yuv420p(rgb: np.ndarray) -> np.ndarray:
    """An RGB frame (uint8 [H, W, 3], H and W even) as yuv420p planes in one uint8
    [H * 3 / 2, W] array (PyAV's layout): BT.601 limited range, as decoders assume, each
    chroma sample the mean of a 2x2 block. Converted here rather than by FFmpeg's swscale,
    which gave another file for the same frames in nearly every process that had loaded
    torch, so that a corpus, and its figures, come out the same far more often (one
    rarer difference of unknown cause remains)."""
    x = np.asarray(rgb, np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    luma = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    h, w = luma.shape

    def half(plane):
        return plane.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8).ravel() for p in (luma, half(cb), half(cr))]
    return np.concatenate(planes).reshape(h * 3 // 2, w)


def moving_scene(n_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic synthetic scene: a drifting colour gradient with a few moving
    discs and a sliding bar. Returns uint8 [n_frames, height, width, 3]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    n_discs = 4
    centres = rng.uniform([0.2 * height, 0.2 * width], [0.8 * height, 0.8 * width], size=(n_discs, 2))
    velocity = rng.uniform(-3, 3, size=(n_discs, 2))
    radius = rng.uniform(0.08, 0.18, size=n_discs) * min(height, width)
    colours = rng.integers(0, 256, size=(n_discs, 3))
    out = np.empty((n_frames, height, width, 3), np.uint8)
    for t in range(n_frames):
        img = np.empty((height, width, 3), np.float32)
        for c in range(3):
            img[..., c] = 127.5 + 100 * np.sin(2 * np.pi * (xx / width + yy / height) + phase[c] + 0.15 * t)
        for d in range(n_discs):
            cy, cx = centres[d] + velocity[d] * t
            cy, cx = cy % height, cx % width
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius[d] ** 2
            img[mask] = colours[d]
        bar = int((t * 4) % width)
        img[:, bar:bar + max(2, width // 20)] = 255
        out[t] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def make_video_with_pts(path, frames: np.ndarray, pts_ms, *, rotation=None) -> Path:
    """Encode ``frames`` (uint8 [T, H, W, 3], even sizes) with libx264 at the given
    presentation times in milliseconds (any increasing sequence: variable frame rate).
    ``rotation``: counter-clockwise degrees written as the stream's display matrix
    (PyAV's ``set_display_rotation``), as phones do for portrait videos."""
    path = Path(path)
    frames = np.asarray(frames)
    assert frames.dtype == np.uint8 and frames.ndim == 4 and len(pts_ms) == len(frames)
    _, height, width, _ = frames.shape
    time_base = Fraction(1, 1000)
    options = {'movflags': '+faststart'} if path.suffix.lower() in ('.mp4', '.mov') else {}
    with av.open(str(path), mode='w', options=options) as container:
        stream = container.add_stream('libx264', rate=25)
        stream.width, stream.height = width, height
        stream.pix_fmt = 'yuv420p'
        stream.time_base = time_base
        stream.codec_context.time_base = time_base  # else the encoder rounds to 1/rate
        stream.options = {'crf': '18', 'preset': 'veryfast'}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for rgb, pts in zip(frames, pts_ms):
            frame = av.VideoFrame.from_ndarray(yuv420p(rgb), format='yuv420p')
            frame.pts = int(pts)
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def make_audio(path, seconds: float = 1.0, codec: str = 'aac', rate: int = 44100) -> Path:
    """An audio-only file (a 440 Hz sine); the container follows the extension
    (``.m4a`` with ``aac``, ``.wav`` with ``pcm_s16le``)."""
    path = Path(path)
    fmt = 'fltp' if codec == 'aac' else 's16'
    with av.open(str(path), mode='w') as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = 'mono'
        n = int(seconds * rate)
        wave = 0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)
        samples = wave.astype(np.float32) if fmt == 'fltp' else (wave * 32767).astype(np.int16)
        chunk = 1024
        for start in range(0, n, chunk):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + chunk], format=fmt, layout='mono')
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def set_mp4_display_matrix(path, matrix) -> Path:
    """Overwrite the first track header's (``tkhd``) 3x3 display matrix of an MP4 made by
    :func:`make_video` in place: ``matrix`` is (a, b, c, d) in 16.16 fixed point units
    (1 = identity's 0x10000), e.g. (0, 1, -1, 0) for a phone's portrait video (players
    turn it 90 degrees clockwise)."""
    import struct
    path = Path(path)
    data = path.read_bytes()
    identity = struct.pack('>9i', 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    at = data.find(identity, data.find(b'tkhd'))
    if at < 0:
        raise ValueError(f'no identity tkhd matrix in {path}')
    a, b, c, d = (int(v * 0x10000) for v in matrix)
    patched = struct.pack('>9i', a, b, 0, c, d, 0, 0, 0, 0x40000000)
    path.write_bytes(data[:at] + patched + data[at + len(identity):])
    return path


def load_video_decode():
    """The package's video_decode module, loaded from its file: it has no intra-package
    imports, so the decoder's tests do not depend on the models importing."""
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location('dns_video_decode', root / 'video_decode.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
