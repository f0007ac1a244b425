"""Building blocks shared by the DnS networks (ARCHITECTURE.md, sections Attention,
Binarization, VideoComparator, NetVLAD)."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def l2norm(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return F.normalize(x, p=2.0, dim=dim)


class Attention(nn.Module):
    """Per-region attention weight in (0, 1): x * sigmoid(u . tanh(W x + b))."""

    def __init__(self, dims: int = 512):
        super().__init__()
        self.transform = nn.Linear(dims, dims)
        self.context_vector = nn.Linear(dims, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.context_vector(torch.tanh(self.transform(x))))
        return x * weights


class Binarization(nn.Module):
    """Signs of a learned projection: 1 bit per element of the region vectors."""

    def __init__(self, dims: int = 512):
        super().__init__()
        self.W = nn.Parameter(torch.empty(dims, dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sign(l2norm(x) @ self.W)


class VideoComparator(nn.Module):
    """ViSiL's CNN that turns a frame-to-frame similarity matrix into a video-to-video one.

    ``lengths`` lets one padded batch of matrices give each matrix exactly the result it
    gets alone: before every convolution the cells beyond the matrix's own (pooled) size
    are zeroed, which is what the convolution's zero padding sees when the matrix is
    alone, and the output is cropped per matrix by the caller (``output_sizes``).
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.fconv = nn.Conv2d(128, 1, 1)

    def forward(self, sim: torch.Tensor, sizes: Optional[torch.Tensor] = None) -> torch.Tensor:
        """sim: [N, 1, H, W]; sizes: [N, 2] valid (rows, cols) of each matrix, or None."""
        x = F.max_pool2d(F.relu(self.conv1(sim)), 2)
        x = F.max_pool2d(F.relu(self.conv2(_zero_outside(x, sizes, 2))), 2)
        x = F.relu(self.conv3(_zero_outside(x, sizes, 4)))
        return self.fconv(x)


def comparator_output_sizes(sizes: torch.Tensor) -> torch.Tensor:
    """Valid output size of VideoComparator for input sizes [N, 2] (two floor-halvings)."""
    return sizes // 4


def _zero_outside(x: torch.Tensor, sizes: Optional[torch.Tensor], factor: int) -> torch.Tensor:
    if sizes is None:
        return x
    return x * valid_mask(sizes // factor, x.shape[-2], x.shape[-1])[:, None].to(x.dtype)


def valid_mask(sizes: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """[N, rows, cols] boolean mask of the top-left sizes[n] block of each matrix."""
    r = torch.arange(rows, device=sizes.device)[None, :, None] < sizes[:, 0, None, None]
    c = torch.arange(cols, device=sizes.device)[None, None, :] < sizes[:, 1, None, None]
    return r & c


class NetVLAD(nn.Module):
    """NetVLAD aggregation of frame vectors into one video vector, then a learned
    reduction to ``output_dims``."""

    def __init__(self, dims: int = 512, clusters: int = 64, output_dims: int = 1024):
        super().__init__()
        self.centroids = nn.Parameter(torch.empty(clusters, dims))
        self.conv = nn.Conv2d(dims, clusters, 1, bias=False)
        self.reduction_layer = nn.Linear(clusters * dims, output_dims, bias=False)
        self.norm = nn.LayerNorm(output_dims)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: [N, T, D]; mask: [N, T] True for real frames. Returns [N, output_dims]."""
        logits = self.conv(x.transpose(1, 2).unsqueeze(-1)).squeeze(-1)  # [N, K, T]
        assignment = torch.softmax(logits, dim=1)
        if mask is not None:
            assignment = assignment * mask[:, None, :].to(assignment.dtype)
        # sum_t a_k(t) (x_t - c_k) = sum_t a_k(t) x_t - c_k sum_t a_k(t), all clusters at once
        vlad = assignment @ x - assignment.sum(-1, keepdim=True) * self.centroids[None]
        vlad = l2norm(vlad).flatten(1)
        vlad = l2norm(vlad)
        return self.norm(self.reduction_layer(vlad))
