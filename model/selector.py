"""The DnS selector: decides which pairs the fine-grained student re-ranks."""
from typing import Sequence

import torch
from torch import nn

from .layers import Attention, VideoComparator, stretch_to_min_frames


class MLP(nn.Module):
    def __init__(self, in_dims: int = 3, hidden: int = 100, dropout: float = 0.5):
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(in_dims, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class SelectorNetwork(nn.Module):
    """One number per video from its self-similarity; an MLP turns two such numbers
    and the coarse similarity of the pair into a re-ranking score in (0, 1)."""

    def __init__(self, dims: int = 512):
        super().__init__()
        self.attention = Attention(dims)
        self.visil_head = VideoComparator()
        self.mlp = MLP()

    def forward(self, query: torch.Tensor, targets: Sequence[torch.Tensor],
                coarse_similarity: torch.Tensor) -> torch.Tensor:
        """Re-ranking scores [N] of a query video with each target video from their region
        features [T, R, D] and the coarse student's similarity of each pair [N]: each
        video to its self-similarity number (``index_video``), then the MLP (``score``)."""
        values = torch.stack([self.index_video(t) for t in targets])
        return self.score(self.index_video(query), values, coarse_similarity)

    def index_video(self, x: torch.Tensor) -> torch.Tensor:
        """Region features [T, R, D] -> a 0-d tensor."""
        x = stretch_to_min_frames(self.attention(x))
        # mean over region pairs of <x_io, x_jp> is the dot product of region means
        frames = x.mean(dim=1)
        sim = frames @ frames.T
        return self.visil_head(sim[None, None]).mean()

    def score(self, query: torch.Tensor, targets: torch.Tensor, coarse_similarity: torch.Tensor) -> torch.Tensor:
        """query: 0-d; targets, coarse_similarity: [N] -> scores [N]."""
        features = torch.stack([query.expand_as(targets), targets, coarse_similarity], dim=1)
        return self.mlp(features).squeeze(1)
