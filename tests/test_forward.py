"""Each network's ``forward`` against the paper's computation written out plainly on the
whole matrices (no padding, no tiling, no bf16): what the retrieval code gets by calling
the halves (``index_video``, then ``similarity`` or ``score``) is the networks' own
computation from region features."""
import importlib

import pytest
import torch

from conftest import PACKAGE

model = importlib.import_module(f'{PACKAGE}.model')
TOLERANCE = 1e-5


def with_random_weights(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights of realistic scale (the values do not matter here), eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            fan_in = p[0].numel() if p.ndim > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
    return net.eval()


def features(lengths, seed):
    """Unit region vectors [T, 9, 512], as the feature extractor gives them."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in lengths:
        x = torch.randn(t, 9, 512, generator=g)
        out.append(x / x.norm(dim=-1, keepdim=True))
    return out


def stretched(x):
    """A video under 4 frames, each frame repeated for a proportional span."""
    return x if x.shape[0] >= 4 else x[torch.arange(4) * x.shape[0] // 4]


@pytest.mark.parametrize('binarized', [False, True], ids=['fg_att', 'fg_bin'])
def test_fine_grained_forward_is_the_papers_similarity(binarized):
    net = with_random_weights(model.FineGrainedStudent(binarization=binarized), 11)
    query, *targets = features([29, 2, 13, 47], 1)
    with torch.no_grad():
        got = net(query, targets)
        q = stretched(net.index_video(query))
        expected = []
        for target in targets:
            t = stretched(net.index_video(target))
            # mean over query regions of the max over target regions of the dot products
            sim = torch.einsum('iod,jpd->ijop', q, t).amax(dim=-1).mean(dim=-1)
            if binarized:
                sim = sim / net.dims  # sign codes have norm sqrt(512)
            cells = net.visil_head(sim[None, None])[0, 0].clamp(-1, 1)
            expected.append(cells.amax(dim=1).mean())  # Chamfer
    assert got.shape == (3,)
    assert (got - torch.stack(expected)).abs().max() <= TOLERANCE


def test_coarse_grained_forward_pads_without_changing_values():
    net = with_random_weights(model.CoarseGrainedStudent(), 12)
    query, *targets = features([20, 7, 31, 16], 2)
    padded = torch.zeros(len(targets), 31, 9, 512)
    mask = torch.zeros(len(targets), 31, dtype=torch.bool)
    for n, t in enumerate(targets):
        padded[n, :len(t)], mask[n, :len(t)] = t, True
    with torch.no_grad():
        got = net(query, padded, mask)
        q = net.index_video(query[None])[0]
        expected = torch.stack([net.index_video(t[None])[0] @ q for t in targets])
        vectors = net.index_video(padded, mask)
    assert got.shape == (3,)
    assert (got - expected).abs().max() <= TOLERANCE
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(3))  # unit vectors


def test_selector_forward_is_mlp_of_self_similarities():
    net = with_random_weights(model.SelectorNetwork(), 13)
    query, *targets = features([9, 3, 24], 3)
    coarse = torch.tensor([0.2, 0.9])

    def self_similarity(x):
        # the mean over region pairs of the comparator's output on the video against itself
        x = stretched(net.attention(x))
        sim = torch.einsum('iod,jpd->ijop', x, x).mean(dim=(-1, -2))
        return net.visil_head(sim[None, None]).mean()

    with torch.no_grad():
        got = net(query, targets, coarse)
        values = torch.stack([self_similarity(query).expand(2), torch.stack([self_similarity(t) for t in targets]),
                              coarse], dim=1)
        expected = net.mlp(values).squeeze(1)
    assert got.shape == (2,)
    assert ((got > 0) & (got < 1)).all()
    assert (got - expected).abs().max() <= TOLERANCE
