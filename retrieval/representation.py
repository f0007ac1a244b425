"""The DnS networks an index needs, and what they make of one video."""
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch

from ..distill_and_select import DistillAndSelect

# The fine-grained student chosen at index time, and the selector trained with it.
FINE_STUDENTS: Dict[str, Tuple[str, str]] = {
    'att': ('fg_att_student', 'selector_att'),
    'bin': ('fg_bin_student', 'selector_bin'),
}


@dataclass
class VideoRepresentation:
    """Everything DnS keeps of a video: the fine-grained student's [T, 9, 512], the
    coarse-grained student's unit vector [1024] and the selector's value; for review,
    a few small JPEGs of it and its decoded frame size (empty and 0 when not made)."""
    fine: np.ndarray
    coarse: np.ndarray
    selector: float
    thumbnails: Tuple[bytes, ...] = ()
    width: int = 0
    height: int = 0

    @property
    def frames(self) -> int:
        return len(self.fine)


class DnSModels:
    """The feature extractor (run once per video) and the three networks that index
    its features: the fine student, the coarse student and the matching selector."""

    def __init__(self, fine: str, device: Optional[str] = None, precision: str = 'fp32',
                 batch_size: int = 32, hf_repo: Optional[str] = None, compile: bool = False):
        if fine not in FINE_STUDENTS:
            raise ValueError(f'fine must be one of {", ".join(FINE_STUDENTS)}, got {fine!r}')
        self.fine = fine
        fine_name, selector_name = FINE_STUDENTS[fine]
        self.extractor = DistillAndSelect('feature_extractor', device=device, precision=precision,
                                          batch_size=batch_size, hf_repo=hf_repo, compile=compile)
        device = str(self.extractor.device)
        self.fine_student = DistillAndSelect(fine_name, feature_extractor=None, device=device, hf_repo=hf_repo)
        self.coarse_student = DistillAndSelect('cg_student', feature_extractor=None, device=device, hf_repo=hf_repo)
        self.selector = DistillAndSelect(selector_name, feature_extractor=None, device=device, hf_repo=hf_repo)

    def represent(self, frames: Any, thumbnails: int = 0) -> VideoRepresentation:
        """Frames of one video (a list or an iterator, consumed batch by batch) -> its
        representation, with ``thumbnails`` small JPEGs taken on the way (0: none).
        Raises ValueError when there is no frame."""
        keeper = None
        if thumbnails:
            from ..preprocess import iter_rgb_frames
            from .thumbnails import ThumbnailKeeper
            keeper = ThumbnailKeeper(thumbnails)
            frames = keeper.watch(iter_rgb_frames(keeper.source_size(frames)))
        with torch.inference_mode():  # features stay a tensor on the device for the students
            features = self.extractor.extract_features(frames)
        representation = self.represent_features(features)
        if keeper is not None:
            representation.thumbnails = keeper.jpegs()
            representation.width, representation.height = keeper.width, keeper.height
        return representation

    def represent_features(self, features: Union[np.ndarray, torch.Tensor]) -> VideoRepresentation:
        """The feature extractor's output [T, 9, 512] of one video (an array, or a tensor
        left on the models' device) -> its representation."""
        return VideoRepresentation(fine=self.fine_student(features), coarse=self.coarse_student(features),
                                   selector=float(self.selector(features)))
