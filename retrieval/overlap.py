"""The plain engine's loop: a thread decodes the next videos into the extractor's crops
while the network works on full batches cut across videos (as the Ray engine does), and
each video is committed as soon as its last frame is through.

Memory: at most ``depth`` batches of crops wait between the decoding thread and the
network, plus one batch being filled. A file that cannot be decoded is named in the
tally and skipped; its frames already batched are dropped. Each video is committed on
its own (``VideoIndex.commit``), so an interruption (Ctrl-C, ``kill -9``) loses only the
videos not yet committed.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import torch

from .. import defaults
from ..core import DnS
from ..prefetch import Prefetched
from ..preprocess import center_crops, check_features, frame_batches
from ..video_decode import VideoDecodeError
from .index import VideoIndex
from .ingest import with_review
from .tally import IndexTally
from .thumbnails import ThumbnailKeeper


@dataclass
class _Start:
    number: int
    path: str
    video_id: str


@dataclass
class _Crops:
    number: int
    crops: torch.Tensor  # uint8 [n, 256, 256, 3], n <= batch size


@dataclass
class _End:
    number: int
    thumbnails: Tuple[bytes, ...]
    width: int
    height: int
    times: Optional[np.ndarray] = None  # each sample's seconds from the first frame
    crop: Optional[Tuple[int, int, int, int]] = None  # the borders cut


@dataclass
class _Failed:
    number: int
    path: str
    error: VideoDecodeError


@dataclass
class _Video:
    path: str
    video_id: str
    features: List[torch.Tensor] = field(default_factory=list)
    waiting: int = 0       # frames batched but not through the network yet
    end: Optional[_End] = None


Message = Union[_Start, _Crops, _End, _Failed]


def decode_ahead(files: Sequence[str], hash_file: Callable[[str], str],
                 decode: Callable[[str, ThumbnailKeeper], Iterator], batch_size: int,
                 skip: Set[int]) -> Iterator[Message]:
    """The messages of the decoding thread, file after file: start (with the content
    hash), crops in pieces of at most ``batch_size``, end (with the review's thumbnails
    and size), or failed. Files whose number the consumer put in ``skip`` (already
    indexed) stop being decoded."""
    cpu = torch.device('cpu')
    for number, path in enumerate(files):
        try:
            yield _Start(number, path, hash_file(path))
            keeper = ThumbnailKeeper()
            for batch in frame_batches(decode(path, keeper), batch_size):
                if number in skip:
                    break
                yield _Crops(number, center_crops(batch, cpu))
            else:
                yield _End(number, keeper.jpegs(), keeper.width, keeper.height, keeper.sample_times(),
                           keeper.crop)
        except VideoDecodeError as error:
            yield _Failed(number, path, error)
        except ValueError as error:  # frames the extractor cannot use
            yield _Failed(number, path, VideoDecodeError(path, str(error)))


class OverlappedIndexer:
    """Consumes ``decode_ahead``'s messages: fills batches across videos, runs the
    extractor on each full batch, represents and commits each finished video."""

    def __init__(self, index: VideoIndex, dns: DnS, tally: IndexTally, skip: Set[int]):
        self.index, self.dns, self.tally, self.skip = index, dns, tally, skip
        self.batch_size = dns.encoder.batch_size
        self.videos: dict = {}                                  # number -> _Video, in order
        self.rows: List[Tuple[int, torch.Tensor]] = []          # (video number, crops) batched
        self.batched = 0
        self.copies: Dict[str, List[str]] = {}                  # content -> more files of it in flight

    def take(self, message: Message) -> None:
        if isinstance(message, _Start):
            known = self.index.add_known(message.path, message.video_id)
            if known is not None:
                self.skip.add(message.number)
                self.tally.done(message.path, known)
            elif any(video.video_id == message.video_id for video in self.videos.values()):
                # A copy of a file still in flight: recorded as one more path of it once
                # that one is committed, not represented twice.
                self.skip.add(message.number)
                self.copies.setdefault(message.video_id, []).append(message.path)
            else:
                self.videos[message.number] = _Video(message.path, message.video_id)
        elif isinstance(message, _Crops):
            if message.number in self.videos:
                self.rows.append((message.number, message.crops))
                self.videos[message.number].waiting += len(message.crops)
                self.batched += len(message.crops)
                while self.batched >= self.batch_size:
                    self._run(self.batch_size)
        elif isinstance(message, _End):
            if message.number in self.videos:
                self.videos[message.number].end = message
                self._commit_finished()
        else:
            failed = self.videos.pop(message.number, None)
            self.rows = [(number, crops) for number, crops in self.rows if number != message.number]
            self.batched = sum(len(crops) for _, crops in self.rows)
            self.tally.failed(str(message.error))
            for path in self.copies.pop(failed.video_id, []) if failed is not None else []:
                self.tally.failed(str(VideoDecodeError(path, message.error.reason)))
            self._commit_finished()

    def finish(self) -> None:
        """The last, partial batch; then every remaining video is committed."""
        while self.batched:
            self._run(min(self.batched, self.batch_size))

    def _run(self, size: int) -> None:
        """The extractor on the first ``size`` batched frames, their features handed back
        to their videos."""
        pieces: List[Tuple[int, torch.Tensor]] = []
        taken = 0
        while taken < size:
            number, crops = self.rows[0]
            part = crops[:size - taken]
            pieces.append((number, part))
            if len(part) == len(crops):
                self.rows.pop(0)
            else:
                self.rows[0] = (number, crops[len(part):])
            taken += len(part)
        batch = pieces[0][1] if len(pieces) == 1 else torch.cat([part for _, part in pieces])
        features = self.dns.encoder.crops(batch)
        self.batched -= size
        for (number, part), out in zip(pieces, features.split([len(part) for _, part in pieces])):
            video = self.videos[number]
            video.features.append(out)
            video.waiting -= len(part)
            self.tally.frame(len(part))
        self._commit_finished()

    def _commit_finished(self) -> None:
        """Commit, in file order, the videos whose every frame is through the network."""
        while self.videos:
            number = next(iter(self.videos))
            video = self.videos[number]
            if video.end is None or video.waiting:
                return
            del self.videos[number]
            self._commit(video)

    def _commit(self, video: _Video) -> None:
        try:
            if not video.features:
                raise ValueError('expected at least one video frame, got none')
            features = check_features(torch.cat(video.features), 'feature extractor output')
            representation = self.dns.represent_features(features)
        except ValueError as error:
            self.tally.failed(str(VideoDecodeError(video.path, str(error))))
            for path in self.copies.pop(video.video_id, []):
                self.tally.failed(str(VideoDecodeError(path, str(error))))
            return
        end = video.end
        representation = with_review(representation, end.thumbnails, end.width, end.height, end.times, end.crop)
        self.tally.done(video.path, self.index.commit(video.path, video.video_id, representation))
        for path in self.copies.pop(video.video_id, []):
            self.tally.done(path, self.index.add_known(path, video.video_id))


def index_overlapped(index: VideoIndex, files: Sequence[str], dns: DnS, tally: IndexTally,
                     hash_file: Callable[[str], str], decode: Callable[[str, ThumbnailKeeper], Iterator],
                     depth: int = defaults.PREFETCH_BATCHES) -> None:
    """Index ``files``: decoding (``decode(path, keeper)``, the sampled RGB frames) in a
    thread, ahead of the network by at most ``depth`` batches."""
    skip: Set[int] = set()
    consumer = OverlappedIndexer(index, dns, tally, skip)
    with Prefetched(decode_ahead(files, hash_file, decode, consumer.batch_size, skip), depth) as messages:
        for message in messages:
            consumer.take(message)
    consumer.finish()
