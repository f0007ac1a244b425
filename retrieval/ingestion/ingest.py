"""Videos into the index and queries into representations: which files are videos, the
plain engine over a list of files (``index_files``, which ``dns index`` runs, and
``add_file``, the same for one file), and a query's representation (``represent_file``,
which the service's uploads use too). The stages themselves live in ``stages.py``; the
Ray engine (``ray_engine/``) schedules the same ones.
"""
import os
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ... import defaults
from ...core import DnS, VideoRepresentation
from ...video_decode import VideoDecodeError, decode_device, why_not_a_video
from ..storage.catalog import UnknownFileError
from ..storage.index import AddResult, IndexSettingsError, VideoIndex
from ..storage.thumbnails import ThumbnailKeeper
from .plain_engine import index_overlapped
from .stages import Review, decoded_frames, file_sha256, unusable
from .tally import IndexTally


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
        raise unusable(str(path), error) from error
    return Review.of(keeper).added_to(representation)


def add_file(index: VideoIndex, path: Union[str, os.PathLike], dns: DnS, on_frame: Optional[Callable[[], None]] = None,
             exact: bool = False) -> AddResult:
    """Index one video file, by the plain engine `dns index` runs; a file whose content is
    already indexed only adds its path. It syncs Milvus at its end (some 50 ms; the
    first opens Milvus Lite, about 2 s): :func:`index_files` indexes many with one sync.
    Raises VideoDecodeError (with the path and the reason) for a file that cannot be read
    or decoded; the index is then unchanged.
    ``on_frame``: called per decoded frame; ``exact``: see ``stages.decoded_frames``."""
    outcome = _OneFile()
    index_files(index, [os.fspath(path)], dns, outcome, exact=exact, on_frame=on_frame)
    return outcome.result()


def index_files(index: VideoIndex, files: Sequence[str], dns: DnS, tally: Optional[IndexTally] = None,
                exact: bool = False, on_frame: Optional[Callable[[], None]] = None) -> IndexTally:
    """The plain engine, in this process: a thread decodes the next files while the
    network works on full batches cut across videos (``plain_engine.py``); each video is
    committed when its last frame is through. A file that fails is named in ``tally``
    (None: a new one, without progress bars) and skipped; returns the tally. The run ends
    by syncing Milvus (``VideoIndex.sync``): its videos, and any an earlier run committed
    but did not sync, become searchable. The way to index many files from Python: one
    sync for all, where :func:`add_file` syncs per call."""
    if tally is None:
        tally = IndexTally(len(files), progress=False)
    _check_models(index, dns)
    device = decode_device(dns.device)

    def decode(path: str, keeper: ThumbnailKeeper) -> Iterator[np.ndarray]:
        return decoded_frames(path, index.settings.time_step, keeper, on_frame=on_frame, exact=exact, device=device)
    index_overlapped(index, files, dns, tally, file_sha256, decode)
    index.sync()
    return tally


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


class _OneFile:
    """The outcome of indexing one file, for ``add_file``: its result, or its error."""

    def __init__(self):
        self._result: Optional[AddResult] = None
        self._error: Optional[VideoDecodeError] = None

    def frame(self, count: int = 1) -> None:
        pass

    def done(self, path: str, result: AddResult) -> None:
        self._result = result

    def failed(self, error: VideoDecodeError) -> None:
        self._error = error

    def result(self) -> AddResult:
        if self._error is not None:
            raise self._error
        assert self._result is not None, 'the plain engine reported nothing for the file'
        return self._result
