"""Frames of many videos through one network in full batches: on a GPU a video of 8
sampled frames would fill a quarter of a batch of 32, so batches are cut across video
boundaries, and the outputs are split back per video."""
from typing import Callable, Iterator, List, Sequence, Tuple

import numpy as np
import torch

Piece = Tuple[int, int, int]  # (video, first frame, frame after the last)


def batch_pieces(lengths: Sequence[int], batch_size: int) -> Iterator[List[Piece]]:
    """The pieces of videos of ``lengths`` frames that make each batch, in order: every
    batch but the last holds exactly ``batch_size`` frames."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
    if any(length < 0 for length in lengths):
        raise ValueError(f'video lengths must be >= 0, got {list(lengths)}')
    batch: List[Piece] = []
    room = batch_size
    for video, length in enumerate(lengths):
        start = 0
        while start < length:
            stop = min(length, start + room)
            batch.append((video, start, stop))
            room -= stop - start
            start = stop
            if room == 0:
                yield batch
                batch, room = [], batch_size
    if batch:
        yield batch


def run_across_videos(videos: Sequence[np.ndarray], batch_size: int,
                      network: Callable[[np.ndarray], torch.Tensor]) -> List[torch.Tensor]:
    """``network`` (rows in, one output row per input row) on the frames of ``videos``
    ([T_i, ...] arrays) in full batches of ``batch_size``; its outputs, one tensor per
    video. A frame's output does not depend on the other frames of its batch."""
    lengths = [len(video) for video in videos]
    outputs = []
    for pieces in batch_pieces(lengths, batch_size):
        rows = np.concatenate([videos[video][start:stop] for video, start, stop in pieces])
        out = network(rows)
        if len(out) != len(rows):
            raise ValueError(f'the network returned {len(out)} rows for a batch of {len(rows)}')
        outputs.append(out)
    if not outputs:
        return [torch.empty(0) for _ in videos]
    return list(torch.cat(outputs).split(lengths))
