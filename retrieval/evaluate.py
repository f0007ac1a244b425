"""The paper's accuracy/cost curve: mAP of an index against a ground truth, and the
time per query, at re-rank fractions from 0% to 100%.

Ground truth: a JSON object mapping each query video to the list of its positives
(copies), paths absolute or relative to the ground-truth file's folder::

    {"queries/a.mp4": ["db/a_copy.mp4", "db/a_cropped.mp4"], ...}

A query that is itself in the index is left out of its own ranking (its other files
with the same content are not). Positives that are not in the index are reported and
left out; so are queries left with no positive.
"""
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .index import VideoIndex
from .representation import DnSModels
from .search import search

log = logging.getLogger(__name__)
DEFAULT_FRACTIONS = tuple(round(0.05 * i, 2) for i in range(21))


@dataclass
class CurvePoint:
    fraction: float
    mean_ap: float
    seconds_per_query: float


def load_ground_truth(path) -> Dict[str, List[str]]:
    """Absolute query path -> absolute positive paths."""
    path = Path(path)
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f'cannot read the ground truth {path}: {error}') from error
    if not isinstance(content, dict) or not all(
            isinstance(q, str) and isinstance(p, list) and all(isinstance(x, str) for x in p)
            for q, p in content.items()):
        raise ValueError(f'{path}: expected a JSON object mapping each query path to a list of positive paths')
    base = path.parent

    def resolve(p: str) -> str:
        return os.path.abspath(p if os.path.isabs(p) else base / p)
    return {resolve(q): [resolve(p) for p in positives] for q, positives in content.items()}


def average_precision(ranked: Sequence[str], positives: set) -> float:
    """AP of a ranking: mean over positives of the precision at each one's rank; a
    positive missing from the ranking counts as found at no rank (precision 0)."""
    if not positives:
        return 0.0
    hits, total = 0, 0.0
    for rank, item in enumerate(ranked, 1):
        if item in positives:
            hits += 1
            total += hits / rank
    return total / len(positives)


def evaluate(index: VideoIndex, models: DnSModels, ground_truth: Dict[str, List[str]],
             fractions: Sequence[float] = DEFAULT_FRACTIONS, candidates: Optional[int] = None) -> List[CurvePoint]:
    """mAP and mean seconds per query (search only: the query's own representation is
    made once, before timing) at each re-rank fraction."""
    indexed = {}
    for query, positives in ground_truth.items():
        found = [p for p in positives if index.video_id_of(p) is not None]
        for missing in sorted(set(positives) - set(found)):
            log.warning('positive %s of query %s is not in the index; left out', missing, query)
        if found:
            indexed[query] = set(found)
        else:
            log.warning('query %s has no positive in the index; left out of the mAP', query)
    if not indexed:
        raise ValueError('no query of the ground truth has a positive in the index')
    representations = {query: index.representation_of_file(query, models) for query in indexed}
    index.vectors()  # connect and synchronise once, outside the timings
    curve = []
    for fraction in fractions:
        aps, seconds = [], 0.0
        for query, positives in indexed.items():
            start = time.perf_counter()
            matches = search(index, models, representations[query], k=None, rerank=fraction,
                             candidates=candidates, exclude_paths=[query])
            seconds += time.perf_counter() - start
            abspaths = [os.path.abspath(m.path) for m in matches]
            aps.append(average_precision(abspaths, positives))
        curve.append(CurvePoint(fraction, float(np.mean(aps)), seconds / max(len(indexed), 1)))
    return curve


def plot_curve(curve: Sequence[CurvePoint], path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fractions = [100 * p.fraction for p in curve]
    fig, left = plt.subplots(figsize=(6.4, 4))
    left.plot(fractions, [p.mean_ap for p in curve], 'o-', color='tab:blue')
    left.set_xlabel('pairs re-ranked by the fine-grained student (%)')
    left.set_ylabel('mAP', color='tab:blue')
    right = left.twinx()
    right.plot(fractions, [1000 * p.seconds_per_query for p in curve], 's--', color='tab:orange')
    right.set_ylabel('ms per query', color='tab:orange')
    left.set_title('DnS: accuracy and cost against the re-ranked fraction')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
