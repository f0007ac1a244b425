"""The DnS students: fine-grained (attention or binarization) and coarse-grained."""
from typing import Sequence

import torch
from torch import nn

from .layers import (Attention, Binarization, NetVLAD, VideoComparator, comparator_output_sizes, l2norm,
                     valid_mask)
from .similarities import chamfer, pad_videos, region_similarity, sign_similarity, stretch_to_min_frames


class FineGrainedStudent(nn.Module):
    """Region-level student: keeps [T, 9, 512] per video and compares videos with
    ViSiL's comparator. ``binarization=True`` keeps only signs (fg_bin)."""

    def __init__(self, binarization: bool = False, dims: int = 512):
        super().__init__()
        self.binarized = binarization
        if binarization:
            self.binarization = Binarization(dims)
        else:
            self.attention = Attention(dims)
        self.visil_head = VideoComparator()
        self.dims = dims

    def index_video(self, x: torch.Tensor) -> torch.Tensor:
        """Region features [..., T, R, D] -> the student's representation, same shape."""
        return self.binarization(x) if self.binarized else self.attention(x)

    def frame_similarity(self, query: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if not self.binarized:
            return region_similarity(query, targets)
        # Signs have norm sqrt(D) per vector: dividing by D brings dot products to [-1, 1].
        return sign_similarity(query, targets) / self.dims

    def similarity(self, query: torch.Tensor, targets: Sequence[torch.Tensor]) -> torch.Tensor:
        """Video similarity of one indexed query [Tq, R, D] with each indexed target
        [Ti, R, D]: a tensor [N], each value that of the pair alone."""
        _, out, out_sizes = self.compare(query, targets)
        return chamfer(out, valid_mask(out_sizes, out.shape[-2], out.shape[-1]))

    def compare(self, query: torch.Tensor, targets: Sequence[torch.Tensor]):
        """The two maps behind ``similarity``: frame-to-frame similarities [N, Tq, Tmax]
        and the comparator's output [N, Tq/4, Tmax/4] (clamped to [-1, 1]), with the
        valid output size [N, 2] of each target."""
        query = stretch_to_min_frames(query)
        padded, lengths = pad_videos([stretch_to_min_frames(t) for t in targets])
        sim = self.frame_similarity(query, padded)  # [N, Tq, Tmax]
        sizes = torch.stack([torch.full_like(lengths, query.shape[0]), lengths], dim=1)
        # Padded target frames are zero vectors: their cells are already 0, which is
        # what the comparator's zero padding shows a target alone.
        out = torch.clamp(self.visil_head(sim.unsqueeze(1), sizes), -1.0, 1.0).squeeze(1)
        return sim, out, comparator_output_sizes(sizes)


class CoarseGrainedStudent(nn.Module):
    """Video-level student: one 1024-d unit vector per video, compared by dot product."""

    def __init__(self, dims: int = 512, heads: int = 8, feedforward: int = 2048,
                 clusters: int = 64, output_dims: int = 1024):
        super().__init__()
        self.attention = Attention(dims)
        layer = nn.TransformerEncoderLayer(dims, heads, feedforward, dropout=0.1,
                                           activation='relu', batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, 1, norm=nn.LayerNorm(dims),
                                                 enable_nested_tensor=False)
        self.netvlad = NetVLAD(dims, clusters, output_dims)

    def index_video(self, x: torch.Tensor, mask: torch.Tensor = None) -> torch.Tensor:
        """Region features [N, T, R, D] (mask [N, T], True for real frames) -> [N, 1024]."""
        frames = l2norm(self.attention(x).sum(dim=2))
        padding = None if mask is None else ~mask
        frames = self.transformer(frames, src_key_padding_mask=padding)
        return l2norm(self.netvlad(frames, mask))

    @staticmethod
    def similarity(query: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Dot products of one vector [1024] with targets [N, 1024] -> [N]."""
        return targets @ query
