"""A copied segment: where a piece of one video reappears in another."""
import math
import numbers
from dataclasses import dataclass

_FIELDS = ('query_start', 'query_end', 'target_start', 'target_end', 'score')


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
        if isinstance(time_step, bool) or not isinstance(time_step, numbers.Real) \
                or not math.isfinite(time_step) or time_step <= 0:
            raise ValueError(f'time_step must be a positive number of seconds, got {time_step!r}')
        step = float(time_step)
        return Segment(self.query_start * step, self.query_end * step,
                       self.target_start * step, self.target_end * step, self.score)

    def as_dict(self) -> dict:
        """The five fields by name (query_start, query_end, target_start, target_end, score)."""
        return {name: getattr(self, name) for name in _FIELDS}
