"""One indexed video: its record, its file for the page's players, its thumbnails
(made at index time, and at segment times on demand). Files are found in the catalog by
the checked id, never named by a request's text."""
import mimetypes
import os
from pathlib import Path
from typing import Annotated, Dict, Optional, Tuple

from fastapi import APIRouter, HTTPException, Path as PathParam
from fastapi.responses import FileResponse, Response

from ...retrieval.storage.thumbnails import thumbnail_at
from ...video_decode import VideoDecodeError
from ..limits import video_key
from ..state import Service, ServiceDep
from .shared import VIDEO_ID, known_video

router = APIRouter()


@router.get('/videos/{video_id}')
def video_record(s: ServiceDep, video_id: VIDEO_ID):
    """One video: its files, length, frame size and thumbnails."""
    with s.using(vectors=False):
        record = known_video(s.index, video_id)
        paths = [given for given, _ in s.index.catalog.paths([video_id]).get(video_id, [])]
    # The file's URL carries a key for this video alone: a <video> element sends no header.
    file_url = f'/videos/{video_id}/file' + (f'?key={video_key(s.token, video_id)}' if s.token else '')
    return {'id': record.id, 'paths': paths, 'frames': record.frames, 'duration': record.duration,
            'width': record.width, 'height': record.height, 'crop': _crop_json(record.crop),
            'indexed_at': record.indexed_at,
            'thumbnails': [f'/videos/{video_id}/thumbnails/{i}.jpg' for i in range(record.thumbnails)],
            'file': file_url}


@router.get('/videos/{video_id}/file', response_class=FileResponse)
def video_file(s: ServiceDep, video_id: VIDEO_ID):
    """The video itself, for the page's players (HTTP range requests): the first of
    its indexed files still present and unchanged since it was indexed. The file is
    found in the catalog by the checked id, never named by the request's text. With a
    token: the bearer header, or the ``key`` that ``/videos/{id}`` gives."""
    file, stat = _present_file(s, video_id)
    media = mimetypes.guess_type(file.name)[0] or 'application/octet-stream'
    return FileResponse(file, media_type=media, stat_result=stat)


@router.get('/videos/{video_id}/at/{ms}.jpg', response_class=Response)
def thumbnail_at_time(s: ServiceDep, video_id: VIDEO_ID, ms: Annotated[int, PathParam(ge=0, le=10 ** 9)]):
    """A thumbnail of the frame shown ``ms`` milliseconds into the video (segment
    times), made from its file as the index makes its own: what the page shows of a
    copied segment. Found as ``/videos/{id}/file`` finds it; kept once made."""
    def make() -> bytes:
        file, _ = _present_file(s, video_id)
        try:
            made = thumbnail_at(file, ms / 1000)
        except VideoDecodeError:  # its message names the server's path: not sent
            raise HTTPException(500, f'cannot decode video {video_id} at {ms / 1000:g} s')
        if made is None:
            raise HTTPException(404, f'video {video_id} has no frame at {ms / 1000:g} s')
        return made
    made = s.frame_thumbnail((video_id, ms), make)
    return Response(made, media_type='image/jpeg', headers={'cache-control': 'private, max-age=3600'})


@router.get('/videos/{video_id}/thumbnails/{number}.jpg', response_class=FileResponse)
def thumbnail(s: ServiceDep, video_id: VIDEO_ID, number: Annotated[int, PathParam(ge=0, le=1000)]):
    """A small JPEG made at index time. The file's name is built from the checked
    id and number, never from the request's text."""
    with s.using(vectors=False):
        record = known_video(s.index, video_id)
    if number >= record.thumbnails:
        raise HTTPException(404, f'video {video_id} has {record.thumbnails} thumbnail(s)')
    return FileResponse(s.index.thumbnails.path(record.id, number), media_type='image/jpeg')


def _crop_json(crop: Optional[str]) -> Optional[Dict[str, int]]:
    """The borders cut off a video before the extractor (display pixels), None when
    none were looked for (indexed before)."""
    if crop is None:
        return None
    return dict(zip(('top', 'bottom', 'left', 'right'), (int(v) for v in crop.split(','))))


def _present_file(s: Service, video_id: str) -> Tuple[Path, os.stat_result]:
    """The first of a video's indexed files still present with its content: found in
    the catalog by the checked id, never named by the request's text."""
    with s.using(vectors=False):
        known_video(s.index, video_id)
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
