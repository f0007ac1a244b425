"""The Ray engine's work for its workers: the stages of ``..stages`` as Ray Data rows,
hashing a file and decoding it into the extractor's 256x256 crops (CPU tasks), and
representing whole batches of videos (an actor holding the models). Nothing here writes
to the index: the driver does."""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ....core import DnS, VideoRepresentation
from ....defaults import FRAME_SIZE
from ....video_decode import VideoDecodeError
from ...storage.thumbnails import ThumbnailKeeper
from ..stages import Review, crop_batches, decoded_frames, file_sha256, represent, run_across_videos, unusable

NO_CROPS = np.zeros((0, FRAME_SIZE, FRAME_SIZE, 3), np.uint8)


@dataclass
class VideoResult:
    """What a worker made of one video, all the driver needs to commit it: its
    representation, or why it failed. Per-video data added later goes here."""
    video_id: str
    representation: Optional[VideoRepresentation] = None
    reason: str = ''          # why the video failed ('' when represented)


def hash_file(row: Dict[str, Any]) -> Dict[str, Any]:
    """{'path', 'file'} -> also 'video_id' (the content hash) and 'reason' ('' if it
    could be read)."""
    try:
        return {**row, 'video_id': file_sha256(row['file']), 'reason': ''}
    except VideoDecodeError as error:
        return {**row, 'video_id': '', 'reason': error.reason}


def decode_crops(row: Dict[str, Any], time_step: float) -> List[Dict[str, Any]]:
    """{'path', 'file', 'video_id'} -> one row, with 'crops', the sampled frames resized
    and cropped exactly as the operator does it (uint8 [T, 256, 256, 3]), 'reason', and
    the video's 'review'."""
    keeper = ThumbnailKeeper()
    try:
        crops = [batch.numpy() for batch in crop_batches(decoded_frames(row['file'], time_step, keeper))]
        return [{**row, 'crops': np.concatenate(crops) if crops else NO_CROPS, 'reason': '',
                 'review': Review.of(keeper)}]
    except VideoDecodeError as error:
        reason = error.reason
    except ValueError as error:  # no frame in the sampled span
        reason = unusable(row['file'], error).reason
    return [{**row, 'crops': NO_CROPS, 'reason': reason, 'review': Review()}]


class Representer:
    """An actor holding the DnS models: the frames of every video of a call go through
    the feature extractor in full batches (across videos), then the students run per
    video. ``model_options`` are ``DnS``'s keyword arguments."""

    def __init__(self, fine: str, model_options: Dict[str, Any]):
        self.dns = DnS(fine, **model_options)

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        count = len(batch['video_id'])
        results = [VideoResult(str(batch['video_id'][i]), reason=str(batch['reason'][i]))
                   for i in range(count)]
        todo = [i for i in range(count) if not results[i].reason]
        encoder = self.dns.encoder
        features = run_across_videos([torch.from_numpy(batch['crops'][i]) for i in todo], encoder.batch_size,
                                     encoder.encode_crops)
        for i, video_features in zip(todo, features):
            try:
                results[i].representation = represent(self.dns, str(batch['path'][i]), video_features,
                                                       batch['review'][i])
            except VideoDecodeError as error:  # frames the extractor cannot use
                results[i].reason = error.reason
        return {'result': np.array(results, dtype=object)}
