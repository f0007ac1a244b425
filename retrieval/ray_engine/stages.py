"""The work the Ray pipeline hands to its workers: hashing a file, decoding it into the
extractor's 256x256 crops (CPU tasks), and representing whole batches of videos (an
actor holding the models). Nothing here writes to the index: the driver does."""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ...core import DnS, VideoRepresentation
from ... import defaults
from ...defaults import FRAME_SIZE
from ...preprocess import center_crops, frame_batches
from ...video_decode import VideoDecodeError
from ..ingest import decoded_frames, file_sha256, with_review
from ..thumbnails import ThumbnailKeeper
from .batching import run_across_videos

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
    the review's thumbnails and frame size, decoded by the ingestion path's own
    ``decoded_frames``."""
    keeper = ThumbnailKeeper()
    try:
        frames = decoded_frames(row['file'], time_step, keeper)
        cpu = torch.device('cpu')
        crops = np.concatenate([center_crops(batch, cpu).numpy() for batch in
                                 frame_batches(frames, defaults.CROP_BATCH)])
        times = keeper.sample_times()
        review = {'thumbnails': list(keeper.jpegs()), 'size': [keeper.width, keeper.height],
                  'times': [] if times is None else times.tolist(), 'crop': list(keeper.crop or ())}
        return [{**row, 'crops': crops, 'reason': '', **review}]
    except VideoDecodeError as error:
        reason = error.reason
    except ValueError as error:  # no frame in the sampled span
        reason = str(error)
    return [{**row, 'crops': NO_CROPS, 'reason': reason, 'thumbnails': [],
             'size': [0, 0], 'times': [], 'crop': []}]


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
        features = run_across_videos([batch['crops'][i] for i in todo], encoder.batch_size,
                                     lambda crops: encoder.crops(torch.from_numpy(crops)))
        for i, video_features in zip(todo, features):
            try:
                results[i].representation = with_review(self.dns.represent_features(video_features),
                                                        batch['thumbnails'][i], *batch['size'][i],
                                                        list(batch['times'][i]) or None,
                                                        list(batch['crop'][i]) or None)
            except ValueError as error:  # frames the extractor cannot use
                results[i].reason = str(error)
        return {'result': np.array(results, dtype=object)}
