"""Bounded memory for the fine-grained student's comparisons, whatever the videos' lengths.

Comparing a query with N targets as one padded batch takes memory ~ Tq x N x Tmax. The
planner here puts targets in padded batches while a batch's estimated memory fits a
budget; a pair too big for it alone goes through tiles instead: its frame-to-frame
similarities are computed a block of frames at a time, the comparator runs a tile of its
output at a time (each with the halo of input it depends on), and the Chamfer similarity
is folded row by row. Every tiled value equals the whole matrix's up to float rounding.
"""
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from .layers import VideoComparator

# One pair's frame-to-frame similarities: query [a, R, D], target [b, R, D] -> [a, b].
PairSimilarity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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


def padded_bytes(query_frames: int, max_length: int, targets: int) -> int:
    """Estimated peak memory of comparing one query with a padded batch of targets."""
    return query_frames * QUERY_FRAME_BYTES + targets * max_length * (query_frames * PADDED_CELL_BYTES
                                                                       + PADDED_FRAME_BYTES)


def padded_batches(query_frames: int, lengths: Sequence[int],
                   memory_budget: int) -> Tuple[List[List[int]], List[int]]:
    """Split targets (by their lengths) into padded batches whose estimated memory fits
    in ``memory_budget``, and the rest, each too big for it alone.

    Targets of similar lengths go together (sorted by length), so little of a batch is
    padding. Returns the batches (lists of target indices) and the left-over indices."""
    return pair_batches([(query_frames, length) for length in lengths], memory_budget)


def pair_batches(shapes: Sequence[Tuple[int, int]], memory_budget: int) -> Tuple[List[List[int]], List[int]]:
    """``padded_batches`` of pairs of any lengths, by their (query frames, target
    frames): a batch is padded to its longest query and its longest target. Pairs go in
    order of their size (query x target frames)."""
    batches, batch, alone = [], [], []
    rows = cols = 0
    for i in sorted(range(len(shapes)), key=lambda k: shapes[k][0] * shapes[k][1]):
        r, c = shapes[i]
        if padded_bytes(max(rows, r), max(cols, c), len(batch) + 1) <= memory_budget:
            batch.append(i)
            rows, cols = max(rows, r), max(cols, c)
        elif padded_bytes(r, c, 1) <= memory_budget:
            batches.append(batch)
            batch, rows, cols = [i], r, c
        else:
            alone.append(i)
    if batch:
        batches.append(batch)
    return [b for b in batches if b], alone


def even_splits(start: int, end: int, block: int, align: int = 1) -> List[Tuple[int, int]]:
    """[start, end) in the fewest near-equal spans of about ``block`` (at most ``block``
    when it is a multiple of ``align``), every inner edge ``align`` apart from ``start``:
    no thin last span, which runs slowly for its size."""
    if end <= start:
        return []
    count, units = -(-(end - start) // block), -(-(end - start) // align)
    edges = [min(end, start + align * (units * k // count)) for k in range(count + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def blockwise(pair_similarity: PairSimilarity, query: torch.Tensor, target: torch.Tensor, block: int,
              out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The [Tq, Tt] frame-to-frame matrix of one pair, ``block`` x ``block`` frames at a
    time. The regions' product of a block, [a * R, b * R], is the largest intermediate,
    whatever Tq and Tt. ``out``: where to write the matrix (float32 [Tq, Tt]), else a new
    tensor."""
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


# An output cell of VideoComparator stands for 4 x 4 input cells and depends on the input
# up to 7 cells beyond them (conv 3x3, pool 2, conv 3x3, pool 2, conv 3x3): a halo of 8
# keeps every tile's origin on a multiple of 4, where the poolings' windows fall as they
# do on the whole matrix.
COMPARATOR_HALO = 8


def comparator_window(cells: Tuple[int, int], length: int) -> Tuple[int, int]:
    """The input span [start, end) that output cells [cells[0], cells[1]) of a side of
    ``length`` input cells depend on, clipped to the matrix."""
    return max(0, 4 * cells[0] - COMPARATOR_HALO), min(length, 4 * cells[1] + COMPARATOR_HALO)


def tiled_comparator(comparator: VideoComparator, sim: torch.Tensor, origin: Tuple[int, int],
                     size: Tuple[int, int], rows: Tuple[int, int], cols: Tuple[int, int],
                     tile: int) -> torch.Tensor:
    """Output cells [rows[0], rows[1]) x [cols[0], cols[1]) of ``comparator`` on a whole
    matrix of ``size`` (H, W), exactly as on the whole matrix alone, one comparator call
    per ``tile`` x ``tile`` cells.

    ``sim`` holds the part of the whole matrix from ``origin`` (row, col) that covers the
    cells' ``comparator_window``. Each tile's input runs to the halo: its own borders
    cut the halo, never a kept cell, and at the matrix's true borders the convolution's
    zero padding is the same as on the whole matrix. Returns [rows, cols] of the output.
    """
    (r_origin, c_origin), (height, width) = origin, size
    r_need, c_need = comparator_window(rows, height), comparator_window(cols, width)
    if (r_need[0] < r_origin or c_need[0] < c_origin or r_need[1] > r_origin + sim.shape[0]
            or c_need[1] > c_origin + sim.shape[1]):
        raise ValueError(f'the similarity block at {origin} of shape {list(sim.shape)} does not cover the '
                         f'input rows {r_need} and columns {c_need} of cells {rows} x {cols}')
    out = torch.empty(rows[1] - rows[0], cols[1] - cols[0], device=sim.device)
    for i0, i1 in even_splits(rows[0], rows[1], tile):
        r0, r1 = comparator_window((i0, i1), height)
        for j0, j1 in even_splits(cols[0], cols[1], tile):
            c0, c1 = comparator_window((j0, j1), width)
            block = sim[r0 - r_origin:r1 - r_origin, c0 - c_origin:c1 - c_origin]
            cells = comparator(block[None, None])[0, 0]
            # The window starts at a multiple of 4: input r0 is output cell r0 // 4.
            out[i0 - rows[0]:i1 - rows[0], j0 - cols[0]:j1 - cols[0]] = \
                cells[i0 - r0 // 4:i1 - r0 // 4, j0 - c0 // 4:j1 - c0 // 4]
    return out


def tiled_similarity(comparator: VideoComparator, pair_similarity: PairSimilarity, query: torch.Tensor,
                     target: torch.Tensor, tiling: Tiling) -> torch.Tensor:
    """The fine-grained similarity of one pair (videos of 4 frames or more), region by
    region of the comparator's output: each region's frame-to-frame block (with the
    comparator's halo) is computed, run through the comparator tile by tile, clamped to
    [-1, 1] and folded into each query row's maximum, the Chamfer similarity's running
    state. A 0-d tensor."""
    tq, tt = query.shape[0], target.shape[0]
    rows, cols = tq // 4, tt // 4
    best = torch.full((rows,), float('-inf'), device=query.device)
    for i0, i1 in even_splits(0, rows, tiling.region):
        r0, r1 = comparator_window((i0, i1), tq)
        for j0, j1 in even_splits(0, cols, tiling.region):
            c0, c1 = comparator_window((j0, j1), tt)
            frames = blockwise(pair_similarity, query[r0:r1], target[c0:c1], tiling.frame_block)
            cells = tiled_comparator(comparator, frames, (r0, c0), (tq, tt), (i0, i1), (j0, j1), tiling.tile)
            best[i0:i1] = torch.maximum(best[i0:i1], cells.amax(dim=1))
    # Clamping commutes with the maximum: clamp the row maxima only. Every row of a
    # pair alone is valid: Chamfer's mean is the plain mean.
    return best.clamp_(-1.0, 1.0).mean()


def tiled_maps(comparator: VideoComparator, pair_similarity: PairSimilarity, query: torch.Tensor,
               targets: Sequence[torch.Tensor], tiling: Tiling) -> Tuple[torch.Tensor, torch.Tensor]:
    """The maps of a padded batch, [N, Tq, Tmax] frame-to-frame similarities and the
    comparator's output [N, Tq/4, Tmax/4] clamped to [-1, 1], one target at a time,
    block by block and tile by tile: the maps are the only allocations that grow with
    the lengths. Cells beyond a target's own size are 0."""
    tq, longest = query.shape[0], max(t.shape[0] for t in targets)
    frames = torch.zeros(len(targets), tq, longest, device=query.device)
    cells = torch.zeros(len(targets), tq // 4, longest // 4, device=query.device)
    for n, target in enumerate(targets):
        tt = target.shape[0]
        blockwise(pair_similarity, query, target, tiling.frame_block, out=frames[n, :, :tt])
        cells[n, :, :tt // 4] = tiled_comparator(comparator, frames[n, :, :tt], (0, 0), (tq, tt),
                                                 (0, tq // 4), (0, tt // 4), tiling.tile).clamp_(-1.0, 1.0)
    return frames, cells
