"""What a reviewer works through: the groups of near-duplicates (GET /duplicates) and
the decisions on pairs (GET, POST /decisions, undo of a group action, the CSV)."""
import io
import json
from typing import Annotated, List, Literal, Optional, Tuple

from fastapi import APIRouter, HTTPException, Path as PathParam, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from ... import defaults
from ...retrieval.storage.catalog import UnknownFileError, pair_key
from ...retrieval.searching.dedup import group_pairs, score_pairs
from ...retrieval.searching.results import decisions_json, dedup_json, write_decisions_csv
from ...retrieval.storage.vector_store import MAX_LIMIT
from ..state import ServiceDep
from .shared import SEGMENT_BACKGROUND_HELP

router = APIRouter()


class Shown(BaseModel):
    """What a reviewer saw of one pair when deciding, kept with the decision (the CSV)."""
    a: str
    b: str
    score: Optional[float] = Field(None, allow_inf_nan=False)
    segments: List[Tuple[float, float, float, float]] = Field(
        [], max_length=100, description='copied segments, seconds: [a_start, a_end, b_start, b_end]')


class DecisionRequest(BaseModel):
    pairs: List[Tuple[str, str]] = Field(min_length=1, max_length=10_000,
                                         description='pairs of files, paths as given at index time')
    decision: Optional[Literal['copy', 'not_copy']] = Field(description="'copy', 'not_copy', or null to forget")
    bulk: bool = Field(False, description='a group action: decide only the pairs not decided yet, undone in one '
                                         'step by DELETE /decisions/bulk/{its id}')
    reviewer: Optional[str] = Field(None, max_length=100, description='who decides, as they name themselves')
    shown: List[Shown] = Field([], max_length=10_000, description='what the reviewer saw of the pairs')


@router.get('/duplicates')
def duplicates(s: ServiceDep,
               threshold: Annotated[Optional[float], Query(allow_inf_nan=False)] = None,
               rerank: Annotated[float, Query(ge=0, le=1)] = defaults.DEDUP_RERANK,
               neighbours: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = defaults.NEIGHBOURS,
               segments: bool = False,
               segment_threshold: Annotated[Optional[float], Query(allow_inf_nan=False)] = None,
               segment_background: Annotated[Optional[bool], Query(description=SEGMENT_BACKGROUND_HELP)] = None):
    """The groups of near-duplicates: the JSON of `dns dedup --json`. Its searches are
    kept per state of the videos, files and thresholds: a decision only regroups them."""
    settings = (threshold, rerank, neighbours, segments, segment_threshold, segment_background)

    def compute():
        with s.using():
            chosen = s.index.thresholds().copy if threshold is None else threshold
            # The searches are kept per state of the videos and settings: a decision only
            # regroups them (milliseconds), it does not search again.
            scored = s.scored.get(settings, lambda: score_pairs(
                s.index, s.models, threshold=chosen, rerank=rerank, neighbours=neighbours, segments=segments,
                segment_threshold=segment_threshold, segment_background=segment_background),
                version=s.index.catalog.content_state())
            decisions = s.index.catalog.decisions()
            return dedup_json(chosen, group_pairs(scored, decisions), decisions)
    return s.duplicates.get(settings, compute)


@router.get('/decisions')
def decisions(s: ServiceDep):
    """Every reviewer's decision."""
    with s.using(vectors=False):
        return decisions_json(s.index.catalog.decisions())


@router.post('/decisions')
def decide(s: ServiceDep, request: DecisionRequest):
    """Mark pairs (paths as given at index time; a group: all its pairs) a copy or
    not a copy; `dns dedup` and /duplicates follow it."""
    with s.using(vectors=False):
        try:
            shown = {pair_key(p.a, p.b): (p.score, json.dumps(p.segments) if p.segments else None)
                     for p in request.shown}
            recorded, action = s.index.catalog.decide(request.pairs, request.decision, bulk=request.bulk,
                                                      reviewer=request.reviewer or None, shown=shown)
        except UnknownFileError as error:
            raise HTTPException(404, str(error))
        except ValueError as error:
            raise HTTPException(400, str(error))
    return {'recorded': decisions_json({(d.a, d.b): d for d in recorded}), 'decision': request.decision,
            'bulk': action}


@router.delete('/decisions/bulk/{action}')
def undo_bulk(s: ServiceDep,
              action: Annotated[str, PathParam(pattern=r'^[0-9a-f]{32}$', description='a group action id')]):
    """Undo a group action in one step: forget the decisions it wrote that no
    reviewer has changed since."""
    with s.using(vectors=False):
        undone = s.index.catalog.undo_bulk(action)
    return {'undone': [{'a': a, 'b': b} for a, b in undone]}


@router.get('/decisions.csv', response_class=PlainTextResponse)
def decisions_csv(s: ServiceDep):
    """The decisions as CSV: a,b,decision,decided_at,score,segments,reviewer."""
    out = io.StringIO()
    with s.using(vectors=False):
        write_decisions_csv(s.index.catalog.decisions(), out)
    return PlainTextResponse(out.getvalue(), media_type='text/csv',
                             headers={'content-disposition': 'attachment; filename="dns-decisions.csv"'})
