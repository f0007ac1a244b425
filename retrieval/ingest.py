"""One video from its file to the index, the one way every engine does it:

    hash -> (content already indexed? record the path) -> decode -> thumbnails ->
    represent -> commit

The plain engine (``index_files``, below), the Ray engine (``ray_engine/``, which runs
the same steps on workers and commits on the driver) and the service's uploads all call
these functions, so a video is indexed the same way wherever it is.
"""
import os
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import defaults
from ..core import DnS, VideoRepresentation
from ..preprocess import iter_rgb_frames
from ..video_decode import FrameDecoder, VideoDecodeError, check_video_file, decode_device, why_not_a_video
from ..weights import sha256_of
from .catalog import UnknownFileError
from .index import AddResult, IndexSettingsError, VideoIndex
from .tally import IndexTally
from .thumbnails import ThumbnailKeeper


# Files with these suffixes under a folder are taken as videos without a look inside (a
# damaged one fails, named, when it is decoded); any other file is taken if FFmpeg reads
# a video in it (an animated GIF, a video without a suffix), else counted as skipped.
VIDEO_SUFFIXES = {'.mp4', '.m4v', '.mov', '.mkv', '.webm', '.avi', '.flv', '.f4v', '.wmv', '.asf', '.mpg',
                  '.mpeg', '.m2v', '.ts', '.m2ts', '.mts', '.m2t', '.tod', '.mod', '.3gp', '.3g2', '.ogv', '.vob',
                  '.mxf', '.dv', '.divx', '.rm', '.rmvb', '.y4m', '.h264', '.264', '.hevc', '.265', '.ivf'}


@dataclass
class FolderScan:
    """What ``scan_paths`` found: the video files, in order, and the files it skipped
    with why (a few words: 'audio only', 'a still image', 'not a media file')."""
    videos: List[str] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)

    def skipped_summary(self) -> str:
        """'2 skipped: not a video (.m4a: audio only; .txt: not a media file)', or ''."""
        if not self.skipped:
            return ''
        kinds: Dict[str, int] = {}
        for path, reason in self.skipped:
            key = f'{Path(path).suffix.lower() or "no suffix"}: {reason}'
            kinds[key] = kinds.get(key, 0) + 1
        parts = '; '.join(f'{count} {key}' if count > 1 else key for key, count in sorted(kinds.items()))
        return f'{len(self.skipped)} skipped: not a video ({parts})'


def scan_paths(paths: Sequence[str]) -> FolderScan:
    """Files given by name (whatever they hold: decoding says what is wrong), and under
    folders, every file FFmpeg reads as video: those with a video suffix, and any other
    in which it finds a video stream; the rest are skipped, counted with why."""
    scan = FolderScan()
    for given in paths:
        if not os.path.isdir(given):
            scan.videos.append(given)
            continue
        for root, dirs, files in os.walk(given):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                reason = None if Path(name).suffix.lower() in VIDEO_SUFFIXES else why_not_a_video(path)
                if reason is None:
                    scan.videos.append(path)
                else:
                    scan.skipped.append((path, reason))
    return scan


def find_videos(paths: Sequence[str]) -> Iterator[str]:
    """The video files of ``scan_paths``."""
    yield from scan_paths(paths).videos


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


def with_review(representation: VideoRepresentation, thumbnails: Tuple[bytes, ...], width: int,
                height: int, times: Optional[Sequence[float]] = None,
                crop: Optional[Sequence[int]] = None) -> VideoRepresentation:
    """``representation`` with the review's thumbnails, the decoded frame size (display
    aspect), each sample's seconds from the first frame and the borders cut (None:
    unknown)."""
    representation.thumbnails = tuple(thumbnails)
    representation.width, representation.height = int(width), int(height)
    if times is not None and len(times) == representation.frames:
        representation.times = np.asarray(times, np.float64)
    if crop is not None and len(crop) == 4:
        representation.crop = tuple(int(v) for v in crop)
    return representation


def represent_file(path: Union[str, os.PathLike], dns: DnS, time_step: float = defaults.TIME_STEP, thumbnails: int = defaults.THUMBNAILS,
                   max_seconds: Optional[float] = None,
                   on_frame: Optional[Callable[[], None]] = None, exact: bool = False) -> VideoRepresentation:
    """Decode a video file and represent it (not stored), with ``thumbnails`` small
    JPEGs taken from the decoded frames (0 for a query); decoded on the models' GPU
    (NVDEC) when they run on one. Raises VideoDecodeError, with the path and the reason,
    for a file that cannot be read, decoded or used."""
    keeper = ThumbnailKeeper(thumbnails)  # 0: only the size and the sample times
    frames = decoded_frames(path, time_step, keeper, max_seconds, on_frame, exact=exact,
                            device=decode_device(dns.device))
    try:
        representation = dns.represent(frames)
    except ValueError as error:  # no frame in the sampled span, or frames unusable
        raise VideoDecodeError(path, str(error)) from error
    return with_review(representation, keeper.jpegs(), keeper.width, keeper.height, keeper.sample_times(),
                       keeper.crop)


def add_file(index: VideoIndex, path: Union[str, os.PathLike], dns: DnS, on_frame: Optional[Callable[[], None]] = None,
             exact: bool = False) -> AddResult:
    """Index one video file; a file whose content is already indexed only adds its
    path. Raises VideoDecodeError (with the path and the reason) for a file that cannot
    be read or decoded; the index is then unchanged. ``exact``: see ``decoded_frames``."""
    _check_models(index, dns)
    given = os.fspath(path)
    video_id = file_sha256(given)
    known = index.add_known(given, video_id)
    if known is not None:
        return known
    representation = represent_file(given, dns, index.settings.time_step, on_frame=on_frame, exact=exact)
    return index.commit(given, video_id, representation)


def index_files(index: VideoIndex, files: Sequence[str], dns: DnS, tally: IndexTally, exact: bool = False) -> None:
    """The plain engine, in this process: a thread decodes the next files while the
    network works on full batches cut across videos (``overlap.py``); each video is
    committed when its last frame is through. A file that fails is named in ``tally``
    and skipped."""
    from .overlap import index_overlapped
    _check_models(index, dns)
    device = decode_device(dns.device)

    def decode(path: str, keeper: ThumbnailKeeper) -> Iterator[np.ndarray]:
        return decoded_frames(path, index.settings.time_step, keeper, exact=exact, device=device)
    index_overlapped(index, files, dns, tally, file_sha256, decode)


def query_representation(index: VideoIndex, path: Union[str, os.PathLike], dns: DnS,
                         max_seconds: Optional[float] = None, indexed_only: bool = False) -> VideoRepresentation:
    """The representation of a query file: stored, when the file is indexed; else made
    now at the index's time step, without thumbnails. ``indexed_only`` (a path sent by
    a client, whose text must never reach the file system): the file is named as given
    at index time or by its absolute path, looked up in the catalog and never opened;
    one not indexed raises UnknownFileError."""
    if indexed_only:
        name = os.fspath(path)
        video_id = index.catalog.ids_of_given([name]).get(name) or index.video_id_of(name)
        if video_id is None:
            raise UnknownFileError(f'not an indexed file: {name!r} (give a path as it was given at index time)')
        return index.representation(video_id)
    video_id = index.video_id_of(path)
    if video_id is not None:
        return index.representation(video_id)
    _check_models(index, dns)
    return represent_file(path, dns, index.settings.time_step, thumbnails=0, max_seconds=max_seconds)


def _check_models(index: VideoIndex, dns: DnS) -> None:
    if dns.fine != index.settings.fine:
        raise IndexSettingsError(f'the index uses the {index.settings.fine} student, the models {dns.fine}')


def _at_most(frames: Iterable, limit: int, path, seconds: float) -> Iterator:
    for count, frame in enumerate(frames):
        if count >= limit:
            raise VideoDecodeError(path, f'longer than the limit of {seconds:g} s')
        yield frame


def _counting(frames: Iterable, on_frame: Callable[[], None]) -> Iterator:
    for frame in frames:
        on_frame()
        yield frame
