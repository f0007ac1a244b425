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

    Targets go in padded batches while a batch's estimated memory (``padded_bytes``) fits
    in ``memory_budget``; a pair too big for it alone goes through tiles of the
    comparator's output, whose memory is bounded whatever the lengths, at the same speed.
    Defaults measured on a 2-core AVX-512 CPU (benchmarks/long_pairs.py): padded batches
    of short videos run fastest at 32 to 128 MB; tiles of 64 cells stay in cache; the
    matrix products of 192 frames reach the machine's fp32 peak.

    Attributes:
        memory_budget: bytes a padded batch may take (0: every pair goes through tiles).
        region: comparator output cells (4 x 4 frames each) per side of the block of
            frame-to-frame similarities computed at once (with a halo of 8 frames).
        tile: output cells per side of one comparator call.
        frame_block: frames per side of one matrix product of region vectors.
    """
    memory_budget: int = 64 * 2 ** 20
    region: int = 256
    tile: int = 64
    frame_block: int = 192

    def __post_init__(self):
        for name in ('region', 'tile', 'frame_block'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'Tiling.{name} must be a positive integer, got {value!r}')
        if not isinstance(self.memory_budget, int) or isinstance(self.memory_budget, bool) or self.memory_budget < 0:
            raise ValueError(f'Tiling.memory_budget must be a non-negative integer (bytes), got {self.memory_budget!r}')


# Peak bytes per cell of a padded batch's [N, Tq, Tmax] matrix: the regions' product
# (9 x 9 fp32) and its max over target regions (370 together), later the comparator's
# first activations (32 channels, pooled 8, rectified 8), with margin.
PADDED_CELL_BYTES = 512
# Bytes per target frame: the region-major copy of its [9, 512] features, with margin.
PADDED_FRAME_BYTES = 2 * 9 * 512 * 4
# Bytes per query frame: fg_bin's bf16 copy of the query, with margin.
QUERY_FRAME_BYTES = 9 * 512 * 4


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
    return query_frames * QUERY_FRAME_BYTES + targets * max_length * (query_frames * PADDED_CELL_BYTES
                                                                       + PADDED_FRAME_BYTES)


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


def blockwise(pair_similarity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], query: torch.Tensor,
              target: torch.Tensor, block: int, out: torch.Tensor = None) -> torch.Tensor:
    """The [Tq, Tt] frame-to-frame matrix of one pair, ``block`` x ``block`` frames at a
    time: ``pair_similarity(query [a, R, D], target [b, R, D]) -> [a, b]``. The regions'
    product of a block, [a * R, b * R], is the largest intermediate, whatever Tq and Tt.
    ``out``: where to write the matrix (float32 [Tq, Tt]), else a new tensor."""
    tq, tt = query.shape[0], target.shape[0]
    if out is None:
        out = torch.empty(tq, tt, device=query.device)
    # Blocks of a multiple of 8 frames: MKL's fp32 product of an odd number of columns
    # (9 regions x an odd number of frames) runs at 2/3 of the speed of an even one.
    rows, cols = even_splits(0, tq, block, align=8), even_splits(0, tt, block, align=8)
    for r0, r1 in rows:
        for c0, c1 in cols:
            out[r0:r1, c0:c1] = pair_similarity(query[r0:r1], target[c0:c1])
    return out


def even_splits(start: int, end: int, block: int, align: int = 1) -> List[Tuple[int, int]]:
    """[start, end) in the fewest near-equal spans of about ``block`` (at most ``block``
    when it is a multiple of ``align``), every inner edge ``align`` apart from ``start``:
    no thin last span, which runs slowly for its size."""
    if end <= start:
        return []
    count, units = -(-(end - start) // block), -(-(end - start) // align)
    edges = [min(end, start + align * (units * k // count)) for k in range(count + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def chamfer(sim: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over target frames (last axis), mean over query frames; masked cells are
    left out, and so are rows with no valid cell. sim, mask: [N, Q, T] -> [N]."""
    best = sim.masked_fill(~mask, float('-inf')).max(dim=-1).values
    valid_rows = mask.any(dim=-1)
    best = torch.where(valid_rows, best, torch.zeros_like(best))
    return best.sum(-1) / valid_rows.sum(-1).clamp(min=1)
