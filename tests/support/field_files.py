"""Files the way they come from the field, made with PyAV (its bundled FFmpeg) from the
frames of one clip: an MPEG-TS starting at a fractional time, an MP4 with a start
offset, anamorphic pixels, letterbox and pillarbox bars, a variable frame rate with a
hole, an animated GIF, a rotation flag, MPEG-2 in an MPEG-TS, an interlaced PAL DVD
picture (576i, 16:9 anamorphic, letterboxed), 10-bit HEVC, and the other codecs PyAV's
FFmpeg encodes (MPEG-4 Part 2, VP9, AV1, Motion JPEG, ProRes, WMV). Each maker writes one file and returns its path;
``VARIANTS`` names them all, with the truth of where the source's seconds lie in them.
"""
from __future__ import annotations

import math

from fractions import Fraction
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import av
import numpy as np
from PIL import Image

from .video_files import make_video, make_video_with_pts, yuv420p

TS_START = 1.48          # seconds: where an MPEG-TS muxed by FFmpeg starts, fractional
MP4_OFFSET = 30.5        # seconds: a start offset that is no whole number of samples
HOLE = (3.0, 6.0)        # seconds of the variable frame rate file whose frames are dropped
ANAMORPHIC_SAR = Fraction(4, 3)
BAR_FRACTION = 0.125     # of the height (letterbox) or width (pillarbox), each side
MPEG2_RATES = (24, 25, 30, 50, 60)  # whole frame rates MPEG-2 allows
PAL_SIZE = (720, 576)    # stored width, height of a PAL DVD picture
PAL_WIDE_SAR = Fraction(64, 45)  # its sample aspect ratio at 16:9 (shown 1024x576)


def resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Each frame resized (bicubic) to height x width."""
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BICUBIC))
                     for f in frames])


def even(n: float) -> int:
    return max(2, int(round(n / 2)) * 2)


def letterboxed(frames: np.ndarray, fraction: float = BAR_FRACTION) -> np.ndarray:
    """The picture, unchanged, between black bars added at the top and bottom,
    ``fraction`` of its height each (a re-upload with bars added)."""
    _, h, w, _ = frames.shape
    bar = even(h * fraction)
    out = np.zeros((len(frames), h + 2 * bar, w, 3), np.uint8)
    out[:, bar:bar + h] = frames
    return out


def pillarboxed(frames: np.ndarray, fraction: float = BAR_FRACTION) -> np.ndarray:
    """The picture, unchanged, between black bars added left and right, ``fraction`` of
    its width each."""
    _, h, w, _ = frames.shape
    bar = even(w * fraction)
    out = np.zeros((len(frames), h, w + 2 * bar, 3), np.uint8)
    out[:, :, bar:bar + w] = frames
    return out


def make_ts(path, frames: np.ndarray, fps: int, start: float = TS_START) -> Path:
    """An MPEG-TS whose first frame is presented at ``start`` seconds."""
    return make_video_with_pts(path, frames, [1000 * start + 1000 * i / fps for i in range(len(frames))])


def make_offset_mp4(path, frames: np.ndarray, fps: int, offset: float = MP4_OFFSET) -> Path:
    """An MP4 whose first frame is presented at ``offset`` seconds."""
    return make_video_with_pts(path, frames, [1000 * offset + 1000 * i / fps for i in range(len(frames))])


def make_vfr_hole(path, frames: np.ndarray, fps: int, hole: Tuple[float, float] = HOLE) -> Path:
    """The frames presented at their own times but for those in ``hole`` (seconds),
    dropped with their timestamps: a variable frame rate file with a gap."""
    times = [1000 * i / fps for i in range(len(frames))]
    kept = [i for i, t in enumerate(times) if not hole[0] * 1000 <= t < hole[1] * 1000]
    return make_video_with_pts(path, frames[kept], [times[i] for i in kept])


def make_anamorphic(path, frames: np.ndarray, fps: int, sar: Fraction = ANAMORPHIC_SAR) -> Path:
    """The picture stored squeezed to 1 / ``sar`` of its width, with the sample aspect
    ratio that players widen it back by (H.264 VUI and the MP4's ``pasp``)."""
    _, h, w, _ = frames.shape
    stored = resize(frames, h, even(w / sar))
    path = Path(path)
    with av.open(str(path), mode='w') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height = stored.shape[2], h
        stream.pix_fmt = 'yuv420p'
        stream.time_base = Fraction(1, fps)
        stream.codec_context.sample_aspect_ratio = sar
        stream.options = {'crf': '18', 'preset': 'veryfast', 'g': str(2 * fps)}
        for i, rgb in enumerate(stored):
            frame = av.VideoFrame.from_ndarray(yuv420p(rgb), format='yuv420p')
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _gif_rate(fps: int) -> int:
    """Of a rate GIF delays (whole hundredths of a second) cannot hold, every n-th frame
    is kept at one they can, as converters do: 8 frames/s (12.5 hundredths) -> 4."""
    return fps // math.gcd(100, fps)


def make_gif(path, frames: np.ndarray, fps: int) -> Path:
    """An animated GIF made the way most are, by FFmpeg's ``palettegen`` (one 256-colour
    palette from every frame) and ``paletteuse`` (its default sierra2_4a error diffusion
    dithering), at a rate GIF delays can hold (``_gif_rate``)."""
    step = _gif_rate(fps)
    frames = np.asarray(frames)[::step]
    _, height, width, _ = frames.shape
    rate = Fraction(fps, step)
    graph = av.filter.Graph()
    source = graph.add_buffer(width=width, height=height, format='rgb24', time_base=1 / rate)
    split, palette, use = graph.add('split'), graph.add('palettegen'), graph.add('paletteuse')
    sink = graph.add('buffersink')
    source.link_to(split)
    split.link_to(use, 0, 0)
    split.link_to(palette, 1, 0)
    palette.link_to(use, 0, 1)
    use.link_to(sink)
    graph.configure()
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format='rgb24')
        frame.pts, frame.time_base = i, 1 / rate
        graph.push(frame)
    graph.push(None)  # the palette is made at the end of the input; paletteuse waits for it
    path = Path(path)
    with av.open(str(path), mode='w') as container:
        stream = container.add_stream('gif', rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, 'pal8'
        for i in range(len(frames)):
            frame = graph.pull()
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def make_pillow_gif(path, frames: np.ndarray, fps: int) -> Path:
    """An animated GIF made by Pillow (a palette of 256 colours for each frame, median
    cut, no dithering), as Python scripts make them; at a rate GIF delays can hold."""
    step = _gif_rate(fps)
    images = [Image.fromarray(f).convert('P', palette=Image.Palette.ADAPTIVE) for f in frames[::step]]
    images[0].save(str(path), save_all=True, append_images=images[1:], duration=10 * (100 * step // fps), loop=0)
    return Path(path)


def make_rotated(path, frames: np.ndarray, fps: int) -> Path:
    """The picture stored turned a quarter clockwise, with the display matrix that turns
    it upright again (a phone's portrait video)."""
    turned = np.ascontiguousarray(np.rot90(frames, k=-1, axes=(1, 2)))
    return make_video_with_pts(path, turned, [1000 * i / fps for i in range(len(frames))], rotation=90)


def at_rate(frames: np.ndarray, fps: int, rate: int) -> np.ndarray:
    """``frames`` at ``fps`` frames a second shown at ``rate``: each output frame the
    source frame on screen at its time (repeated or dropped, as a frame-rate converter
    without blending does)."""
    count = int(len(frames) * rate / fps)
    return frames[np.minimum((np.arange(count) * fps) // rate, len(frames) - 1)]


def encode(path, frames: np.ndarray, fps: int, codec: str, *, pix_fmt: str = 'yuv420p',
           options: Optional[Dict[str, str]] = None, start: float = 0.0,
           sar: Optional[Fraction] = None, interlaced: bool = False, swscale: bool = False) -> Path:
    """``frames`` (uint8 [T, H, W, 3], even sizes) encoded with ``codec`` into ``path``
    (the container follows the suffix), the first presented at ``start`` seconds.
    ``interlaced``: field-coded, top field first, each frame woven of two fields taken
    a frame apart (the top one from frame i, the bottom one from frame i + 1), as an
    interlaced camera's fields are half a frame apart. ``swscale``: RGB to YUV by
    FFmpeg (ten times faster on large pictures) rather than the test support's
    conversion, which always gives the same file for the same frames."""
    path = Path(path)
    frames = np.asarray(frames)
    _, height, width, _ = frames.shape
    muxer = {'movflags': '+faststart'} if path.suffix.lower() in ('.mp4', '.mov') else {}
    with av.open(str(path), mode='w', options=muxer) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt
        stream.time_base = Fraction(1, fps)
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        if interlaced:
            stream.codec_context.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
            options = {**(options or {}), 'field_order': 'tt'}
        stream.options = dict(options or {})
        first = int(round(start * fps))
        for i, rgb in enumerate(frames):
            if interlaced:
                rgb = rgb.copy()
                rgb[1::2] = frames[min(i + 1, len(frames) - 1)][1::2]
            if pix_fmt == 'yuv420p' and not swscale:
                frame = av.VideoFrame.from_ndarray(yuv420p(rgb), format='yuv420p')
            else:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format='rgb24').reformat(format=pix_fmt)
            frame.pts, frame.time_base = first + i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def make_mpeg2_ts(path, frames: np.ndarray, fps: int, start: float = TS_START) -> Path:
    """MPEG-2 video in an MPEG-TS starting at ``start`` seconds (a broadcast recording),
    at the source's rate or, where MPEG-2 cannot hold it, at 25 frames a second."""
    rate = fps if fps in MPEG2_RATES else 25
    return encode(path, at_rate(frames, fps, rate), rate, 'mpeg2video', start=start,
                  options={'b': '4M', 'g': '12', 'bf': '2'})


def make_pal_576i(path, frames: np.ndarray, fps: int) -> Path:
    """A PAL DVD's picture in an MPEG program stream (.mpg): interlaced MPEG-2 at 25
    frames a second, 720x576 stored with the 16:9 sample aspect ratio 64:45 (shown
    1024x576), the source letterboxed into the 16:9 picture (bars above and below; or
    pillarboxed, were it narrower), then squeezed to the 720 stored columns."""
    _, h, w, _ = frames.shape
    shown_w, shown_h = int(PAL_SIZE[0] * PAL_WIDE_SAR), PAL_SIZE[1]
    if w / h >= shown_w / shown_h:
        fit_w, fit_h = PAL_SIZE[0], even(shown_w / (w / h))
    else:
        fit_w, fit_h = even(shown_h * (w / h) / PAL_WIDE_SAR), shown_h
    picture = resize(at_rate(frames, fps, 25), fit_h, fit_w)
    stored = np.zeros((len(picture), PAL_SIZE[1], PAL_SIZE[0], 3), np.uint8)
    top, left = (PAL_SIZE[1] - fit_h) // 2 // 2 * 2, (PAL_SIZE[0] - fit_w) // 2 // 2 * 2
    stored[:, top:top + fit_h, left:left + fit_w] = picture
    return encode(path, stored, 25, 'mpeg2video', sar=PAL_WIDE_SAR, interlaced=True, swscale=True,
                  options={'b': '6M', 'g': '12', 'bf': '2'})


class Variant(NamedTuple):
    make: Callable[..., Path]
    suffix: str
    # Where the source's seconds are in the file: (source start, source end, file start)
    # pieces, seconds from each one's first frame.
    truth: Callable[[float], List[Tuple[float, float, float]]]


def _whole(seconds: float) -> List[Tuple[float, float, float]]:
    return [(0.0, seconds, 0.0)]


def _with_hole(seconds: float) -> List[Tuple[float, float, float]]:
    return [piece for piece in ((0.0, min(HOLE[0], seconds), 0.0), (HOLE[1], seconds, HOLE[1]))
            if piece[1] > piece[0]]


def _codec(codec: str, suffix: str, **settings) -> Variant:
    """The whole source encoded with ``codec`` (``encode``'s ``settings``)."""
    return Variant(lambda path, frames, fps: encode(path, frames, fps, codec, **settings), suffix, _whole)


VARIANTS: Dict[str, Variant] = {
    'reencode': Variant(lambda p, f, fps: make_video(p, f, fps=fps, crf=23), '.mp4', _whole),
    'ts_start': Variant(make_ts, '.ts', _whole),
    'mp4_offset': Variant(make_offset_mp4, '.mp4', _whole),
    'anamorphic': Variant(make_anamorphic, '.mp4', _whole),
    'letterbox': Variant(lambda p, f, fps: make_video(p, letterboxed(f), fps=fps, crf=23), '.mp4', _whole),
    'pillarbox': Variant(lambda p, f, fps: make_video(p, pillarboxed(f), fps=fps, crf=23), '.mp4', _whole),
    'vfr_hole': Variant(make_vfr_hole, '.mp4', _with_hole),
    'gif': Variant(make_gif, '.gif', _whole),
    'gif_pillow': Variant(make_pillow_gif, '.gif', _whole),
    'rotated': Variant(make_rotated, '.mp4', _whole),
    'mpeg2_ts': Variant(make_mpeg2_ts, '.ts', _whole),
    'pal_576i': Variant(make_pal_576i, '.mpg', _whole),
    'hevc_10bit': _codec('libx265', '.mp4', pix_fmt='yuv420p10le',
                         options={'crf': '23', 'preset': 'fast', 'x265-params': 'log-level=error'}),
    'mpeg4': _codec('mpeg4', '.avi', options={'qscale': '4'}),
    'vp9': _codec('libvpx-vp9', '.webm', options={'crf': '32', 'b': '0', 'cpu-used': '8', 'deadline': 'realtime'}),
    'av1': _codec('libsvtav1', '.mkv', options={'crf': '35', 'preset': '10'}),
    'mjpeg': _codec('mjpeg', '.avi', pix_fmt='yuvj420p', options={'qscale': '4'}),
    'prores': _codec('prores_ks', '.mov', pix_fmt='yuv422p10le', options={'profile': '2'}),
    'wmv': _codec('wmv2', '.wmv', options={'b': '2M'}),
}


def make_variant(kind: str, folder, frames: np.ndarray, fps: int, name: str = 'source') -> Path:
    """The file of variant ``kind`` of ``frames`` in ``folder``."""
    variant = VARIANTS[kind]
    return variant.make(Path(folder) / f'{name}_{kind}{variant.suffix}', frames, fps)
