"""The clip collection of one index, kept in step with its catalog.

The catalog stays the record of what is committed. Its table ``clip_windows`` lists the
videos whose windows Milvus holds (and how many): a video's windows are upserted and
flushed before its row is written, so a crash leaves at worst windows Milvus holds
twice over by key (an upsert, harmless) and never a row whose windows are missing. A
collection holding fewer windows than the rows promise (lost, replaced) is refilled.
Windows come from the stored fine features, so an index made before clip search gains
its collection at its next sync, without decoding a video.

Only a sync writes the collection (indexing, removing, ``dns sync``); opening it to
search reads what is there and says what it lacks.

Where the windows are: on the embedded default, files of the index folder searched with
faiss (``clip_window_files.ClipWindowFiles``); with a Milvus server, a collection beside
the coarse one (``clip_vectors.ClipVectors``). The catalog's meta ``clip_store`` records
which one the bookkeeping describes. An index whose windows an earlier version kept in
a Milvus Lite collection is searched there until its next sync makes the files from the
stored features and drops that collection (it only repeated what the features give);
an index moved between the two (``dns move-vectors``) has its windows made again at the
new place, whatever an earlier stay left there.
"""
import logging
from typing import Callable, Optional

from ... import defaults
from .clip_vectors import ClipIndexError, ClipVectors
from .clip_window_files import ClipWindowFiles
from .clip_windows import DEFAULT_SPEC, WindowSpec, pooled_windows
from .fine_store import CorruptFeaturesError
from .first_opening import FirstOpening

log = logging.getLogger(__name__)

SYNC_VIDEOS = 64
FILES_FOLDER = 'clip-windows'   # in the index folder
FILES_PLACE = 'files'           # meta clip_store of the files; a server's is its URI


class ClipCollection:
    """The window vectors of a :class:`VideoIndex`'s videos (``index.clip_collection``)."""

    def __init__(self, index, spec: Optional[WindowSpec] = None, hnsw_from: int = defaults.CLIP_HNSW_FROM):
        self.index, self.hnsw_from = index, hnsw_from
        catalog = index.catalog
        catalog.start_clip_windows()
        meta = catalog.meta()
        if 'clip_length' not in meta:
            spec = spec or DEFAULT_SPEC
            catalog.set_meta({'clip_length': str(spec.length), 'clip_stride': str(spec.stride)})
            meta = catalog.meta()
        self.spec = WindowSpec(int(meta['clip_length']), int(meta['clip_stride']))
        if spec is not None and spec != self.spec:
            raise ValueError(f'the clip windows of {index.folder} are {self.spec}, not {spec}')
        self.collection = f'{index.settings.collection}_clips'
        self._vectors = None   # the store in use: ClipWindowFiles, or ClipVectors (a server; an earlier Lite one)
        self._files: Optional[ClipWindowFiles] = None   # kept loaded between uses
        self._check_lag = FirstOpening(self._warn_if_behind)

    def vectors(self):
        """The clip collection as it is (a lag behind the catalog is logged when it first
        opens, not mended: that is :meth:`sync`'s job)."""
        if self._vectors is None:
            self._open()
            self._check_lag()
        return self._vectors

    def _warn_if_behind(self) -> None:
        catalog = self.index.catalog
        lag = catalog.clip_window_lag()
        if lag or self._vectors.count() < catalog.clip_window_count():
            log.warning('the clip collection of %s is behind its catalog (%d video(s) indexed or removed since '
                        'its last sync, or windows lost): `dns sync --index %s` brings it in step',
                        self.index.folder, lag, self.index.folder)

    def _open(self):
        if self._vectors is None:
            # The index's own connection (a Milvus Lite database admits one); on Lite its
            # lock also keeps other processes from writing the files meanwhile.
            client = self.index.vectors().client
            if self.index.settings.milvus_uri:
                self._vectors = ClipVectors(client, self.collection, lite=False, hnsw_from=self.hnsw_from)
            elif self._place() != FILES_PLACE and client.has_collection(self.collection):
                # Made by an earlier version: searched where it is until a sync.
                self._vectors = ClipVectors(client, self.collection, lite=True, hnsw_from=self.hnsw_from)
            else:
                self._vectors = self._open_files()
        return self._vectors

    def _open_files(self) -> ClipWindowFiles:
        if self._files is None:
            self._files = ClipWindowFiles(self.index.folder / FILES_FOLDER, hnsw_from=self.hnsw_from)
        else:
            self._files.refresh()   # another process may have written them while Lite was let go
        return self._files

    def _place(self) -> Optional[str]:
        return self.index.catalog.meta().get('clip_store')

    def release(self) -> None:
        """Forget the connection (the index closed it); the next use opens it again (the
        files stay loaded, read again only if another process changed them)."""
        self._vectors = None

    def sync_quietly(self) -> int:
        """:meth:`sync`, logging rather than raising a damaged collection's error (0 added):
        indexing must not fail for the sake of clip search."""
        try:
            return self.sync()
        except ClipIndexError as error:
            log.warning('%s', error)
            return 0

    def sync(self, on_video: Optional[Callable[[], None]] = None) -> int:
        """Bring the collection in step with the catalog; return how many videos'
        windows were added. A video whose fine features are damaged is logged and left
        for the next sync."""
        vectors, catalog = self._open(), self.index.catalog
        place = self.index.settings.milvus_uri or FILES_PLACE
        if place == FILES_PLACE and not isinstance(vectors, ClipWindowFiles):
            vectors = self._vectors = self._open_files()   # from an earlier version's Lite collection
        recorded = self._place()
        if recorded is not None and recorded != place:
            # Moved since the windows were recorded: what this place holds, if anything,
            # is from an earlier stay.
            log.info('the clip windows are now at %s: making them there', place)
            vectors.clear()
            catalog.forget_clip_windows()
        # Removed videos, and videos extracted again (``Catalog.commit_video``).
        stale = catalog.stale_clip_windows()
        if stale:
            vectors.delete_videos(stale)
            vectors.flush()
            catalog.forget_clip_windows(stale)
        promised = catalog.clip_window_count()
        if promised and vectors.count() < promised:
            log.warning('the clip collection %s lacks windows; refilling it from the stored features', self.collection)
            catalog.forget_clip_windows()
        added, after = 0, ''
        while True:
            rows = catalog.videos_without_clip_windows(after, SYNC_VIDEOS)
            if not rows:
                if vectors.fit_index(self.window_count()):
                    log.info('the clip collection %s holds %d windows or more: its index is now HNSW',
                             self.collection, self.hnsw_from)
                self._settle_place(place)
                return added
            after = rows[-1]
            records = catalog.videos(rows)
            done = []
            for video_id, record in records.items():
                try:
                    fine = self.index.fine_features(record)
                except CorruptFeaturesError as error:
                    log.warning('%s; its clip windows are left out', error)
                    continue
                starts, windows = pooled_windows(fine, self.spec)
                vectors.upsert(video_id, starts, windows)
                done.append((video_id, len(starts)))
                if on_video is not None:
                    on_video()
            if done:
                vectors.flush()
                catalog.record_clip_windows(done)
                added += len(done)

    def _settle_place(self, place: str) -> None:
        """Record where the windows are, once they are all there; on the embedded default,
        drop the Milvus Lite collection an earlier version kept them in."""
        if self._place() == place:
            return
        if place == FILES_PLACE:
            client = self.index.vectors().client
            if client.has_collection(self.collection):
                client.drop_collection(self.collection)
                log.info("the clip windows moved from Milvus Lite's collection %s to %s", self.collection,
                         self.index.folder / FILES_FOLDER)
        self.index.catalog.set_meta({'clip_store': place})

    def window_count(self) -> int:
        return self.index.catalog.clip_window_count()
