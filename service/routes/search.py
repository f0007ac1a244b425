"""POST /search: the videos most similar to an uploaded video or an indexed file,
with every option of `dns search`."""
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Optional

from fastapi import APIRouter, File, Form, HTTPException, UploadFile

from ... import defaults
from ...retrieval.storage.catalog import UnknownFileError
from ...retrieval.ingestion.ingest import query_representation
from ...retrieval.searching.results import search_json
from ...retrieval.searching.search import search
from ...retrieval.storage.vector_store import MAX_LIMIT
from ..state import Service, ServiceDep
from ..workers import UploadFailure
from .shared import SEGMENT_BACKGROUND_HELP

COPY_CHUNK = 1 << 20  # bytes copied at a time from the spooled upload to its file

router = APIRouter()


@router.post('/search')
def search_endpoint(
        s: ServiceDep,
        video: Annotated[Optional[UploadFile], File(description='a video file to search with')] = None,
        path: Annotated[Optional[str], Form(description='an indexed file, as given at index time')] = None,
        k: Annotated[int, Form(ge=1, le=MAX_LIMIT)] = defaults.K,
        rerank: Annotated[float, Form(ge=0, le=1)] = defaults.RERANK,
        candidates: Annotated[int, Form(ge=1, le=MAX_LIMIT)] = defaults.CANDIDATES,
        clips: Annotated[bool, Form(description='candidates from clip hits too, so that a short clip inside '
                                                'a long video is found')] = defaults.CLIPS,
        segments: Annotated[bool, Form()] = False,
        segment_threshold: Annotated[Optional[float], Form(allow_inf_nan=False)] = None,
        segment_background: Annotated[Optional[bool], Form(description=SEGMENT_BACKGROUND_HELP)] = None):
    """The videos most similar to a query: the JSON of `dns search --json`."""
    if (video is None) == (path is None):
        raise HTTPException(400, 'give either an uploaded video (multipart field "video") or path=')
    options = dict(k=k, rerank=rerank, candidates=candidates, clips=clips, segments=segments,
                   segment_threshold=segment_threshold, segment_background=segment_background)
    if video is not None:
        label = video.filename or 'upload'
        query = _represent_upload(s, video, label)
        with s.using():
            matches = _search(s, query, options)
    else:
        label = path
        with s.using():
            try:
                query = query_representation(s.index, path, s.models, indexed_only=True)
            except UnknownFileError as error:
                raise HTTPException(404, str(error))
            matches = _search(s, query, options)
    with s.using():
        copy_threshold = s.index.thresholds().copy
    return search_json(label, rerank, matches, copy_threshold)


def _represent_upload(s: Service, video: UploadFile, label: str):
    """The upload's representation, made by a worker process; saved under a fixed name
    in a fresh folder (the client's file name never reaches the file system)."""
    with tempfile.TemporaryDirectory(prefix='dns-upload-') as folder:
        saved = Path(folder) / 'query'
        with open(saved, 'wb') as out:
            shutil.copyfileobj(video.file, out, COPY_CHUNK)
        try:
            return s.workers.represent(str(saved), s.max_query_seconds)
        except UploadFailure as error:
            # FFmpeg's messages name the file they read: the client's name, never the server's path.
            error.reason = error.reason.replace(repr(str(saved)), repr(label)).replace(str(saved), label)
            if error.undecodable:
                error.reason = f'cannot decode the uploaded video {label!r}: {error.reason}'
            raise


def _search(s: Service, query, options: dict):
    try:
        return search(s.index, s.models, query, **options)
    except ValueError as error:
        raise HTTPException(422, str(error))
