"""Video decoding with PyAV, yielding ``towhee.types.VideoFrame``.

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
from typing import Iterator, List, Optional

import av
import numpy as np
from towhee.types import VideoFrame

__all__ = ['VideoDecodeError', 'VideoDecoder', 'check_video_file', 'decode_frames']

_EPS = 1e-6  # seconds; tolerance on timestamps versus sampling times
# FFmpeg demuxers of single images: image2 / image2pipe and the <codec>_pipe family
# (png_pipe, jpeg_pipe, webp_pipe, bmp_pipe, tiff_pipe, ...). A GIF of one frame too.
_IMAGE_DEMUXERS = ('image2', 'image2pipe')
_MOV_FORMATS = ('mov', 'mp4')
_TAG_SCAN_BYTES = 8 << 20  # where to look for an MP4/MOV sample entry's codec tag


class VideoDecodeError(RuntimeError):
    """A video could not be opened or decoded; the message names the path and the reason."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f'cannot decode video {self.path!r}: {reason}')


class VideoDecoder:
    """Decode a video file into RGB ``VideoFrame`` objects.

    Args:
        start_time: first second to decode (``None``: from the beginning). The decoder
            seeks to the key frame before it, then drops the frames before it.
        end_time: decode frames strictly before this second (``None``: to the end).
        time_step: sampling period in seconds. For each sampling time ``start``,
            ``start + step``, ``start + 2 * step``, ... the first frame whose timestamp is
            at or after it is kept (a frame covering several sampling times is kept once).
            ``None`` keeps every frame.
        threads: let FFmpeg decode with frame/slice threads.
        autorotate: turn frames upright following the video's display matrix.

    Calling the decoder with a path returns a generator of
    ``VideoFrame(rgb_uint8[H, W, 3], 'RGB', timestamp_ms, key_frame)``; timestamps are
    ``frame.pts * time_base`` in integer milliseconds. Only kept frames are converted to RGB.
    Sampling follows the timestamps, so variable frame rate videos are sampled correctly.

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
                 time_step: Optional[float] = None, threads: bool = True, autorotate: bool = True):
        if time_step is not None and not time_step > 0:
            raise ValueError(f'time_step must be positive, got {time_step}')
        if start_time is not None and start_time < 0:
            raise ValueError(f'start_time must be >= 0, got {start_time}')
        if start_time is not None and end_time is not None and end_time <= start_time:
            raise ValueError(f'end_time ({end_time}) must be after start_time ({start_time})')
        self.start_time = start_time
        self.end_time = end_time
        self.time_step = time_step
        self.threads = threads
        self.autorotate = autorotate

    def __repr__(self):
        return (f'VideoDecoder(start_time={self.start_time}, end_time={self.end_time}, '
                f'time_step={self.time_step}, threads={self.threads}, autorotate={self.autorotate})')

    def __call__(self, path: str) -> Iterator[VideoFrame]:
        path = os.fspath(path)
        check_video_file(path)
        try:
            container = av.open(path, mode='r')
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
                stream.thread_type = 'AUTO'
            state = _DecodeState()
            try:
                for frame, ms in self._kept_frames(path, container, stream, state):
                    image = frame.to_ndarray(format='rgb24')
                    if self.autorotate:
                        image = _upright(image, frame.rotation)
                    yield VideoFrame(image, 'RGB', ms, int(bool(frame.key_frame)))
            except (av.FFmpegError, OSError, EOFError) as e:
                state.damage = state.damage or e
            if state.damage is not None and not state.decoded:
                raise VideoDecodeError(path, f'no decodable frame ({state.damage})') from state.damage
            # Damaged / truncated mid-stream after some frames: keep what was decoded before.

    def _kept_frames(self, path, container, stream, state):
        start = self.start_time or 0.0
        end = math.inf if self.end_time is None else self.end_time
        step = self.time_step
        time_base = stream.time_base
        rate = stream.average_rate or stream.guessed_rate
        frame_dt = float(1 / rate) if rate else 0.0
        self._seek(container, stream)
        k = 0  # index of the next sampling time start + k * step
        last = None
        for frame in self._decode(path, container, stream, state):
            if frame.pts is not None:
                t = float(frame.pts * time_base)
            else:  # no timestamp: continue from the previous frame
                t = 0.0 if last is None else last + frame_dt
            last = t
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


    def _seek(self, container, stream):
        if self.start_time:
            container.seek(int(self.start_time / stream.time_base), stream=stream,
                           backward=True, any_frame=False)

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
                self._seek(again, stream_again)
                for i, frame in enumerate(_decode_until_damage(again, stream_again, _DecodeState())):
                    if i >= done:
                        state.decoded += 1
                        yield frame
        except (av.FFmpegError, OSError, EOFError):
            pass
        state.damage = damage


def decode_frames(path: str, start_time: Optional[float] = None, end_time: Optional[float] = None,
                  time_step: Optional[float] = None, threads: bool = True,
                  autorotate: bool = True) -> List[VideoFrame]:
    """The frames of :class:`VideoDecoder` as a list (what a Towhee ``map`` passes on)."""
    return list(VideoDecoder(start_time, end_time, time_step, threads, autorotate)(path))


class _DecodeState:
    decoded = 0  # frames out of the decoder
    damage: Optional[BaseException] = None  # the first demuxing / decoding error


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
            for frame in stream.decode(packet):  # the last, empty packet drains
                state.decoded += 1
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


def _upright(image: np.ndarray, rotation) -> np.ndarray:
    """Turn ``image`` counter-clockwise by ``rotation`` degrees (FFmpeg's display matrix
    angle, as ``frame.rotation``), rounded to a quarter turn."""
    if not rotation:
        return image
    quarter_turns = int(round(float(rotation) / 90)) % 4
    if quarter_turns == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=quarter_turns))
