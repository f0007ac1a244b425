"""The DnS students: fine-grained (attention or binarization) and coarse-grained.

Each student's ``forward`` is its computation from region features (the feature
extractor's [T, 9, 512] per video) to similarities. The retrieval code calls its two
halves apart: ``index_video`` once per video when indexing, and ``similarity`` (or, for
the fine-grained student, ``compare`` and ``frame_similarity_matrix``) at query time.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from .layers import (Attention, Binarization, NetVLAD, VideoComparator, comparator_output_sizes, l2norm,
                     stretch_to_min_frames, valid_mask)
from .similarities import chamfer, side_by_side_region_similarity, side_by_side_sign_similarity
from .tiling import Tiling, blockwise, pair_batches, padded_batches, padded_bytes, tiled_maps, tiled_similarity


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

    def forward(self, query: torch.Tensor, targets: Sequence[torch.Tensor]) -> torch.Tensor:
        """Similarity of a query video with each target video from their region features
        [T, R, D]: each video through the attention (or binarization) layer, then the
        frame-to-frame region similarity, the comparator and Chamfer similarity
        (``similarity``). A tensor [N]."""
        return self.similarity(self.index_video(query), [self.index_video(t) for t in targets])

    def index_video(self, x: torch.Tensor) -> torch.Tensor:
        """Region features [..., T, R, D] -> the student's representation, same shape."""
        return self.binarization(x) if self.binarized else self.attention(x)

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
            out[i] = tiled_similarity(self.visil_head, self._pair_similarity, query, targets[i], self.tiling)
        return out

    @torch.no_grad()
    def pair_similarities(self, pairs: Sequence[Tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Video similarity of each (query, target) pair of indexed videos [T, R, D]: a
        tensor [N], each value that of the pair alone, as ``similarity`` gives it. The
        pairs' frame-to-frame matrices go through the comparator together, in padded
        batches within the memory budget: many short pairs of different queries (a
        search's copied parts) cost one comparator call, not one each."""
        if len(pairs) == 0:
            raise ValueError('expected at least one pair, got an empty list')
        for query, target in pairs:
            self._check_videos(query, [target])
        pairs = [(stretch_to_min_frames(q), stretch_to_min_frames(t)) for q, t in pairs]
        shapes = [(q.shape[0], t.shape[0]) for q, t in pairs]
        out = torch.empty(len(pairs), device=pairs[0][0].device)
        batches, alone = pair_batches(shapes, self.tiling.memory_budget)
        for batch in batches:
            _, cells, sizes = self._compare_matrices([self._pair_similarity(*pairs[i]) for i in batch])
            out[batch] = chamfer(cells, valid_mask(sizes, cells.shape[-2], cells.shape[-1]))
        for i in alone:
            out[i] = tiled_similarity(self.visil_head, self._pair_similarity, *pairs[i], self.tiling)
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
        frames, cells = tiled_maps(self.visil_head, self._pair_similarity, query, targets, self.tiling)
        lengths = torch.tensor([t.shape[0] for t in targets], device=query.device)
        return frames, cells, comparator_output_sizes(torch.stack([torch.full_like(lengths, tq), lengths], dim=1))

    def frame_similarity_matrix(self, query: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Frame-to-frame similarity matrix [Tq, Tt] of one indexed pair [Tq, R, D],
        [Tt, R, D] of any lengths (not stretched), computed block by block: the result is
        the only allocation that grows with the lengths."""
        self._check_videos(query, [target])
        return blockwise(self._pair_similarity, query, target, self.tiling.frame_block)

    def _compare_padded(self, query: torch.Tensor, targets: List[torch.Tensor]):
        """``compare`` of stretched videos as one padded batch (memory ~ Tq x N x Tmax)."""
        frames = self._side_by_side(query, targets)  # [Tq, sum T_i]: no padded copy of the features
        return self._compare_matrices(frames.split([t.shape[0] for t in targets], dim=1))

    def _compare_matrices(self, matrices: Sequence[torch.Tensor]):
        """The comparator on frame-to-frame matrices [Tq_i, Tt_i] stacked in one padded
        batch: (the batch [N, max Tq, max Tt], the comparator's output, its valid sizes).
        Cells beyond a matrix's size stay 0, which is what the comparator's zero padding
        shows a pair alone."""
        rows, cols = max(m.shape[0] for m in matrices), max(m.shape[1] for m in matrices)
        sim = matrices[0].new_zeros(len(matrices), rows, cols)
        for n, matrix in enumerate(matrices):
            sim[n, :matrix.shape[0], :matrix.shape[1]] = matrix
        sizes = torch.tensor([tuple(m.shape) for m in matrices], device=sim.device)
        out = torch.clamp(self.visil_head(sim.unsqueeze(1), sizes), -1.0, 1.0).squeeze(1)
        return sim, out, comparator_output_sizes(sizes)

    def _side_by_side(self, query: torch.Tensor, targets: Sequence[torch.Tensor]) -> torch.Tensor:
        """Frame-to-frame similarities of a query with targets side by side: [Tq, sum T_i]."""
        if not self.binarized:
            return side_by_side_region_similarity(query, targets)
        # Signs have norm sqrt(D) per vector: dividing by D brings dot products to [-1, 1].
        return side_by_side_sign_similarity(query, targets) / self.dims

    def _pair_similarity(self, query: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Frame-to-frame similarities [Tq, Tt] of one pair, all at once."""
        return self._side_by_side(query, [target])

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

    def forward(self, query: torch.Tensor, targets: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Similarity of a query video [T, R, D] with a padded batch of target videos
        [N, T', R, D] (``mask`` [N, T'], True for real frames) from their region
        features: each video to one vector (``index_video``), then dot products. [N]."""
        return self.similarity(self.index_video(query[None])[0], self.index_video(targets, mask))

    def index_video(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Region features [N, T, R, D] (mask [N, T], True for real frames) -> [N, 1024]:
        attention-weighted regions summed into frame vectors, a transformer layer across
        the frames, NetVLAD across time."""
        frames = l2norm(self.attention(x).sum(dim=2))
        padding = None if mask is None else ~mask
        frames = self.transformer(frames, src_key_padding_mask=padding)
        return l2norm(self.netvlad(frames, mask))

    @staticmethod
    def similarity(query: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Dot products of one vector [1024] with targets [N, 1024] -> [N]."""
        return targets @ query
