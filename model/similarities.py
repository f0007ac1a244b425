"""Similarity functions of DnS: frame-to-frame region similarity and Chamfer
similarity (ARCHITECTURE.md), for one query against a padded batch of targets."""
from typing import List, Sequence, Tuple

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
    sim = torch.einsum('iod,ntpd->nitop', query, targets)
    return sim.max(dim=-1).values.mean(dim=-1)


def chamfer(sim: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over target frames (last axis), mean over query frames; masked cells are
    left out, and so are rows with no valid cell. sim, mask: [N, Q, T] -> [N]."""
    best = sim.masked_fill(~mask, float('-inf')).max(dim=-1).values
    valid_rows = mask.any(dim=-1)
    best = torch.where(valid_rows, best, torch.zeros_like(best))
    return best.sum(-1) / valid_rows.sum(-1).clamp(min=1)
