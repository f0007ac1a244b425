"""What `dns search --json`, `dns dedup --json` and `dns decisions --csv` print, built
in one place: the service answers with exactly the same documents."""
import csv
import json
from typing import Dict, Iterable, List, Mapping, Optional, TextIO, Tuple

from ..storage.catalog import Decision
from .dedup import DuplicateGroup
from .search import Match

DECISION_COLUMNS = ('a', 'b', 'decision', 'decided_at')
CSV_EVIDENCE = ('score', 'segments', 'reviewer')


def search_json(query: str, rerank: float, matches: Iterable[Match], copy_threshold: Optional[float] = None) -> Dict:
    """``query``: the query as the user named it (a path, or an upload's file name);
    ``copy_threshold``: the index's, so that each result says whether it is a copy
    (``copy``, as the text output's '(copy)')."""
    out = {'query': query, 'rerank': rerank,
           'results': [m.as_dict(copy_threshold) for m in matches]}
    if copy_threshold is not None:
        out['copy_threshold'] = copy_threshold
    return out


def dedup_json(threshold: float, groups: Iterable[DuplicateGroup],
               decisions: Mapping[Tuple[str, str], Decision]) -> Dict:
    """The groups, and every reviewer's decision in the index (those marked 'not_copy'
    are why some pairs are absent from the groups)."""
    return {'threshold': threshold, 'groups': [g.as_dict() for g in groups],
            'decisions': decisions_json(decisions)}


def decisions_json(decisions: Mapping[Tuple[str, str], Decision]) -> List[Dict]:
    # bulk: the id of the group action that wrote it (None: decided by hand).
    # score, segments, reviewer: what the reviewer was shown, and who they said they were.
    return [{**{name: getattr(d, name) for name in DECISION_COLUMNS}, 'bulk': d.bulk, 'score': d.score,
             'segments': json.loads(d.segments) if d.segments else None, 'reviewer': d.reviewer}
            for d in decisions.values()]


def segments_text(segments: Optional[str]) -> str:
    """Segments as stored (JSON, seconds) for a CSV cell: a_start-a_end=b_start-b_end;..."""
    if not segments:
        return ''
    return ';'.join(f'{a0:g}-{a1:g}={b0:g}-{b1:g}' for a0, a1, b0, b1 in json.loads(segments))


def write_decisions_csv(decisions: Mapping[Tuple[str, str], Decision], out: TextIO) -> int:
    """The decisions as CSV (a,b,decision,decided_at: paths as given at index time, the
    time as ISO 8601 UTC; then what the reviewer was shown: the score, the copied
    segments in seconds as a_start-a_end=b_start-b_end;..., and the reviewer's name,
    empty where unknown); return how many rows were written."""
    from datetime import datetime, timezone
    writer = csv.writer(out)
    writer.writerow(DECISION_COLUMNS + CSV_EVIDENCE)
    for d in decisions.values():
        writer.writerow([d.a, d.b, d.decision,
                         datetime.fromtimestamp(d.decided_at, timezone.utc).isoformat(timespec='seconds'),
                         '' if d.score is None else f'{d.score:.4f}', segments_text(d.segments), d.reviewer or ''])
    return len(decisions)
