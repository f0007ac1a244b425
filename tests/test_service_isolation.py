"""`dns serve` when an upload's worker process dies or hangs, and when it is full: a
real `dns serve` on 127.0.0.1 with one upload worker, real signals to that worker's
process. SIGSTOP makes a real hang (the process is stuck, whatever it was doing) and
holds a worker busy for as long as a test needs; SIGKILL is a real crash. The failed
request gets a status that names the reason, the pool replaces the worker, and the
service and every other request go on. Waits are hang guards, never timing checks."""
import os
import signal
import socket
import threading
import time

import httpx
import pytest

from support.processes import descendants
from support.service_process import ServiceProcess

WORKER_TIMEOUT_S = 30  # the limit under test for the hang: far above an 8-second test clip's second or two
MAX_IN_FLIGHT = 4
GUARD_S = 300  # hang guard for waiting on the service's state


def one_worker_service(review_index, worker_timeout_s: float, *options: str):
    root, torch_home = review_index
    with ServiceProcess('dns-index', root, torch_home, '--workers', '1', '--worker-timeout', str(worker_timeout_s),
                        '--max-in-flight', str(MAX_IN_FLIGHT), *options) as running:
        yield running, root


@pytest.fixture(scope='module')
def service(review_index):
    """The default time limit: a worker held by SIGSTOP stays held until the test lets go."""
    yield from one_worker_service(review_index, 600)


@pytest.fixture(scope='module')
def impatient_service(review_index):
    yield from one_worker_service(review_index, WORKER_TIMEOUT_S)


@pytest.fixture(scope='module')
def starved_service(review_index):
    """Upload workers that may take 1 MB beyond their models: every upload runs out."""
    yield from one_worker_service(review_index, 600, '--worker-memory-mb', '1')


def workers(client: httpx.Client) -> dict:
    answer = client.get('/health')
    assert answer.status_code == 200, answer.text
    return answer.json()['workers']


def wait_for(client: httpx.Client, condition, what: str) -> dict:
    deadline = time.monotonic() + GUARD_S
    while True:
        state = workers(client)
        if condition(state):
            return state
        assert time.monotonic() < deadline, f'the service never showed {what}: {state}'
        time.sleep(0.05)


class Upload(threading.Thread):
    """An upload sent from a thread of its own; ``answer`` once it is answered."""

    def __init__(self, running: ServiceProcess, video: bytes, name: str = 'clip.mp4'):
        super().__init__(daemon=True)
        self.running, self.video, self.name, self.answer = running, video, name, None
        self.start()

    def run(self):
        with self.running.client() as client:
            self.answer = client.post('/search', files={'video': (self.name, self.video, 'video/mp4')}, data={'k': 3})

    def result(self) -> httpx.Response:
        self.join(GUARD_S)
        assert self.answer is not None, 'the upload was never answered'
        return self.answer


def clip(root) -> bytes:
    return (root / 'videos' / 'orig0_reencoded.mp4').read_bytes()


def search_by_path(client: httpx.Client) -> httpx.Response:
    return client.post('/search', data={'path': 'videos/orig0.mp4', 'k': 3})


def test_a_worker_killed_mid_request_fails_that_request_and_is_replaced(service):
    running, root = service
    with running.client() as client:
        [pid] = wait_for(client, lambda w: len(w['pids']) == 1 and not w['busy'], 'one idle worker')['pids']
        replaced = workers(client)['replaced']
        os.kill(pid, signal.SIGSTOP)  # holds the upload in the worker until the kill below
        upload = Upload(running, clip(root))
        wait_for(client, lambda w: w['busy'] == [pid], 'the upload in the worker')
        os.kill(pid, signal.SIGKILL)
        answer = upload.result()
        assert answer.status_code == 500, answer.text
        assert 'SIGKILL' in answer.json()['detail'] and 'goes on' in answer.json()['detail']
        state = wait_for(client, lambda w: len(w['pids']) == 1 and pid not in w['pids'], 'a new worker')
        assert state['replaced'] == replaced + 1
        again = Upload(running, clip(root)).result()
        assert again.status_code == 200, again.text
        assert again.json()['results'][0]['path'] == 'videos/orig0_reencoded.mp4'


def test_a_hung_worker_is_stopped_past_the_limit_and_other_requests_go_on(impatient_service):
    running, root = impatient_service
    with running.client() as client:
        [pid] = wait_for(client, lambda w: len(w['pids']) == 1 and not w['busy'], 'one idle worker')['pids']
        os.kill(pid, signal.SIGSTOP)  # stuck: it never answers
        upload = Upload(running, clip(root))
        wait_for(client, lambda w: w['busy'] == [pid], 'the upload in the worker')
        # While the upload hangs, the rest of the service answers.
        assert search_by_path(client).status_code == 200
        assert client.get('/decisions').status_code == 200
        answer = upload.result()
        assert answer.status_code == 504, answer.text
        assert f'limit of {WORKER_TIMEOUT_S} s' in answer.json()['detail']
        assert not os.path.exists(f'/proc/{pid}'), 'the hung worker was not stopped'
        wait_for(client, lambda w: len(w['pids']) == 1 and pid not in w['pids'], 'a new worker')
        assert Upload(running, clip(root)).result().status_code == 200


def test_full_upload_workers_answer_503_with_retry_after_and_nothing_waits_without_bound(service):
    running, root = service
    with running.client() as client:
        [pid] = wait_for(client, lambda w: len(w['pids']) == 1 and not w['busy'], 'one idle worker')['pids']
        capacity = workers(client)['capacity']
        assert capacity < MAX_IN_FLIGHT
        os.kill(pid, signal.SIGSTOP)  # every upload admitted stays in: one in the worker, the rest waiting
        uploads = [Upload(running, clip(root))]
        wait_for(client, lambda w: w['busy'] == [pid], 'the first upload in the worker')
        uploads += [Upload(running, clip(root)) for _ in range(capacity - 1)]
        wait_for(client, lambda w: w['waiting'] == capacity - 1, 'the other uploads waiting')
        refused = client.post('/search', files={'video': ('one-more.mp4', clip(root), 'video/mp4')})
        assert refused.status_code == 503, refused.text
        assert 'upload workers are busy' in refused.json()['detail'] and int(refused.headers['retry-after']) >= 1
        # Searches by path still get in while uploads wait.
        assert search_by_path(client).status_code == 200
        os.kill(pid, signal.SIGKILL)
        answers = [upload.result() for upload in uploads]
    assert answers[0].status_code == 500, answers[0].text
    assert [a.status_code for a in answers[1:]] == [200] * (capacity - 1), [a.text for a in answers[1:]]
    with running.client() as client:
        assert search_by_path(client).status_code == 200


def partial_request(running: ServiceProcess) -> socket.socket:
    """A request whose body never comes: it stays in the service until the socket closes."""
    connection = socket.create_connection(('127.0.0.1', running.port))
    connection.sendall(b'POST /decisions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n'
                       b'Content-Length: 1000\r\n\r\n{')
    return connection


def test_past_the_limit_of_requests_in_flight_one_more_gets_503_and_health_still_answers(service):
    running, root = service
    stalled = [partial_request(running) for _ in range(MAX_IN_FLIGHT)]
    try:
        with running.client() as client:
            deadline = time.monotonic() + GUARD_S
            while (full := search_by_path(client)).status_code != 503:  # the stalled ones are in once read
                assert full.status_code == 200, full.text
                assert time.monotonic() < deadline, 'the limit of requests in flight never answered 503'
                time.sleep(0.05)
            assert f'answering {MAX_IN_FLIGHT} requests already' in full.json()['detail']
            assert full.headers['retry-after'] == '1'
            assert client.get('/health').status_code == 200  # always answered
    finally:
        for connection in stalled:
            connection.close()
    with running.client() as client:  # the stalled requests gone, the service takes requests again
        deadline = time.monotonic() + GUARD_S
        while (answer := search_by_path(client)).status_code == 503:
            assert time.monotonic() < deadline, 'the stalled requests were never let go'
            time.sleep(0.05)
        assert answer.status_code == 200, answer.text


def test_an_upload_past_the_memory_cap_fails_with_422_and_its_worker_is_replaced(starved_service):
    running, root = starved_service
    with running.client() as client:
        [pid] = wait_for(client, lambda w: len(w['pids']) == 1 and not w['busy'], 'one idle worker')['pids']
        answer = Upload(running, clip(root)).result()
        assert answer.status_code == 422, answer.text
        assert 'needs more memory than a worker may use (1 MB beyond the models)' in answer.json()['detail']
        # A failed allocation may leave a library half-changed: that worker is not used again.
        state = wait_for(client, lambda w: len(w['pids']) == 1 and pid not in w['pids'], 'a new worker')
        assert state['replaced'] >= 1
        assert search_by_path(client).status_code == 200


def test_a_killed_milvus_lite_process_is_replaced_and_searches_go_on(service):
    """Milvus Lite runs in a process of the service's own: killed, the next request
    gets a fresh one, with everything the index held."""
    running, _ = service
    with running.client() as client:
        before = search_by_path(client)
        assert before.status_code == 200, before.text
        pid = client.get('/health').json()['milvus_lite_pid']
        assert pid in descendants(running.process.pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + GUARD_S
        while pid in descendants(running.process.pid) and not _dead(pid):  # until the kernel ends it
            assert time.monotonic() < deadline, 'the killed Milvus Lite process never ended'
            time.sleep(0.1)
        after = search_by_path(client)
        assert after.status_code == 200, after.text
        assert after.json() == before.json()
        fresh = client.get('/health').json()['milvus_lite_pid']
        assert fresh != pid and fresh in descendants(running.process.pid)


def _dead(pid: int) -> bool:
    """Gone, or a zombie whose every thread has exited. A killed process's main thread is
    a zombie while its other threads still exit, and until the last has, the kernel does
    not report the death to the parent: the service would still see it running."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            state = stat.read().rsplit(')', 1)[1].split()[0]
        return state == 'Z' and os.listdir(f'/proc/{pid}/task') == [str(pid)]
    except OSError:  # gone already
        return True
