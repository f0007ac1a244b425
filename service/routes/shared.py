"""What several routers take or check the same way: a video id in a URL and that it is
indexed, the segment background switch."""
from typing import Annotated

from fastapi import HTTPException, Path as PathParam

from ...retrieval.storage.catalog import VideoRecord
from ...retrieval.storage.index import VideoIndex

SEGMENT_BACKGROUND_HELP = ('measure segments against the library too (on/off; default: as the index was '
                           'calibrated)')
VIDEO_ID = Annotated[str, PathParam(pattern=r'^[0-9a-f]{64}$', description='a video id: the sha256 of its content')]


def known_video(index: VideoIndex, video_id: str) -> VideoRecord:
    """The catalog's record of ``video_id``; 404 when it is not indexed."""
    record = index.catalog.video(video_id)
    if record is None:
        raise HTTPException(404, f'no video {video_id} in the index')
    return record
