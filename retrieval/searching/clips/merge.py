"""One candidate list from clip hits and video-level hits."""
from itertools import zip_longest
from typing import List, Optional, Sequence


def merge_candidates(clip_ids: Sequence[str], video_ids: Sequence[str], cap: Optional[int]) -> List[str]:
    """Both lists taken in turn, best first, each id once, at most ``cap`` (None: all).
    Turns, not one list first: a clip copied into a long video is found by the clip
    list only, a whole-video copy (re-encoded, cropped) by both, a heavily edited whole
    copy sometimes by the video list only; a small budget keeps the head of each."""
    out, seen = [], set()
    for pair in zip_longest(clip_ids, video_ids):
        for video_id in pair:
            if video_id is not None and video_id not in seen:
                seen.add(video_id)
                out.append(video_id)
    return out if cap is None else out[:cap]
