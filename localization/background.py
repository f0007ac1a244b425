"""Frame similarities as evidence of a copy: how far each stands above its pair's own
background, in robust standard deviations.

How similar unrelated frames are varies from pair to pair and from frame to frame: two
dark videos, two news studios, a frame of a title card that resembles everything. A
fixed similarity threshold that separates copies from the background of one corpus
therefore misplaces it on another. Measured against the background of its own row (the
query frame against every target frame) and its own column (the target frame against
every query frame), a cell says the same thing on every pair:

    z_row[i, j] = (S[i, j] - median(S[i, :])) / spread(S[i, :])
    z_col[i, j] = (S[i, j] - median(S[:, j])) / spread(S[:, j])
    z[i, j]     = min(z_row[i, j], z_col[i, j])

with spread the median absolute deviation scaled to a normal's standard deviation. Median
and MAD, because the copy itself is in the row: a mean and a standard deviation would be
pulled up by it. The minimum, because a copied frame stands out both ways; a target frame
that somewhat resembles every query frame (a dark frame, a title card) stands out in its
row only.

Three guards keep the scale meaningful where the background is not noise:
- A row whose median is high is no background but the copy (a copy of a static shot, a
  one-second video): the background is capped at BACKGROUND_CAP, which unrelated frames
  of the fine students do not reach (they lie around 0.05, copies from 0.3 up).
- A row of near-identical values (a constant matrix, a frame with no texture) has a
  spread near zero, which would turn any wobble into a huge z: it is floored at
  SPREAD_FLOOR, about the spread of unrelated frames' similarities.
- A row of widely spread values is no noise either: real footage comes back to its scene
  (shots of one place, a camera panning over one picture), so a copied frame's row and
  column hold its scene's other frames well above the unrelated ones, and their spread
  would leave a copy at 0.95 among them a couple of deviations up, below the alignment's
  margin. The spread is capped at SPREAD_CAP.
- A column of a few cells (a query of a few seconds) has no background to speak of: its
  copied cell is a third of it. Where one video has fewer than MIN_CELLS frames, cells are
  measured against the other video's axis alone.

A pair's own background cannot tell a copy from a look-alike: a landscape against another
landscape, a studio against another studio, an intro that half the library shares. Those
frames stand out of their row as a copy does. What tells them apart is the rest of the
library, as the Video Similarity Challenge's entries normalise by a background set of
unrelated videos: a frame's *library level* is the similarity it reaches in the
LIBRARY_RANK-th most similar other video (:func:`library_levels`), and a cell is evidence
only as far as it rises above the levels of its two frames:

    z_lib[i, j] = at_level + (S[i, j] - max(level_q[i], level_t[j])) / SPREAD_FLOOR
    z[i, j]     = min(z[i, j], z_lib[i, j])

``at_level`` is the alignment's margin, so a cell no more similar than the library's
look-alikes adds nothing to a segment. The third video, not the first: the library may
hold a copy or two of the same frames, which must not hide the copy at hand (the tuning
corpus holds pieces of a source in up to three hosts; ranks 1 and 2 lost its copies,
3 to 5 kept them all: F1 0.54, 0.72, then 0.764 as without the library).
"""
from typing import Optional

import numpy as np

BACKGROUND_CAP = 0.25
SPREAD_FLOOR = 0.04
# Of the caps 0.1 to 0.3 compared on the real-footage tuning corpus (benchmarks/localization.py),
# 0.15 gave the best F1 at the default threshold; the generated corpora, whose unrelated frames
# spread about 0.04, keep or raise theirs.
SPREAD_CAP = 0.15
MIN_CELLS = 8
# A longer row or column has its background measured on every k-th cell, this many at
# least: a median of 1,000 cells is as good a background as one of 3,600, at a third of
# the cost on an hour-long pair.
BACKGROUND_SAMPLE = 1024
# A frame's library level is its best similarity in the LIBRARY_RANK-th most similar of
# the other videos.
LIBRARY_RANK = 3
# The MAD of a normal distribution times this is its standard deviation.
_MAD_TO_SD = 1.4826


def standardized(sim: np.ndarray, query_levels: Optional[np.ndarray] = None,
                 target_levels: Optional[np.ndarray] = None, at_level: float = 0.0) -> np.ndarray:
    """``sim`` [Tq, Tt] in robust standard deviations above its rows' and columns'
    backgrounds (the smaller of the two), float32. With library levels of the query's
    frames [Tq] or the target's [Tt] (:func:`library_levels`), no cell stands further
    above the pair's background than ``at_level`` plus its rise above them."""
    sim = np.asarray(sim, dtype=np.float32)
    if sim.size == 0:
        return sim.copy()
    rows, cols = sim.shape
    if rows < MIN_CELLS <= cols:
        z = _above_background(sim, axis=1)
    elif cols < MIN_CELLS <= rows:
        z = _above_background(sim, axis=0)
    else:
        z = np.minimum(_above_background(sim, axis=1), _above_background(sim, axis=0))
    levels = [np.asarray(v, dtype=np.float32).reshape(shape) for v, shape in
              ((query_levels, (rows, 1)), (target_levels, (1, cols))) if v is not None]
    if levels:
        level = levels[0] if len(levels) == 1 else np.maximum(*levels)
        z = np.minimum(z, np.float32(at_level) + (sim - level) / np.float32(SPREAD_FLOOR))
    return z


def library_levels(best_matches: np.ndarray, rank: int = LIBRARY_RANK) -> Optional[np.ndarray]:
    """Each frame's library level [T] from its best similarity in each of V other videos
    [V, T]: the ``rank``-th highest. None when there are fewer than ``rank`` videos: too
    few to tell a look-alike from a copy."""
    best = np.asarray(best_matches, dtype=np.float32)
    if best.ndim != 2:
        raise ValueError(f'best matches must be [videos, frames], got shape {best.shape}')
    if rank < 1:
        raise ValueError(f'rank must be positive, got {rank}')
    if len(best) < rank:
        return None
    if not np.isfinite(best).all():
        raise ValueError('best matches must be finite')
    return -np.partition(-best, rank - 1, axis=0)[rank - 1]


def _above_background(sim: np.ndarray, axis: int) -> np.ndarray:
    step = max(1, sim.shape[axis] // BACKGROUND_SAMPLE)
    sample = sim[:, ::step] if axis == 1 else sim[::step]
    median = np.median(sample, axis=axis, keepdims=True)
    spread = np.median(np.abs(sample - median), axis=axis, keepdims=True) * _MAD_TO_SD
    return (sim - np.minimum(median, BACKGROUND_CAP)) / np.clip(spread, SPREAD_FLOOR, SPREAD_CAP)
