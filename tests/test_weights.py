"""Resolving, downloading and loading weight files: the torch.hub cache, a real HTTP
server on 127.0.0.1 (interrupted transfers too), the Hugging Face mirror, and files
that must be refused."""
import argparse
import hashlib
import importlib
import io
import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import PACKAGE
from support.http_server import FileServer

weights = importlib.import_module(f'{PACKAGE}.weights')
file_hash = importlib.import_module(f'{PACKAGE}.file_hash')
WeightsError = weights.WeightsError


def published_bytes():
    buffer = io.BytesIO()
    torch.save({'model': {'weight': torch.arange(6.0).view(2, 3), 'bias': torch.ones(2)}, 'global_step': 1,
                'args': argparse.Namespace(student='x', lr=1e-5)}, buffer)
    return buffer.getvalue()


@pytest.fixture
def cache(tmp_path):
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / 'hub'))
    yield tmp_path / 'hub' / 'checkpoints'
    torch.hub.set_dir(previous)


def cache_files(cache):
    """The cache's files, less the lock files that locking leaves (deleting them would race)."""
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith('.lock'))


def free_port_url():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return f'http://127.0.0.1:{s.getsockname()[1]}/gone.pth'


def test_download_into_cache_then_reuse(cache):
    body = published_bytes()
    with FileServer({'/m.pth': body}) as server:
        path = weights.resolve('m.pth', url=server.url + '/m.pth', progress=False)
        assert path == cache / 'm.pth' and path.read_bytes() == body
        assert weights.resolve('m.pth', url=server.url + '/m.pth') == path
        assert server.requests == ['/m.pth']
    assert weights.resolve('m.pth') == path  # cached: no URL, no server needed
    assert weights.load_state_dict(path)['weight'].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_interrupted_transfer_leaves_nothing_then_retry_succeeds(cache):
    body = published_bytes()
    with FileServer({'/m.pth': body}) as server:
        server.truncate_to = len(body) // 2
        with pytest.raises(WeightsError, match='interrupted'):
            weights.resolve('m.pth', url=server.url + '/m.pth', progress=False)
        assert cache_files(cache) == []  # no file, no temporary left over
        server.truncate_to = None
        assert weights.resolve('m.pth', url=server.url + '/m.pth', progress=False).read_bytes() == body


RESOLVE_SCRIPT = """
import importlib, sys
sys.path.insert(0, sys.argv[1])
from support.checkout import PACKAGE, import_checkout
import_checkout()
weights = importlib.import_module(PACKAGE + '.weights')
print('ready', flush=True)
sys.stdin.readline()  # the parent releases both processes at once
print(weights.resolve(sys.argv[2], url=sys.argv[3], progress=False), flush=True)
"""


def test_concurrent_processes_download_once(cache):
    name = 'dns_cg_student.pth'
    body = random.Random(3).randbytes(1 << 19)
    env = dict(os.environ, TORCH_HOME=str(cache.parent.parent))
    with FileServer({'/f.pth': body}) as server:
        server.chunk_size, server.chunk_delay_s = 1 << 15, 0.1  # 16 chunks: about 1.6 s
        processes = [subprocess.Popen([sys.executable, '-c', RESOLVE_SCRIPT, str(Path(__file__).parent), name,
                                       server.url + '/f.pth'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
        try:
            for process in processes:
                assert process.stdout.readline() == 'ready\n', process.communicate(timeout=60)[1]
            for process in processes:
                process.stdin.write('\n')
                process.stdin.flush()
            outputs = [process.communicate(timeout=120) for process in processes]
        finally:
            for process in processes:
                process.kill()
        for process, (out, err) in zip(processes, outputs):
            assert process.returncode == 0, err
            assert out.strip() == str(cache / name)
        assert server.requests == ['/f.pth'] and server.completed == ['/f.pth']
    assert cache_files(cache) == ['dns-sha256.json', name]  # no .partial left over
    assert (cache / name).read_bytes() == body
    assert json.loads((cache / 'dns-sha256.json').read_text()) == {name: hashlib.sha256(body).hexdigest()}


def flip_a_byte(path):
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


def test_sha256_recorded_on_download_then_a_changed_file_is_refused(cache):
    name = 'dns_cg_student.pth'
    body = published_bytes()
    with FileServer({'/f.pth': body}) as server:
        path = weights.resolve(name, url=server.url + '/f.pth', progress=False)
        expected = hashlib.sha256(body).hexdigest()
        assert json.loads((cache / 'dns-sha256.json').read_text()) == {name: expected}
        assert weights.resolve(name) == path  # unchanged: accepted
        flip_a_byte(path)
        assert path.stat().st_size == len(body)
        with pytest.raises(WeightsError, match='sha256') as info:
            weights.resolve(name)
        message = str(info.value)
        for part in (name, str(path), expected, hashlib.sha256(path.read_bytes()).hexdigest(), 'delete it'):
            assert part in message
        # As the message says: delete it, and the new download is recorded in its place.
        path.unlink()
        assert weights.resolve(name, url=server.url + '/f.pth', progress=False).read_bytes() == body
        assert json.loads((cache / 'dns-sha256.json').read_text()) == {name: expected}


def test_file_placed_in_cache_is_trusted_on_first_use(cache):
    cache.mkdir(parents=True)
    placed = cache / 'resnet50-0676ba61.pth'  # a name carrying a hash prefix its content does not have
    placed.write_bytes(published_bytes())
    assert weights.resolve(placed.name) == placed
    assert json.loads((cache / 'dns-sha256.json').read_text()) == {placed.name: file_hash.sha256_of(placed)}
    flip_a_byte(placed)
    with pytest.raises(WeightsError, match='sha256'):
        weights.resolve(placed.name)


def test_download_not_matching_the_hash_in_its_name_never_lands(cache):
    body = published_bytes()
    assert not hashlib.sha256(body).hexdigest().startswith('0676ba61')
    with FileServer({'/r.pth': body}) as server:
        with pytest.raises(WeightsError, match='sha256.*0676ba61'):
            weights.resolve('resnet50-0676ba61.pth', url=server.url + '/r.pth', progress=False)
        assert cache_files(cache) == []  # no file, no temporary, no record
        # The rule is torch.hub's, for any name: one whose prefix matches is accepted.
        name = f'tiny-{hashlib.sha256(body).hexdigest()[:8]}.pth'
        assert weights.resolve(name, url=server.url + '/r.pth', progress=False).read_bytes() == body


def test_download_not_matching_a_known_sha256_never_lands(cache, monkeypatch):
    name = 'dns_cg_student.pth'
    body = published_bytes()
    monkeypatch.setitem(weights.KNOWN_SHA256, name, '0' * 64)
    with FileServer({'/f.pth': body}) as server:
        with pytest.raises(WeightsError, match='sha256.*' + '0' * 64):
            weights.resolve(name, url=server.url + '/f.pth', progress=False)
        assert cache_files(cache) == []
        monkeypatch.setitem(weights.KNOWN_SHA256, name, hashlib.sha256(body).hexdigest())
        assert weights.resolve(name, url=server.url + '/f.pth', progress=False).read_bytes() == body


@pytest.mark.parametrize('kind', ['404', 'refused'])
def test_failed_download_names_file_url_and_path(cache, kind):
    with FileServer({}) as server:
        url = server.url + '/missing.pth' if kind == '404' else free_port_url()
        with pytest.raises(WeightsError) as info:
            weights.resolve('dns_cg_student.pth', url=url, progress=False)
    message = str(info.value)
    assert 'dns_cg_student.pth' in message and url in message and str(cache / 'dns_cg_student.pth') in message
    assert not (cache / 'dns_cg_student.pth').exists()


def test_published_urls_and_unknown_names(cache):
    assert weights.PUBLISHED_URLS['dns_fg_att_student.pth'] == \
        'https://mever.iti.gr/distill-and-select/models/dns_fg_att_student.pth'
    assert weights.PUBLISHED_URLS['pca_resnet50_vcdb_1M.pth'] == 'http://ndd.iti.gr/visil/pca_resnet50_vcdb_1M.pth'
    with pytest.raises(WeightsError, match='unknown weight file'):
        weights.resolve('nope.pth')


def test_hugging_face_mirror_argument_and_environment(cache, monkeypatch, tmp_path):
    """The Hub itself is out of reach: the call into huggingface_hub is checked."""
    import huggingface_hub
    calls = []
    target = tmp_path / 'hf' / 'dns_cg_student.pth'
    target.parent.mkdir()
    target.write_bytes(published_bytes())

    def fake_download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename))
        return str(target)
    monkeypatch.setattr(huggingface_hub, 'hf_hub_download', fake_download)
    assert weights.resolve('dns_cg_student.pth', hf_repo='me/dns') == target
    monkeypatch.setenv('DNS_HF_REPO', 'env/dns')
    assert weights.resolve('dns_cg_student.pth') == target
    assert calls == [('me/dns', 'dns_cg_student.pth'), ('env/dns', 'dns_cg_student.pth')]


def test_hugging_face_failure_is_a_weights_error(cache, monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise OSError('offline')
    monkeypatch.setattr(huggingface_hub, 'hf_hub_download', offline)
    with pytest.raises(WeightsError, match='me/dns'):
        weights.resolve('dns_cg_student.pth', hf_repo='me/dns')


def test_bare_state_dict(tmp_path):
    path = tmp_path / 'bare.pth'
    torch.save({'w': torch.zeros(2)}, path)
    assert list(weights.load_state_dict(path)) == ['w']


@pytest.mark.parametrize('content, message', [
    (lambda: published_bytes()[:len(published_bytes()) // 2], 'truncated or corrupt'),
    (lambda: random.Random(7).randbytes(4096), 'truncated or corrupt'),
    (lambda: b'', 'truncated or corrupt'),
])
def test_damaged_files_are_refused(tmp_path, content, message):
    path = tmp_path / 'bad.pth'
    path.write_bytes(content())
    with pytest.raises(WeightsError, match=message):
        weights.load_state_dict(path)


class WouldRunCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'model': {'w': torch.zeros(1)}, 'payload': WouldRunCode(str(marker))}, path)
    assert not marker.exists()
    with pytest.raises(WeightsError, match='refused for safety'):
        weights.load_state_dict(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the control: an unrestricted load does run the payload
    assert marker.exists()


def test_non_tensor_content_is_refused(tmp_path):
    path = tmp_path / 'odd.pth'
    torch.save({'model': {'w': 3}}, path)
    with pytest.raises(WeightsError, match='dict of tensors'):
        weights.load_state_dict(path)
    with pytest.raises(WeightsError, match='does not exist'):
        weights.load_state_dict(tmp_path / 'absent.pth')


def test_strict_load_changes_nothing_on_a_wrong_file():
    module = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    wrong_keys = {'0.weight': torch.ones(2, 3), '0.bias': torch.ones(2), 'other.weight': torch.ones(1)}
    with pytest.raises(WeightsError) as info:
        weights.load_into(module, wrong_keys, 'x.pth')
    assert 'missing keys (2): 1.weight, 1.bias' in str(info.value)
    assert 'unexpected keys (1): other.weight' in str(info.value)
    wrong_shape = {**{k: torch.ones_like(v) for k, v in before.items()}, '1.weight': torch.ones(1, 5)}
    with pytest.raises(WeightsError, match=r'1.weight: file \[1, 5\], network \[1, 2\]'):
        weights.load_into(module, wrong_shape, 'y.pth')
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key])
    weights.load_into(module, {k: torch.ones_like(v) for k, v in before.items()}, 'z.pth')
    assert all(torch.equal(v, torch.ones_like(v)) for v in module.state_dict().values())
