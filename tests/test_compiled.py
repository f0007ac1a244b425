"""The compiled feature extractor (torch.compile, Inductor with freezing): the parity
tests on the compiled path, no recompilation for new video lengths, the disk cache
between processes, and `dns index` on it.

Each compiled batch shape costs Inductor 15 to 70 s on this 2-core machine, so the
tests share one compiled operator of batch size 4 (shapes 4, 2 and 1)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from support.corpus import make_corpus
from test_parity import FLOAT_TOL

DNS = Path(sys.executable).with_name('dns')


def test_batch_sizes_and_splits(dns):
    from distill_and_select.compilation import batch_sizes, split_sizes
    assert batch_sizes(32) == (32, 16, 8, 4, 2, 1)
    assert batch_sizes(24) == (24, 16, 8, 4, 2, 1)
    assert batch_sizes(1) == (1,)
    for batch_size in (1, 4, 24, 32):
        sizes = batch_sizes(batch_size)
        for count in range(1, 3 * batch_size + 1):
            parts = split_sizes(count, sizes)
            assert sum(parts) == count and set(parts) <= set(sizes) and parts == sorted(parts, reverse=True)
        # Below a full batch, a count is its binary digits: no size is used twice.
        for count in range(1, batch_size):
            parts = split_sizes(count, sizes)
            assert len(parts) == len(set(parts)) <= len(sizes)
    with pytest.raises(ValueError, match='batch_size must be a positive integer'):
        batch_sizes(0)


def test_compile_needs_a_feature_extractor_and_a_bool(dns, hub_dir):
    with pytest.raises(ValueError, match='feature_extractor=None has none'):
        dns.DistillAndSelect('cg_student', feature_extractor=None, device='cpu', compile=True)
    with pytest.raises(ValueError, match='compile must be True or False'):
        dns.DistillAndSelect('cg_student', feature_extractor=None, device='cpu', compile='yes')


@pytest.fixture(scope='module')
def compiled(operators):
    return operators('feature_extractor', batch_size=4, compile=True)


@pytest.mark.slow
@pytest.mark.parametrize('video', 'ABC')
def test_parity_on_the_compiled_path(compiled, golden, video):
    """The reference outputs within the parity tolerances; 8, 12 and 5 frames run as
    batches of 4 and 1."""
    out = compiled(golden[f'frames_{video}'])
    assert out.dtype == np.float32 and out.shape == golden[f'feature_extractor_{video}'].shape
    assert np.abs(out - golden[f'feature_extractor_{video}']).max() <= FLOAT_TOL[video]


@pytest.mark.slow
def test_new_lengths_do_not_recompile(compiled, operators, golden):
    """Every length from 1 to 13 frames: at most the three shapes of batch size 4 are
    ever compiled, and a second pass compiles nothing; outputs equal the eager ones."""
    frames = np.concatenate([golden['frames_A'], golden['frames_B']])[:13]
    # Frames are extracted independently: the first `length` rows of one eager pass.
    eager = operators('feature_extractor', batch_size=4)(frames)
    counters = torch._dynamo.utils.counters['stats']
    before = counters['unique_graphs']
    for length in range(1, 14):
        out = compiled(frames[:length])
        assert np.abs(out - eager[:length]).max() < 1e-4
    first_pass = counters['unique_graphs'] - before
    assert first_pass <= len(compiled.encoder.network.sizes) == 3
    for length in range(1, 14):
        compiled(frames[:length])
    assert counters['unique_graphs'] - before == first_pass


@pytest.mark.slow
def test_bf16_compiled_agrees_with_fp32(operators, golden):
    """Autocast inside the compiled graph: region vectors within cosine 0.999 of fp32."""
    bf16 = operators('feature_extractor', batch_size=1, compile=True, precision='bf16')
    fp32 = golden['feature_extractor_C']
    out = bf16(golden['frames_C'])
    assert out.dtype == np.float32 and out.shape == fp32.shape
    assert (out * fp32).sum(-1).min() > 0.999


CACHE_CHILD = r"""
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from support.checkout import import_checkout
dns = import_checkout()
op = dns.DistillAndSelect('feature_extractor', device='cpu', batch_size=1, compile=True)
out = op(torch.zeros(1, 64, 64, 3, dtype=torch.uint8).numpy())
inductor = torch._dynamo.utils.counters['inductor']
print(json.dumps({'hits': inductor['fxgraph_cache_hit'], 'misses': inductor['fxgraph_cache_miss'],
                  'sum': float(out.sum())}))
"""


@pytest.mark.slow
def test_compiled_code_is_cached_on_disk_between_processes(hub_dir, tmp_path):
    env = {**os.environ, 'TORCHINDUCTOR_CACHE_DIR': str(tmp_path / 'inductor')}

    def run():
        out = subprocess.run([sys.executable, '-c', CACHE_CHILD, str(Path(__file__).parent)], env=env,
                             capture_output=True, text=True, timeout=1800)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    assert first['misses'] >= 1 and first['hits'] == 0
    assert second['hits'] >= 1 and second['misses'] == 0
    assert second['sum'] == pytest.approx(first['sum'], rel=1e-6)
    assert any((tmp_path / 'inductor').rglob('*'))


@pytest.mark.slow
def test_dns_index_compiled_equals_eager(dns, hub_dir, tmp_path):
    """`dns index --compile` (the default outside the tests) builds the index the eager
    path builds: same videos, frame counts and selector values, vectors within float
    tolerance."""
    make_corpus(tmp_path / 'videos', originals=1, unrelated=1)
    for mode in ('--compile', '--no-compile'):
        result = subprocess.run([str(DNS), 'index', '--index', mode.strip('-'), mode, '--batch-size', '4',
                                 '--no-progress', 'videos'], cwd=tmp_path, capture_output=True, text=True,
                                timeout=1800)
        assert result.returncode == 0, result.stderr
    from distill_and_select.retrieval.storage.index import VideoIndex
    with VideoIndex(tmp_path / 'compile') as compiled, VideoIndex(tmp_path / 'no-compile') as eager:
        ids = sorted(eager.catalog.video_ids())
        assert sorted(compiled.catalog.video_ids()) == ids and len(ids) >= 4
        for video_id in ids:
            a, b = compiled.representation(video_id), eager.representation(video_id)
            assert a.frames == b.frames
            assert a.selector == pytest.approx(b.selector, abs=1e-4)
            assert np.abs(a.coarse - b.coarse).max() < 1e-4
            assert np.abs(a.fine.astype(np.float32) - b.fine.astype(np.float32)).max() < 2e-3
