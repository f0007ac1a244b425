"""Window vectors: one unit vector per window of consecutive sampled frames, pooled from
the fine student's region vectors, which every index stores; so an existing index gains
them without decoding its videos again.

A frame's vector is the mean of its 9 region vectors; a window's is the mean of its
frames' vectors, L2-normalised. Indexed videos take windows of ``length`` frames every
``stride`` frames; queries take one at every frame, so that some query window lines up
with an indexed one to within half a stride whatever the copy's phase. A copy of
``length + stride - 1`` sampled frames holds at least one indexed window wholly.

A long query takes its windows at a coarser stride (:meth:`WindowSpec.query_stride`),
chosen prime to the indexed stride, so that the query windows' phases against the
indexed windows still run through every value: a copy of ``length + stride x query
stride - 1`` frames holds a query window that lines up exactly with an indexed one, and
one of ``length + query stride - 1`` frames a query window within half an indexed stride
of one (:meth:`WindowSpec.shortest_lined_up`).
"""
import math
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

WINDOW_DIMS = 512


@dataclass(frozen=True)
class WindowSpec:
    """Window ``length`` and ``stride``, in sampled frames."""
    length: int = 3
    stride: int = 2

    def __post_init__(self):
        if not (isinstance(self.length, int) and isinstance(self.stride, int)) or self.length < 1 \
                or self.stride < 1:
            raise ValueError(f'window length and stride must be positive integers of frames, '
                             f'got {self.length} and {self.stride}')

    @property
    def shortest_covered(self) -> int:
        """Sampled frames a copy needs so that an indexed window lies wholly inside it."""
        return self.length + self.stride - 1

    def query_stride(self, frames: int, budget: int) -> int:
        """The stride of a query of ``frames`` sampled frames: 1 while it has at most
        ``budget`` windows, else the least stride that spreads about ``budget`` over its
        length (at most ``budget + 1``: the last window ends at the query's end), made
        prime to the indexed stride."""
        if budget < 1:
            raise ValueError(f'the query window budget must be a positive integer, got {budget}')
        positions = frames - self.length + 1
        if positions <= budget:
            return 1
        stride = -(-positions // budget)
        while math.gcd(stride, self.stride) != 1:
            stride += 1
        return stride

    def shortest_lined_up(self, query_stride: int = 1) -> int:
        """Sampled frames a copy needs, queried at ``query_stride``, so that one of its
        query windows lies wholly inside it at exactly an indexed window's place
        (``query_stride`` prime to the indexed stride)."""
        return self.length + self.stride * query_stride - 1

    def starts(self, frames: int, stride: Optional[int] = None) -> np.ndarray:
        """Start frames of the windows of a video of ``frames`` sampled frames. A video
        shorter than one window still has one (all of it); the last window ends at the
        video's end, so its tail is covered."""
        stride = self.stride if stride is None else stride
        if frames < 1:
            return np.zeros(0, np.int64)
        last = max(0, frames - self.length)
        starts = np.arange(0, last + 1, stride, dtype=np.int64)
        if starts[-1] != last:
            starts = np.append(starts, last)
        return starts


DEFAULT_SPEC = WindowSpec()


def frame_vectors(fine: np.ndarray) -> np.ndarray:
    """[T, 9, 512] fine features -> [T, 512]: each frame's mean region vector (not normalised:
    a frame's weight in a window follows its own features)."""
    fine = np.asarray(fine, np.float32)
    if fine.ndim != 3 or fine.shape[-1] != WINDOW_DIMS:
        raise ValueError(f'fine features must be [T, regions, {WINDOW_DIMS}], got {fine.shape}')
    return fine.mean(axis=1)


def pooled_windows(fine: np.ndarray, spec: WindowSpec = DEFAULT_SPEC,
                   stride: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(starts [W], unit vectors [W, 512]) of the windows of one video's fine features.
    ``stride``: 1 for a query, None for the spec's (indexed videos)."""
    per_frame = frame_vectors(fine)
    starts = spec.starts(len(per_frame), stride)
    if not len(starts):
        return starts, np.zeros((0, WINDOW_DIMS), np.float32)
    # Window sums from prefix sums: O(T) whatever the window length.
    prefix = np.concatenate([np.zeros((1, WINDOW_DIMS), np.float64), np.cumsum(per_frame, axis=0, dtype=np.float64)])
    ends = np.minimum(starts + spec.length, len(per_frame))
    return starts, _unit((prefix[ends] - prefix[starts]).astype(np.float32))


def coarse_windows(features: np.ndarray, coarse_student: Callable[[np.ndarray], np.ndarray],
                   spec: WindowSpec = DEFAULT_SPEC, stride: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The alternative measured against :func:`pooled_windows`: the coarse student run on
    each window of the feature extractor's output [T, 9, 512] (one 1024-d vector each).
    It needs the extractor's features, which an index does not keep."""
    starts = spec.starts(len(features), stride)
    vectors = [np.asarray(coarse_student(features[s:s + spec.length]), np.float32).reshape(-1) for s in starts]
    return starts, _unit(np.stack(vectors)) if vectors else np.zeros((0, 1024), np.float32)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
