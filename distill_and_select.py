"""The Towhee operator: decoded video frames in, a DnS representation out."""
from typing import Any, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn
from towhee.operator import NNOperator

from .compilation import CompiledExtractor
from .localization import Segment, find_segments
from .localization.alignment import DEFAULT_THRESHOLD as DEFAULT_SEGMENT_THRESHOLD
from .preprocess import (check_features, check_vector, frame_batches, iter_rgb_frames,
                         resize_center_crop)
from .pretrained import NETWORKS, load_network

CG_DIMS = 1024
AUTOCAST_DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


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
            it pays from a few hundred frames on (see the README's Performance section).
    """

    def __init__(self, model_name: str, model_weight_path: Optional[str] = None,
                 feature_extractor: Union[str, nn.Module, None] = 'default',
                 device: Optional[str] = None, batch_size: int = 32, hf_repo: Optional[str] = None,
                 precision: str = 'fp32', compile: bool = False):
        super().__init__()
        if model_name not in NETWORKS:
            raise ValueError(f'unknown model_name {model_name!r}; expected one of {", ".join(NETWORKS)}')
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
        self.model_name = model_name
        self.batch_size = batch_size
        self.device = torch.device(device if device is not None else ('cuda' if torch.cuda.is_available() else 'cpu'))
        if precision not in AUTOCAST_DTYPES or (precision == 'fp16' and self.device.type != 'cuda'):
            raise ValueError(f"precision must be 'fp32', 'bf16' or (on CUDA) 'fp16', got {precision!r} "
                             f'on {self.device.type}')
        self.precision = precision
        self.model = load_network(model_name, model_weight_path, hf_repo).to(self.device)
        if model_name == 'feature_extractor':
            self.extractor = self.model.to(memory_format=torch.channels_last)
        elif isinstance(feature_extractor, nn.Module):
            self.extractor = feature_extractor.eval().to(self.device)
        elif feature_extractor == 'default':
            self.extractor = load_network('feature_extractor', hf_repo=hf_repo).to(
                self.device, memory_format=torch.channels_last)
        elif feature_extractor is None:
            self.extractor = None
        else:
            raise ValueError(f"feature_extractor must be 'default', None or an nn.Module, got {feature_extractor!r}")
        if not isinstance(compile, bool):
            raise ValueError(f'compile must be True or False, got {compile!r}')
        if compile:
            if self.extractor is None:
                raise ValueError('compile=True compiles the feature extractor, and feature_extractor=None has none')
            self.extractor = CompiledExtractor(self.extractor, batch_size, self.device)

    @torch.inference_mode()
    def __call__(self, data: Any) -> np.ndarray:
        """Frames (or, with ``feature_extractor=None``, features [T, 9, 512]) of one
        video -> feature_extractor and fg students [T, 9, 512], cg_student [1024],
        selectors a 0-d array; float32."""
        features = self.extract_features(data)
        if self.model_name == 'feature_extractor':
            out = features
        elif self.model_name == 'cg_student':
            out = self.model.index_video(features[None])[0]
        else:
            out = self.model.index_video(features)
        return out.float().cpu().numpy()

    def extract_features(self, data: Any) -> torch.Tensor:
        """Region features [T, 9, 512] of one video, ``batch_size`` frames at a time:
        only the features accumulate, never the frames or activations."""
        if self.extractor is None:
            return check_features(data).to(self.device)
        chunks = [self.extract_crops(resize_center_crop(batch, self.device))
                  for batch in frame_batches(iter_rgb_frames(data), self.batch_size)]
        # One check per video: a per-batch check would wait for the GPU every batch.
        return check_features(torch.cat(chunks), 'feature extractor output')

    @torch.inference_mode()
    def extract_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """Region features [N, 9, 512] (float32, unchecked) of frames already resized and
        cropped (``preprocess.resize_center_crop``: [N, 256, 256, 3], 0..255), in one batch."""
        if crops.device.type == 'cpu' and self.device.type == 'cuda':
            crops = crops.pin_memory()  # so that the copy to the GPU runs asynchronously
        dtype = AUTOCAST_DTYPES[self.precision]
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            return self.extractor(crops.to(self.device, non_blocking=True).float()).float()

    @torch.inference_mode()
    def similarity(self, query: Any, target: Any) -> Union[float, np.ndarray]:
        """Similarity of the query's representation with one target (a float) or a
        list of targets (an array), each value that of the pair alone. fg students:
        the student's comparator on [T, 9, 512], in memory bounded whatever the videos'
        lengths and the number of targets; cg_student: dot product of [1024]."""
        if self.model_name.startswith('fg_'):
            check = check_features
            q = check(query, 'query').to(self.device)
        elif self.model_name == 'cg_student':
            def check(v, what):
                return check_vector(v, CG_DIMS, what)
            q = check(query, 'query').to(self.device)
        else:
            raise ValueError(f'similarity is for the students; {self.model_name} has score() or nothing')
        single = _is_single(target, q.ndim)
        targets = [target] if single else list(target)
        if not targets:
            raise ValueError('expected at least one target, got an empty list')
        targets = [check(t, f'target {i}').to(self.device) for i, t in enumerate(targets)]
        # fg students batch the targets or tile long pairs themselves, in bounded memory.
        targets = torch.stack(targets) if self.model_name == 'cg_student' else targets
        sims = self.model.similarity(q, targets)
        sims = sims.float().cpu().numpy()
        return float(sims[0]) if single else sims

    @torch.inference_mode()
    def similarity_maps(self, query: Any, target: Any) -> Tuple[np.ndarray, np.ndarray]:
        """What an fg student's similarity of one pair is made of: the frame-to-frame
        similarity matrix [Tq, Tt] and the comparator's output [Tq/4, Tt/4], whose
        Chamfer similarity is ``similarity(query, target)`` (videos shorter than 4
        frames are stretched first). Long pairs are computed block by block: the two
        matrices are the only memory that grows with the lengths."""
        if not self.model_name.startswith('fg_'):
            raise ValueError(f'similarity_maps is for the fg students, not {self.model_name}')
        q = check_features(query, 'query').to(self.device)
        t = check_features(target, 'target').to(self.device)
        frames, out, sizes = self.model.compare(q, [t])
        rows, cols = sizes[0].tolist()
        return frames[0].float().cpu().numpy(), out[0, :rows, :cols].float().cpu().numpy()

    @torch.inference_mode()
    def score(self, query: Any, target: Any, coarse_similarity: Any) -> Union[float, np.ndarray]:
        """Selector score in (0, 1) of (query, target) pairs from their selector values
        and cg_student similarity; one target (a float) or a list (an array)."""
        if not self.model_name.startswith('selector_'):
            raise ValueError(f'score is for the selectors; {self.model_name} has similarity() or nothing')
        q = check_vector(np.atleast_1d(np.asarray(query, dtype=np.float32)), 1, 'query selector value')[0]
        single = np.ndim(target) == 0
        t = check_vector(np.atleast_1d(np.asarray(target, dtype=np.float32)), np.size(target), 'targets')
        c = check_vector(np.atleast_1d(np.asarray(coarse_similarity, dtype=np.float32)), len(t),
                         'coarse similarities (one per target)')
        if len(t) == 0:
            raise ValueError('expected at least one target, got an empty list')
        scores = self.model.score(q.to(self.device), t.to(self.device), c.to(self.device)).float().cpu().numpy()
        return float(scores[0]) if single else scores

    @torch.inference_mode()
    def segments(self, query: Any, target: Any,
                 threshold: Optional[float] = DEFAULT_SEGMENT_THRESHOLD) -> List[Segment]:
        """Where the copy is (fg students): the copied segments of one pair, from its
        frame-to-frame similarity matrix, best first. Each ``Segment`` gives frame
        indices, half-open: query frames [query_start, query_end) appear as target frames
        [target_start, target_end); ``score`` is the mean frame similarity along the
        match, shrunk for very short ones (copies 0.3 to 1). Only segments scoring at
        least ``threshold`` are returned (None: all found). A sped-up or slowed-down copy
        (up to 2x) is a segment whose spans differ in length; several pieces of one video
        in another are several segments; unrelated videos have none."""
        if not self.model_name.startswith('fg_'):
            raise ValueError(f'segments is for the fg students, not {self.model_name}')
        q = check_features(query, 'query').to(self.device)
        t = check_features(target, 'target').to(self.device)
        sim = self.model.frame_similarity_matrix(q, t)
        return find_segments(sim.float().cpu().numpy(), threshold=threshold)


def _is_single(target: Any, query_ndim: int) -> bool:
    if isinstance(target, (list, tuple)):
        return False
    return np.ndim(target) == query_ndim
