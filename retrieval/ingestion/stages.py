"""The stages of indexing, each defined once:

    content id  ->  decode into crops  ->  extract across videos  ->  represent  ->  commit

1. ``file_sha256``: the content hash that names a video, whatever its file is called.
2. ``decoded_frames`` and ``crop_batches``: the sampled frames, resized and centre-cropped
   into the extractor's 256x256 uint8 crops, a bounded batch at a time; the review's
   thumbnails, frame size, sample times and borders are taken on the way (``Review``).
3. ``CrossVideoBatches``: the crops of many videos through the feature extractor in full
   batches, cut across video boundaries, the features handed back per video.
4. ``represent``: a video's features through the students, with its review.
5. ``commit_content`` / ``fail_content``: the first file of a content committed, the other
   files holding the same bytes recorded as more paths of it; or every one of them named
   as failed, with why.

The plain engine (``plain_engine.py``: a decoding thread beside the network, in one process)
and the Ray engine (``ray_engine/``: tasks and actors, the driver committing) only
schedule these stages, so a video is indexed the same way whichever runs it.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Hashable, Iterable, Iterator, List, Optional, Protocol, Sequence, Tuple, Union

import numpy as np
import torch

from ... import defaults
from ...core import DnS, VideoRepresentation
from ...preprocess import check_features, frame_batches, iter_rgb_frames, resize_center_crop
from ...video_decode import FrameDecoder, VideoDecodeError, check_video_file
from ...file_hash import sha256_of
from ..storage.index import AddResult, VideoIndex
from ..storage.thumbnails import ThumbnailKeeper


def file_sha256(path: str) -> str:
    """The content hash that identifies a video, whatever its name. A path that is no
    readable file raises the decoder's error, with the same reasons."""
    check_video_file(path)
    try:
        return sha256_of(Path(path))
    except OSError as error:
        raise VideoDecodeError(path, f'cannot read ({error.strerror or error})') from error


def decoded_frames(path: Union[str, os.PathLike], time_step: float, keeper: Optional[ThumbnailKeeper] = None,
                   max_seconds: Optional[float] = None,
                   on_frame: Optional[Callable[[], None]] = None, *, exact: bool = False,
                   device: str = 'cpu', scale: bool = defaults.DECODER_SCALES,
                   crop_borders: bool = defaults.CROP_BORDERS) -> Iterator[np.ndarray]:
    """The frames of a video file sampled every ``time_step`` seconds, as HxWx3 uint8 RGB,
    decoded lazily, skipping the frames sampling does not need (the kept frames are the
    same, pixel for pixel; ``exact``: every frame decoded). ``scale``: FFmpeg scales the
    kept frames to the extractor's short side while converting, faster but not the
    published pipeline's resize (region vectors at cosine 0.99 of it), so off by default;
    ``device``: 'cuda' decodes with NVDEC where it can; ``crop_borders``: constant black
    borders are found and cut off (``video_decode.find_borders``). ``keeper`` takes
    the review's thumbnails on the way, and the video's own size; ``max_seconds``
    refuses (VideoDecodeError) a video that runs longer, as soon as decoding gets there
    (untrusted uploads); ``on_frame`` is called per frame (progress)."""
    decoded = FrameDecoder(time_step=time_step, exact=exact, short_side=defaults.FRAME_SIZE if scale and not exact else None,
                           device=device, crop_borders=crop_borders)(path)
    if keeper is not None:
        decoded = keeper.source_size(decoded)
    frames: Iterable = iter_rgb_frames(decoded)
    if max_seconds is not None:
        frames = _at_most(frames, int(max_seconds / time_step), path, max_seconds)
    if on_frame is not None:
        frames = _counting(frames, on_frame)
    if keeper is not None:
        frames = keeper.watch(frames)
    return iter(frames)


def crop_batches(frames: Iterable[np.ndarray], batch_size: int = defaults.CROP_BATCH) -> Iterator[torch.Tensor]:
    """``frames`` resized and centre-cropped as the operator does it, uint8
    [n <= batch_size, 256, 256, 3] at a time, so memory stays flat over any length."""
    cpu = torch.device('cpu')
    for batch in frame_batches(frames, batch_size):
        yield resize_center_crop(batch, cpu)


@dataclass(frozen=True)
class Review:
    """What the review keeps of a video besides its features: thumbnails (JPEG bytes),
    the decoded frame size (display aspect), each sample's seconds from the first frame
    and the borders cut (None: unknown)."""
    thumbnails: Tuple[bytes, ...] = ()
    width: int = 0
    height: int = 0
    times: Optional[Tuple[float, ...]] = None
    crop: Optional[Tuple[int, int, int, int]] = None

    @classmethod
    def of(cls, keeper: ThumbnailKeeper) -> 'Review':
        """What ``keeper`` took while the video was decoded."""
        times = keeper.sample_times()
        return cls(tuple(keeper.jpegs()), int(keeper.width), int(keeper.height),
                   None if times is None else tuple(float(t) for t in times),
                   None if keeper.crop is None else tuple(int(v) for v in keeper.crop))

    def added_to(self, representation: VideoRepresentation) -> VideoRepresentation:
        """``representation`` with this review (times only when one per sampled frame)."""
        representation.thumbnails = tuple(self.thumbnails)
        representation.width, representation.height = self.width, self.height
        if self.times is not None and len(self.times) == representation.frames:
            representation.times = np.asarray(self.times, np.float64)
        if self.crop is not None and len(self.crop) == 4:
            representation.crop = tuple(self.crop)
        return representation


def unusable(path: str, error: ValueError) -> VideoDecodeError:
    """A file whose frames the networks cannot use (none in the sampled span, a wrong
    shape) fails as an undecodable one does: named, with why."""
    return VideoDecodeError(path, str(error))


def represent(dns: DnS, path: str, features: Sequence[torch.Tensor], review: Review) -> VideoRepresentation:
    """A video's extracted features (its batches' pieces, in order) through the students,
    with its review. Raises VideoDecodeError for features the students cannot use."""
    try:
        if not features:
            raise ValueError('expected at least one video frame, got none')
        checked = check_features(torch.cat(list(features)), 'feature extractor output')
        return review.added_to(dns.represent_features(checked))
    except ValueError as error:
        raise unusable(path, error) from error


class CrossVideoBatches:
    """Frames of many videos through one network in full batches: on a GPU a video of 8
    sampled frames would fill a quarter of a batch of 32, so batches are cut across video
    boundaries, and the outputs go back to their videos. Frames are added as they are
    decoded; every full batch runs at once, the last partial one at ``flush``. A frame's
    output does not depend on the other frames of its batch."""

    def __init__(self, network: Callable[[torch.Tensor], torch.Tensor], batch_size: int):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
        self.network, self.batch_size = network, batch_size
        self.outputs: Dict[Hashable, List[torch.Tensor]] = {}  # per video, its outputs in order
        self._rows: List[Tuple[Hashable, torch.Tensor]] = []   # (video, frames) waiting, in order
        self._waiting: Dict[Hashable, int] = {}
        self._batched = 0

    def add(self, video: Hashable, frames: torch.Tensor) -> None:
        """Queue ``frames`` of ``video``; run every batch that is full."""
        self.outputs.setdefault(video, [])
        if len(frames):
            self._rows.append((video, frames))
            self._waiting[video] = self._waiting.get(video, 0) + len(frames)
            self._batched += len(frames)
        while self._batched >= self.batch_size:
            self._run(self.batch_size)

    def waiting(self, video: Hashable) -> int:
        """Frames of ``video`` queued but not through the network yet."""
        return self._waiting.get(video, 0)

    def drop(self, video: Hashable) -> None:
        """Forget ``video`` (its file failed): its queued frames leave the batches."""
        self._rows = [(key, frames) for key, frames in self._rows if key != video]
        self._batched = sum(len(frames) for _, frames in self._rows)
        self._waiting.pop(video, None)
        self.outputs.pop(video, None)

    def take(self, video: Hashable) -> List[torch.Tensor]:
        """The outputs of ``video``, handed over and forgotten here."""
        self._waiting.pop(video, None)
        return self.outputs.pop(video, [])

    def flush(self) -> None:
        """Run the last, partial batch."""
        while self._batched:
            self._run(min(self._batched, self.batch_size))

    def _run(self, size: int) -> None:
        pieces: List[Tuple[Hashable, torch.Tensor]] = []
        taken = 0
        while taken < size:
            video, frames = self._rows[0]
            part = frames[:size - taken]
            pieces.append((video, part))
            if len(part) == len(frames):
                self._rows.pop(0)
            else:
                self._rows[0] = (video, frames[len(part):])
            taken += len(part)
        batch = pieces[0][1] if len(pieces) == 1 else torch.cat([part for _, part in pieces])
        out = self.network(batch)
        if len(out) != len(batch):
            raise ValueError(f'the network returned {len(out)} rows for a batch of {len(batch)}')
        self._batched -= size
        for (video, part), rows in zip(pieces, out.split([len(part) for _, part in pieces])):
            self.outputs[video].append(rows)
            self._waiting[video] -= len(part)


def run_across_videos(videos: Sequence[torch.Tensor], batch_size: int,
                      network: Callable[[torch.Tensor], torch.Tensor]) -> List[List[torch.Tensor]]:
    """``network`` on the frames of every one of ``videos`` in full batches: each video's
    outputs (its batches' pieces, in order)."""
    batches = CrossVideoBatches(network, batch_size)
    for number, frames in enumerate(videos):
        batches.add(number, frames)
    batches.flush()
    return [batches.take(number) for number in range(len(videos))]


class Outcome(Protocol):
    """Where the commit stage reports each file: ``IndexTally`` for `dns index`."""

    def done(self, path: str, result: AddResult) -> None: ...

    def frame(self, count: int = 1) -> None: ...

    def failed(self, error: VideoDecodeError) -> None: ...


def commit_content(index: VideoIndex, outcome: Outcome, paths: Sequence[str], video_id: str,
                   representation: VideoRepresentation) -> None:
    """Store a content: its first file committed (atomic per video), the other files
    holding the same bytes recorded as more paths of it, not represented twice; Milvus
    synced when due (``VideoIndex.sync_when_due``; the engines sync at their end too)."""
    first, *others = paths
    outcome.done(first, index.commit(first, video_id, representation))
    for path in others:
        outcome.done(path, index.add_known(path, video_id))
    index.sync_when_due()


def fail_content(outcome: Outcome, paths: Sequence[str], reason: str) -> None:
    """Every file of a content that could not be represented, named with ``reason``."""
    for path in paths:
        outcome.failed(VideoDecodeError(path, reason))


def _at_most(frames: Iterable, limit: int, path, seconds: float) -> Iterator:
    for count, frame in enumerate(frames):
        if count >= limit:
            raise VideoDecodeError(path, f'longer than the limit of {seconds:g} s')
        yield frame


def _counting(frames: Iterable, on_frame: Callable[[], None]) -> Iterator:
    for frame in frames:
        on_frame()
        yield frame
