"""The similarity functions against their plain definitions: region similarity as the
mean over query regions of the max over target regions of dot products, Chamfer as the
mean over valid rows of the max over valid cells."""
import importlib

import torch

from conftest import PACKAGE

similarities = importlib.import_module(f'{PACKAGE}.model.similarities')


def naive_region_similarity(query, targets):
    return torch.einsum('iod,ntpd->nitop', query, targets).max(dim=-1).values.mean(dim=-1)


def test_region_similarity_is_mean_of_max_region_dot_products():
    g = torch.Generator().manual_seed(0)
    query, targets = torch.randn(5, 9, 512, generator=g), torch.randn(3, 7, 9, 512, generator=g)
    torch.testing.assert_close(similarities.region_similarity(query, targets),
                               naive_region_similarity(query, targets), atol=1e-4, rtol=1e-5)


def test_sign_similarity_is_exact_for_sign_codes_with_padding():
    g = torch.Generator().manual_seed(1)
    query = torch.randn(6, 9, 512, generator=g).sign()
    targets = torch.randn(4, 8, 9, 512, generator=g).sign()
    targets[1, 5:] = 0  # padded frames
    assert torch.equal(similarities.sign_similarity(query, targets), naive_region_similarity(query, targets))


def test_chamfer_leaves_out_masked_cells_and_empty_rows():
    sim = torch.tensor([[[0.5, 9.0], [0.1, 0.3], [7.0, 7.0]]])
    mask = torch.tensor([[[True, False], [True, True], [False, False]]])
    assert abs(similarities.chamfer(sim, mask).item() - (0.5 + 0.3) / 2) < 1e-7
