"""One DnS index: a folder with the catalog, the fine-grained features and (by
default) the Milvus Lite database of the coarse vectors."""
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np

from ..localization.alignment import DEFAULT_THRESHOLD as DEFAULT_SEGMENT_THRESHOLD
from ..video_decode import VideoDecodeError, VideoDecoder, check_video_file
from ..weights import sha256_of
from .catalog import Catalog, VideoRecord
from .fine_store import FineStore
from .representation import FINE_STUDENTS, DnSModels, VideoRepresentation
from .thumbnails import THUMBNAILS, ThumbnailStore
from .vector_store import CoarseVectors

DEFAULT_INDEX = 'dns-index'
FORMAT_VERSION = '1'
CATALOG_FILE = 'catalog.sqlite'
LITE_FILE = 'milvus.db'
THUMBS_FOLDER = 'thumbs'
SYNC_BATCH = 1000
DEFAULT_FINE_DTYPE = {'att': 'float16', 'bin': 'bits'}
# A pair scoring at least this is a copy: a fine-grained similarity of 0.5 (s/2 + 0.5).
DEFAULT_COPY_THRESHOLD = 0.75


class IndexSettingsError(ValueError):
    """An index that does not exist, or a setting that contradicts the index's own."""


@dataclass(frozen=True)
class IndexSettings:
    fine: str            # the fine-grained student: 'att' or 'bin'
    fine_dtype: str      # 'bits' (bin), 'float16' or 'float32' (att)
    time_step: float     # seconds between sampled frames
    collection: str      # the Milvus collection of this index
    milvus_uri: str      # '' for the Milvus Lite database inside the folder


@dataclass(frozen=True)
class Thresholds:
    """Where copies start: the defaults, or what `dns evaluate --calibrate` measured on a
    labelled sample of this index."""
    copy: float                  # least search score of a copied pair (dedup's threshold)
    segment: float               # least score of a copied segment
    copy_calibrated: bool = False
    segment_calibrated: bool = False


@dataclass(frozen=True)
class AddResult:
    status: str          # 'indexed', 'skipped' (content already indexed)
    video_id: str
    frames: int


class VideoIndex:
    """Open (or, with ``create=True``, make) the index in ``folder``.

    Settings given for an existing index must match those it was made with; settings
    left None take the index's own (or the defaults, for a new index).
    """

    def __init__(self, folder, *, create: bool = False, fine: Optional[str] = None,
                 fine_dtype: Optional[str] = None, time_step: Optional[float] = None,
                 milvus_uri: Optional[str] = None, milvus_token: Optional[str] = None,
                 collection: Optional[str] = None):
        self.folder = Path(folder)
        catalog_path = self.folder / CATALOG_FILE
        if not catalog_path.is_file() and not create:
            raise IndexSettingsError(f'no index in {self.folder}: make one with `dns index --index {self.folder} '
                                     'VIDEOS...`')
        self.folder.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(catalog_path)
        self.settings = self._settle(fine, fine_dtype, time_step, milvus_uri, collection)
        self.fine_store = FineStore(self.folder / 'fine', self.settings.fine_dtype)
        self.thumbnails = ThumbnailStore(self.folder / THUMBS_FOLDER)
        self._milvus_token = milvus_token if milvus_token is not None else os.environ.get('DNS_MILVUS_TOKEN')
        self._vectors: Optional[CoarseVectors] = None
        self._clips = None  # the clip collection (retrieval.clips), opened on first use

    def _settle(self, fine, fine_dtype, time_step, milvus_uri, collection) -> IndexSettings:
        meta = self.catalog.settle_meta(_new_settings(fine, fine_dtype, time_step, milvus_uri, collection))
        if meta.get('format') != FORMAT_VERSION:
            raise IndexSettingsError(f'{self.folder} holds an index of format {meta.get("format")}, '
                                     f'this version reads format {FORMAT_VERSION}')
        settings = IndexSettings(meta['fine'], meta['fine_dtype'], float(meta['time_step']), meta['collection'],
                                 meta['milvus_uri'])
        given = {'fine': fine, 'fine_dtype': fine_dtype, 'time_step': time_step, 'milvus_uri': milvus_uri,
                 'collection': collection}
        for name, value in given.items():
            if value is not None and value != getattr(settings, name):
                raise IndexSettingsError(f'the index in {self.folder} was made with {name} = '
                                         f'{getattr(settings, name)!r}, not {value!r}')
        return settings

    def __len__(self) -> int:
        return self.catalog.count()

    def thresholds(self) -> Thresholds:
        meta = self.catalog.meta()
        copy, segment = meta.get('copy_threshold'), meta.get('segment_threshold')
        return Thresholds(DEFAULT_COPY_THRESHOLD if copy is None else float(copy),
                          DEFAULT_SEGMENT_THRESHOLD if segment is None else float(segment),
                          copy is not None, segment is not None)

    def calibrate(self, copy: Optional[float] = None, segment: Optional[float] = None) -> Thresholds:
        """Store measured thresholds in the index (None: keep what it holds)."""
        values = {}
        for name, value in (('copy_threshold', copy), ('segment_threshold', segment)):
            if value is not None:
                if not np.isfinite(value):
                    raise ValueError(f'{name} must be a finite number, got {value}')
                values[name] = repr(float(value))
        self.catalog.set_meta(values)
        return self.thresholds()

    def release_vectors(self) -> bool:
        """Close the connection to Milvus (the next search opens it again, synced): a
        Milvus Lite database admits one process at a time. True if one was open."""
        if self._vectors is None:
            return False
        self._vectors.close()
        self._vectors = None
        if self._clips is not None:
            self._clips.release()
        return True

    def close(self) -> None:
        self.release_vectors()
        self.catalog.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def make_models(self, device: Optional[str] = None, precision: str = 'fp32', batch_size: int = 32,
                    compile: bool = False) -> DnSModels:
        """The networks this index was made with (its fine student and selector)."""
        return DnSModels(self.settings.fine, device=device, precision=precision, batch_size=batch_size,
                         compile=compile)

    def remove_leftovers(self) -> int:
        """Delete the temporary files of indexers that died mid-write (fine features and
        thumbnails); return how many."""
        return self.fine_store.remove_leftovers() + self.thumbnails.remove_leftovers()

    def decoder(self) -> VideoDecoder:
        return VideoDecoder(time_step=self.settings.time_step)

    # --- writing
    def add(self, path, models: DnSModels, on_frame: Optional[Callable[[], None]] = None) -> AddResult:
        """Index one video file; a file whose content is already indexed only adds its
        path. Raises VideoDecodeError (with the path and the reason) for a file that
        cannot be read or decoded; the index is then unchanged."""
        given = os.fspath(path)
        video_id = file_sha256(given)
        known = self.add_known(given, video_id)
        if known is not None:
            return known
        return self.commit(given, video_id, self.represent_file(given, models, on_frame))

    def add_known(self, path, video_id: str) -> Optional[AddResult]:
        """When the content ``video_id`` is indexed (and its files intact), record
        ``path`` as one more file of it and return 'skipped'; else None: the video
        must be represented and committed."""
        given = os.fspath(path)
        abspath = os.path.abspath(given)
        record = self.catalog.video(video_id)
        if record is None or not self.fine_store.is_intact(video_id, record.frames, record.fine_sha256):
            return None
        if self.catalog.video_of(abspath) != video_id:
            self._drop_files(self.catalog.add_path(video_id, abspath, given))
        return AddResult('skipped', video_id, record.frames)

    def commit(self, path, video_id: str, representation: VideoRepresentation) -> AddResult:
        """Store the representation of the file ``path`` (content hash ``video_id``),
        made here or by another process: the fine features and thumbnails first, then
        one catalog transaction, so a crash leaves the video either whole or absent."""
        given = os.fspath(path)
        fine_sha256 = self.fine_store.write(video_id, representation.fine)
        thumbnails = self.thumbnails.write(video_id, representation.thumbnails)
        orphan = self.catalog.commit_video(video_id, representation.frames, representation.selector,
                                           representation.coarse, fine_sha256, os.path.abspath(given), given,
                                           duration=representation.frames * self.settings.time_step,
                                           width=representation.width or None,
                                           height=representation.height or None, thumbnails=thumbnails)
        self._drop_files(orphan)
        if self._vectors is not None:  # this session searches too: keep Milvus current
            self.sync()
            if self._clips is not None and self._clips.is_open:
                self._clips.sync_quietly()
        return AddResult('indexed', video_id, representation.frames)

    def represent_file(self, path, models: DnSModels, on_frame: Optional[Callable[[], None]] = None,
                       thumbnails: int = THUMBNAILS, max_seconds: Optional[float] = None) -> VideoRepresentation:
        """Decode a video at the index's time step and represent it (not stored), with
        ``thumbnails`` small JPEGs taken from the decoded frames (0 for a query).
        ``max_seconds``: refuse (VideoDecodeError) a video that runs longer, as soon as
        decoding gets there (for untrusted uploads)."""
        if models.fine != self.settings.fine:
            raise IndexSettingsError(f'the index uses the {self.settings.fine} student, the models {models.fine}')
        frames = self.decoder()(path)
        if max_seconds is not None:
            frames = _at_most(frames, int(max_seconds / self.settings.time_step), path, max_seconds)
        if on_frame is not None:
            frames = _counting(frames, on_frame)
        try:
            return models.represent(frames, thumbnails=thumbnails)
        except ValueError as error:  # no frame in the sampled span, or frames unusable
            raise VideoDecodeError(path, str(error)) from error

    def _drop_files(self, orphan: Optional[str]) -> None:
        if orphan is not None:
            self.fine_store.remove(orphan)
            self.thumbnails.remove(orphan)

    # --- reading
    def representation(self, video_id: str) -> VideoRepresentation:
        """The stored representation of an indexed video (fine features checked)."""
        record = self.catalog.video(video_id)
        if record is None:
            raise KeyError(f'video {video_id} is not in the index {self.folder}')
        return VideoRepresentation(fine=self.fine(record), coarse=self.catalog.coarse(video_id),
                                   selector=record.selector)

    def fine(self, record: VideoRecord) -> np.ndarray:
        """The fine representation [T, 9, 512] of a catalog record, checked against it."""
        return self.fine_store.read(record.id, record.frames, record.fine_sha256)

    def representation_of_file(self, path, models: DnSModels) -> VideoRepresentation:
        """The stored representation of an indexed file, else one made now."""
        video_id = self.video_id_of(path)
        if video_id is not None:
            return self.representation(video_id)
        return self.represent_file(path, models, thumbnails=0)

    def video_id_of(self, path) -> Optional[str]:
        """The id of an indexed file (by path), or None."""
        return self.catalog.video_of(os.path.abspath(os.fspath(path)))

    def vectors(self) -> CoarseVectors:
        """The Milvus collection, brought up to date with the catalog when first
        opened (``sync()`` again to see videos other processes committed since)."""
        if self._vectors is None:
            self.sync()
        return self._vectors

    def _open_vectors(self) -> CoarseVectors:
        if self._vectors is None:
            lite = not self.settings.milvus_uri
            uri = str((self.folder / LITE_FILE).resolve()) if lite else self.settings.milvus_uri
            self._vectors = CoarseVectors(uri, self.settings.collection, token=self._milvus_token, lite=lite)
        return self._vectors

    def clips(self):
        """Clip search over this index (``retrieval.clips.ClipIndex``): window vectors in a
        second Milvus collection, built from the stored fine features."""
        if self._clips is None:
            from .clips.clip_index import ClipIndex
            self._clips = ClipIndex(self)
        return self._clips

    def sync(self) -> int:
        """Copy committed videos Milvus lacks into it, drop removed ones; return how
        many were copied. Vectors are flushed before they count as synced, and a
        collection holding fewer than that (lost or replaced) is refilled."""
        vectors = self._open_vectors()
        removed = self.catalog.removed()
        vectors.delete(removed)
        if vectors.count() < self.catalog.synced_count():
            self.catalog.mark_all_unsynced()
        copied = 0
        while rows := self.catalog.unsynced(SYNC_BATCH):
            ids = [video_id for video_id, _ in rows]
            vectors.upsert(ids, [vector for _, vector in rows])
            vectors.flush()
            self.catalog.mark_synced(ids)
            copied += len(ids)
        if removed:
            vectors.flush()
            self.catalog.forget_removed(removed)
        return copied


def _new_settings(fine, fine_dtype, time_step, milvus_uri, collection) -> Dict[str, str]:
    """The settings of a new index, defaults filled in and checked, as catalog values."""
    fine = fine or 'att'
    if fine not in FINE_STUDENTS:
        raise IndexSettingsError(f'fine must be one of {", ".join(FINE_STUDENTS)}, got {fine!r}')
    fine_dtype = fine_dtype or DEFAULT_FINE_DTYPE[fine]
    allowed = ('bits',) if fine == 'bin' else ('float16', 'float32')
    if fine_dtype not in allowed:
        raise IndexSettingsError(f'fine {fine!r} is stored as {" or ".join(allowed)}, not {fine_dtype!r}')
    time_step = 1.0 if time_step is None else float(time_step)
    if not time_step > 0:
        raise IndexSettingsError(f'time_step must be positive, got {time_step}')
    return {'format': FORMAT_VERSION, 'fine': fine, 'fine_dtype': fine_dtype, 'time_step': repr(time_step),
            'collection': collection or f'dns_{uuid.uuid4().hex}', 'milvus_uri': milvus_uri or ''}


def file_sha256(path: str) -> str:
    """The content hash that identifies a video, whatever its name. A path that is no
    readable file raises the decoder's error, with the same reasons."""
    check_video_file(path)
    try:
        return sha256_of(Path(path))
    except OSError as error:
        raise VideoDecodeError(path, f'cannot read ({error.strerror or error})') from error


def _at_most(frames, limit: int, path, seconds: float):
    for count, frame in enumerate(frames):
        if count >= limit:
            raise VideoDecodeError(path, f'longer than the limit of {seconds:g} s')
        yield frame


def _counting(frames, on_frame):
    for frame in frames:
        on_frame()
        yield frame
