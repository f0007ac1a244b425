"""`dns serve` over HTTP: a real uvicorn subprocess on 127.0.0.1, a real index of
encoded videos (the copy model, so duplicates exist). The answers equal what the `dns`
commands print; bad requests get a 4xx that names the problem, and the service lives on."""
import io
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from support.service_process import DNS, ServiceProcess, dns_env

TOKEN = 'test-token-3f9a'
MAX_UPLOAD_MB = 2
HEX64 = '0' * 64


@pytest.fixture(scope='module')
def service(review_index):
    root, torch_home = review_index
    with ServiceProcess('dns-index', root, torch_home, '--max-upload-mb', str(MAX_UPLOAD_MB),
                        token=TOKEN) as running:
        yield running, root, torch_home


def dns_json(root, torch_home, *args):
    result = subprocess.run([str(DNS), *args, '--json'], cwd=root, env=dns_env(torch_home), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_search_by_path_answers_what_dns_search_prints(service):
    running, root, torch_home = service
    with running.client() as client:
        answer = client.post('/search', data={'path': 'videos/orig0.mp4', 'k': 5, 'rerank': 0.5,
                                              'segments': 'true'})
    assert answer.status_code == 200, answer.text
    assert answer.json() == dns_json(root, torch_home, 'search', 'videos/orig0.mp4', '-k', '5', '--rerank', '0.5',
                                     '--segments')
    assert answer.json()['results'][0]['path'] in ('videos/orig0.mp4', 'videos/orig0_exact.mp4')


def test_search_takes_every_option_of_dns_search(service):
    """clips, candidates and segment_background reach the search as `dns search` takes
    them; each changes the answer here, so one dropped on the way shows."""
    running, root, torch_home = service
    options = {'path': 'videos/orig0.mp4', 'k': 10, 'segments': 'true'}
    with running.client() as client:
        answers = {name: client.post('/search', data={**options, **extra}) for name, extra in (
            ('no clips, background', {'clips': 'false', 'segment_background': 'on', 'candidates': 5}),
            ('clips, background', {'segment_background': 'on'}),
            ('clips, no background', {'segment_background': 'off'}))}
    for name, answer in answers.items():
        assert answer.status_code == 200, (name, answer.text)
    answers = {name: answer.json() for name, answer in answers.items()}
    assert answers['no clips, background'] == dns_json(
        root, torch_home, 'search', 'videos/orig0.mp4', '-k', '10', '--candidates', '5', '--no-clips', '--segments',
        '--segment-background', 'on')
    assert {r['source'] for r in answers['no clips, background']['results']} == {'video'}
    # 5 candidate contents (two files share one), of the 10 files
    assert len(answers['no clips, background']['results']) < len(answers['clips, background']['results'])
    assert 'both' in {r['source'] for r in answers['clips, background']['results']}
    assert answers['clips, background'] != answers['clips, no background']


def test_many_searches_at_once_each_answer_what_a_lone_search_does(service):
    """More requests at once than the service lets use the index (2 per core), over
    different files and the page's reads: every one is answered, each the same as when
    it runs alone (the shared Milvus client, models and per-thread catalogs hold)."""
    running, _, _ = service
    paths = ['videos/orig0.mp4', 'videos/orig0_cropped.mp4', 'videos/orig0_reencoded.mp4', 'videos/unrelated0.mp4']

    def ask(client, path):
        answer = client.post('/search', data={'path': path, 'k': 5, 'rerank': 0.5, 'segments': 'true'})
        assert answer.status_code == 200, answer.text
        return answer.json()

    with running.client() as client:
        alone = {path: ask(client, path) for path in paths}
    requests = [paths[i % len(paths)] for i in range(24)]

    def one_client(number):
        with running.client(timeout=600) as client:
            return [(path, ask(client, path)) for path in requests[number::12]]

    with ThreadPoolExecutor(12) as pool:
        answers = [pair for answered in pool.map(one_client, range(12)) for pair in answered]
    assert len(answers) == len(requests)
    for path, answer in answers:
        assert answer == alone[path], path


def test_search_with_an_upload(service):
    running, root, _ = service
    with running.client() as client, open(root / 'videos' / 'orig0_reencoded.mp4', 'rb') as video:
        answer = client.post('/search', files={'video': ('clip.mp4', video, 'video/mp4')}, data={'k': 3})
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert out['query'] == 'clip.mp4' and len(out['results']) == 3
    assert out['results'][0]['path'] == 'videos/orig0_reencoded.mp4'


def test_duplicates_answers_what_dns_dedup_prints_and_decisions_change_both(service):
    running, root, torch_home = service
    with running.client() as client:
        before = client.get('/duplicates').json()
        group = next(g for g in before['groups'] if 'videos/orig0.mp4' in g['videos'])
        pair = next(p for p in group['pairs'] if p['b'] == 'videos/orig0_reencoded.mp4')
        marked = client.post('/decisions', json={'pairs': [[pair['b'], pair['a']]], 'decision': 'not_copy'})
        assert marked.status_code == 200, marked.text
        after = client.get('/duplicates').json()
        csv_text = client.get('/decisions.csv').text
    assert after == dns_json(root, torch_home, 'dedup')
    assert {(d['a'], d['b'], d['decision']) for d in after['decisions']} >= {(pair['a'], pair['b'], 'not_copy')}
    joined = {(p['a'], p['b']) for g in after['groups'] for p in g['pairs']}
    assert (pair['a'], pair['b']) not in joined
    assert f'{pair["a"]},{pair["b"]},not_copy,' in csv_text and csv_text.startswith('a,b,decision,decided_at')
    with running.client() as client:  # forgotten again: the index is shared with other tests
        assert client.post('/decisions', json={'pairs': [[pair['a'], pair['b']]], 'decision': None}).status_code == 200
        assert client.get('/duplicates').json() == before


def test_video_record_and_thumbnails(service):
    running, _, _ = service
    with running.client() as client:
        group = next(g for g in client.get('/duplicates').json()['groups'] if 'videos/orig0.mp4' in g['videos'])
        video_id = group['video_ids']['videos/orig0.mp4']
        record = client.get(f'/videos/{video_id}').json()
        assert record['duration'] == 8.0 and (record['width'], record['height']) == (128, 96)
        assert len(record['thumbnails']) == 4
        image = client.get(record['thumbnails'][0])
        assert image.status_code == 200 and image.headers['content-type'] == 'image/jpeg'
        assert image.content[:3] == b'\xff\xd8\xff'
        other = group['video_ids']['videos/orig0_speedup.mp4']  # 1.5x faster: 6 s
        pair = client.get(f'/pairs/{video_id}/{other}').json()
        assert pair['durations'] == [8.0, 6.0] and 0 < pair['similarity'] <= 1
        assert pair['segments'] and all(s['query_end'] <= 8 and s['target_end'] <= 6 for s in pair['segments'])
        heatmap = client.get(pair['heatmap'])
        assert heatmap.content[:8] == b'\x89PNG\r\n\x1a\n'
        # The copied part's thumbnails, made at segment times: the shifted copy's first
        # frame is the original's at 2 s, not its first.
        shifted = group['video_ids']['videos/orig0_shifted.mp4']
        at = {name: thumbnail(client, video, ms) for name, video, ms in (
            ('original at 2 s', video_id, 2000), ('original at 0 s', video_id, 0), ('shifted at 0 s', shifted, 0))}
        assert difference(at['shifted at 0 s'], at['original at 2 s']) < difference(at['shifted at 0 s'],
                                                                                     at['original at 0 s']) / 3
        past = client.get(f'/videos/{video_id}/at/60000.jpg')
        assert past.status_code == 404 and 'no frame at 60 s' in past.text
        assert client.get(f'/videos/{video_id}/at/-1.jpg').status_code == 422


def test_a_pair_takes_the_segment_background_of_dns_show(service):
    """Measured against the library, some pair of the group has other segment scores."""
    running, _, _ = service
    with running.client() as client:
        group = next(g for g in client.get('/duplicates').json()['groups'] if 'videos/orig0.mp4' in g['videos'])
        original = group['video_ids']['videos/orig0.mp4']
        others = [video_id for path, video_id in group['video_ids'].items() if video_id != original]
        views = {(other, switch): client.get(f'/pairs/{original}/{other}', params={'segment_background': switch})
                 for other in others for switch in ('on', 'off')}
    assert all(view.status_code == 200 for view in views.values()), [v.text for v in views.values()][:3]
    assert any(views[other, 'on'].json()['segments'] != views[other, 'off'].json()['segments'] for other in others)


def thumbnail(client, video_id, ms):
    from PIL import Image
    answer = client.get(f'/videos/{video_id}/at/{ms}.jpg')
    assert answer.status_code == 200 and answer.headers['content-type'] == 'image/jpeg', answer.text
    return np.asarray(Image.open(io.BytesIO(answer.content)), np.float32)


def difference(x, y):
    return float(np.abs(x - y).mean())


def chunked_upload():
    """A multipart upload with no Content-Length (chunked), larger than the limit."""
    yield b'--abc\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n\r\n'
    for _ in range(MAX_UPLOAD_MB * 16 + 1):
        yield b'\0' * 65536


def bad_requests(client: httpx.Client, root):
    """(name, response, expected status, words the reason must hold)."""
    video = (root / 'videos' / 'orig0.mp4').read_bytes()
    yield 'k not a number', client.post('/search', data={'path': 'videos/orig0.mp4', 'k': 'ten'}), 422, 'k'
    yield 'rerank out of range', client.post('/search', data={'path': 'videos/orig0.mp4', 'rerank': 2}), 422, 'rerank'
    yield 'no query', client.post('/search', data={'k': 3}), 400, 'either'
    yield 'candidates below one', client.post('/search', data={'path': 'videos/orig0.mp4', 'candidates': 0}), 422, \
        'candidates'
    yield 'clips not a switch', client.post('/search', data={'path': 'videos/orig0.mp4', 'clips': 'maybe'}), 422, \
        'clips'
    yield 'segment background not on/off', client.post('/search', data={
        'path': 'videos/orig0.mp4', 'segment_background': 'sometimes'}), 422, 'segment_background'
    yield 'segment background of /duplicates not on/off', client.get(
        '/duplicates', params={'segment_background': 'sometimes'}), 422, 'segment_background'
    yield 'segment background of a pair not on/off', client.get(
        f'/pairs/{HEX64}/{HEX64}', params={'segment_background': 'sometimes'}), 422, 'segment_background'
    yield 'both queries', client.post('/search', data={'path': 'videos/orig0.mp4'},
                                      files={'video': ('a.mp4', video)}), 400, 'either'
    yield 'upload over the limit', client.post('/search', files={
        'video': ('big.mp4', b'\0' * (MAX_UPLOAD_MB * 1_000_000 + 1))}), 413, 'limit'
    yield 'chunked upload over the limit', client.post('/search', content=chunked_upload(), headers={
        'content-type': 'multipart/form-data; boundary=abc'}), 413, 'limit'
    yield 'truncated video', client.post('/search', files={'video': ('cut.mp4', video[:2000])}), 422, 'cut.mp4'
    yield 'garbage video', client.post('/search', files={'video': ('junk.mp4', b'junk' * 5000)}), 422, 'not a video'
    yield 'empty upload', client.post('/search', files={'video': ('empty.mp4', b'')}), 422, 'empty'
    yield 'traversal in path=', client.post('/search', data={'path': '../../etc/passwd'}), 404, 'not an indexed'
    yield 'absolute path not indexed', client.post('/search', data={'path': '/etc/passwd'}), 404, 'not an indexed'
    yield 'traversal in a video id', client.get('/videos/..%2F..%2Fetc%2Fpasswd'), 404, ''
    yield 'a video id that is no id', client.get('/videos/not-an-id'), 422, 'pattern'
    yield 'traversal in a thumbnail', client.get(f'/videos/{HEX64}/thumbnails/..%2F..%2Fcatalog.sqlite'), 404, ''
    yield 'traversal in the page', client.get('/page/..%2F..%2Fretrieval%2Fcatalog.py'), 404, ''
    yield 'unknown video', client.get(f'/videos/{HEX64}'), 404, 'no video'
    yield 'unknown thumbnail number', client.get(f'/videos/{HEX64}/thumbnails/0.jpg'), 404, 'no video'
    yield 'unknown pair', client.get(f'/pairs/{HEX64}/{HEX64}'), 404, 'no video'
    yield 'decision on unknown files', client.post('/decisions', json={
        'pairs': [['videos/orig0.mp4', '../../etc/passwd']], 'decision': 'copy'}), 404, 'not an indexed file'
    yield 'decision not a word it knows', client.post('/decisions', json={
        'pairs': [['videos/orig0.mp4', 'videos/orig0_logo.mp4']], 'decision': 'maybe'}), 422, 'decision'
    yield 'decision without pairs', client.post('/decisions', json={'decision': 'copy'}), 422, 'pairs'
    yield 'decision not JSON', client.post('/decisions', content=b'{not json',
                                           headers={'content-type': 'application/json'}), 422, 'json'


def test_bad_requests_get_a_4xx_with_the_reason_and_the_service_lives_on(service):
    running, root, _ = service
    with running.client() as client:
        for name, response, status, words in bad_requests(client, root):
            assert response.status_code == status, f'{name}: {response.status_code} {response.text[:300]}'
            assert 'root:' not in response.text, name
            assert 'dns-upload-' not in response.text, f'{name} names a server path: {response.text[:300]}'
            assert words.lower() in response.text.lower(), f'{name}: {response.text[:300]}'
        assert client.get('/health').json()['status'] == 'ok'
        assert client.post('/search', data={'path': 'videos/orig0.mp4', 'k': 1}).status_code == 200


def test_every_endpoint_checks_the_token(service):
    running, _, _ = service
    protected = [('GET', '/health'), ('GET', '/duplicates'), ('GET', f'/videos/{HEX64}'), ('GET', '/decisions'),
                 ('GET', '/decisions.csv'), ('POST', '/search'), ('POST', '/decisions'),
                 ('GET', f'/videos/{HEX64}/thumbnails/0.jpg'), ('GET', f'/pairs/{HEX64}/{HEX64}/heatmap.png'),
                 ('GET', f'/videos/{HEX64}/file'), ('GET', f'/videos/{HEX64}/at/0.jpg'),
                 ('DELETE', f'/decisions/bulk/{"0" * 32}')]
    for headers, reason in (({}, 'token is required'), ({'Authorization': 'Bearer wrong'}, 'wrong token'),
                            ({'Authorization': TOKEN}, 'wrong token')):
        for method, path in protected:
            answer = httpx.request(method, running.url + path, headers=headers, timeout=60)
            assert answer.status_code == 401 and reason in answer.json()['detail'], (method, path, answer.text)
    # The page's own files hold no data: a browser loads them, then asks for the token.
    assert httpx.get(running.url + '/', timeout=60).status_code == 200
    assert httpx.get(running.url + '/page/review.js', timeout=60).status_code == 200


def test_a_video_file_is_served_by_id_with_ranges_and_its_key(service):
    """The players' endpoint: found by content id in the catalog (the request's text
    names no file), byte ranges as a <video> asks for them, and with a token either
    the bearer header or the key of that one video that /videos/{id} gives."""
    import hashlib
    running, root, _ = service
    data = (root / 'videos' / 'orig0_logo.mp4').read_bytes()
    video_id = hashlib.sha256(data).hexdigest()
    with running.client() as client:
        url = client.get(f'/videos/{video_id}').json()['file']
        whole = client.get(f'/videos/{video_id}/file')
        assert client.get(f'/videos/{HEX64}/file').status_code == 404
        assert client.get('/videos/..%2F..%2Fetc%2Fpasswd/file').status_code in (404, 422)
    assert url.startswith(f'/videos/{video_id}/file?key=') and TOKEN not in url
    assert whole.status_code == 200 and whole.content == data and whole.headers['accept-ranges'] == 'bytes'
    assert whole.headers['content-type'] == 'video/mp4'
    part = httpx.get(running.url + url, headers={'Range': 'bytes=100-199'}, timeout=60)  # no header: the key
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers['content-range'] == f'bytes 100-199/{len(data)}'
    tail = httpx.get(running.url + url, headers={'Range': f'bytes={len(data) - 10}-'}, timeout=60)
    assert tail.status_code == 206 and tail.content == data[-10:]
    key = url.split('key=')[1]
    refused = [f'/videos/{video_id}/file', f'/videos/{video_id}/file?key={"0" * 64}',
               f'/videos/{HEX64}/file?key={key}',                      # another video's key
               f'/videos/{video_id}/file?key={key}&key={key}',
               f'/videos/{video_id}?key={key}', f'/videos/{video_id}/thumbnails/0.jpg?key={key}']
    for path in refused:
        answer = httpx.get(running.url + path, timeout=60)
        assert answer.status_code == 401, (path, answer.status_code)
    assert httpx.post(running.url + url, timeout=60).status_code in (401, 405)


def test_a_group_action_keeps_hand_decisions_and_one_call_undoes_it(service):
    running, _, _ = service
    with running.client() as client:
        group = next(g for g in client.get('/duplicates').json()['groups'] if 'videos/orig0.mp4' in g['videos'])
        pairs = [[p['a'], p['b']] for p in group['pairs']]
        hand = pairs[0]
        assert client.post('/decisions', json={'pairs': [hand], 'decision': 'copy'}).status_code == 200
        action = client.post('/decisions', json={'pairs': pairs, 'decision': 'not_copy', 'bulk': True}).json()
        stored = {(d['a'], d['b']): (d['decision'], d['bulk']) for d in client.get('/decisions').json()}
        assert stored[tuple(hand)] == ('copy', None)
        assert {key for key, (_, bulk) in stored.items() if bulk == action['bulk']} == {tuple(p) for p in pairs[1:]}
        assert len(action['recorded']) == len(pairs) - 1
        undone = client.delete(f'/decisions/bulk/{action["bulk"]}').json()['undone']
        assert len(undone) == len(pairs) - 1
        assert [(d['a'], d['b']) for d in client.get('/decisions').json()] == [tuple(hand)]
        assert client.delete('/decisions/bulk/not-an-id').status_code == 422
        assert client.post('/decisions', json={'pairs': [hand], 'decision': None, 'bulk': True}).status_code == 400
        assert client.post('/decisions', json={'pairs': [hand], 'decision': None}).status_code == 200


def test_binding_beyond_loopback_needs_a_token(review_index):
    root, torch_home = review_index
    result = subprocess.run([str(DNS), 'serve', '--index', 'dns-index', '--host', '0.0.0.0', '--port', '9'],
                            cwd=root, env=dns_env(torch_home), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert 'not loopback' in result.stderr and '--token' in result.stderr
