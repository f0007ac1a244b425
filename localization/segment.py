"""A copied segment: where a piece of one video reappears in another."""
import math
import numbers
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

_FIELDS = ('query_start', 'query_end', 'target_start', 'target_end', 'score')
# Consecutive samples further apart than this many time steps have a hole between them.
HOLE_STEPS = 1.5


@dataclass(frozen=True)
class Segment:
    """A copied segment: query [query_start, query_end) matches target [target_start,
    target_end); frame indices (ints) or seconds (floats), half-open. ``score``: how
    sure the method is, higher is surer (its scale is the method's)."""
    query_start: float
    query_end: float
    target_start: float
    target_end: float
    score: float

    def __post_init__(self):
        for name in _FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f'Segment.{name} must be a number, got {value!r}')
            # Plain Python numbers (numpy scalars come in from the methods) keep as_dict
            # JSON-ready and comparisons cheap.
            value = int(value) if isinstance(value, numbers.Integral) else float(value)
            if math.isnan(value):
                raise ValueError(f'Segment.{name} is NaN')
            if name != 'score' and math.isinf(value):
                raise ValueError(f'Segment.{name} must be finite, got {value!r}')
            object.__setattr__(self, name, value)
        if self.query_end < self.query_start:
            raise ValueError(f'Segment query_end {self.query_end} is before query_start {self.query_start}')
        if self.target_end < self.target_start:
            raise ValueError(f'Segment target_end {self.target_end} is before target_start {self.target_start}')

    def to_seconds(self, time_step: float) -> 'Segment':
        """This segment, given in frame indices, in seconds: frame i covers
        [i * time_step, (i + 1) * time_step)."""
        step = _checked_step(time_step)
        return Segment(self.query_start * step, self.query_end * step,
                       self.target_start * step, self.target_end * step, self.score)

    def on_timelines(self, query_times: Sequence[float], target_times: Sequence[float],
                     time_step: float) -> List['Segment']:
        """This segment, given in frame indices, in seconds on both videos' timelines:
        frame i of a video is shown at ``times[i]`` (seconds from its first frame) and
        spans one ``time_step``. Where either video's samples jump by more than
        ``HOLE_STEPS`` time steps (a hole in a variable frame rate video), the segment is
        cut: the hole's time is left out on its own timeline and the matching stretch
        (mapped linearly in time) on the other, so a hole shows as a hole. One segment
        per piece, each with this segment's score."""
        step = _checked_step(time_step)
        q0, q1, t0, t1 = int(self.query_start), int(self.query_end), int(self.target_start), int(self.target_end)
        if q1 - q0 < 1 or t1 - t0 < 1:
            return [self.to_seconds(step)]
        qt, tt = np.asarray(query_times, np.float64), np.asarray(target_times, np.float64)
        spans = [(qt[q0], qt[q1 - 1] + step), (tt[t0], tt[t1 - 1] + step)]
        # The holes of both sides as fractions of the way along the segment's time.
        holes = []
        for (start, end), times, first, last in zip(spans, (qt, tt), (q0, t0), (q1, t1)):
            for i in range(first, last - 1):
                if times[i + 1] - times[i] > HOLE_STEPS * step:
                    holes.append(((times[i] + step - start) / (end - start), (times[i + 1] - start) / (end - start)))
        pieces, at = [], 0.0
        for hole_start, hole_end in sorted(holes) + [(1.0, 1.0)]:
            if hole_start > at:
                pieces.append((at, hole_start))
            at = max(at, hole_end)
        (qs, qe), (ts, te) = spans
        return [Segment(qs + a * (qe - qs), qs + b * (qe - qs), ts + a * (te - ts), ts + b * (te - ts), self.score)
                for a, b in pieces]

    def as_dict(self) -> dict:
        """The five fields by name (query_start, query_end, target_start, target_end, score)."""
        return {name: getattr(self, name) for name in _FIELDS}


def _checked_step(time_step: float) -> float:
    if isinstance(time_step, bool) or not isinstance(time_step, numbers.Real) \
            or not math.isfinite(time_step) or time_step <= 0:
        raise ValueError(f'time_step must be a positive number of seconds, got {time_step!r}')
    return float(time_step)
