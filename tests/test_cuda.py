"""The CUDA path, where a GPU is present: the same outputs as the reference, every
module and tensor on the GPU, and fp16/bf16 close to fp32."""
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device on this machine')


@pytest.mark.parametrize('model', ['feature_extractor', 'fg_att_student', 'cg_student', 'selector_att'])
def test_cuda_parity(dns, hub_dir, golden, model):
    op = dns.DistillAndSelect(model, device='cuda')
    assert all(p.device.type == 'cuda' for p in op.model.parameters())
    out = op(golden['frames_A'])
    np.testing.assert_allclose(out, golden[f'{model}_A'], atol=2e-4)


@pytest.mark.parametrize('precision', ['fp16', 'bf16'])
def test_cuda_reduced_precision(dns, hub_dir, golden, precision):
    fp32 = dns.DistillAndSelect('feature_extractor', device='cuda')(golden['frames_A'])
    low = dns.DistillAndSelect('feature_extractor', device='cuda', precision=precision)(golden['frames_A'])
    assert (fp32 * low).sum(-1).min() > 0.99


def test_cuda_similarity_matches_cpu(dns, hub_dir, golden):
    gpu = dns.DistillAndSelect('fg_bin_student', feature_extractor=None, device='cuda')
    q, t = gpu(golden['feature_extractor_A']), gpu(golden['feature_extractor_B'])
    assert abs(gpu.similarity(q, t) - golden['sim_fg_bin_student_AB']) <= 2e-3
