"""The plain engine: it schedules the stages of ``stages.py`` in one process. A thread
decodes the next videos into the extractor's crops while the network works on full
batches cut across videos (as the Ray engine does), and each video is committed as soon
as its last frame is through.

Memory: at most ``depth`` batches of crops wait between the decoding thread and the
network, plus one batch being filled. A file that cannot be decoded is named in the
tally and skipped; its frames already batched are dropped. Each video is committed on
its own (``VideoIndex.commit``), so an interruption (Ctrl-C, ``kill -9``) loses only the
videos not yet committed.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set, Union

import torch

from ... import defaults
from ...core import DnS
from ...prefetch import Prefetched
from ...video_decode import VideoDecodeError
from ..storage.index import VideoIndex
from ..storage.thumbnails import ThumbnailKeeper
from .stages import CrossVideoBatches, Review, commit_content, crop_batches, fail_content, represent, unusable
from .tally import IndexTally


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
    review: Review


@dataclass
class _Failed:
    number: int
    path: str
    error: VideoDecodeError


@dataclass
class _Video:
    path: str
    video_id: str
    review: Optional[Review] = None  # set when its last frame is decoded


Message = Union[_Start, _Crops, _End, _Failed]


def decode_ahead(files: Sequence[str], hash_file: Callable[[str], str],
                 decode: Callable[[str, ThumbnailKeeper], Iterator], batch_size: int,
                 skip: Set[int]) -> Iterator[Message]:
    """The messages of the decoding thread, file after file: start (with the content
    hash), crops in pieces of at most ``batch_size``, end (with the review), or failed.
    Files whose number the consumer put in ``skip`` (already indexed) stop being decoded."""
    for number, path in enumerate(files):
        try:
            yield _Start(number, path, hash_file(path))
            keeper = ThumbnailKeeper()
            for crops in crop_batches(decode(path, keeper), batch_size):
                if number in skip:
                    break
                yield _Crops(number, crops)
            else:
                yield _End(number, Review.of(keeper))
        except VideoDecodeError as error:
            yield _Failed(number, path, error)
        except ValueError as error:  # frames the extractor cannot use
            yield _Failed(number, path, unusable(path, error))


class OverlappedIndexer:
    """Consumes ``decode_ahead``'s messages: the stages' cross-video batches through the
    extractor, then each finished video represented and committed, in file order."""

    def __init__(self, index: VideoIndex, dns: DnS, tally: IndexTally, skip: Set[int]):
        self.index, self.dns, self.tally, self.skip = index, dns, tally, skip
        self.batch_size = dns.encoder.batch_size
        self.batches = CrossVideoBatches(self._extract, self.batch_size)
        self.videos: Dict[int, _Video] = {}                     # number -> video, in order
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
                self.batches.add(message.number, message.crops)
                self._commit_finished()
        elif isinstance(message, _End):
            if message.number in self.videos:
                self.videos[message.number].review = message.review
                self._commit_finished()
        else:
            failed = self.videos.pop(message.number, None)
            self.batches.drop(message.number)
            self.tally.failed(message.error)
            if failed is not None:
                fail_content(self.tally, self.copies.pop(failed.video_id, []), message.error.reason)
            self._commit_finished()

    def finish(self) -> None:
        """The last, partial batch; then every remaining video is committed."""
        self.batches.flush()
        self._commit_finished()

    def _extract(self, crops: torch.Tensor) -> torch.Tensor:
        features = self.dns.encoder.encode_crops(crops)
        self.tally.frame(len(crops))
        return features

    def _commit_finished(self) -> None:
        """Commit, in file order, the videos whose every frame is through the network."""
        while self.videos:
            number = next(iter(self.videos))
            video = self.videos[number]
            if video.review is None or self.batches.waiting(number):
                return
            del self.videos[number]
            paths = [video.path, *self.copies.pop(video.video_id, [])]
            try:
                representation = represent(self.dns, video.path, self.batches.take(number), video.review)
            except VideoDecodeError as error:
                fail_content(self.tally, paths, error.reason)
                continue
            commit_content(self.index, self.tally, paths, video.video_id, representation)


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
