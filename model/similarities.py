"""The similarity functions of DnS (and ViSiL, which its fine-grained student follows).

Frame-to-frame region similarity: S[i, j] = mean over the query frame's regions of the
max over the target frame's regions of their dot product, for one query against a padded
batch of targets or targets side by side (exact and faster in bf16 for the -1/+1 codes
of the binarized student). Chamfer similarity: the mean over rows of the max over
columns; taken over the comparator's output, it is the video-to-video similarity.
"""
import functools
from typing import Sequence

import torch


def region_similarity(query: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """S[n, i, j] = mean over query regions of max over target regions of <q_i, t_j>.

    query [Tq, R, D], targets [N, Tt, R, D] -> [N, Tq, Tt].
    """
    tq, (n, tt) = query.shape[0], targets.shape[:2]
    return side_by_side_region_similarity(query, targets.unbind(0)).view(tq, n, tt).permute(1, 0, 2)


def side_by_side_region_similarity(query: torch.Tensor, targets: Sequence[torch.Tensor]) -> torch.Tensor:
    """region_similarity of a query [Tq, R, D] with targets [T_i, R, D] side by side, no
    padding: [Tq, sum T_i], target i in columns sum T_<i to sum T_<=i."""
    return _mean_of_max(query, _region_major(targets, query.dtype))


def sign_similarity(query: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """region_similarity of -1/+1 codes, computed exactly and faster in bf16 where the
    hardware multiplies bf16 natively. query [Tq, R, D], targets [N, Tt, R, D] -> [N, Tq, Tt]."""
    tq, (n, tt) = query.shape[0], targets.shape[:2]
    return side_by_side_sign_similarity(query, targets.unbind(0)).view(tq, n, tt).permute(1, 0, 2)


def side_by_side_sign_similarity(query: torch.Tensor, targets: Sequence[torch.Tensor]) -> torch.Tensor:
    """side_by_side_region_similarity of -1/+1 codes, exact, in bf16 where fast.

    Halving the target codes makes every dot product of 512-d codes an integer in
    [-256, 256], which bf16 holds exactly; the max over regions stays exact in bf16, and
    the mean runs in fp32. On this project's CPU (AVX512-BF16) the product runs ~2x
    faster than in fp32 (benchmarks/long_pairs.py).
    """
    if not _fast_bf16(query.device):
        return side_by_side_region_similarity(query, targets)
    return 2 * _mean_of_max(query.bfloat16(), _region_major(targets, torch.bfloat16, scale=0.5))


def _region_major(targets: Sequence[torch.Tensor], dtype: torch.dtype, scale: float = 1.0) -> torch.Tensor:
    """The targets' region vectors in one [R * sum T_i, D] matrix, target regions
    outermost: [region, frame of all targets side by side, D]. One copy, in ``dtype``."""
    _, r, d = targets[0].shape
    total = sum(t.shape[0] for t in targets)
    out = torch.empty(r, total, d, dtype=dtype, device=targets[0].device)
    start = 0
    for target in targets:
        out[:, start:start + target.shape[0]].copy_(target.transpose(0, 1))
        start += target.shape[0]
    if scale != 1.0:
        out.mul_(scale)
    return out.view(r * total, d)


def _mean_of_max(query: torch.Tensor, by_region: torch.Tensor) -> torch.Tensor:
    """query [Tq, R, D] against region-major targets [R * S, D] -> [Tq, S] (float32)."""
    tq, r, d = query.shape
    # One plain matrix product, the fastest kernel on every device (bf16 included). With
    # the target regions outermost, the max over them runs over contiguous rows of target
    # frames, which vectorizes (a max over 9 adjacent values does not).
    sim = (query.reshape(tq * r, d) @ by_region.T).view(tq, r, r, -1)
    return sim.amax(dim=2).float().mean(dim=1)


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
