"""The search service and the review page: one FastAPI app over one index, with the
models and Milvus opened once at start-up into one ``Service`` (state.py) that the
routers (routes/: search, review, videos, pairs, health, the page) are handed by
FastAPI's dependency injection.

Endpoints run in FastAPI's thread pool, side by side: each thread reads the catalog
through its own SQLite connection, the Milvus client (gRPC) and the networks (inference
only) are shared, a decision is one SQLite transaction, and /duplicates searches once
per state of the indexed videos (a decision only regroups), without holding up searches. Uploads are decoded and
represented in worker processes (workers.py), so a bad file cannot take the service
down. At most ``max_in_flight`` requests are in at once, and ``workers`` times
(1 + queue) uploads: beyond either, 503 with Retry-After.
"""
import ipaddress
import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional, Union

from fastapi import FastAPI
from fastapi.responses import JSONResponse
import torch

from .. import defaults
from ..core import DnS
from ..retrieval.storage.fine_store import CorruptFeaturesError
from ..retrieval.storage.index import CATALOG_FILE, VideoIndex
from ..retrieval.storage.lite_host import LiteHost
from .limits import BodyLimit, InFlightLimit, TokenCheck
from .routes import ROUTERS, page
from .sharing import PerThreadCatalog
from .state import Service, index_slots
from .workers import UploadFailure, WorkerPool, WorkerSettings, default_workers


def create_app(index_folder: Union[str, os.PathLike], *, token: Optional[str] = None, model_options: Optional[dict] = None,
               milvus_uri: Optional[str] = None,
               milvus_token: Optional[str] = None, max_upload_mb: float = defaults.MAX_UPLOAD_MB,
               max_query_seconds: float = defaults.MAX_QUERY_SECONDS, workers: Optional[int] = None,
               worker_timeout_s: float = defaults.WORKER_TIMEOUT_S,
               worker_memory_mb: Optional[float] = defaults.WORKER_MEMORY_MB,
               max_in_flight: int = defaults.MAX_IN_FLIGHT) -> FastAPI:
    """The app over the index in ``index_folder`` (which must exist). ``token``: when
    given, every request but the page's files must send ``Authorization: Bearer token``.
    ``model_options``: keyword arguments of ``DnS``. ``workers`` processes (None: the
    default for this machine) represent uploads, each for at most ``worker_timeout_s``
    an upload and ``worker_memory_mb`` beyond its models (None: no cap)."""
    options = dict(model_options or {})
    workers = workers or default_workers()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        index = _open_index(index_folder, milvus_uri, milvus_token)
        # The workers share the machine's cores; the service's own threads search.
        threads = max(1, (os.cpu_count() or 1) // workers)
        pool = WorkerPool(WorkerSettings(index.settings.fine, index.settings.time_step, options, worker_memory_mb,
                                         threads), size=workers, timeout_s=worker_timeout_s)
        try:
            pool.start()
            # Requests run side by side, each on one core: a second thread inside each
            # request's small products would only contend with the other requests.
            torch.set_num_threads(1)
            models = DnS(index.settings.fine, **options)
            index.vectors()  # Milvus opened now, not on the first search
            app.state.service = Service(index, models, pool, max_query_seconds, token=token)
        except BaseException:
            pool.close()
            index.close()
            if index.lite_host is not None:
                index.lite_host.shutdown()
            raise
        yield
        app.state.service.close()
        del app.state.service

    app = FastAPI(title='DnS video copy detection', lifespan=lifespan,
                  description='Search an index of videos, list its near-duplicates, review them.')
    app.add_middleware(BodyLimit, max_bytes=int(max_upload_mb * 1e6))
    app.add_middleware(InFlightLimit, max_in_flight=max_in_flight)
    app.add_middleware(TokenCheck, token=token)  # added last: runs first

    @app.exception_handler(CorruptFeaturesError)
    async def corrupt(request, error: CorruptFeaturesError):
        return JSONResponse({'detail': str(error)}, status_code=500)

    @app.exception_handler(UploadFailure)
    async def upload_failed(request, error: UploadFailure):
        headers = {} if error.retry_after is None else {'Retry-After': str(error.retry_after)}
        return JSONResponse({'detail': error.reason}, status_code=error.status, headers=headers)

    for router in ROUTERS:
        app.include_router(router)
    page.mount_files(app)
    return app


def is_loopback(host: str) -> bool:
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _open_index(index_folder: Union[str, os.PathLike], milvus_uri: Optional[str],
                milvus_token: Optional[str]) -> VideoIndex:
    """The index as the service reads it: every request thread through its own SQLite
    connection, and Milvus Lite, which searches in Python, served by a process of its own
    rather than under the GIL of the threads that answer requests."""
    path = Path(index_folder) / CATALOG_FILE
    catalog = PerThreadCatalog(path) if path.is_file() else None  # else VideoIndex says there is no index
    lite = catalog is not None and not (milvus_uri or catalog.meta().get('milvus_uri'))
    host = LiteHost(threads=index_slots()) if lite else None
    try:
        return VideoIndex(index_folder, milvus_uri=milvus_uri, milvus_token=milvus_token, catalog=catalog,
                          lite_host=host)
    except BaseException:
        if host is not None:
            host.shutdown()
        if catalog is not None:
            catalog.close()
        raise


def serve(index_folder: Union[str, os.PathLike], host: str = defaults.HOST, port: int = defaults.PORT, token: Optional[str] = None,
          **options) -> int:
    """Run the service until interrupted. Binding anything but loopback needs a token."""
    import uvicorn
    if not is_loopback(host) and not token:
        print(f'dns serve: error: binding {host} (not loopback) exposes the index to the network; give a token '
              '(--token or DNS_TOKEN) that every request must send', file=sys.stderr)
        return 2
    if not (Path(index_folder) / CATALOG_FILE).is_file():
        print(f'dns serve: error: no index in {index_folder}: make one with `dns index --index {index_folder} '
              'VIDEOS...`', file=sys.stderr)
        return 2
    app = create_app(index_folder, token=token or None, **options)
    print(f'dns serve: http://{host}:{port}/ (index {os.path.abspath(index_folder)}; API docs at /docs)',
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level='warning')
    return 0
