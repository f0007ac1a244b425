"""Where the copy is in two indexed videos: their similarity and copied segments
(GET /pairs/{a}/{b}) and `dns show`'s heatmaps of them, with its options."""
import io
from typing import Annotated, Optional

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ...retrieval.storage.index import VideoIndex, video_duration
from ...retrieval.searching.show import pair_view
from ..state import Service, ServiceDep
from .shared import SEGMENT_BACKGROUND_HELP, VIDEO_ID, known_video

router = APIRouter()


@router.get('/pairs/{a}/{b}')
def pair(s: ServiceDep, a: VIDEO_ID, b: VIDEO_ID,
         segment_threshold: Annotated[Optional[float], Query(allow_inf_nan=False)] = None,
         segment_background: Annotated[Optional[bool], Query(description=SEGMENT_BACKGROUND_HELP)] = None):
    """Where the copy is: the fg similarity of two indexed videos and their copied
    segments (seconds; a's timeline is the query's), with both durations."""
    with s.using(vectors=False):
        view, records = _pair_view(s, a, b, segment_threshold, segment_background)
        thresholds = s.index.thresholds()
    return {'a': a, 'b': b, 'similarity': view.similarity,
            # The score /duplicates groups by (the fine similarity rescaled) and its threshold.
            'score': view.similarity / 2 + 0.5, 'threshold': thresholds.copy,
            'threshold_calibrated': thresholds.copy_calibrated,
            'durations': [video_duration(s.index.catalog.times(r.id), r.frames, view.time_step)
                          for r in records],
            'segments': [segment.as_dict() for segment in view.segments_in_seconds()],
            'heatmap': f'/pairs/{a}/{b}/heatmap.png'}


@router.get('/pairs/{a}/{b}/heatmap.png', response_class=Response)
def heatmap(s: ServiceDep, a: VIDEO_ID, b: VIDEO_ID,
            segment_threshold: Annotated[Optional[float], Query(allow_inf_nan=False)] = None,
            segment_background: Annotated[Optional[bool], Query(description=SEGMENT_BACKGROUND_HELP)] = None):
    """The fg student's similarity heatmaps of the pair, as `dns show` draws them."""
    out = io.BytesIO()
    with s.using(vectors=False):
        view, _ = _pair_view(s, a, b, segment_threshold, segment_background)
        names = _name(s.index, a), _name(s.index, b)
    with s.plotting:
        view.plot(*names, out)
    return Response(out.getvalue(), media_type='image/png')


def _name(index: VideoIndex, video_id: str) -> str:
    paths = index.catalog.paths([video_id]).get(video_id)
    return paths[0][0] if paths else video_id


def _pair_view(s: Service, a: str, b: str, segment_threshold: Optional[float],
               segment_background: Optional[bool]):
    """Inside the caller's ``s.using()``."""
    records = [known_video(s.index, video_id) for video_id in (a, b)]
    return pair_view(s.index, s.models, s.index.representation(a), s.index.representation(b),
                     segment_threshold, segment_background, target_id=b), records
