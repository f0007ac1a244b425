"""Resolving, downloading and loading weight files: the torch.hub cache, a real HTTP
server on 127.0.0.1 (interrupted transfers too), the Hugging Face mirror, and files
that must be refused."""
import argparse
import importlib
import io
import os
import random
import socket

import pytest
import torch
from torch import nn

from conftest import PACKAGE
from http_server import FileServer

weights = importlib.import_module(f'{PACKAGE}.weights')
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
        assert list(cache.iterdir()) == []  # no file, no temporary left over
        server.truncate_to = None
        assert weights.resolve('m.pth', url=server.url + '/m.pth', progress=False).read_bytes() == body


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
