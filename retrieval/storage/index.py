"""One DnS index, storage only: a folder with the catalog, the fine-grained features,
the review's thumbnails and (by default) the Milvus Lite database of the coarse vectors.
What goes in is made by retrieval/ingestion/ingest.py; nothing here decodes or runs a network."""
import logging
import os
import time
import uuid
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ... import defaults
from ...core import FINE_STUDENTS, VideoRepresentation
from .catalog import Catalog, UnknownFileError, VideoRecord
from .clip_collection import ClipCollection
from .fine_store import FineStore
from .first_opening import FirstOpening
from .thumbnails import ThumbnailStore
from .vector_store import CoarseVectors

log = logging.getLogger(__name__)

FORMAT_VERSION = '1'
CATALOG_FILE = 'catalog.sqlite'
LITE_FILE = 'milvus.db'
THUMBS_FOLDER = 'thumbs'
SYNC_BATCH = 1000


class StaleThresholdWarning(UserWarning):
    """The index holds a threshold calibrated for scores of an earlier version."""


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
    # A segment threshold the index holds in an older unit of segment scores (not used).
    stale_segment: Optional[float] = None
    # Segments measured against the library too (retrieval.searching.segments), as calibrated.
    segment_background: bool = defaults.SEGMENT_BACKGROUND


@dataclass(frozen=True)
class AddResult:
    status: str          # 'indexed', 'skipped' (content already indexed)
    video_id: str
    frames: int
    # A video indexed before sample times were recorded that this version reads
    # differently (start time, sample aspect ratio, borders): how, e.g. 'starts at 1.48 s'.
    changes: Tuple[str, ...] = ()


class Synced(NamedTuple):
    videos: int          # videos whose coarse vectors were copied into Milvus
    clip_videos: int     # videos whose clip windows were


class IndexedFile(NamedTuple):
    abspath: str
    given: str           # the path as given at index time


@dataclass(frozen=True)
class Removal:
    files: List[str]     # the removed files, paths as given at index time
    videos: List[str]    # ids of the videos that left the index (no other file held them)


class VideoIndex:
    """Open (or, with ``create=True``, make) the index in ``folder``.

    Settings given for an existing index must match those it was made with; settings
    left None take the index's own (or the defaults, for a new index).
    """

    def __init__(self, folder, *, create: bool = False, fine: Optional[str] = None,
                 fine_dtype: Optional[str] = None, time_step: Optional[float] = None,
                 milvus_uri: Optional[str] = None, milvus_token: Optional[str] = None,
                 collection: Optional[str] = None, catalog=None, lite_host=None):
        self.folder = Path(folder)
        catalog_path = self.folder / CATALOG_FILE
        if not catalog_path.is_file() and not create:
            raise IndexSettingsError(f'no index in {self.folder}: make one with `dns index --index {self.folder} '
                                     'VIDEOS...`')
        self.folder.mkdir(parents=True, exist_ok=True)
        # A caller may hand in its own catalog (the service: a connection per thread) and a
        # process of its own to serve the Milvus Lite folder (the service: searches from many
        # threads, ``lite_host.LiteHost``); otherwise both are this process's.
        self.catalog = catalog if catalog is not None else Catalog(catalog_path)
        # `dns index --reread`: videos indexed before sample times were recorded, that
        # this version reads differently, are represented again when met (add_known).
        self.reread = False
        self.settings = self._settle(fine, fine_dtype, time_step, milvus_uri, collection)
        self.fine_store = FineStore(self.folder / 'fine', self.settings.fine_dtype)
        self.thumbnails = ThumbnailStore(self.folder / THUMBS_FOLDER)
        self._milvus_token = milvus_token if milvus_token is not None else os.environ.get('DNS_MILVUS_TOKEN')
        self._vectors: Optional[CoarseVectors] = None
        self._check_lag = FirstOpening(self._warn_if_unsynced)   # Milvus against the catalog
        self._clip_collection: Optional[ClipCollection] = None  # made on first use
        self._synced_at: Optional[float] = None   # time.monotonic() of this session's last sync
        self.lite_host = lite_host

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
        stale = None
        if segment is not None and meta.get('segment_scale') != defaults.SEGMENT_SCALE:
            # Calibrated on another unit of segment scores: meaningless on this one.
            stale, segment = float(segment), None
            warnings.warn(f'the index in {self.folder} holds a segment threshold ({stale:g}) calibrated for '
                          f'segment scores of an earlier version; the default {defaults.SEGMENT_THRESHOLD:g} is '
                          f'used until `dns evaluate --calibrate` measures a new one', StaleThresholdWarning,
                          stacklevel=2)
        background = meta.get('segment_background')
        return Thresholds(defaults.COPY_THRESHOLD if copy is None else float(copy),
                          defaults.SEGMENT_THRESHOLD if segment is None else float(segment),
                          copy is not None, segment is not None, stale,
                          defaults.SEGMENT_BACKGROUND if background is None else background == 'on')

    def calibrate(self, copy: Optional[float] = None, segment: Optional[float] = None,
                  segment_background: Optional[bool] = None) -> Thresholds:
        """Store measured thresholds in the index (None: keep what it holds), and with a
        segment threshold whether its segments were measured against the library."""
        values = {}
        for name, value in (('copy_threshold', copy), ('segment_threshold', segment)):
            if value is not None:
                if not np.isfinite(value):
                    raise ValueError(f'{name} must be a finite number, got {value}')
                values[name] = repr(float(value))
        if segment is not None:
            values['segment_scale'] = defaults.SEGMENT_SCALE
            if segment_background is not None:
                values['segment_background'] = 'on' if segment_background else 'off'
        self.catalog.set_meta(values)
        return self.thresholds()

    def release_vectors(self) -> bool:
        """Close the connection to Milvus (the next use opens it again): a Milvus Lite
        database admits one process at a time. True if one was open."""
        if self._vectors is None:
            return False
        self._vectors.close()
        self._vectors = None
        if self._clip_collection is not None:
            self._clip_collection.release()
        if self.lite_host is not None:
            self.lite_host.close()
        return True

    def close(self) -> None:
        self.release_vectors()
        self.catalog.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def remove_leftovers(self) -> int:
        """Delete the temporary files of indexers that died mid-write (fine features and
        thumbnails); return how many."""
        return self.fine_store.remove_leftovers() + self.thumbnails.remove_leftovers()

    # --- writing
    def add_known(self, path, video_id: str) -> Optional[AddResult]:
        """When the content ``video_id`` is indexed (and its files intact), record
        ``path`` as one more file of it and return 'skipped' (with ``changes``: how this
        version reads it differently, for a video indexed before sample times were
        recorded); else None: the video must be represented and committed (also such a
        changed video, with ``reread``)."""
        given = os.fspath(path)
        abspath = os.path.abspath(given)
        record = self.catalog.video(video_id)
        if record is None or not self.fine_store.is_intact(video_id, record.frames, record.fine_sha256):
            return None
        changes = ()
        if self.catalog.times(video_id) is None:  # indexed before: read the old way
            from ...video_decode import reading_changes
            changes = tuple(reading_changes(given))
            if changes and self.reread:
                return None  # represented again, committed over the old row (atomically)
        if self.catalog.video_of(abspath) != video_id:
            self._drop_files(self.catalog.add_path(video_id, abspath, given))
        return AddResult('skipped', video_id, record.frames, changes)

    def commit(self, path, video_id: str, representation: VideoRepresentation) -> AddResult:
        """Store the representation of the file ``path`` (content hash ``video_id``),
        made here or by another process: the fine features and thumbnails first, then
        one catalog transaction, so a crash leaves the video either whole or absent."""
        given = os.fspath(path)
        fine_sha256 = self.fine_store.write(video_id, representation.fine)
        thumbnails = self.thumbnails.write(video_id, representation.thumbnails)
        orphan = self.catalog.commit_video(video_id, representation.frames, representation.selector,
                                           representation.coarse, fine_sha256, os.path.abspath(given), given,
                                           duration=video_duration(representation.times, representation.frames,
                                                                   self.settings.time_step),
                                           width=representation.width or None,
                                           height=representation.height or None, thumbnails=thumbnails,
                                           times=representation.times,
                                           crop=None if representation.crop is None
                                           else ','.join(map(str, representation.crop)))
        self._drop_files(orphan)
        return AddResult('indexed', video_id, representation.frames)

    def _drop_files(self, orphan: Optional[str]) -> None:
        if orphan is not None:
            self.fine_store.remove(orphan)
            self.thumbnails.remove(orphan)

    def files_at(self, paths: Sequence) -> List[IndexedFile]:
        """The indexed files at each of ``paths`` (paths or :class:`IndexedFile`) or, for
        a folder, below it (the files need not exist any more), each once. Raises
        UnknownFileError naming every path that is no indexed file and holds none."""
        found: Dict[str, IndexedFile] = {}
        unknown = []
        for path in paths:
            path = path.abspath if isinstance(path, IndexedFile) else path
            files = self.catalog.indexed_paths(os.path.abspath(os.fspath(path)))
            if not files:
                unknown.append(os.fspath(path))
            found.update((abspath, IndexedFile(abspath, given)) for abspath, given in files)
        if unknown:
            raise UnknownFileError(f'not an indexed file, nor a folder holding one: {", ".join(map(repr, unknown))}')
        return sorted(found.values())

    def missing_files(self) -> List[IndexedFile]:
        """The indexed files that no longer exist (deleted or moved since)."""
        return [IndexedFile(abspath, given) for abspath, given in self.catalog.indexed_paths()
                if not os.path.exists(abspath)]

    def remove(self, paths: Sequence) -> Removal:
        """Forget the indexed files at ``paths`` (files or folders, :meth:`files_at`; an
        unknown one removes nothing). A video leaves the index with its last file: its
        catalog row in one transaction, then its fine features and thumbnails, then its
        vectors (:meth:`sync`). Reviewers' decisions on the files are kept: they apply
        again if the files are indexed again."""
        files = self.files_at(paths)
        orphans = self.catalog.remove_paths([f.abspath for f in files])
        for orphan in orphans:
            self._drop_files(orphan)
        self.sync()
        return Removal([f.given for f in files], orphans)

    # --- reading
    def representation(self, video_id: str) -> VideoRepresentation:
        """The stored representation of an indexed video (fine features checked)."""
        record = self.catalog.video(video_id)
        if record is None:
            raise KeyError(f'video {video_id} is not in the index {self.folder}')
        return VideoRepresentation(fine=self.fine_features(record), coarse=self.catalog.coarse(video_id),
                                   selector=record.selector, times=self.catalog.times(video_id))

    def fine_features(self, record: VideoRecord) -> np.ndarray:
        """The fine representation [T, 9, 512] of a catalog record, checked against it."""
        return self.fine_store.read(record.id, record.frames, record.fine_sha256)

    def video_id_of(self, path) -> Optional[str]:
        """The id of an indexed file (by path), or None."""
        return self.catalog.video_of(os.path.abspath(os.fspath(path)))

    def vectors(self) -> CoarseVectors:
        """The coarse collection in Milvus, as indexing and :meth:`sync` left it: a read
        writes nothing. A lag behind the catalog (an indexer still running, or stopped
        before its sync) is logged when it first opens."""
        if self._vectors is None:
            self._open_vectors()
            self._check_lag()
        return self._vectors

    def _warn_if_unsynced(self) -> None:
        unsynced = self.catalog.unsynced_count()
        if unsynced or self._vectors.count() < self.catalog.synced_count():
            log.warning('Milvus lacks vectors of the index in %s (%d committed video(s) not synced: an indexer is '
                        'running or stopped before it synced): searches miss them until `dns sync --index %s` '
                        '(or the next `dns index`)', self.folder, unsynced, self.folder)

    def _open_vectors(self) -> CoarseVectors:
        if self._vectors is None:
            lite = not self.settings.milvus_uri
            uri = str((self.folder / LITE_FILE).resolve()) if lite else self.settings.milvus_uri
            hosted = lite and self.lite_host is not None
            if hosted:
                uri = self.lite_host.open(uri)
            try:
                self._vectors = CoarseVectors(uri, self.settings.collection, token=self._milvus_token, lite=lite,
                                              hosted=hosted)
            except BaseException:
                if hosted:
                    self.lite_host.close()
                raise
        return self._vectors

    @property
    def clip_collection(self) -> ClipCollection:
        """The window vectors of the indexed videos, a second Milvus collection made from
        the stored fine features (clip search: ``retrieval.searching.clips``)."""
        if self._clip_collection is None:
            self._clip_collection = ClipCollection(self)
        return self._clip_collection

    def move_vectors(self, milvus_uri: str, milvus_token: Optional[str] = None) -> 'Synced':
        """Put this index's vector collections on another Milvus: ``milvus_uri`` a server
        or cluster, '' the Milvus Lite database in the folder. Nothing is extracted
        again: the coarse vectors are copied from the catalog and the clip windows made
        from the stored fine features. The collections where they were are left as they
        are. An interrupted move is finished by the next sync. Returns how many videos
        the coarse and the clip collection received."""
        milvus_uri = milvus_uri or ''
        if milvus_uri == self.settings.milvus_uri:
            raise IndexSettingsError(f'the vectors of {self.folder} are already at '
                                     f'{milvus_uri or "the Milvus Lite database in the folder"}')
        self.release_vectors()
        if milvus_token is not None:
            self._milvus_token = milvus_token
        self.catalog.set_meta({'milvus_uri': milvus_uri})
        self.settings = replace(self.settings, milvus_uri=milvus_uri)
        return self.sync()  # the new collections are empty: every video is copied

    def sync(self) -> 'Synced':
        """Bring Milvus in step with the catalog, the only write of Milvus (indexing and
        removing end with it): committed videos' coarse vectors and clip windows that it
        lacks copied in, removed ones dropped. Vectors are flushed before they count as
        synced, and a collection holding fewer than that (lost or replaced) is refilled.
        A damaged clip collection is logged and left as it is."""
        synced = Synced(self._sync_coarse(), self.clip_collection.sync_quietly())
        self._synced_at = time.monotonic()
        return synced

    def sync_when_due(self, every: float = defaults.SYNC_EVERY_S) -> None:
        """Within a run of commits (both ingestion engines): :meth:`sync` once ``every``
        seconds have passed since this session's last sync (or its first call), then let
        Milvus go, since a Milvus Lite database admits one process: searches in other
        processes find the run's videos up to then, and run between these syncs."""
        now = time.monotonic()
        if self._synced_at is None:
            self._synced_at = now
        elif now - self._synced_at >= every:
            self.sync()
            self.release_vectors()

    def _sync_coarse(self) -> int:
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


def sample_times(times: Optional[np.ndarray], frames: int, time_step: float) -> np.ndarray:
    """Each sample's seconds from the first frame: ``times`` as recorded, else (a video
    indexed before times were recorded, or a query made without) sample i at i * step."""
    if times is not None and len(times) == frames:
        return np.asarray(times, np.float64)
    return np.arange(frames, dtype=np.float64) * time_step


def video_duration(times: Optional[np.ndarray], frames: int, time_step: float) -> float:
    """Seconds from the first frame to the end of the last sample (which spans one time
    step): a hole in a variable frame rate video counts as the time it lasts."""
    if frames == 0:
        return 0.0
    return float(sample_times(times, frames, time_step)[-1] + time_step)


def _new_settings(fine, fine_dtype, time_step, milvus_uri, collection) -> Dict[str, str]:
    """The settings of a new index, defaults filled in and checked, as catalog values."""
    fine = fine or defaults.FINE_STUDENT
    if fine not in FINE_STUDENTS:
        raise IndexSettingsError(f'fine must be one of {", ".join(FINE_STUDENTS)}, got {fine!r}')
    fine_dtype = fine_dtype or defaults.FINE_DTYPE[fine]
    allowed = ('bits',) if fine == 'bin' else ('float16', 'float32')
    if fine_dtype not in allowed:
        raise IndexSettingsError(f'fine {fine!r} is stored as {" or ".join(allowed)}, not {fine_dtype!r}')
    time_step = defaults.TIME_STEP if time_step is None else float(time_step)
    if not time_step > 0:
        raise IndexSettingsError(f'time_step must be positive, got {time_step}')
    return {'format': FORMAT_VERSION, 'fine': fine, 'fine_dtype': fine_dtype, 'time_step': repr(time_step),
            'collection': collection or f'dns_{uuid.uuid4().hex}', 'milvus_uri': milvus_uri or ''}
