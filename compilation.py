"""The feature extractor through ``torch.compile``: the settings measured fastest on
each device, and batches cut into a few fixed sizes, so that a new batch size (the
last batch of every video, a short video) never compiles again and is never padded.

Compiled code is cached on disk by TorchInductor (``TORCHINDUCTOR_CACHE_DIR``, by
default ``/tmp/torchinductor_$USER``): a second process compiles from that cache.
"""
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

# CPU: freezing turns the weights into constants, so Inductor folds the batch norms into
# the convolutions and packs the weights once for oneDNN. CUDA: freezing as well, and
# CUDA graphs ('reduce-overhead') to take the launch overhead of ResNet-50's ~170
# kernels off each batch.
COMPILE_OPTIONS: Dict[str, Dict] = {
    'cpu': {'options': {'freezing': True}},
    'cuda': {'options': {'freezing': True, 'triton.cudagraphs': True}},
}


def batch_sizes(batch_size: int) -> Tuple[int, ...]:
    """The sizes a batch is cut into: ``batch_size`` and the powers of two below it,
    largest first. Any count of frames is a sum of them (greedily), so each video
    costs at most log2(batch_size) + 1 compiled shapes, once per process."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
    sizes = {batch_size}
    size = 1
    while size < batch_size:
        sizes.add(size)
        size *= 2
    return tuple(sorted(sizes, reverse=True))


def split_sizes(count: int, sizes: Tuple[int, ...]) -> List[int]:
    """``count`` frames as a sum of ``sizes`` (largest first, greedy; ``sizes`` holds 1)."""
    parts = []
    for size in sizes:
        while count >= size:
            parts.append(size)
            count -= size
    return parts


class CompiledExtractor(nn.Module):
    """``extractor`` compiled for ``device``, taking batches of up to ``batch_size``
    frames: each batch runs as pieces of the fixed sizes of ``batch_sizes``, whose
    shapes are compiled once (static shapes: the fastest code, and one compilation per
    shape instead of dynamic shapes' slower one that still specialises on sizes)."""

    def __init__(self, extractor: nn.Module, batch_size: int, device: torch.device):
        super().__init__()
        self.extractor = extractor
        self.sizes = batch_sizes(batch_size)
        settings = COMPILE_OPTIONS['cuda' if device.type == 'cuda' else 'cpu']
        self.compiled: Callable = torch.compile(extractor, dynamic=False, **settings)
        # Dynamo keeps 8 compiled versions of a function by default; each size is one,
        # for fp32 and for each autocast dtype.
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 4 * len(self.sizes))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if len(frames) > self.sizes[0]:
            raise ValueError(f'a batch of {len(frames)} frames; this compiled extractor takes at most '
                             f'{self.sizes[0]}')
        out, start = [], 0
        for size in split_sizes(len(frames), self.sizes):
            out.append(self.compiled(frames[start:start + size]))
            start += size
        # A full batch is one piece: no concatenation (a copy) on the common path.
        return out[0] if len(out) == 1 else torch.cat(out)
