"""Building blocks shared by the DnS networks: the attention and binarization layers
applied to region vectors, ViSiL's video comparator (a CNN over a frame-to-frame
similarity matrix) and NetVLAD aggregation."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

# The comparator pools twice by 2: a shorter video leaves an empty map.
MIN_FRAMES = 4


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


def stretch_to_min_frames(x: torch.Tensor, min_frames: int = MIN_FRAMES) -> torch.Tensor:
    """Repeat the frames of a video shorter than ``min_frames`` evenly along time.

    The original code fails on such videos; showing each frame for a proportional span
    (a 1-frame video becomes a 4-frame still) keeps the comparator's map non-empty and
    makes a video of n repeated frames score like its n-frame original.
    """
    t = x.shape[0]
    if t >= min_frames or t == 0:
        return x
    index = torch.arange(min_frames, device=x.device) * t // min_frames
    return x[index]


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
        # Pooling before the ReLU is the same (max commutes with a monotone function) on
        # 4x fewer values.
        x = F.relu(F.max_pool2d(_conv(self.conv1, _channels_last(sim)), 2))
        x = F.relu(F.max_pool2d(_conv(self.conv2, _zero_outside(x, sizes, 2)), 2))
        x = F.relu(_conv(self.conv3, _zero_outside(x, sizes, 4)))
        return _conv(self.fconv, x)


# On CPU, oneDNN runs these convolutions and poolings channels-last several times faster
# than channels-first (benchmarks/long_pairs.py); values change by float rounding only
# (~1e-7). A one-channel tensor's layout is ambiguous (it is contiguous either way) and
# convolutions then fall back to channels-first: the input gets the strides of a
# channels-last tensor explicitly, and the weights are made channels-last.

def _channels_last(sim: torch.Tensor) -> torch.Tensor:
    if sim.device.type != 'cpu':
        return sim
    n, c, h, w = sim.shape
    return torch.empty(n, h, w, c, dtype=sim.dtype, device=sim.device).permute(0, 3, 1, 2).copy_(sim)


def _conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    if x.device.type != 'cpu':
        return conv(x)
    return F.conv2d(x, conv.weight.contiguous(memory_format=torch.channels_last), conv.bias, conv.stride,
                    conv.padding)


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
