"""Similarity functions of DnS: frame-to-frame region similarity and Chamfer
similarity (ARCHITECTURE.md), for one query against a padded batch of targets."""
import functools
from typing import Sequence, Tuple

import torch

# The comparator pools twice by 2: a shorter video leaves an empty map.
MIN_FRAMES = 4


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


def pad_videos(videos: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stack videos [T_i, ...] into [N, T_max, ...] with zeros, and their lengths [N]."""
    lengths = torch.tensor([v.shape[0] for v in videos], device=videos[0].device)
    return torch.nn.utils.rnn.pad_sequence(list(videos), batch_first=True), lengths


def region_similarity(query: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """S[n, i, j] = mean over query regions of max over target regions of <q_i, t_j>.

    query [Tq, R, D], targets [N, Tt, R, D] -> [N, Tq, Tt].
    """
    tq, r, d = query.shape
    n, tt, rt, _ = targets.shape
    # One plain matrix product: the fastest kernel on every device, bf16 included.
    sim = (query.reshape(tq * r, d) @ targets.reshape(n * tt * rt, d).T).view(tq, r, n, tt, rt)
    return sim.amax(dim=-1).float().mean(dim=1).permute(1, 0, 2)


def sign_similarity(query: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """region_similarity of -1/+1 codes, computed exactly and faster in bf16 where the
    hardware multiplies bf16 natively.

    Halving the target codes makes every dot product of 512-d codes an integer in
    [-256, 256], which bf16 holds exactly; the max over regions stays exact in bf16, and
    the mean runs in fp32. On this project's CPU (AVX512-BF16) the product is ~5x faster.
    """
    if not _fast_bf16(query.device):
        return region_similarity(query, targets)
    return 2 * region_similarity(query.bfloat16(), targets.bfloat16().mul_(0.5))


@functools.lru_cache(maxsize=None)
def _fast_bf16(device: torch.device) -> bool:
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported()
    try:
        return device.type == 'cpu' and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):  # a build without oneDNN: fp32 is the safe path
        return False


def chamfer(sim: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over target frames (last axis), mean over query frames; masked cells are
    left out, and so are rows with no valid cell. sim, mask: [N, Q, T] -> [N]."""
    best = sim.masked_fill(~mask, float('-inf')).max(dim=-1).values
    valid_rows = mask.any(dim=-1)
    best = torch.where(valid_rows, best, torch.zeros_like(best))
    return best.sum(-1) / valid_rows.sum(-1).clamp(min=1)
