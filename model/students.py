"""The DnS students: fine-grained (attention or binarization) and coarse-grained."""
from typing import List, Sequence, Tuple

import torch
from torch import nn

from .layers import (Attention, Binarization, NetVLAD, VideoComparator, comparator_output_sizes, comparator_window,
                     l2norm, tiled_comparator, valid_mask)
from .similarities import (Tiling, blockwise, chamfer, even_splits, padded_batches,
                           padded_bytes, side_by_side_region_similarity, side_by_side_sign_similarity,
                           stretch_to_min_frames)


class FineGrainedStudent(nn.Module):
    """Region-level student: keeps [T, 9, 512] per video and compares videos with
    ViSiL's comparator. ``binarization=True`` keeps only signs (fg_bin).

    Comparisons take bounded memory whatever the videos' lengths: targets go in padded
    batches while a batch fits in ``tiling.memory_budget``, and longer pairs go through
    tiles of the comparator's output (``Tiling``), with the same values.
    """

    def __init__(self, binarization: bool = False, dims: int = 512):
        super().__init__()
        self.binarized = binarization
        if binarization:
            self.binarization = Binarization(dims)
        else:
            self.attention = Attention(dims)
        self.visil_head = VideoComparator()
        self.dims = dims
        self.tiling = Tiling()

    def index_video(self, x: torch.Tensor) -> torch.Tensor:
        """Region features [..., T, R, D] -> the student's representation, same shape."""
        return self.binarization(x) if self.binarized else self.attention(x)

    def _side_by_side(self, query: torch.Tensor, targets: Sequence[torch.Tensor]) -> torch.Tensor:
        """Frame-to-frame similarities of a query with targets side by side: [Tq, sum T_i]."""
        if not self.binarized:
            return side_by_side_region_similarity(query, targets)
        # Signs have norm sqrt(D) per vector: dividing by D brings dot products to [-1, 1].
        return side_by_side_sign_similarity(query, targets) / self.dims

    def frame_similarity_matrix(self, query: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Frame-to-frame similarity matrix [Tq, Tt] of one indexed pair [Tq, R, D],
        [Tt, R, D] of any lengths (not stretched), computed block by block: the result is
        the only allocation that grows with the lengths."""
        self._check_videos(query, [target])
        return self._frame_blocks(query, target)

    @torch.no_grad()
    def similarity(self, query: torch.Tensor, targets: Sequence[torch.Tensor]) -> torch.Tensor:
        """Video similarity of one indexed query [Tq, R, D] with each indexed target
        [Ti, R, D]: a tensor [N], each value that of the pair alone, in memory bounded
        whatever the lengths and the number of targets."""
        self._check_videos(query, targets)
        query = stretch_to_min_frames(query)
        targets = [stretch_to_min_frames(t) for t in targets]
        out = torch.empty(len(targets), device=query.device)
        batches, alone = padded_batches(query.shape[0], [t.shape[0] for t in targets], self.tiling.memory_budget)
        for batch in batches:
            _, cells, sizes = self._compare_padded(query, [targets[i] for i in batch])
            out[batch] = chamfer(cells, valid_mask(sizes, cells.shape[-2], cells.shape[-1]))
        for i in alone:
            out[i] = self._tiled_similarity(query, targets[i])
        return out

    @torch.no_grad()
    def compare(self, query: torch.Tensor,
                targets: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The two maps behind ``similarity``: frame-to-frame similarities [N, Tq, Tmax]
        and the comparator's output [N, Tq/4, Tmax/4] (clamped to [-1, 1]), with the
        valid output size [N, 2] of each target (videos shorter than 4 frames are
        stretched first). Beyond the memory budget they are computed block by block and
        tile by tile: the returned maps are then the only allocations that grow with the
        lengths, and cells beyond a target's valid size are 0."""
        self._check_videos(query, targets)
        query = stretch_to_min_frames(query)
        targets = [stretch_to_min_frames(t) for t in targets]
        tq, longest = query.shape[0], max(t.shape[0] for t in targets)
        if padded_bytes(tq, longest, len(targets)) <= self.tiling.memory_budget:
            return self._compare_padded(query, targets)
        frames = torch.zeros(len(targets), tq, longest, device=query.device)
        cells = torch.zeros(len(targets), tq // 4, longest // 4, device=query.device)
        for n, target in enumerate(targets):
            tt = target.shape[0]
            self._frame_blocks(query, target, out=frames[n, :, :tt])
            cells[n, :, :tt // 4] = tiled_comparator(self.visil_head, frames[n, :, :tt], (0, 0), (tq, tt),
                                                     (0, tq // 4), (0, tt // 4), self.tiling.tile).clamp_(-1.0, 1.0)
        lengths = torch.tensor([t.shape[0] for t in targets], device=query.device)
        return frames, cells, comparator_output_sizes(torch.stack([torch.full_like(lengths, tq), lengths], dim=1))

    def _compare_padded(self, query: torch.Tensor, targets: List[torch.Tensor]):
        """``compare`` of stretched videos as one padded batch (memory ~ Tq x N x Tmax)."""
        lengths = [t.shape[0] for t in targets]
        frames = self._side_by_side(query, targets)  # [Tq, sum T_i]: no padded copy of the features
        # Cells beyond a target's length stay 0, which is what the comparator's zero
        # padding shows a target alone.
        sim = frames.new_zeros(len(targets), query.shape[0], max(lengths))
        for n, part in enumerate(frames.split(lengths, dim=1)):
            sim[n, :, :part.shape[1]] = part
        lengths = torch.tensor(lengths, device=query.device)
        sizes = torch.stack([torch.full_like(lengths, query.shape[0]), lengths], dim=1)
        out = torch.clamp(self.visil_head(sim.unsqueeze(1), sizes), -1.0, 1.0).squeeze(1)
        return sim, out, comparator_output_sizes(sizes)

    def _tiled_similarity(self, query: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Similarity of one stretched pair, region by region of the comparator's output:
        each region's frame-to-frame block (with the comparator's halo) is computed, run
        through the comparator tile by tile, and folded into each query row's maximum,
        the Chamfer similarity's running state."""
        (tq, tt), region = (query.shape[0], target.shape[0]), self.tiling.region
        rows, cols = tq // 4, tt // 4
        best = torch.full((rows,), float('-inf'), device=query.device)
        for i0, i1 in even_splits(0, rows, region):
            r0, r1 = comparator_window((i0, i1), tq)
            for j0, j1 in even_splits(0, cols, region):
                c0, c1 = comparator_window((j0, j1), tt)
                frames = self._frame_blocks(query[r0:r1], target[c0:c1])
                cells = tiled_comparator(self.visil_head, frames, (r0, c0), (tq, tt), (i0, i1), (j0, j1),
                                         self.tiling.tile)
                best[i0:i1] = torch.maximum(best[i0:i1], cells.amax(dim=1))
        # Clamping commutes with the maximum: clamp the row maxima only. Every row of a
        # pair alone is valid: Chamfer's mean is the plain mean.
        return best.clamp_(-1.0, 1.0).mean()

    def _frame_blocks(self, query: torch.Tensor, target: torch.Tensor, out: torch.Tensor = None) -> torch.Tensor:
        return blockwise(lambda q, t: self._side_by_side(q, [t]), query, target, self.tiling.frame_block, out)

    def _check_videos(self, query: torch.Tensor, targets: Sequence[torch.Tensor]) -> None:
        if len(targets) == 0:
            raise ValueError('expected at least one target, got an empty list')
        for what, video in [('query', query)] + [(f'target {i}', t) for i, t in enumerate(targets)]:
            if not isinstance(video, torch.Tensor) or video.ndim != 3 or video.shape[0] < 1 \
                    or video.shape[2] != self.dims:
                shape = list(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__
                raise ValueError(f'expected {what} of shape [T, R, {self.dims}] with T >= 1, got {shape}')
            if video.shape[1] != query.shape[1]:
                raise ValueError(f'{what} has {video.shape[1]} regions per frame, the query {query.shape[1]}')


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
