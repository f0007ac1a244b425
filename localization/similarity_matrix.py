"""The input every localization method takes: a frame-to-frame similarity matrix."""
import numpy as np


def check_similarity_matrix(sim: 'np.typing.ArrayLike') -> np.ndarray:
    """``sim`` as float32 [Tq, Tt]; a ValueError naming what is wrong otherwise."""
    try:
        sim = np.asarray(sim, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f'expected a frame-to-frame similarity matrix [Tq, Tt] of numbers: {error}') from None
    if sim.ndim != 2:
        raise ValueError(f'expected a frame-to-frame similarity matrix [Tq, Tt], got shape {list(sim.shape)}')
    if not np.isfinite(sim).all():
        raise ValueError('the similarity matrix holds NaN or Inf values')
    return sim
