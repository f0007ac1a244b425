"""The work the Ray pipeline hands to its workers: hashing a file, decoding it into the
extractor's 256x256 crops (CPU tasks), and representing whole batches of videos (an
actor holding the models). Nothing here writes to the index: the driver does."""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ...preprocess import FRAME_SIZE, center_crops, check_features, frame_batches, iter_rgb_frames
from ...video_decode import VideoDecodeError, VideoDecoder
from ..index import file_sha256
from ..representation import DnSModels, VideoRepresentation
from ..thumbnails import ThumbnailKeeper
from .batching import run_across_videos

NO_CROPS = np.zeros((0, FRAME_SIZE, FRAME_SIZE, 3), np.uint8)
CROP_BATCH = 32  # frames resized at a time while decoding: memory stays flat


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
    the review's thumbnails and frame size, taken from the same decoded frames as the
    plain path takes them."""
    keeper = ThumbnailKeeper()
    try:
        decoded = VideoDecoder(time_step=time_step, short_side=FRAME_SIZE)(row['file'])
        frames = keeper.watch(iter_rgb_frames(keeper.source_size(decoded)))
        cpu = torch.device('cpu')
        crops = np.concatenate([center_crops(batch, cpu).numpy() for batch in frame_batches(frames, CROP_BATCH)])
        review = {'thumbnails': list(keeper.jpegs()), 'size': [keeper.width, keeper.height]}
        return [{**row, 'crops': crops, 'reason': '', **review}]
    except VideoDecodeError as error:
        reason = error.reason
    except ValueError as error:  # no frame in the sampled span
        reason = str(error)
    return [{**row, 'crops': NO_CROPS, 'reason': reason, 'thumbnails': [],
             'size': [0, 0]}]


class Representer:
    """An actor holding the DnS models: the frames of every video of a call go through
    the feature extractor in full batches (across videos), then the students run per
    video. ``model_options`` are what ``VideoIndex.make_models`` takes."""

    def __init__(self, fine: str, model_options: Dict[str, Any]):
        self.models = DnSModels(fine, **model_options)

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        count = len(batch['video_id'])
        results = [VideoResult(str(batch['video_id'][i]), reason=str(batch['reason'][i]))
                   for i in range(count)]
        todo = [i for i in range(count) if not results[i].reason]
        extractor = self.models.extractor
        features = run_across_videos([batch['crops'][i] for i in todo], extractor.batch_size,
                                     lambda crops: extractor.extract_crops(torch.from_numpy(crops)))
        for i, video_features in zip(todo, features):
            try:
                # The check the operator makes once per video, before the students; the
                # features stay on the device.
                representation = self.models.represent_features(
                    check_features(video_features, 'feature extractor output'))
                representation.thumbnails = tuple(batch['thumbnails'][i])
                representation.width, representation.height = (int(v) for v in batch['size'][i])
                results[i].representation = representation
            except ValueError as error:  # frames the extractor cannot use
                results[i].reason = str(error)
        return {'result': np.array(results, dtype=object)}

