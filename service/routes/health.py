"""GET /health: answered whatever the load (limits.ALWAYS_ADMITTED)."""
from fastapi import APIRouter

from ..state import ServiceDep

router = APIRouter()


@router.get('/health')
def health(s: ServiceDep):
    """Alive; ``busy`` while a request uses the index; the upload workers: their
    pids, those busy with an upload, uploads waiting, workers replaced so far; the
    pid of the process serving Milvus Lite (null with a Milvus server)."""
    host = s.index.lite_host
    return {'status': 'ok', 'busy': s.busy, 'workers': s.workers.describe(),
            'milvus_lite_pid': host.pid if host is not None else None}
