"""`dns serve` fuzzed from its own OpenAPI description (schemathesis): every operation
gets generated requests, valid and not, against a real service on 127.0.0.1 with a
token. No answer is a 5xx but the designed 503 (queue full); the service answers
afterwards, and what the index stores (videos, paths, decisions, fine features) is
unchanged. Bounded: a fixed number of examples per operation."""
import sqlite3

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from support.service_process import ServiceProcess

TOKEN = 'fuzz-token-81c2'
EXAMPLES_PER_OPERATION = 12
REQUEST_TIMEOUT_S = 300  # a hang guard
DESIGNED_5XX = {503}


def stored(root) -> dict:
    """What the index holds, read from its catalog (read-only)."""
    db = sqlite3.connect(f'file:{root / "dns-index" / "catalog.sqlite"}?mode=ro', uri=True)
    try:
        return {table: sorted(db.execute(query).fetchall()) for table, query in (
            ('videos', 'SELECT id, frames, fine_sha256, thumbnails FROM videos'),
            ('paths', 'SELECT abspath, given, video_id FROM paths'),
            ('decisions', 'SELECT a, b, decision, decided_at FROM decisions'),
            ('meta', 'SELECT key, value FROM meta'))}
    finally:
        db.close()


@pytest.fixture(scope='module')
def fuzzed_service(review_index):
    root, torch_home = review_index
    before = stored(root)
    with ServiceProcess('dns-index', root, torch_home, '--max-upload-mb', '2', token=TOKEN) as running:
        yield running
        with running.client() as client:  # alive after the fuzzing, and still searching
            assert client.get('/health').json()['status'] == 'ok'
            assert client.post('/search', data={'path': 'videos/orig0.mp4', 'k': 3}).status_code == 200
    assert stored(root) == before


@pytest.fixture(scope='module')
def api(fuzzed_service):
    return schemathesis.openapi.from_url(f'{fuzzed_service.url}/openapi.json', timeout=REQUEST_TIMEOUT_S)


schema = schemathesis.pytest.from_fixture('api')


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_get_no_undesigned_5xx(case, fuzzed_service):
    response = case.call(base_url=fuzzed_service.url, headers={'Authorization': f'Bearer {TOKEN}'},
                         timeout=REQUEST_TIMEOUT_S)
    assert response.status_code < 500 or response.status_code in DESIGNED_5XX, \
        f'{case.method} {case.formatted_path}: {response.status_code} {response.text[:500]}'
