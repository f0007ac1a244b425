"""The search service and the review page: one FastAPI app over one index, with the
models and Milvus opened once at start-up.

Endpoints run in FastAPI's thread pool, side by side: each thread reads the catalog
through its own SQLite connection, the Milvus client (gRPC) and the networks (inference
only) are shared, a decision is one SQLite transaction, and /duplicates searches once
per state of the indexed videos (a decision only regroups), without holding up searches. Uploads are decoded and
represented in worker processes (workers.py), so a bad file cannot take the service
down. At most ``max_in_flight`` requests are in at once, and ``workers`` times
(1 + queue) uploads: beyond either, 503 with Retry-After.
"""
import io
import ipaddress
import json
import mimetypes
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Dict, List, Literal, Optional, Tuple, Union

from fastapi import FastAPI, File, Form, HTTPException, Path as PathParam, Query, UploadFile
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
import torch
from pydantic import BaseModel, Field

from .. import defaults
from ..core import DnS
from ..retrieval.catalog import UnknownFileError, pair_key
from ..retrieval.dedup import group_pairs, score_pairs
from ..retrieval.fine_store import CorruptFeaturesError
from ..retrieval.index import VideoIndex, video_duration
from ..retrieval.lite_host import LiteHost
from ..retrieval.results import decisions_json, dedup_json, search_json, write_decisions_csv
from ..retrieval.search import search
from ..retrieval.show import pair_view
from ..retrieval.thumbnails import thumbnail_at
from ..retrieval.vector_store import MAX_LIMIT
from ..video_decode import VideoDecodeError
from ..weights import sha256_of
from .limits import BodyLimit, InFlightLimit, TokenCheck, video_key
from .sharing import PerThreadCatalog, StateCache
from .workers import UploadFailure, WorkerPool, WorkerSettings, default_workers

PAGE = Path(__file__).parent / 'page'
LITE_IDLE_RELEASE_S = 2.0
SLOTS_PER_CORE = 2  # requests using the index at once, per core (measured: docs/service.md)
VIDEO_ID = Annotated[str, PathParam(pattern=r'^[0-9a-f]{64}$', description='a video id: the sha256 of its content')]
COPY_CHUNK = 1 << 20
SCORED_KEPT = 4  # settings of /duplicates whose searches are kept
FRAMES_KEPT = 2000  # thumbnails at segment times kept made (some 5 KB each)


class Shown(BaseModel):
    """What a reviewer saw of one pair when deciding, kept with the decision (the CSV)."""
    a: str
    b: str
    score: Optional[float] = Field(None, allow_inf_nan=False)
    segments: List[Tuple[float, float, float, float]] = Field(
        [], max_length=100, description='copied segments, seconds: [a_start, a_end, b_start, b_end]')


class DecisionRequest(BaseModel):
    pairs: List[Tuple[str, str]] = Field(min_length=1, max_length=10_000,
                                         description='pairs of files, paths as given at index time')
    decision: Optional[Literal['copy', 'not_copy']] = Field(description="'copy', 'not_copy', or null to forget")
    bulk: bool = Field(False, description='a group action: decide only the pairs not decided yet, undone in one '
                                         'step by DELETE /decisions/bulk/{its id}')
    reviewer: Optional[str] = Field(None, max_length=100, description='who decides, as they name themselves')
    shown: List[Shown] = Field([], max_length=10_000, description='what the reviewer saw of the pairs')


class Service:
    """The shared state: the index (its catalog read per thread), its models, the
    upload workers and the cache of /duplicates.

    A Milvus Lite database admits one process at a time: after ``LITE_IDLE_RELEASE_S``
    without a request the service lets go of it (reopening it takes some 20 ms), so
    `dns index`, `dns dedup` and `dns search` can run beside the service. A Milvus
    server stays connected."""

    def __init__(self, index: VideoIndex, models, workers: WorkerPool, max_query_seconds: float):
        self.index, self.models, self.workers = index, models, workers
        self.max_query_seconds = max_query_seconds
        self.duplicates = StateCache(index.catalog.path)  # the answers, per state of the catalog
        self.scored = StateCache(index.catalog.path, size=SCORED_KEPT)  # their searches, per state of the videos
        self.plotting = threading.Lock()  # matplotlib's pyplot state is one per process
        self._state = threading.Condition()
        # Work on the index is Python under one GIL: more threads at it than cores keep
        # each other waiting and add switching, no throughput. Requests beyond the slots
        # wait their turn here; a thread waiting on an upload worker holds none.
        self._slots = threading.BoundedSemaphore(index_slots())
        self._active = 0
        self._contents: dict = {}  # (file, size, mtime) -> sha256 of its content
        self.frames: 'OrderedDict[tuple, bytes]' = OrderedDict()  # (video id, ms) -> a thumbnail made then
        self.last_used = time.monotonic()
        self._stop = threading.Event()
        self._releaser = threading.Thread(target=self._release_when_idle, daemon=True)
        if not index.settings.milvus_uri:
            self._releaser.start()

    def unchanged(self, file: Path, stat: os.stat_result, video_id: str) -> bool:
        """Whether ``file`` still holds the content ``video_id``: hashed once per
        (size, mtime) seen, not on every range request of a player."""
        key = (str(file), stat.st_size, stat.st_mtime_ns)
        with self._state:
            known = self._contents.get(key)
        if known is None:
            try:
                known = sha256_of(file)
            except OSError:
                return False
            with self._state:
                self._contents[key] = known
        return known == video_id

    def frame_thumbnail(self, key: tuple, make) -> bytes:
        """A thumbnail at a segment's time, made once and kept (the most recent ones)."""
        with self._state:
            made = self.frames.get(key)
        if made is None:
            made = make()
            with self._state:
                self.frames[key] = made
                while len(self.frames) > FRAMES_KEPT:
                    self.frames.popitem(last=False)
        return made

    @property
    def busy(self) -> bool:
        return self._active > 0

    @contextmanager
    def using(self, vectors: bool = True):
        """Use the index and the models for one request, beside at most a few other
        requests. With ``vectors`` (searches), Milvus is (re)opened and synced here, by
        one request at a time; a request that reads only the catalog and the stored
        features does without: Milvus Lite is let go after 2 s idle, and reopening it
        would more than double a reviewer's decision."""
        with self._slots:
            with self._state:
                if vectors:
                    host = self.index.lite_host
                    if host is not None and not host.alive:
                        # Its Milvus Lite process died (killed, out of memory): every search
                        # would fail until the idle release. Reopen now, through a fresh one.
                        self.index.release_vectors()
                    self.index.vectors()
                self._active += 1
            try:
                yield
            finally:
                with self._state:
                    self._active -= 1
                    self.last_used = time.monotonic()

    def _release_when_idle(self) -> None:
        while not self._stop.wait(0.25):
            with self._state:
                if not self._active and time.monotonic() - self.last_used > LITE_IDLE_RELEASE_S:
                    self.index.release_vectors()

    def close(self) -> None:
        self._stop.set()
        if self._releaser.is_alive():
            self._releaser.join()
        self.workers.close()
        self.duplicates.close()
        self.scored.close()
        self.index.close()
        if self.index.lite_host is not None:
            self.index.lite_host.shutdown()


def index_slots() -> int:
    return SLOTS_PER_CORE * (os.cpu_count() or 1)


def create_app(index_folder: Union[str, os.PathLike], *, token: Optional[str] = None, model_options: Optional[dict] = None,
               milvus_uri: Optional[str] = None,
               milvus_token: Optional[str] = None, max_upload_mb: float = defaults.MAX_UPLOAD_MB,
               max_query_seconds: float = defaults.MAX_QUERY_SECONDS, workers: Optional[int] = None,
               worker_timeout_s: float = defaults.WORKER_TIMEOUT_S,
               worker_memory_mb: Optional[float] = defaults.WORKER_MEMORY_MB,
               max_in_flight: int = defaults.MAX_IN_FLIGHT) -> FastAPI:
    """The app over the index in ``index_folder`` (which must exist). ``token``: when
    given, every request but the page's files must send ``Authorization: Bearer token``.
    ``model_options``: keyword arguments of ``DnS``. ``workers`` processes (None: the
    default for this machine) represent uploads, each for at most ``worker_timeout_s``
    an upload and ``worker_memory_mb`` beyond its models (None: no cap)."""
    state: dict = {}
    options = dict(model_options or {})
    workers = workers or default_workers()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        index = VideoIndex(index_folder, milvus_uri=milvus_uri, milvus_token=milvus_token)
        # The workers share the machine's cores; the service's own threads search.
        threads = max(1, (os.cpu_count() or 1) // workers)
        pool = WorkerPool(WorkerSettings(index.settings.fine, index.settings.time_step, options, worker_memory_mb,
                                         threads), size=workers, timeout_s=worker_timeout_s)
        try:
            pool.start()
            if not index.settings.milvus_uri:
                # Milvus Lite searches in Python: in a process of its own, not under the GIL of
                # the threads that answer requests.
                index.lite_host = LiteHost(threads=index_slots())
            # Requests run side by side, each on one core: a second thread inside each
            # request's small products would only contend with the other requests.
            torch.set_num_threads(1)
            models = DnS(index.settings.fine, **options)
            index.catalog.close()
            index.catalog = PerThreadCatalog(index.catalog.path)
            index.vectors()  # Milvus opened and synced now, not on the first search
            state['service'] = Service(index, models, pool, max_query_seconds)
        except BaseException:
            pool.close()
            index.close()
            if index.lite_host is not None:
                index.lite_host.shutdown()
            raise
        yield
        state.pop('service').close()

    app = FastAPI(title='DnS video copy detection', lifespan=lifespan,
                  description='Search an index of videos, list its near-duplicates, review them.')
    app.add_middleware(BodyLimit, max_bytes=int(max_upload_mb * 1e6))
    app.add_middleware(InFlightLimit, max_in_flight=max_in_flight)
    app.add_middleware(TokenCheck, token=token)  # added last: runs first

    def service() -> Service:
        return state['service']

    @app.exception_handler(CorruptFeaturesError)
    async def corrupt(request, error: CorruptFeaturesError):
        return JSONResponse({'detail': str(error)}, status_code=500)

    @app.exception_handler(UploadFailure)
    async def upload_failed(request, error: UploadFailure):
        headers = {} if error.retry_after is None else {'Retry-After': str(error.retry_after)}
        return JSONResponse({'detail': error.reason}, status_code=error.status, headers=headers)

    @app.get('/health')
    def health():
        """Alive; ``busy`` while a request uses the index; the upload workers: their
        pids, those busy with an upload, uploads waiting, workers replaced so far; the
        pid of the process serving Milvus Lite (null with a Milvus server)."""
        s = service()
        host = s.index.lite_host
        return {'status': 'ok', 'busy': s.busy, 'workers': s.workers.describe(),
                'milvus_lite_pid': host.pid if host is not None else None}

    @app.post('/search')
    def search_endpoint(video: Annotated[Optional[UploadFile], File(description='a video file to search with')] = None,
                        path: Annotated[Optional[str], Form(description='an indexed file, as given at index time')] = None,
                        k: Annotated[int, Form(ge=1, le=MAX_LIMIT)] = defaults.K,
                        rerank: Annotated[float, Form(ge=0, le=1)] = defaults.RERANK,
                        candidates: Annotated[int, Form(ge=1, le=MAX_LIMIT)] = defaults.CANDIDATES,
                        segments: Annotated[bool, Form()] = False,
                        segment_threshold: Annotated[Optional[float], Form(allow_inf_nan=False)] = None):
        """The videos most similar to a query: the JSON of `dns search --json`."""
        if (video is None) == (path is None):
            raise HTTPException(400, 'give either an uploaded video (multipart field "video") or path=')
        s = service()
        if video is not None:
            label = video.filename or 'upload'
            with tempfile.TemporaryDirectory(prefix='dns-upload-') as folder:
                saved = Path(folder) / 'query'
                with open(saved, 'wb') as out:
                    shutil.copyfileobj(video.file, out, COPY_CHUNK)
                try:
                    query = s.workers.represent(str(saved), s.max_query_seconds)
                except UploadFailure as error:
                    # FFmpeg's messages name the file they read: the client's name, never the server's path.
                    error.reason = error.reason.replace(repr(str(saved)), repr(label)).replace(str(saved), label)
                    if error.undecodable:
                        error.reason = f'cannot decode the uploaded video {label!r}: {error.reason}'
                    raise
            with s.using():
                matches = _search(s, query, k, rerank, candidates, segments, segment_threshold)
        else:
            label = path
            with s.using():
                video_id = _indexed_id(s.index, path)
                matches = _search(s, s.index.representation(video_id), k, rerank, candidates, segments,
                                  segment_threshold)
        with s.using():
            copy_threshold = s.index.thresholds().copy
        return search_json(label, rerank, matches, copy_threshold)

    @app.get('/duplicates')
    def duplicates(threshold: Annotated[Optional[float], Query(allow_inf_nan=False)] = None,
                   rerank: Annotated[float, Query(ge=0, le=1)] = defaults.DEDUP_RERANK,
                   neighbours: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = defaults.NEIGHBOURS,
                   segments: bool = False,
                   segment_threshold: Annotated[Optional[float], Query(allow_inf_nan=False)] = None):
        """The groups of near-duplicates: the JSON of `dns dedup --json`. Its searches are
        kept per state of the videos, files and thresholds: a decision only regroups them."""
        s = service()

        settings = (threshold, rerank, neighbours, segments, segment_threshold)

        def compute():
            with s.using():
                chosen = s.index.thresholds().copy if threshold is None else threshold
                # The searches are kept per state of the videos and settings: a decision only
                # regroups them (milliseconds), it does not search again.
                scored = s.scored.get(settings, lambda: score_pairs(
                    s.index, s.models, threshold=chosen, rerank=rerank, neighbours=neighbours, segments=segments,
                    segment_threshold=segment_threshold), version=s.index.catalog.content_state())
                decisions = s.index.catalog.decisions()
                return dedup_json(chosen, group_pairs(scored, decisions), decisions)
        return s.duplicates.get(settings, compute)

    @app.get('/videos/{video_id}')
    def video_record(video_id: VIDEO_ID):
        """One video: its files, length, frame size and thumbnails."""
        s = service()
        with s.using(vectors=False):
            record = _record(s.index, video_id)
            paths = [given for given, _ in s.index.catalog.paths([video_id]).get(video_id, [])]
        # The file's URL carries a key for this video alone: a <video> element sends no header.
        file_url = f'/videos/{video_id}/file' + (f'?key={video_key(token, video_id)}' if token else '')
        return {'id': record.id, 'paths': paths, 'frames': record.frames, 'duration': record.duration,
                'width': record.width, 'height': record.height, 'crop': _crop_json(record.crop),
                'indexed_at': record.indexed_at,
                'thumbnails': [f'/videos/{video_id}/thumbnails/{i}.jpg' for i in range(record.thumbnails)],
                'file': file_url}

    @app.get('/videos/{video_id}/file', response_class=FileResponse)
    def video_file(video_id: VIDEO_ID):
        """The video itself, for the page's players (HTTP range requests): the first of
        its indexed files still present and unchanged since it was indexed. The file is
        found in the catalog by the checked id, never named by the request's text. With a
        token: the bearer header, or the ``key`` that ``/videos/{id}`` gives."""
        file, stat = _video_file(service(), video_id)
        media = mimetypes.guess_type(file.name)[0] or 'application/octet-stream'
        return FileResponse(file, media_type=media, stat_result=stat)

    @app.get('/videos/{video_id}/at/{ms}.jpg', response_class=Response)
    def thumbnail_at_time(video_id: VIDEO_ID, ms: Annotated[int, PathParam(ge=0, le=10 ** 9)]):
        """A thumbnail of the frame shown ``ms`` milliseconds into the video (segment
        times), made from its file as the index makes its own: what the page shows of a
        copied segment. Found as ``/videos/{id}/file`` finds it; kept once made."""
        s = service()

        def make() -> bytes:
            file, _ = _video_file(s, video_id)
            try:
                made = thumbnail_at(file, ms / 1000)
            except VideoDecodeError:  # its message names the server's path: not sent
                raise HTTPException(500, f'cannot decode video {video_id} at {ms / 1000:g} s')
            if made is None:
                raise HTTPException(404, f'video {video_id} has no frame at {ms / 1000:g} s')
            return made
        made = s.frame_thumbnail((video_id, ms), make)
        return Response(made, media_type='image/jpeg', headers={'cache-control': 'private, max-age=3600'})

    @app.get('/videos/{video_id}/thumbnails/{number}.jpg', response_class=FileResponse)
    def thumbnail(video_id: VIDEO_ID, number: Annotated[int, PathParam(ge=0, le=1000)]):
        """A small JPEG made at index time. The file's name is built from the checked
        id and number, never from the request's text."""
        s = service()
        with s.using(vectors=False):
            record = _record(s.index, video_id)
        if number >= record.thumbnails:
            raise HTTPException(404, f'video {video_id} has {record.thumbnails} thumbnail(s)')
        return FileResponse(s.index.thumbnails.path(record.id, number), media_type='image/jpeg')

    @app.get('/pairs/{a}/{b}')
    def pair(a: VIDEO_ID, b: VIDEO_ID,
             segment_threshold: Annotated[Optional[float], Query(allow_inf_nan=False)] = None):
        """Where the copy is: the fg similarity of two indexed videos and their copied
        segments (seconds; a's timeline is the query's), with both durations."""
        s = service()
        with s.using(vectors=False):
            view, records = _pair_view(s, a, b, segment_threshold)
            thresholds = s.index.thresholds()
        return {'a': a, 'b': b, 'similarity': view.similarity,
                # The score /duplicates groups by (the fine similarity rescaled) and its threshold.
                'score': view.similarity / 2 + 0.5, 'threshold': thresholds.copy,
                'threshold_calibrated': thresholds.copy_calibrated,
                'durations': [video_duration(s.index.catalog.times(r.id), r.frames, view.time_step)
                              for r in records],
                'segments': [s.as_dict() for s in view.segments_in_seconds()],
                'heatmap': f'/pairs/{a}/{b}/heatmap.png'}

    @app.get('/pairs/{a}/{b}/heatmap.png', response_class=Response)
    def heatmap(a: VIDEO_ID, b: VIDEO_ID,
                segment_threshold: Annotated[Optional[float], Query(allow_inf_nan=False)] = None):
        """The fg student's similarity heatmaps of the pair, as `dns show` draws them."""
        s = service()
        out = io.BytesIO()
        with s.using(vectors=False):
            view, _ = _pair_view(s, a, b, segment_threshold)
            names = _name(s.index, a), _name(s.index, b)
        with s.plotting:
            view.plot(*names, out)
        return Response(out.getvalue(), media_type='image/png')

    @app.get('/decisions')
    def decisions():
        """Every reviewer's decision."""
        s = service()
        with s.using(vectors=False):
            return decisions_json(s.index.catalog.decisions())

    @app.post('/decisions')
    def decide(request: DecisionRequest):
        """Mark pairs (paths as given at index time; a group: all its pairs) a copy or
        not a copy; `dns dedup` and /duplicates follow it."""
        s = service()
        with s.using(vectors=False):
            try:
                shown = {pair_key(p.a, p.b): (p.score, json.dumps(p.segments) if p.segments else None)
                         for p in request.shown}
                recorded, action = s.index.catalog.decide(request.pairs, request.decision, bulk=request.bulk,
                                                          reviewer=request.reviewer or None, shown=shown)
            except UnknownFileError as error:
                raise HTTPException(404, str(error))
            except ValueError as error:
                raise HTTPException(400, str(error))
        return {'recorded': decisions_json({(d.a, d.b): d for d in recorded}), 'decision': request.decision,
                'bulk': action}

    @app.delete('/decisions/bulk/{action}')
    def undo_bulk(action: Annotated[str, PathParam(pattern=r'^[0-9a-f]{32}$', description='a group action id')]):
        """Undo a group action in one step: forget the decisions it wrote that no
        reviewer has changed since."""
        s = service()
        with s.using(vectors=False):
            undone = s.index.catalog.undo_bulk(action)
        return {'undone': [{'a': a, 'b': b} for a, b in undone]}

    @app.get('/decisions.csv', response_class=PlainTextResponse)
    def decisions_csv():
        """The decisions as CSV: a,b,decision,decided_at,score,segments,reviewer."""
        s = service()
        out = io.StringIO()
        with s.using(vectors=False):
            write_decisions_csv(s.index.catalog.decisions(), out)
        return PlainTextResponse(out.getvalue(), media_type='text/csv',
                                 headers={'content-disposition': 'attachment; filename="dns-decisions.csv"'})

    @app.get('/', include_in_schema=False)
    def page():
        return FileResponse(PAGE / 'index.html')

    app.mount('/page', StaticFiles(directory=PAGE), name='page')
    return app


def _search(s: Service, query, k, rerank, candidates, segments, segment_threshold):
    try:
        return search(s.index, s.models, query, k=k, rerank=rerank, candidates=candidates, segments=segments,
                      segment_threshold=segment_threshold)
    except ValueError as error:
        raise HTTPException(422, str(error))


def _indexed_id(index: VideoIndex, path: str) -> str:
    """The id of an indexed file named by the request: looked up in the catalog (as
    given at index time, or absolute), never opened."""
    video_id = index.catalog.ids_of_given([path]).get(path) or index.video_id_of(path)
    if video_id is None:
        raise HTTPException(404, f'not an indexed file: {path!r} (give a path as it was given at index time)')
    return video_id


def _crop_json(crop: Optional[str]) -> Optional[Dict[str, int]]:
    """The borders cut off a video before the extractor (display pixels), None when
    none were looked for (indexed before)."""
    if crop is None:
        return None
    return dict(zip(('top', 'bottom', 'left', 'right'), (int(v) for v in crop.split(','))))


def _record(index: VideoIndex, video_id: str):
    record = index.catalog.video(video_id)
    if record is None:
        raise HTTPException(404, f'no video {video_id} in the index')
    return record


def _video_file(s: Service, video_id: str) -> Tuple[Path, os.stat_result]:
    """The first of a video's indexed files still present with its content: found in
    the catalog by the checked id, never named by the request's text."""
    with s.using(vectors=False):
        _record(s.index, video_id)
        files = [Path(abspath) for _, abspath in s.index.catalog.paths([video_id]).get(video_id, [])]
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        if s.unchanged(file, stat, video_id):
            return file, stat
    raise HTTPException(404, f'no file of video {video_id} is where it was indexed with that content '
                             '(moved, removed or rewritten since: index it again)')


def _name(index: VideoIndex, video_id: str) -> str:
    paths = index.catalog.paths([video_id]).get(video_id)
    return paths[0][0] if paths else video_id


def _pair_view(s: Service, a: str, b: str, segment_threshold):
    """Inside the caller's ``s.using()``."""
    records = [_record(s.index, video_id) for video_id in (a, b)]
    return pair_view(s.index, s.models, s.index.representation(a), s.index.representation(b),
                     segment_threshold, target_id=b), records


def is_loopback(host: str) -> bool:
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def serve(index_folder: Union[str, os.PathLike], host: str = defaults.HOST, port: int = defaults.PORT, token: Optional[str] = None,
          **options) -> int:
    """Run the service until interrupted. Binding anything but loopback needs a token."""
    import uvicorn
    if not is_loopback(host) and not token:
        print(f'dns serve: error: binding {host} (not loopback) exposes the index to the network; give a token '
              '(--token or DNS_TOKEN) that every request must send', file=sys.stderr)
        return 2
    if not (Path(index_folder) / 'catalog.sqlite').is_file():
        print(f'dns serve: error: no index in {index_folder}: make one with `dns index --index {index_folder} '
              'VIDEOS...`', file=sys.stderr)
        return 2
    app = create_app(index_folder, token=token or None, **options)
    print(f'dns serve: http://{host}:{port}/ (index {os.path.abspath(index_folder)}; API docs at /docs)',
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level='warning')
    return 0
