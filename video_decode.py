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
from typing import Iterator, List, Optional

import av
from towhee.types import VideoFrame

__all__ = ['VideoDecodeError', 'VideoDecoder', 'decode_frames']

_EPS = 1e-6  # seconds; tolerance on timestamps versus sampling times


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

    Calling the decoder with a path returns a generator of
    ``VideoFrame(rgb_uint8[H, W, 3], 'RGB', timestamp_ms, key_frame)``; timestamps are
    ``frame.pts * time_base`` in integer milliseconds. Only kept frames are converted to RGB.

    Errors: a missing or unreadable file, a file that is not a video (no video stream) or
    a video with no decodable frame raises :class:`VideoDecodeError` (on the first
    ``next()``, as the decoder is a generator). A file damaged or truncated mid-stream
    yields the frames decoded before the damage, then stops cleanly without raising.
    """

    def __init__(self, start_time: Optional[float] = None, end_time: Optional[float] = None,
                 time_step: Optional[float] = None, threads: bool = True):
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

    def __repr__(self):
        return (f'VideoDecoder(start_time={self.start_time}, end_time={self.end_time}, '
                f'time_step={self.time_step}, threads={self.threads})')

    def __call__(self, path: str) -> Iterator[VideoFrame]:
        path = os.fspath(path)
        if not os.path.exists(path):
            raise VideoDecodeError(path, 'no such file')
        if not os.path.isfile(path):
            raise VideoDecodeError(path, 'not a regular file')
        try:
            container = av.open(path, mode='r')
        except (av.FFmpegError, OSError) as e:
            raise VideoDecodeError(path, f'cannot open ({e})') from e
        with container:
            if not container.streams.video:
                raise VideoDecodeError(path, 'no video stream')
            stream = container.streams.video[0]
            if self.threads:
                stream.thread_type = 'AUTO'
            yielded = 0
            try:
                for frame, ms in self._kept_frames(container, stream):
                    image = frame.to_ndarray(format='rgb24')
                    yielded += 1
                    yield VideoFrame(image, 'RGB', ms, int(bool(frame.key_frame)))
            except (av.FFmpegError, OSError, EOFError) as e:
                if not yielded:
                    raise VideoDecodeError(path, f'no decodable frame ({e})') from e
                # Damaged / truncated mid-stream: keep what was decoded before the damage.

    def _kept_frames(self, container, stream):
        start = self.start_time or 0.0
        end = math.inf if self.end_time is None else self.end_time
        step = self.time_step
        time_base = stream.time_base
        rate = stream.average_rate or stream.guessed_rate
        frame_dt = float(1 / rate) if rate else 0.0
        if self.start_time:
            container.seek(int(self.start_time / time_base), stream=stream,
                           backward=True, any_frame=False)
        k = 0  # index of the next sampling time start + k * step
        last = None
        for frame in container.decode(stream):
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


def decode_frames(path: str, start_time: Optional[float] = None, end_time: Optional[float] = None,
                  time_step: Optional[float] = None, threads: bool = True) -> List[VideoFrame]:
    """The frames of :class:`VideoDecoder` as a list (what a Towhee ``map`` passes on)."""
    return list(VideoDecoder(start_time, end_time, time_step, threads)(path))
