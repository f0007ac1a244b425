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
- A column of a few cells (a query of a few seconds) has no background to speak of: its
  copied cell is a third of it. Where one video has fewer than MIN_CELLS frames, cells are
  measured against the other video's axis alone.
"""
import numpy as np

BACKGROUND_CAP = 0.25
SPREAD_FLOOR = 0.04
MIN_CELLS = 8
# A longer row or column has its background measured on every k-th cell, this many at
# least: a median of 1,000 cells is as good a background as one of 3,600, at a third of
# the cost on an hour-long pair.
BACKGROUND_SAMPLE = 1024
# The MAD of a normal distribution times this is its standard deviation.
_MAD_TO_SD = 1.4826


def standardized(sim: np.ndarray) -> np.ndarray:
    """``sim`` [Tq, Tt] in robust standard deviations above its rows' and columns'
    backgrounds (the smaller of the two), float32."""
    sim = np.asarray(sim, dtype=np.float32)
    if sim.size == 0:
        return sim.copy()
    rows, cols = sim.shape
    if rows < MIN_CELLS <= cols:
        return _above_background(sim, axis=1)
    if cols < MIN_CELLS <= rows:
        return _above_background(sim, axis=0)
    return np.minimum(_above_background(sim, axis=1), _above_background(sim, axis=0))


def _above_background(sim: np.ndarray, axis: int) -> np.ndarray:
    step = max(1, sim.shape[axis] // BACKGROUND_SAMPLE)
    sample = sim[:, ::step] if axis == 1 else sim[::step]
    median = np.median(sample, axis=axis, keepdims=True)
    spread = np.median(np.abs(sample - median), axis=axis, keepdims=True) * _MAD_TO_SD
    return (sim - np.minimum(median, BACKGROUND_CAP)) / np.maximum(spread, SPREAD_FLOOR)
