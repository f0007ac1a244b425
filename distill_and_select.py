"""The Towhee operator: decoded video frames in, a DnS representation out. A thin
adapter over ``core``: it loads one network by name and speaks numpy."""
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn
from towhee.operator import NNOperator

from . import core, defaults
from .localization import Segment
from .preprocess import check_features
from .pretrained import NETWORKS, load_network

class DistillAndSelect(NNOperator):
    """DnS (Distill-and-Select) video copy detection.

    Args:
        model_name: 'feature_extractor', 'fg_att_student', 'fg_bin_student',
            'cg_student', 'selector_att' or 'selector_bin'.
        model_weight_path: a local file with the weights of ``model_name`` (published
            format or a bare state dict); None: the published weights.
        feature_extractor: 'default' (ResNet-50 L3-iMAC + PCA), None (the operator then
            takes region features [T, 9, 512] instead of frames), or an ``nn.Module``
            mapping frames [N, 256, 256, 3] float 0..255 to [N, 9, 512].
        device: 'cpu', 'cuda', 'cuda:1', ...; None picks CUDA when available.
        batch_size: frames through the feature extractor at a time; memory stays flat
            whatever the video's length.
        precision: 'fp32' (default), 'bf16' (CPU or CUDA) or 'fp16' (CUDA): autocast of the
            feature extractor's backbone; everything after it stays fp32.
        hf_repo: a Hugging Face Hub repository mirroring the published files (else the
            environment variable DNS_HF_REPO, else the published URLs).
        compile: run the feature extractor through ``torch.compile`` (Inductor with
            frozen, prepacked weights): 1.3x the frames/s on a 2-core CPU, for a one-time
            cost per batch shape (up to log2(batch_size) + 1 shapes) on the first
            videos; compiled code is cached on disk for later processes. Off by default:
            it pays from a few hundred frames on (docs/performance.md).
    """

    def __init__(self, model_name: str, model_weight_path: Optional[str] = None,
                 feature_extractor: Union[str, nn.Module, None] = 'default',
                 device: Optional[str] = None, batch_size: int = defaults.BATCH_SIZE, hf_repo: Optional[str] = None,
                 precision: str = defaults.PRECISION, compile: bool = False):
        super().__init__()
        if model_name not in NETWORKS:
            raise ValueError(f'unknown model_name {model_name!r}; expected one of {", ".join(NETWORKS)}')
        if not (feature_extractor is None or isinstance(feature_extractor, nn.Module)
                or (isinstance(feature_extractor, str) and feature_extractor == 'default')):
            raise ValueError(f"feature_extractor must be 'default', None or an nn.Module, got {feature_extractor!r}")
        self.model_name = model_name
        self.device = core.pick_device(device)
        core.check_encoder_options(self.device, batch_size, precision, compile)
        if compile and feature_extractor is None and model_name != 'feature_extractor':
            raise ValueError('compile=True compiles the feature extractor, and feature_extractor=None has none')
        self.model = load_network(model_name, model_weight_path, hf_repo).to(self.device)
        if model_name == 'feature_extractor':
            extractor = self.model
        elif feature_extractor == 'default':
            extractor = load_network('feature_extractor', hf_repo=hf_repo)
        else:
            extractor = feature_extractor
        self.encoder = None if extractor is None else core.FrameEncoder(extractor, self.device, batch_size, precision,
                                                                        compile)

    @torch.inference_mode()
    def __call__(self, data: Any) -> np.ndarray:
        """Frames (or, with ``feature_extractor=None``, features [T, 9, 512]) of one
        video -> feature_extractor and fg students [T, 9, 512], cg_student [1024],
        selectors a 0-d array; float32."""
        features = self.encoder(data) if self.encoder is not None else check_features(data).to(self.device)
        if self.model_name == 'feature_extractor':
            return features.float().cpu().numpy()
        return core.embed(self.model, features)

    def similarity(self, query: Any, target: Any) -> Union[float, np.ndarray]:
        """Similarity of the query's representation with one target (a float) or a
        list of targets (an array), each value that of the pair alone. fg students:
        the student's comparator on [T, 9, 512], in memory bounded whatever the videos'
        lengths and the number of targets; cg_student: dot product of [1024]."""
        if self.model_name.startswith('fg_'):
            return core.fine_similarity(self.model, query, target)
        if self.model_name == 'cg_student':
            return core.coarse_similarity(query, target)
        raise ValueError(f'similarity is for the students; {self.model_name} has score() or nothing')

    def similarity_maps(self, query: Any, target: Any) -> Tuple[np.ndarray, np.ndarray]:
        """What an fg student's similarity of one pair is made of: the frame-to-frame
        similarity matrix [Tq, Tt] and the comparator's output [Tq/4, Tt/4], whose
        Chamfer similarity is ``similarity(query, target)`` (videos shorter than 4
        frames are stretched first). Long pairs are computed block by block: the two
        matrices are the only memory that grows with the lengths."""
        self._require('fg_', 'similarity_maps')
        return core.similarity_maps(self.model, query, target)

    def score(self, query: Any, target: Any, coarse_similarity: Any) -> Union[float, np.ndarray]:
        """Selector score in (0, 1) of (query, target) pairs from their selector values
        and cg_student similarity; one target (a float) or a list (an array)."""
        if not self.model_name.startswith('selector_'):
            raise ValueError(f'score is for the selectors; {self.model_name} has similarity() or nothing')
        return core.selector_scores(self.model, query, target, coarse_similarity)

    def segments(self, query: Any, target: Any, threshold: Optional[float] = defaults.SEGMENT_THRESHOLD,
                 background: Optional[Sequence[Any]] = None) -> List[Segment]:
        """Where the copy is (fg students): the copied segments of one pair, from its
        frame-to-frame similarity matrix, best first. Each ``Segment`` gives frame
        indices, half-open: query frames [query_start, query_end) appear as target frames
        [target_start, target_end); ``score`` says how far the match stands above the
        pair's background, in robust standard deviations, beyond what chance reaches in a
        pair of this size. Only segments scoring at least ``threshold`` are returned
        (None: all found). A sped-up or slowed-down copy (up to 2x) is a segment whose
        spans differ in length; several pieces of one video in another are several
        segments; unrelated videos have none.

        ``background``: fine features of other videos of the collection (a few dozen
        drawn at random). A look-alike (two landscapes, two studios, a shared intro)
        stands out of its pair as a copy does; against the background it does not: each
        frame's similarity counts only as far as it rises above what the frame reaches
        in the third most similar background video. Background videos that are copies of
        the query or the target are left out for it; fewer than three left, no effect."""
        self._require('fg_', 'segments')
        levels = (None, None) if not background else (
            core.frame_levels(core.background_matches(self.model, query, background)),
            core.frame_levels(core.background_matches(self.model, target, background)))
        return core.copied_segments(self.model, query, target, threshold, *levels)

    def _require(self, prefix: str, method: str) -> None:
        if not self.model_name.startswith(prefix):
            raise ValueError(f'{method} is for the fg students, not {self.model_name}')
