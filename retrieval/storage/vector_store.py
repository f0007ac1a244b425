"""Coarse vectors in Milvus: a Milvus Lite folder inside the index by default, or any
Milvus server or cluster by URI."""
import logging
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple, TypeVar

import numpy as np

from ...defaults import COARSE_DIMS

if TYPE_CHECKING:  # pymilvus is imported where a store is opened, not with this module
    from pymilvus import MilvusClient

ID_LENGTH = 64
# Milvus caps a search's limit (topk) at 16384.
MAX_LIMIT = 16384
LOCK_WAIT_S = 300
T = TypeVar('T')


class VectorStoreError(RuntimeError):
    """Milvus cannot be reached or holds something else under the index's collection."""


class CoarseVectors:
    """One Milvus collection: primary key the video id, the cg_student vector, inner
    product (the vectors are unit length: the cg similarity itself). ``lite``: a Milvus
    Lite database, served in this process from its folder ``uri``, or with ``hosted``
    by a ``lite_host.LiteHost`` at the server ``uri`` it gave."""

    def __init__(self, uri: str, collection: str, token: Optional[str] = None, lite: bool = False,
                 hosted: bool = False):
        from pymilvus import MilvusClient
        self.uri, self.collection, self.lite, self.hosted = uri, collection, lite, hosted
        self.client = _connect(MilvusClient, uri, token, lite and not hosted)
        if not self.client.has_collection(collection):
            try:
                # Lite answers pymilvus's wait for the index with a logged (harmless) error.
                with _quiet('grpc'), _quiet('pymilvus'):
                    self._create()
            except Exception:
                # Parallel shards race to create it: the loser finds the winner's.
                if not self.client.has_collection(collection):
                    raise
        self.client.load_collection(collection)

    def _create(self) -> None:
        from pymilvus import DataType
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field('id', DataType.VARCHAR, is_primary=True, max_length=ID_LENGTH)
        schema.add_field('vector', DataType.FLOAT_VECTOR, dim=COARSE_DIMS)
        params = self.client.prepare_index_params()
        # Lite: exact search. A server picks its own index (AUTOINDEX) for scale.
        params.add_index('vector', index_type='FLAT' if self.lite else 'AUTOINDEX', metric_type='IP')
        self.client.create_collection(self.collection, schema=schema, index_params=params)

    def close(self) -> None:
        self.client.close()
        if self.lite and not self.hosted:
            # pymilvus keeps a Lite database open until the process exits; release it
            # now so that other processes can use the index.
            from milvus_lite.server_manager import server_manager_instance
            server_manager_instance.release_server(self.uri)

    def upsert(self, ids: Sequence[str], vectors: Sequence[np.ndarray]) -> None:
        self.client.upsert(self.collection, [{'id': i, 'vector': np.asarray(v, np.float32).tolist()}
                                             for i, v in zip(ids, vectors)])

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.delete(self.collection, ids=list(ids))

    def flush(self) -> None:
        self.client.flush(self.collection)

    def count(self) -> int:
        return count_rows(self.client, self.collection)

    def search(self, vector: np.ndarray, limit: int) -> List[Tuple[str, float]]:
        """(video id, cg similarity) of the ``limit`` nearest vectors, best first."""
        limit = min(limit, MAX_LIMIT)
        if limit < 1:
            return []
        # Only the key: Milvus Lite returns every field, vectors included, when none is named.
        hits = self.client.search(self.collection, data=[np.asarray(vector, np.float32).tolist()],
                                  anns_field='vector', limit=limit, output_fields=['id'],
                                  search_params={'metric_type': 'IP'})[0]
        return [(hit['id'], float(hit['distance'])) for hit in hits]


def count_rows(client: 'MilvusClient', collection: str) -> int:
    # Strong: a server would otherwise answer from a possibly stale snapshot.
    result = client.query(collection, filter='', output_fields=['count(*)'], consistency_level='Strong')
    return int(result[0]['count(*)'])


class LiteLocked(Exception):
    """A Milvus Lite folder another process holds; the message says what was tried."""


def wait_for_lite(attempt: Callable[[], T], uri: str) -> T:
    """``attempt()``, again while it raises ``LiteLocked``: a Milvus Lite folder admits one
    process at a time (it holds a lock while open); commands hold it for seconds, so a
    second process waits its turn, up to ``LOCK_WAIT_S``."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            return attempt()
        except LiteLocked as locked:
            if time.monotonic() > deadline:
                raise VectorStoreError(f'the Milvus Lite database {uri} stayed in use by another process for '
                                       f'{LOCK_WAIT_S} s ({locked})') from locked
            time.sleep(0.5)


def _connect(client_class, uri: str, token: Optional[str], lite: bool):
    def attempt():
        try:
            with _quiet('milvus_lite'), _quiet('pymilvus'):
                return client_class(uri=uri, token=token or '')
        except Exception as error:  # pymilvus wraps the Lite lock error in its own types
            if not lite:
                raise VectorStoreError(f'cannot connect to Milvus at {uri}: {error}') from error
            raise LiteLocked(str(error)) from error
    return wait_for_lite(attempt, uri)


@contextmanager
def _quiet(logger_name: str):
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)
