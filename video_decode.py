"""Video decoding with PyAV. ``FrameDecoder`` is framework-free: it yields
``DecodedFrame`` arrays (what retrieval and the core use); ``VideoDecoder`` is its thin
Towhee adapter, yielding ``towhee.types.VideoFrame`` (Towhee is imported only there).

Towhee's own ``video_decode.ffmpeg`` operator lives on the Towhee hub; this module ships
an equivalent decoder with the same time-step sampling semantics, so the DnS operator can
be fed offline::

    from towhee import pipe
    p = (pipe.input('path')
             .map('path', 'frames', VideoDecoder(time_step=1))
             .map('frames', 'emb', distill_and_select(...))
             .output('emb'))

Towhee's ``map`` consumes a generator returned by an operator into a list, so the
downstream operator receives ``list[VideoFrame]``.
"""
from __future__ import annotations

import math
import os
import stat
import warnings
from fractions import Fraction
from typing import TYPE_CHECKING, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import av
import numpy as np
from av.codec.hwaccel import HWAccel, hwdevices_available

if TYPE_CHECKING:  # the adapter's type; importing Towhee is the adapter's business only
    import torch
    from towhee.types import VideoFrame

__all__ = ['Crop', 'DecodeDeviceFallback', 'DecodedFrame', 'FrameDecoder', 'VideoDecodeError', 'VideoDecoder',
           'borders_of', 'check_video_file', 'decode_device', 'decode_frames', 'display_size', 'find_borders',
           'reading_changes', 'scaled_size', 'why_not_a_video']

_EPS = 1e-6  # seconds; tolerance on timestamps versus sampling times
# Skipping: packets presented within this many frame durations after a sampling time
# are decoded whatever their kind, so the frame kept there is the one every frame
# decoded would keep (the first at or after the sampling time).
_NEEDED_FRAMES = 2
# swscale's bicubic scaler, antialiased when it shrinks (its filter widens with the
# factor), as torchvision's antialiased bicubic resize of the exact path.
_SCALE_INTERPOLATION = 'BICUBIC'
# FFmpeg demuxers of single images: image2 / image2pipe and the <codec>_pipe family
# (png_pipe, jpeg_pipe, webp_pipe, bmp_pipe, tiff_pipe, ...). A GIF of one frame too.
_IMAGE_DEMUXERS = ('image2', 'image2pipe')
_MOV_FORMATS = ('mov', 'mp4')
# Borders (find_borders): tuned on the letterboxed, pillarboxed and plain clips of
# benchmarks/real_files.py's tuning seeds, reported on others.
_BORDER_PROBES = 16      # frames looked at, spread over the video
_BORDER_LIMIT = 24       # mean luma (0-255) of a dark row or column: cropdetect's default limit
_BORDER_SHARE = 0.5      # of the frames that vote: the majority
_BORDER_KEEP = 0.4       # of a side: a crop leaving less is a dark picture, not borders
# Of a side: a thinner dark edge (a real camera's or capture's one or two dark columns)
# is kept. Its darkness sits near the limit, so some encodes of one clip cut it and some
# do not, and a picture shifted by a pixel scores lower (a 1-column difference cost a
# real 176x144 clip 0.13 of fine similarity: benchmarks/real_files.py).
_BORDER_LEAST = 0.02
_SEEK_MARGINS = (0.0, 2.0, 8.0, 32.0, 128.0, math.inf)  # seconds before the target, tried in turn
_TAG_SCAN_BYTES = 8 << 20  # where to look for an MP4/MOV sample entry's codec tag


class VideoDecodeError(RuntimeError):
    """A video could not be opened or decoded; the message names the path and the reason."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f'cannot decode video {self.path!r}: {reason}')


class DecodedFrame(np.ndarray):
    """One decoded frame: an HxWx3 uint8 RGB array that also carries ``mode`` ('RGB'),
    ``timestamp`` (ms), ``key_frame`` (0 or 1) and ``source_size`` (width, height of the
    stored picture, upright, at its display aspect), the attributes of Towhee's
    ``VideoFrame``, and ``crop``: the borders cut off it (:class:`Crop`, or None when
    borders are not cut)."""

    def __new__(cls, image: np.ndarray, timestamp: int, key_frame: int, source_size: Tuple[int, int],
                crop: Optional['Crop'] = None):
        frame = np.asarray(image).view(cls)
        frame.mode, frame.timestamp, frame.key_frame, frame.source_size = 'RGB', timestamp, key_frame, source_size
        frame.crop = crop
        return frame

    def __array_finalize__(self, obj) -> None:
        self.mode = getattr(obj, 'mode', 'RGB')
        self.timestamp = getattr(obj, 'timestamp', None)
        self.key_frame = getattr(obj, 'key_frame', None)
        self.source_size = getattr(obj, 'source_size', None)
        self.crop = getattr(obj, 'crop', None)


class FrameDecoder:
    """Decode a video file into ``DecodedFrame`` arrays (RGB).

    Args:
        start_time: first second to decode (``None``: from the beginning). The decoder
            seeks to the key frame before it, then drops the frames before it.
        end_time: decode frames strictly before this second (``None``: to the end).
        time_step: sampling period in seconds. For each sampling time ``start``,
            ``start + step``, ``start + 2 * step``, ... the first frame whose timestamp is
            at or after it is kept (a frame covering several sampling times is kept once).
            ``None`` keeps every frame.
        threads: let FFmpeg decode with frame and slice threads (True: ``thread_type``
            'AUTO'; or 'FRAME' or 'SLICE'; False: one thread).
        autorotate: turn frames upright following the video's display matrix.
        exact: decode every frame even when sampling (see Skipping below).
        short_side: convert each kept frame straight to RGB at this size of its shorter
            side (the longer one as torchvision's ``resize`` rounds it: truncated),
            scaled by FFmpeg's bicubic scaler while converting; ``None``: full size.
            Never makes a full-size RGB image. Frames keep their source size in the
            attribute ``source_size`` (width, height, upright).
        device: 'cpu', or 'cuda' / 'cuda:N' to decode with NVDEC (FFmpeg's CUDA
            hardware acceleration). Where FFmpeg has no CUDA support, no GPU answers or
            NVDEC cannot decode the stream, the video is decoded on the CPU and a
            :class:`DecodeDeviceFallback` warning says why.

        crop_borders: cut constant black (or near-black) borders off every kept frame:
            letterbox, pillarbox or both, found by :func:`find_borders` on frames spread
            over the whole video before decoding; the frames' ``crop`` says what was cut.

    Calling the decoder with a path returns a generator of
    ``DecodedFrame(rgb_uint8[H, W, 3], timestamp_ms, key_frame, source_size)``; timestamps are
    integer milliseconds from the first frame's (``frame.pts * time_base`` less the first
    frame's), and ``start_time``, ``end_time`` and the sampling times count from there
    too: an MPEG-TS starting at 1.48 s or an MP4 with a start offset is sampled at 0, 1,
    2 s of its picture, as a file starting at 0 is. Only kept frames are converted to RGB.
    Sampling follows the timestamps, so variable frame rate videos are sampled correctly,
    and a hole in one shows as a jump in the kept frames' timestamps.

    Display geometry: a frame whose pixels are not square (a sample aspect ratio other
    than 1:1: DVD, broadcast, anamorphic files) comes out at its display size, as players
    show it (the width times the ratio, by FFmpeg's bicubic scaler), and ``source_size``
    is that display size.

    Skipping: with a ``time_step`` (and not ``exact``), FFmpeg skips the frames no other
    frame refers to (non-reference frames, ``skip_frame='NONREF'``: most B-frames of
    H.264/HEVC) unless they are presented within two frame durations after a sampling
    time; reference frames are always decoded. At one frame per second of a 25-30
    frames/s H.264 file with x264's defaults this decodes about half the frames, and the
    kept frames are those of the exact path, pixel for pixel: for a constant frame rate
    the first frame at or after each sampling time lies inside the decoded window, so
    the timestamp tolerance is zero. Only where a variable frame rate leaves a gap of
    more than two average frame durations after a sampling time can the kept frame
    differ from the exact path's: it is then the first decoded frame after the sampling
    time (a later frame than the exact path's, never an earlier one). Codecs without
    non-reference frames (VP9, AV1, intra-only codecs) decode every frame, as before.

    Rotation: a video carrying a display matrix (phones' portrait videos: tkhd matrix,
    ``rotate`` tag) comes out upright, as players show it: each frame is turned by
    ``frame.rotation`` (rounded to a quarter turn), so ``H`` and ``W`` swap for 90 and 270
    degrees. Mirroring in the matrix is ignored. ``autorotate=False`` returns frames as
    stored.

    Errors: every failure to open or decode a file raises :class:`VideoDecodeError` (on
    the first ``next()``, as the decoder is a generator), whose message names the path
    and the reason: no such file, permission denied, a directory or other non-regular
    file, an empty file, a file FFmpeg does not recognise (not a video), a still image
    (PNG, JPEG, WebP, BMP, TIFF, a one-frame GIF: 'a still image, not a video'), no video
    stream (e.g. audio only), an unsupported codec (FFmpeg has no decoder; the codec tag
    is named where it can be read, e.g. from an MP4's sample entry) and a video with no
    decodable frame. A file damaged or truncated mid-stream yields the frames decoded
    before the damage, then stops cleanly without raising.
    """

    def __init__(self, start_time: Optional[float] = None, end_time: Optional[float] = None,
                 time_step: Optional[float] = None, threads: bool = True, autorotate: bool = True, *,
                 exact: bool = False, short_side: Optional[int] = None, device: str = 'cpu',
                 crop_borders: bool = False):
        if time_step is not None and not time_step > 0:
            raise ValueError(f'time_step must be positive, got {time_step}')
        if start_time is not None and start_time < 0:
            raise ValueError(f'start_time must be >= 0, got {start_time}')
        if start_time is not None and end_time is not None and end_time <= start_time:
            raise ValueError(f'end_time ({end_time}) must be after start_time ({start_time})')
        self.start_time = start_time
        self.end_time = end_time
        self.time_step = time_step
        if threads not in (True, False, 'AUTO', 'FRAME', 'SLICE'):
            raise ValueError(f"threads must be True, False, 'AUTO', 'FRAME' or 'SLICE', got {threads!r}")
        if short_side is not None and (not isinstance(short_side, int) or short_side < 1):
            raise ValueError(f'short_side must be a positive integer or None, got {short_side!r}')
        _check_device(device)
        self.threads = threads
        self.autorotate = autorotate
        self.exact = exact
        self.short_side = short_side
        self.device = device
        self.crop_borders = bool(crop_borders)

    def __repr__(self):
        return (f'VideoDecoder(start_time={self.start_time}, end_time={self.end_time}, '
                f'time_step={self.time_step}, threads={self.threads}, autorotate={self.autorotate}, '
                f'exact={self.exact}, short_side={self.short_side}, device={self.device!r}, '
                f'crop_borders={self.crop_borders})')

    def __call__(self, path: str) -> Iterator[DecodedFrame]:
        path = os.fspath(path)
        check_video_file(path)
        try:
            container = _open_on_device(path, self.device)
        except PermissionError as e:
            raise VideoDecodeError(path, 'permission denied') from e
        except av.InvalidDataError as e:
            raise VideoDecodeError(path, f'not a video: FFmpeg does not recognise the format ({e})') from e
        except (av.FFmpegError, OSError) as e:
            raise VideoDecodeError(path, f'cannot open ({e})') from e
        with container:
            if not container.streams.video:
                kinds = sorted({s.type for s in container.streams})
                raise VideoDecodeError(path, 'no video stream' + (f' (streams: {", ".join(kinds)})' if kinds else ''))
            stream = container.streams.video[0]
            if _is_still_image(container, stream):
                raise VideoDecodeError(path, f'a still image, not a video ({container.format.name})')
            if stream.codec_context is None:
                tag = _mov_codec_tag(path, container, stream)
                raise VideoDecodeError(path, 'unsupported codec' + (f' {tag!r}' if tag else '')
                                       + ': FFmpeg has no decoder for the video stream')
            if self.threads:
                stream.thread_type = 'AUTO' if self.threads is True else self.threads
            crop = find_borders(path, stream.index, self.autorotate) if self.crop_borders else None
            state = _DecodeState(self._skipping(stream))
            try:
                for frame, ms in self._kept_frames(path, container, stream, state):
                    yield self._convert(frame, ms, _sample_aspect_ratio(stream), crop)
            except (av.FFmpegError, OSError, EOFError) as e:
                state.damage = state.damage or e
            if state.damage is not None and not state.decoded:
                raise VideoDecodeError(path, f'no decodable frame ({state.damage})') from state.damage
            # Damaged / truncated mid-stream after some frames: keep what was decoded before.

    def _skipping(self, stream) -> Optional['_SkipPolicy']:
        """How packets are chosen for decoding: None decodes them all."""
        if self.exact or self.time_step is None:
            return None
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            return None
        window = _NEEDED_FRAMES / float(rate)
        if self.time_step <= window:  # every frame is near a sampling time
            return None
        return _SkipPolicy(stream, self.start_time or 0.0, self.time_step, window)

    def _sample_origin(self, stream) -> Optional[float]:
        """Where time 0 lies on the stream's clock, when it is known before decoding (the
        decoder seeks): the stream's start time (else the container's). None: the first
        decoded frame's timestamp, taken as it comes."""
        if not self.start_time:
            return None
        if stream.start_time is not None:
            return float(stream.start_time * stream.time_base)
        container_start = stream.container.start_time
        return container_start / 1e6 if container_start is not None else 0.0

    def _convert(self, frame, ms: int, sample_aspect_ratio: Optional[Fraction] = None,
                 crop: Optional['Crop'] = None) -> DecodedFrame:
        """One kept frame -> RGB at its display aspect (scaled while converting when
        ``short_side`` is set), upright, ``crop`` cut off."""
        width, height = display_size(frame.width, frame.height, sample_aspect_ratio)
        turned = self.autorotate and _quarter_turns(frame.rotation) % 2 == 1
        upright_size = (height, width) if turned else (width, height)
        scale_x = scale_y = 1.0
        if self.short_side is None:
            out_width, out_height = width, height
        else:  # the kept picture's short side becomes short_side
            kept_width, kept_height = crop.kept(*upright_size) if crop else upright_size
            target = scaled_size(kept_width, kept_height, self.short_side)
            scale_x, scale_y = target[0] / kept_width, target[1] / kept_height
            if turned:
                scale_x, scale_y = scale_y, scale_x
            out_width, out_height = max(1, round(width * scale_x)), max(1, round(height * scale_y))
        if (out_width, out_height) == (frame.width, frame.height):
            image = frame.to_ndarray(format='rgb24')
        else:  # scaled, or anamorphic: its pixels widened (or narrowed) to square ones
            image = frame.to_ndarray(width=out_width, height=out_height, format='rgb24',
                                     interpolation=_SCALE_INTERPOLATION)
        if self.autorotate:
            image = _upright(image, frame.rotation)
        if crop:
            image = crop.cut(image, upright_size)
        return DecodedFrame(image, ms, int(bool(frame.key_frame)), upright_size, crop)

    def _kept_frames(self, path, container, stream, state):
        """(frame, milliseconds from the first frame) of the frames kept. Time 0 is the
        first frame's timestamp, not the container's zero: an MPEG-TS starts at 1.4 s or
        at any time of a broadcast's clock, an MP4 may carry a start offset, and sampling
        on the container's clock would shift the sampling grid by that start."""
        start = self.start_time or 0.0
        end = math.inf if self.end_time is None else self.end_time
        step = self.time_step
        time_base = stream.time_base
        rate = stream.average_rate or stream.guessed_rate
        frame_dt = float(1 / rate) if rate else 0.0
        origin = self._sample_origin(stream)
        if origin is not None and state.skip is not None:
            state.skip.start_at(origin)
        self._seek(container, stream, origin)
        k = 0  # index of the next sampling time start + k * step
        last = None
        for frame in self._decode(path, container, stream, state):
            if frame.pts is not None:
                t = float(frame.pts * time_base)
            else:  # no timestamp: continue from the previous frame
                t = (origin or 0.0) if last is None else last + frame_dt
            last = t
            if origin is None:
                origin = t
            t -= origin
            if t >= end - _EPS:
                return
            if t < start - _EPS:
                continue
            if step is not None:
                if t < start + k * step - _EPS:
                    continue
                # Next sampling time strictly after this frame's timestamp.
                k = max(k + 1, math.floor((t - start + _EPS) / step) + 1)
            yield frame, int(round(t * 1000))

    def _seek(self, container, stream, origin: Optional[float]):
        """Seek to the key frame at or before ``start_time``. Containers without an index
        (MPEG-TS, MPEG-PS) are searched by timestamps and may land after it: then the
        seek is tried again earlier and earlier, from the start at last."""
        if not self.start_time:
            return
        origin = origin or 0.0
        target = origin + self.start_time
        for margin in _SEEK_MARGINS:
            at = target - margin
            if at <= origin:  # from the start: FFmpeg's seek to the stream's zero
                container.seek(0, stream=stream, backward=True, any_frame=False)
                return
            container.seek(int(at / stream.time_base), stream=stream, backward=True, any_frame=False)
            first = next((f for f in container.decode(stream) if f.pts is not None), None)
            if first is not None and float(first.pts * stream.time_base) <= target + _EPS:
                container.seek(int(at / stream.time_base), stream=stream, backward=True, any_frame=False)
                return

    def _decode(self, path, container, stream, state):
        """The decoded frames, up to the first damage. Frame threads lose the frames still
        in flight when they hit damage: then decode again on one thread, skipping the
        frames already out (threads do not change the output order)."""
        yield from _decode_until_damage(container, stream, state)
        if state.damage is None or not self.threads:
            return
        done, damage = state.decoded, state.damage
        try:
            with av.open(path, mode='r') as again:
                stream_again = again.streams[stream.index]
                self._seek(again, stream_again, self._sample_origin(stream_again))
                # The same packets skipped: the same frames come out, in the same order.
                skip = None if state.skip is None else state.skip.again(stream_again)
                origin = self._sample_origin(stream_again)
                if skip is not None and origin is not None:
                    skip.start_at(origin)
                for i, frame in enumerate(_decode_until_damage(again, stream_again, _DecodeState(skip))):
                    if i >= done:
                        state.decoded += 1
                        yield frame
        except (av.FFmpegError, OSError, EOFError):
            pass
        state.damage = damage


class VideoDecoder(FrameDecoder):
    """``FrameDecoder`` for Towhee pipelines: the same frames, as ``towhee.types.VideoFrame``
    (with ``source_size`` too). Arguments as ``FrameDecoder``."""

    def __call__(self, path: str) -> Iterator['VideoFrame']:
        from towhee.types import VideoFrame
        for frame in super().__call__(path):
            out = VideoFrame(np.asarray(frame), 'RGB', frame.timestamp, frame.key_frame)
            out.source_size = frame.source_size
            yield out


def decode_frames(path: str, start_time: Optional[float] = None, end_time: Optional[float] = None,
                  time_step: Optional[float] = None, threads: bool = True,
                  autorotate: bool = True, **options) -> List['VideoFrame']:
    """The frames of :class:`VideoDecoder` as a list (what a Towhee ``map`` passes on);
    ``options``: its keyword-only ones (exact, short_side, device)."""
    return list(VideoDecoder(start_time, end_time, time_step, threads, autorotate, **options)(path))


def scaled_size(width: int, height: int, short_side: int) -> Tuple[int, int]:
    """(width, height) with the shorter side ``short_side`` and the longer one truncated,
    as torchvision's ``resize(image, [short_side])`` computes it, so that the resize of
    the exact path has nothing left to do."""
    if width <= height:
        return short_side, max(1, int(short_side * height / width))
    return max(1, int(short_side * width / height)), short_side


class Crop(NamedTuple):
    """Borders cut off a picture, in pixels of its upright display size: rows at the
    top and bottom, columns at the left and right."""
    top: int
    bottom: int
    left: int
    right: int

    def __bool__(self) -> bool:
        return any(self)

    def kept(self, width: int, height: int) -> Tuple[int, int]:
        """(width, height) of what is left of a ``width`` x ``height`` picture."""
        return width - self.left - self.right, height - self.top - self.bottom

    def cut(self, image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
        """``image`` (an HxW[xC] picture of display ``size``, maybe scaled) less the
        borders, scaled alike."""
        height, width = image.shape[:2]
        fy, fx = height / size[1], width / size[0]
        top, bottom = round(self.top * fy), height - round(self.bottom * fy)
        left, right = round(self.left * fx), width - round(self.right * fx)
        return np.ascontiguousarray(image[top:bottom, left:right])

    def as_text(self) -> str:
        """'top,bottom,left,right', as the catalog records it."""
        return ','.join(str(v) for v in self)


def find_borders(path: str, stream_index: int = 0, autorotate: bool = True,
                 probes: int = _BORDER_PROBES) -> Crop:
    """The constant borders of a video (letterbox, pillarbox or both, black or near-black),
    as FFmpeg's ``cropdetect`` finds them: on ``probes`` frames spread over the video (the
    key frame at or before each of evenly spread times; the first frames when the length
    is unknown), upright and at display size, a row or column is border when it is dark
    (mean luma at most ``_BORDER_LIMIT`` of 255) in at least ``_BORDER_SHARE`` of them:
    the majority decides, so borders that come and go (an ad break in 4:3) are cut if
    they are there most of the time, and kept otherwise. Frames dark all over (fades, a
    night scene) do not vote, a crop that would leave less than ``_BORDER_KEEP`` of
    a side is no crop (a dark picture, not borders), and a border thinner than
    ``_BORDER_LEAST`` of its side is kept (a dark edge, not bars). Never raises: a file that cannot be
    probed has no borders (decoding it says what is wrong)."""
    try:
        lumas = _probe_lumas(path, stream_index, autorotate, probes)
    except (av.FFmpegError, OSError, EOFError, ValueError):
        return Crop(0, 0, 0, 0)
    return borders_of(lumas)


def borders_of(lumas: Sequence[np.ndarray], limit: Optional[float] = None, share: Optional[float] = None) -> Crop:
    """The borders of pictures given as luma planes (HxW, 0-255, one size): see
    :func:`find_borders`."""
    limit = _BORDER_LIMIT if limit is None else limit
    share = _BORDER_SHARE if share is None else share
    shapes = {luma.shape for luma in lumas}
    voting = [np.asarray(luma, np.float32) for luma in lumas if luma.mean() > limit]
    if len(shapes) != 1 or not voting:
        return Crop(0, 0, 0, 0)
    height, width = voting[0].shape
    rows = np.mean([luma.mean(axis=1) <= limit for luma in voting], axis=0) >= share
    columns = np.mean([luma.mean(axis=0) <= limit for luma in voting], axis=0) >= share
    top, bottom = _run(rows), _run(rows[::-1])
    left, right = _run(columns), _run(columns[::-1])
    top, bottom = (side if side >= _BORDER_LEAST * height else 0 for side in (top, bottom))
    left, right = (side if side >= _BORDER_LEAST * width else 0 for side in (left, right))
    if height - top - bottom < _BORDER_KEEP * height:
        top = bottom = 0
    if width - left - right < _BORDER_KEEP * width:
        left = right = 0
    return Crop(top, bottom, left, right)


def _run(dark: np.ndarray) -> int:
    """How many leading entries are True."""
    return len(dark) if dark.all() else int(np.argmin(dark))


def _probe_lumas(path: str, stream_index: int, autorotate: bool, probes: int) -> List[np.ndarray]:
    lumas, seen = [], set()
    with av.open(path, mode='r') as container:
        stream = container.streams[stream_index]
        stream.codec_context.skip_frame = 'NONKEY'  # key frames only: seeks land on them
        duration = (float(stream.duration * stream.time_base) if stream.duration
                    else container.duration / 1e6 if container.duration else None)
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0

        def luma(frame):
            width, height = display_size(frame.width, frame.height, _sample_aspect_ratio(stream))
            plane = frame.to_ndarray(width=width, height=height, format='gray')
            return _upright(plane, frame.rotation) if autorotate else plane

        if not duration:
            for frame in container.decode(stream):
                lumas.append(luma(frame))
                if len(lumas) >= probes:
                    break
            return lumas
        for i in range(probes):
            at = start + (i + 0.5) * duration / probes
            container.seek(int(at / stream.time_base), stream=stream, backward=True, any_frame=False)
            frame = next(container.decode(stream), None)
            if frame is not None and frame.pts not in seen:
                seen.add(frame.pts)
                lumas.append(luma(frame))
    return lumas


def display_size(width: int, height: int, sample_aspect_ratio: Optional[Fraction]) -> Tuple[int, int]:
    """(width, height) of a picture as players show it: the stored width times the sample
    aspect ratio (a DVD's 720x576 at 16:11 is shown 1047x576, an anamorphic 480x272 at
    4:3 640x272), the height as stored. No ratio, or 1:1: the stored size."""
    if not sample_aspect_ratio or sample_aspect_ratio == 1:
        return width, height
    return max(1, int(round(width * sample_aspect_ratio))), height


def _sample_aspect_ratio(stream) -> Optional[Fraction]:
    """The stream's sample aspect ratio (pixel width / pixel height) as FFmpeg guesses
    it: the container's (an MP4's ``pasp``) if set, else the codec's; None when unset."""
    ratio = stream.sample_aspect_ratio
    if not ratio or ratio.numerator <= 0 or ratio.denominator <= 0:
        ratio = stream.codec_context.sample_aspect_ratio
    if not ratio or ratio.numerator <= 0 or ratio.denominator <= 0:
        return None
    # Far-fetched ratios are damage, not a picture shape: ignore them.
    return Fraction(ratio) if Fraction(1, 4) <= ratio <= 4 else None


class _SkipPolicy:
    """Per packet, before decoding it: may FFmpeg skip it if no other frame refers to it?
    Yes unless it is presented within ``window`` seconds after a sampling time (or has
    no timestamp). Reference frames are decoded whatever this says. Sampling times count
    from the first frame's timestamp: until it is known (``start_at``), every packet is
    decoded."""

    def __init__(self, stream, start: float, step: float, window: float):
        self.sampling = (start, step, window)
        self.context = stream.codec_context
        self.time_base = stream.time_base
        self.offset, self.step, self.window = start, step, window
        self.start: Optional[float] = None  # the first sampling time, on the stream's clock
        self.skipping = False

    def start_at(self, origin: float) -> None:
        """Time 0 of the sampling is ``origin`` seconds on the stream's clock."""
        self.start = origin + self.offset

    def again(self, stream) -> '_SkipPolicy':
        """The same policy for the same stream opened again (the same packets skipped)."""
        return _SkipPolicy(stream, *self.sampling)

    def before(self, packet) -> None:
        if packet.pts is None or self.start is None:
            needed = True
        else:
            t = float(packet.pts * self.time_base) - self.start + _EPS
            needed = t >= 0 and t % self.step < self.window + _EPS
        if needed == self.skipping:  # FFmpeg reads it per packet (frame threads copy it)
            self.skipping = not needed
            self.context.skip_frame = 'NONREF' if self.skipping else 'DEFAULT'

    def seen(self, frame) -> None:
        """A decoded frame: the first one with a timestamp sets time 0."""
        if self.start is None and frame.pts is not None:
            self.start_at(float(frame.pts * self.time_base))


class _DecodeState:
    decoded = 0  # frames out of the decoder
    damage: Optional[BaseException] = None  # the first demuxing / decoding error

    def __init__(self, skip: Optional[_SkipPolicy] = None):
        self.skip = skip


def _decode_until_damage(container, stream, state: _DecodeState):
    """``container.decode(stream)`` that stops at the first damaged packet (flagged
    corrupt by the demuxer, or a read or decoding error) and then drains the decoder,
    so that the frames before the damage that it still holds (reordering delay, frame
    threads) come out too."""
    cutoff = None
    try:
        for packet in container.demux(stream):
            if packet.is_corrupt:  # e.g. the last packet of a truncated file
                state.damage = EOFError(f'truncated or corrupt packet at pts {packet.pts}')
                cutoff = packet.pts
                break
            if state.skip is not None:
                state.skip.before(packet)
            for frame in stream.decode(packet):  # the last, empty packet drains
                state.decoded += 1
                if state.skip is not None:
                    state.skip.seen(frame)
                yield frame
        else:
            return
    except (av.FFmpegError, OSError, EOFError) as e:
        state.damage = e
    try:
        for frame in stream.decode(None):
            # Frames shown after the damaged one: a prefix has no gap of lost B-frames.
            if cutoff is not None and frame.pts is not None and frame.pts >= cutoff:
                continue
            state.decoded += 1
            yield frame
    except (av.FFmpegError, OSError, EOFError):
        pass


def check_video_file(path: str) -> None:
    """Reasons that need no FFmpeg: missing, unreachable, not a file, empty, unreadable."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise VideoDecodeError(path, 'no such file') from None
    except PermissionError:
        raise VideoDecodeError(path, 'permission denied (a parent directory cannot be searched)') from None
    except OSError as e:
        raise VideoDecodeError(path, f'cannot access ({e.strerror or e})') from None
    if stat.S_ISDIR(info.st_mode):
        raise VideoDecodeError(path, 'a directory, not a regular file')
    if not stat.S_ISREG(info.st_mode):
        raise VideoDecodeError(path, 'not a regular file')
    if info.st_size == 0:
        raise VideoDecodeError(path, 'empty file (0 bytes)')
    if not os.access(path, os.R_OK):  # root passes this; av.open's own error is the backstop
        raise VideoDecodeError(path, 'permission denied')


def reading_changes(path: str) -> List[str]:
    """How this decoder reads the video at ``path`` differently from versions that
    sampled on the container's clock, ignored the sample aspect ratio and kept borders:
    e.g. ['starts at 1.48 s', 'sample aspect ratio 4/3', 'borders 18,18,0,0'] (top,
    bottom, left, right); [] when it reads it as they did (or cannot open it)."""
    changes = []
    try:
        with av.open(path, mode='r') as container:
            stream = container.streams.video[0]
            first = next((f for f in container.decode(stream) if f.pts is not None), None)
            start = float(first.pts * stream.time_base) if first is not None else 0.0
            if abs(start) > _EPS:
                changes.append(f'starts at {start:g} s')
            ratio = _sample_aspect_ratio(stream)
            if ratio is not None and ratio != 1:
                changes.append(f'sample aspect ratio {ratio}')
    except (av.FFmpegError, OSError, EOFError, IndexError):
        return []
    crop = find_borders(path)
    if crop:
        changes.append(f'borders {crop.as_text()}')
    return changes


def why_not_a_video(path: str) -> Optional[str]:
    """None when FFmpeg reads a video in the file at ``path`` (its header only: nothing
    is decoded), else why not, in a few words: 'audio only', 'a still image', 'not a
    media file', 'empty file (0 bytes)', ..."""
    try:
        check_video_file(path)
        with av.open(path, mode='r') as container:
            if not container.streams.video:
                kinds = sorted({s.type for s in container.streams})
                return 'audio only' if kinds == ['audio'] else 'no video stream'
            if _is_still_image(container, container.streams.video[0]):
                return 'a still image'
    except VideoDecodeError as error:
        return error.reason
    except av.InvalidDataError:
        return 'not a media file'
    except (av.FFmpegError, OSError) as error:
        return f'cannot be opened ({error})'
    return None


def _is_still_image(container, stream) -> bool:
    names = container.format.name.split(',')
    if any(n in _IMAGE_DEMUXERS or n.endswith('_pipe') for n in names):
        return True
    return 'gif' in names and stream.frames == 1


def _mov_codec_tag(path: str, container, stream) -> Optional[str]:
    """Best effort: the fourcc of an MP4/MOV track FFmpeg has no codec for (PyAV does not
    expose it without a decoder). Reads the ``stsd`` sample entries in the first and
    last few MB; the stream's index picks the track."""
    if not any(n in _MOV_FORMATS for n in container.format.name.split(',')):
        return None
    try:
        with open(path, 'rb') as f:
            head = f.read(_TAG_SCAN_BYTES)
            size = f.seek(0, os.SEEK_END)
            tail = b''
            if size > _TAG_SCAN_BYTES:
                f.seek(max(_TAG_SCAN_BYTES, size - _TAG_SCAN_BYTES))
                tail = f.read()
    except OSError:
        return None
    tags = []
    for data in (head, tail):
        at = data.find(b'stsd')
        while at >= 0:
            # 'stsd', version/flags (4), entry count (4), then the first entry: size (4), format (4)
            tag = data[at + 16:at + 20]
            if len(tag) == 4 and all(32 <= b < 127 for b in tag):
                tags.append(tag.decode('ascii'))
            at = data.find(b'stsd', at + 4)
    if stream.index < len(tags):
        return tags[stream.index]
    return tags[0] if len(tags) == 1 else None


def _quarter_turns(rotation) -> int:
    return int(round(float(rotation) / 90)) % 4 if rotation else 0


def _upright(image: np.ndarray, rotation) -> np.ndarray:
    """Turn ``image`` counter-clockwise by ``rotation`` degrees (FFmpeg's display matrix
    angle, as ``frame.rotation``), rounded to a quarter turn."""
    quarter_turns = _quarter_turns(rotation)
    if quarter_turns == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=quarter_turns))


# --- decoding on the GPU


class DecodeDeviceFallback(UserWarning):
    """A video asked to be decoded on the GPU is decoded on the CPU; the message says why."""


def decode_device(model_device: Union[str, 'torch.device']) -> str:
    """Where to decode the frames for a model on ``model_device`` (a torch.device or its
    name): on its GPU (NVDEC) when it runs on one, else on the CPU."""
    kind, _, index = str(model_device).partition(':')
    return f'cuda:{index}' if kind == 'cuda' and index else ('cuda' if kind == 'cuda' else 'cpu')


def _check_device(device: str) -> Tuple[str, Optional[int]]:
    """'cpu', 'cuda' or 'cuda:N' -> ('cpu' or 'cuda', the GPU's index or None)."""
    kind, _, index = str(device).partition(':')
    if kind not in ('cpu', 'cuda') or (kind == 'cpu' and index) or (kind == 'cuda' and index and not index.isdigit()):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return kind, int(index) if index else None


def _open_on_device(path: str, device: str):
    """``av.open(path)``, with NVDEC attached when ``device`` is a GPU and it can be had;
    otherwise on the CPU, with a warning that says why. The file's own opening errors
    propagate as from ``av.open``."""
    kind, index = _check_device(device)
    if kind == 'cpu':
        return av.open(path, mode='r')
    if 'cuda' not in hwdevices_available():
        _fall_back('this FFmpeg was built without CUDA (NVDEC) support')
        return av.open(path, mode='r')
    accel = HWAccel('cuda', device=None if index is None else str(index), allow_software_fallback=True)
    try:
        container = av.open(path, mode='r', hwaccel=accel)
    except av.FFmpegError as error:
        container = av.open(path, mode='r')  # a file that cannot open fails here, with its own reason
        _fall_back(f'no CUDA device could be opened ({error})')
        return container
    video = container.streams.video
    if video and video[0].codec_context is not None and not video[0].codec_context.is_hwaccel:
        _fall_back(f'NVDEC cannot decode {video[0].codec_context.name} here')
    return container


def _fall_back(reason: str) -> None:
    # No path in the message: Python shows a warning once per message and place, and the
    # reason is the same for every file of a run.
    warnings.warn(f'decoding on the CPU, not the GPU: {reason}', DecodeDeviceFallback, stacklevel=4)
