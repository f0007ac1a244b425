"""Similarity functions of DnS: frame-to-frame region similarity and Chamfer
similarity (ARCHITECTURE.md), for one query against a padded batch of targets or, block
by block, for one pair of any length."""
import functools
from dataclasses import dataclass
from typing import Callable, List, Sequence, Tuple

import torch

# The comparator pools twice by 2: a shorter video leaves an empty map.
MIN_FRAMES = 4


@dataclass(frozen=True)
class Tiling:
    """How a fine-grained student bounds its memory.

    A padded batch of targets needs about ``PADDED_CELL_BYTES`` per cell of its
    [N, Tq, Tmax] frame-to-frame matrix: targets go in padded batches while a batch fits in
    ``memory_budget`` bytes, and a pair too big for it goes through tiles instead, whose
    memory is bounded whatever the lengths. Sizes of the tiles are in comparator output
    cells (4 x 4 frames); the figures are measured by benchmarks/long_pairs.py.

    Attributes:
        memory_budget: bytes a padded batch may take (0: every pair goes through tiles).
        region: cells per side of the frame-to-frame block computed at once.
        tile: cells per side of one comparator call (small tiles stay in cache).
        frame_block: frames per side of one matrix product of region features.
    """
    memory_budget: int = 256 * 2 ** 20
    region: int = 128
    tile: int = 64
    frame_block: int = 256

    def __post_init__(self):
        for name in ('region', 'tile', 'frame_block'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'Tiling.{name} must be a positive integer, got {value!r}')
        if not isinstance(self.memory_budget, int) or isinstance(self.memory_budget, bool) or self.memory_budget < 0:
            raise ValueError(f'Tiling.memory_budget must be a non-negative integer (bytes), got {self.memory_budget!r}')


# Peak bytes per cell of a padded batch's [N, Tq, Tmax] matrix: the regions' product
# (9 x 9 fp32), its max over target regions, and later the comparator's first
# activations (32 channels, pooled 8, rectified 8), with margin.
PADDED_CELL_BYTES = 400
# Bytes per padded target frame: the padded copy, its region-major copy and a bf16 copy.
PADDED_FRAME_BYTES = 3 * 9 * 512 * 4


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


def padded_batches(query_frames: int, lengths: Sequence[int],
                   memory_budget: int) -> Tuple[List[List[int]], List[int]]:
    """Split targets (by their lengths) into padded batches whose estimated memory fits
    in ``memory_budget``, and the rest, each too big for it alone.

    Targets of similar lengths go together (sorted by length), so little of a batch is
    padding. Returns the batches (lists of target indices) and the left-over indices."""
    batches, batch, alone = [], [], []
    for i in sorted(range(len(lengths)), key=lambda k: lengths[k]):
        # Sorted: the newest target is the batch's longest, the one it is padded to.
        if padded_bytes(query_frames, lengths[i], len(batch) + 1) <= memory_budget:
            batch.append(i)
        elif padded_bytes(query_frames, lengths[i], 1) <= memory_budget:
            batches.append(batch)
            batch = [i]
        else:
            alone.append(i)
    if batch:
        batches.append(batch)
    return [b for b in batches if b], alone


def padded_bytes(query_frames: int, max_length: int, targets: int) -> int:
    """Estimated peak memory of comparing one query with a padded batch of targets."""
    return targets * max_length * (query_frames * PADDED_CELL_BYTES + PADDED_FRAME_BYTES)


def region_similarity(query: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """S[n, i, j] = mean over query regions of max over target regions of <q_i, t_j>.

    query [Tq, R, D], targets [N, Tt, R, D] -> [N, Tq, Tt].
    """
    tq, r, d = query.shape
    n, tt, rt, _ = targets.shape
    # One plain matrix product, the fastest kernel on every device (bf16 included), with
    # the target regions outermost: the max over them then runs over contiguous rows of
    # target frames, which vectorizes (a max over 9 adjacent values does not).
    by_region = targets.transpose(1, 2).reshape(n * rt * tt, d)
    sim = (query.reshape(tq * r, d) @ by_region.T).view(tq, r, n, rt, tt)
    return sim.amax(dim=3).float().mean(dim=1).permute(1, 0, 2)


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


def blockwise(pair_similarity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], query: torch.Tensor,
              target: torch.Tensor, block: int, out: torch.Tensor = None) -> torch.Tensor:
    """The [Tq, Tt] frame-to-frame matrix of one pair, ``block`` x ``block`` frames at a
    time: ``pair_similarity(query [a, R, D], target [b, R, D]) -> [a, b]``. The regions'
    product of a block, [a * R, b * R], is the largest intermediate, whatever Tq and Tt.
    ``out``: where to write the matrix (float32 [Tq, Tt]), else a new tensor."""
    tq, tt = query.shape[0], target.shape[0]
    if out is None:
        out = torch.empty(tq, tt, device=query.device)
    rows, cols = even_splits(0, tq, block), even_splits(0, tt, block)
    for r0, r1 in rows:
        for c0, c1 in cols:
            out[r0:r1, c0:c1] = pair_similarity(query[r0:r1], target[c0:c1])
    return out


def even_splits(start: int, end: int, block: int) -> List[Tuple[int, int]]:
    """[start, end) in the fewest near-equal spans of at most ``block``: no thin last span,
    which multiplies or convolves slowly for its size."""
    count = -(-(end - start) // block)
    edges = [start + (end - start) * k // count for k in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


def chamfer(sim: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over target frames (last axis), mean over query frames; masked cells are
    left out, and so are rows with no valid cell. sim, mask: [N, Q, T] -> [N]."""
    best = sim.masked_fill(~mask, float('-inf')).max(dim=-1).values
    return chamfer_of_row_maxima(best, mask.any(dim=-1))


def chamfer_of_row_maxima(best: torch.Tensor, valid_rows: torch.Tensor) -> torch.Tensor:
    """The mean part of ``chamfer``: the mean of each row's maximum [N, Q] over the valid
    rows [N, Q] -> [N]. Tiles fold their maxima into ``best`` one at a time."""
    best = torch.where(valid_rows, best, torch.zeros_like(best))
    return best.sum(-1) / valid_rows.sum(-1).clamp(min=1)
