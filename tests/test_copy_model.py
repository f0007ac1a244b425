"""The copy model (tests/support/copy_model.py): published formats, loading by the published
names, attention of 1, an identity comparator, and similarities that tell copies from
unrelated videos on real encoded files."""
import argparse
import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from support.copy_model import BACKBONE_FILE, EIGEN_SHRINK, ITQ_FILE, PCA_DIMS, PCA_FILE, fit_pca, use_hub, write_copy_model
from support.corpus import COPY_KINDS, SHIFT_SECONDS, make_corpus
from support.golden_weights import DATA, DNS_FILES

MODELS = ['feature_extractor', 'fg_att_student', 'fg_bin_student', 'cg_student', 'selector_att', 'selector_bin']
GOLDEN_DNS_FILES = ['dns_cg_student.pth', 'dns_selector_cg-fg_att.pth', 'dns_selector_cg-fg_bin.pth']
# Copies the students must see as such with a clear margin; pip (the original at half
# size over another scene) and flipped are the hard ones for an untrained backbone.
STRONG_COPIES = ['exact', 'reencoded', 'shifted', 'speedup', 'logo']


def load(path: Path):
    return torch.load(path, map_location='cpu', weights_only=False)


@pytest.fixture(scope='module')
def checkpoints(copy_model_hub):
    return copy_model_hub / 'checkpoints'


@pytest.fixture(scope='module')
def copy_ops(copy_model_hub, dns):
    """The copy model's operators, loaded by the published file names from its hub."""
    with use_hub(copy_model_hub):
        ops = {'feature_extractor': dns.DistillAndSelect('feature_extractor', device='cpu')}
        for name in ('fg_att_student', 'fg_bin_student'):
            ops[name] = dns.DistillAndSelect(name, device='cpu', feature_extractor=None)
    return ops


@pytest.fixture(scope='module')
def corpus_features(copy_ops, tmp_path_factory, dns):
    """Region features [T, 9, 512] of every video of a small real corpus, by file name,
    one frame per second as a retrieval system samples them."""
    decoder = importlib.import_module(f'{dns.__name__}.video_decode').VideoDecoder(time_step=1)
    corpus = make_corpus(tmp_path_factory.mktemp('copy-corpus'), originals=2, unrelated=2)
    extract = copy_ops['feature_extractor']
    return {p.stem: extract(list(decoder(str(p)))) for p in corpus.all_videos()}


@pytest.fixture(scope='module')
def similarities(copy_ops, corpus_features):
    """student -> {'copy kind': [sim of orig0, orig1], 'unrelated': [...]}, query the original."""
    out = {}
    for student in ('fg_att_student', 'fg_bin_student'):
        op = copy_ops[student]
        index = {name: op(f) for name, f in corpus_features.items()}
        sims = {kind: [op.similarity(index[f'orig{i}'], index[f'orig{i}_{kind}']) for i in range(2)]
                for kind in COPY_KINDS}
        sims['unrelated'] = [op.similarity(index[f'orig{i}'], index[f'unrelated{j}'])
                             for i in range(2) for j in range(2)]
        out[student] = sims
    return out


def test_files_have_the_published_formats(checkpoints):
    keys = json.loads((DATA / 'checkpoint_keys.json').read_text())
    for file_name, student in DNS_FILES.items():
        content = load(checkpoints / file_name)
        assert set(content) == {'model', 'global_step', 'args'} and content['global_step'] == 1
        assert isinstance(content['args'], argparse.Namespace) and content['args'].student == student
        assert {k: list(v.shape) for k, v in content['model'].items()} == keys[file_name]
    pca = load(checkpoints / PCA_FILE)
    assert set(pca) == {'mean', 'V', 'd'}
    assert pca['mean'].shape == (3840,) and pca['V'].shape == (3840, PCA_DIMS) and pca['d'].shape == (PCA_DIMS,)
    assert torch.allclose(pca['V'].T @ pca['V'], torch.eye(PCA_DIMS), atol=1e-4)
    d = pca['d']
    assert (d[:-1] >= d[1:]).all() and d.min() >= EIGEN_SHRINK / (1 + EIGEN_SHRINK) * d.mean()
    itq = load(checkpoints / ITQ_FILE)
    assert set(itq) == {'proj'} and itq['proj'].shape == (512, 512)
    assert torch.allclose(itq['proj'].T @ itq['proj'], torch.eye(512), atol=1e-4)


def test_backbone_cg_student_and_selectors_are_the_golden_files(checkpoints, hub_dir):
    for file_name in [BACKBONE_FILE, *GOLDEN_DNS_FILES]:
        assert (checkpoints / file_name).read_bytes() == (hub_dir / 'checkpoints' / file_name).read_bytes(), file_name


def test_every_model_loads_by_its_published_name_and_the_hub_is_restored(copy_model_hub, hub_dir, dns):
    before = torch.hub.get_dir(), os.environ.get('TORCH_HOME')
    with use_hub(copy_model_hub):
        assert torch.hub.get_dir() == str(copy_model_hub)
        assert os.environ['TORCH_HOME'] == str(copy_model_hub.parent)
        for name in MODELS:
            dns.DistillAndSelect(name, device='cpu', feature_extractor=None)
    assert (torch.hub.get_dir(), os.environ.get('TORCH_HOME')) == before
    assert torch.hub.get_dir() == str(hub_dir)


def test_use_hub_refuses_a_folder_that_is_no_hub(tmp_path):
    with pytest.raises(ValueError, match='named "hub"'):
        with use_hub(tmp_path):
            pass
    with pytest.raises(ValueError, match='no checkpoints'):
        with use_hub(tmp_path / 'hub'):
            pass


def test_bad_arguments_are_refused(tmp_path):
    (tmp_path / 'file').write_text('')
    with pytest.raises(ValueError, match='is a file'):
        write_copy_model(tmp_path / 'file')
    with pytest.raises(ValueError, match='N > 512'):
        fit_pca(torch.randn(100, 3840))
    with pytest.raises(ValueError, match='shrink'):
        fit_pca(torch.randn(600, 700), shrink=-1)


@pytest.mark.parametrize('samples, dims', [(1000, 600), (600, 1000)])  # both Gram matrices
def test_fit_pca_whitens_its_data(samples, dims):
    x = torch.randn(samples, dims, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = x * torch.linspace(0.1, 3, dims) + 5
    pca = fit_pca(x, dims=512, shrink=0)
    assert torch.allclose(pca['V'].T @ pca['V'], torch.eye(512), atol=1e-5)
    white = ((x.float() - pca['mean']) @ pca['V']) / pca['d'].sqrt()
    assert torch.allclose(white.T @ white / (samples - 1), torch.eye(512), atol=1e-3)
    shrunk = fit_pca(x, dims=512, shrink=0.5)
    torch.testing.assert_close(shrunk['d'], pca['d'] + 0.5 * pca['d'].mean())


def test_fit_pca_refuses_vectors_of_too_low_rank():
    x = torch.randn(600, 100, generator=torch.Generator().manual_seed(0)) @ torch.randn(100, 700)
    with pytest.raises(ValueError, match='fewer than 512'):
        fit_pca(x)


def test_attention_is_one(copy_ops, corpus_features):
    op = copy_ops['fg_att_student']
    for features in (corpus_features['orig0'], corpus_features['unrelated1']):
        np.testing.assert_allclose(op(features), features, rtol=0, atol=1e-6)


def mixed_sign_pair():
    """Query frames of 9 equal regions v_t, target frames +-v_t: a frame similarity
    matrix with cells of both signs, so the comparator's relu shows."""
    generator = torch.Generator().manual_seed(0)
    v = F.normalize(torch.randn(12, 1, 512, generator=generator), dim=-1).expand(12, 9, 512)
    signs = torch.tensor([1, -1, -1, 1, -1, 1, 1, -1, -1, -1, 1, 1.0])[:, None, None]
    return v.numpy().copy(), (v * signs).numpy()


def test_comparator_output_is_max_pooled_relu_of_frame_similarity(copy_ops, corpus_features):
    real = corpus_features['orig0'], corpus_features['orig0_speedup']
    for student in ('fg_att_student', 'fg_bin_student'):
        op = copy_ops[student]
        for pair in (real, mixed_sign_pair()):
            query, target = (op(features) for features in pair)
            frames, out = op.similarity_maps(query, target)
            pooled = F.max_pool2d(F.max_pool2d(F.relu(torch.from_numpy(frames))[None], 2), 2)[0].numpy()
            np.testing.assert_allclose(out, pooled, rtol=0, atol=1e-6)
            assert op.similarity(query, target) == pytest.approx(out.max(axis=1).mean(), abs=1e-6)
        assert (frames < -0.5).any() and (frames > 0.5).any()


def test_fg_att_scores_copies_high_and_unrelated_videos_low(similarities):
    sims = similarities['fg_att_student']
    assert min(sims['exact']) > 0.99
    assert min(sims['reencoded']) > 0.6
    assert max(sims['unrelated']) < 0.2
    assert min(sims['exact'] + sims['reencoded']) - max(sims['unrelated']) > 0.4
    assert min(min(sims[kind]) for kind in STRONG_COPIES) > 0.5
    # Every copy, pip included, ranks above every unrelated video.
    assert min(min(sims[kind]) for kind in COPY_KINDS) > max(sims['unrelated'])


def test_fg_bin_scores_copies_high_and_unrelated_videos_low(similarities):
    sims = similarities['fg_bin_student']
    assert min(sims['exact']) > 0.99
    assert min(sims['reencoded']) > 0.4
    assert max(sims['unrelated']) < 0.2
    assert min(min(sims[kind]) for kind in COPY_KINDS) > max(sims['unrelated'])


@pytest.mark.parametrize('original', ['orig0', 'orig1'])
def test_shifted_copy_shows_as_a_diagonal(copy_ops, corpus_features, original):
    op = copy_ops['fg_att_student']
    frames, _ = op.similarity_maps(op(corpus_features[original]), op(corpus_features[f'{original}_shifted']))
    shift = SHIFT_SECONDS  # one frame per second
    on_diagonal = np.zeros(frames.shape, bool)
    for i in range(shift, frames.shape[0]):
        on_diagonal[i, i - shift] = True
        others = np.delete(frames[i], i - shift)
        assert frames[i, i - shift] > others.max() + 0.3, f'row {i}: {frames[i]}'
    assert frames[on_diagonal].mean() > 0.9 and frames[~on_diagonal].mean() < 0.4


def test_region_vectors_are_the_unit_pca_input(copy_ops):
    extractor = copy_ops['feature_extractor'].model
    frames = torch.rand(3, 256, 256, 3, generator=torch.Generator().manual_seed(1)) * 255
    with torch.inference_mode():
        regions = extractor.region_vectors(frames)
        assert regions.shape == (3, 9, 3840) and regions.dtype == torch.float32
        assert torch.allclose(regions.norm(dim=-1), torch.ones(3, 9), atol=1e-5)
        assert torch.equal(extractor.pca(regions), extractor(frames))
