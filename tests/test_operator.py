"""The operator's interface: inputs it takes, shapes it returns, errors it raises."""
import numpy as np
import pytest
import torch
from towhee.types import VideoFrame

MODELS = ['feature_extractor', 'fg_att_student', 'fg_bin_student', 'cg_student', 'selector_att', 'selector_bin']


def expected_shape(model, t):
    return {'cg_student': (1024,), 'selector_att': (), 'selector_bin': ()}.get(model, (t, 9, 512))


@pytest.fixture(scope='module')
def frames(golden):
    return golden['frames_B'][:5]


@pytest.mark.parametrize('model', MODELS)
@pytest.mark.parametrize('t', [1, 2, 5])
def test_output_shapes_and_dtype(operators, frames, model, t):
    out = operators(model)(list(frames[:t]))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert out.shape == expected_shape(model, t)
    assert np.isfinite(out).all()


def test_video_frame_modes_are_converted_to_rgb(operators, frames):
    op = operators('feature_extractor')
    rgb = op([VideoFrame(f, 'RGB') for f in frames])
    np.testing.assert_allclose(op([VideoFrame(np.ascontiguousarray(f[..., ::-1]), 'BGR') for f in frames]), rgb, atol=1e-6)
    rgba = [VideoFrame(np.concatenate([f, np.full(f.shape[:2] + (1,), 7, np.uint8)], -1), 'RGBA') for f in frames]
    np.testing.assert_allclose(op(rgba), rgb, atol=1e-6)
    gray = frames[..., 1]
    np.testing.assert_allclose(op([VideoFrame(g, 'L') for g in gray]),
                               op(np.repeat(gray[..., None], 3, -1)), atol=1e-6)


def test_list_array_iterator_and_batch_size_agree(operators, golden):
    frames = golden['frames_B']
    op = operators('feature_extractor')
    as_array = op(frames)
    np.testing.assert_allclose(op(list(frames)), as_array, atol=1e-6)
    np.testing.assert_allclose(op(f for f in frames), as_array, atol=1e-6)
    np.testing.assert_allclose(operators('feature_extractor', batch_size=5)(frames), as_array, atol=1e-5)


def test_frames_of_different_sizes(operators, golden):
    op = operators('feature_extractor')
    a, c = golden['frames_A'][:2], golden['frames_C'][:2]
    mixed = op([a[0], c[0], a[1], c[1]])
    np.testing.assert_allclose(mixed[[0, 2]], op(a), atol=1e-5)
    np.testing.assert_allclose(mixed[[1, 3]], op(c), atol=1e-5)


@pytest.mark.parametrize('bad, message', [
    ([], 'at least one video frame'),
    (None, 'got None'),
    ([None], 'frame 0 is None'),
    ('video.mp4', 'got str'),
    (np.zeros((4, 32, 32), np.uint8), r'\[T, H, W, 3\]'),
    (np.zeros((32, 32, 3), np.uint8), 'one frame'),
    ([np.zeros((32, 32, 3), np.float32)], 'uint8'),
    ([np.zeros((32, 32, 3), np.int16)], 'uint8'),
    ([np.zeros((32, 32, 4), np.uint8)], r'\[H, W, 3\]'),
    ([VideoFrame(np.zeros((8, 8, 3), np.uint8), 'HSV')], 'unsupported mode'),
    ([np.zeros((0, 32, 3), np.uint8)], r'\[H, W, 3\]'),
])
def test_bad_frames_raise_value_error(operators, bad, message):
    with pytest.raises(ValueError, match=message):
        operators('cg_student')(bad)


@pytest.mark.parametrize('bad, message', [
    (np.zeros((3, 9, 256), np.float32), r'\[T, 9, 512\]'),
    (np.zeros((0, 9, 512), np.float32), r'\[T, 9, 512\]'),
    (np.zeros((9, 512), np.float32), r'\[T, 9, 512\]'),
    (np.full((2, 9, 512), np.nan, np.float32), 'NaN or Inf'),
    (np.full((2, 9, 512), np.inf, np.float32), 'NaN or Inf'),
    ([[1.0]], 'numpy array or torch tensor'),
])
def test_bad_features_raise_value_error(operators, bad, message):
    with pytest.raises(ValueError, match=message):
        operators('fg_att_student', feature_extractor=None)(bad)


def test_features_as_torch_tensor(operators, golden):
    op = operators('cg_student', feature_extractor=None)
    feats = golden['feature_extractor_A']
    np.testing.assert_allclose(op(torch.from_numpy(feats)), op(feats), atol=1e-7)


def test_custom_feature_extractor_module(dns, hub_dir, golden):
    class MeanColour(torch.nn.Module):
        def forward(self, frames):  # [N, 256, 256, 3] -> [N, 9, 512]
            return frames.mean(dim=(1, 2))[:, None, :1].expand(-1, 9, 512) / 255
    op = dns.DistillAndSelect('fg_att_student', feature_extractor=MeanColour(), device='cpu')
    out = op(golden['frames_A'][:3])
    ref = dns.DistillAndSelect('fg_att_student', feature_extractor=None, device='cpu')
    np.testing.assert_allclose(out, ref(MeanColour()(torch.from_numpy(golden['frames_A'][:3]).float()).numpy()),
                               atol=1e-6)


def test_bad_arguments(dns, hub_dir):
    with pytest.raises(ValueError, match='unknown model_name'):
        dns.DistillAndSelect('visil')
    with pytest.raises(ValueError, match='feature_extractor'):
        dns.DistillAndSelect('cg_student', feature_extractor='resnet', device='cpu')
    with pytest.raises(ValueError, match='batch_size'):
        dns.DistillAndSelect('cg_student', batch_size=0)


def test_device_defaults_to_cuda_when_available(operators):
    op = operators('selector_att', feature_extractor=None)
    assert op.device.type == ('cuda' if torch.cuda.is_available() else 'cpu')
    assert all(p.device.type == op.device.type for p in op.model.parameters())


def test_similarity_and_score_belong_to_their_networks(operators, golden):
    with pytest.raises(ValueError, match='students'):
        operators('selector_att', feature_extractor=None).similarity(1.0, 1.0)
    with pytest.raises(ValueError, match='selectors'):
        operators('cg_student', feature_extractor=None).score(1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match='empty'):
        operators('cg_student', feature_extractor=None).similarity(golden['cg_student_A'], [])
    with pytest.raises(ValueError, match=r'\[1024\]'):
        operators('cg_student', feature_extractor=None).similarity(golden['cg_student_A'], np.zeros(512))
    with pytest.raises(ValueError, match='one per target'):
        operators('selector_att', feature_extractor=None).score(0.1, [0.1, 0.2], [0.5])


@pytest.mark.parametrize('student', ['fg_att_student', 'fg_bin_student'])
@pytest.mark.parametrize('t', [1, 2, 3])
def test_short_videos_are_stretched_to_four_frames(operators, golden, student, t):
    """Videos under 4 frames (the original fails): each frame is repeated evenly to 4
    frames, so a short video scores exactly like its stretched 4-frame version."""
    op = operators(student, feature_extractor=None)
    query = golden[f'{student}_A']
    short = golden[f'{student}_B'][:t]
    stretched = short[np.arange(4) * t // 4]
    assert op.similarity(query, short) == pytest.approx(op.similarity(query, stretched), abs=1e-6)
    assert op.similarity(short, query) == pytest.approx(op.similarity(stretched, query), abs=1e-6)
    assert np.isfinite(op.similarity(short, short))


def test_short_video_selector(operators, golden):
    op = operators('selector_bin', feature_extractor=None)
    one = golden['feature_extractor_A'][:1]
    assert op(one) == pytest.approx(float(op(np.repeat(one, 4, axis=0))), abs=1e-6)


def test_weight_path_published_format_and_bare_state_dict(dns, hub_dir, golden, tmp_path):
    published = hub_dir / 'checkpoints' / 'dns_fg_att_student.pth'
    bare = tmp_path / 'bare.pth'
    torch.save(torch.load(published, weights_only=False)['model'], bare)
    feats = golden['feature_extractor_A']
    a = dns.DistillAndSelect('fg_att_student', model_weight_path=str(published), feature_extractor=None, device='cpu')
    b = dns.DistillAndSelect('fg_att_student', model_weight_path=str(bare), feature_extractor=None, device='cpu')
    np.testing.assert_allclose(a(feats), golden['fg_att_student_A'], atol=2e-4)
    np.testing.assert_array_equal(a(feats), b(feats))


def test_weight_path_of_another_network_is_refused(dns, hub_dir):
    from importlib import import_module
    from conftest import PACKAGE
    WeightsError = import_module(f'{PACKAGE}.weights').WeightsError
    with pytest.raises(WeightsError, match='attention.transform.weight'):
        dns.DistillAndSelect('fg_bin_student', feature_extractor=None, device='cpu',
                             model_weight_path=str(hub_dir / 'checkpoints' / 'dns_fg_att_student.pth'))


def test_bf16_precision_agrees_with_fp32(operators, golden):
    frames = golden['frames_A']
    fp32 = operators('feature_extractor')(frames)
    bf16 = operators('feature_extractor', precision='bf16')(frames)
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
    cosine = (fp32 * bf16).sum(-1) / np.linalg.norm(fp32, axis=-1) / np.linalg.norm(bf16, axis=-1)
    assert cosine.min() > 0.95


def test_precision_is_checked(dns, hub_dir):
    with pytest.raises(ValueError, match='precision'):
        dns.DistillAndSelect('cg_student', feature_extractor=None, device='cpu', precision='fp16')
    with pytest.raises(ValueError, match='precision'):
        dns.DistillAndSelect('cg_student', feature_extractor=None, device='cpu', precision='int8')


@pytest.mark.parametrize('capability, precision, warned', [
    ('AVX2', 'bf16', True), ('DEFAULT', 'bf16', True), ('AVX512', 'bf16', False), ('AVX2', 'fp32', False)])
def test_bf16_without_avx512_warns_that_it_runs_emulated(dns, hub_dir, monkeypatch, capability, precision, warned):
    """On an x86 CPU without AVX-512, oneDNN emulates bf16: the extractor runs several
    times slower than in fp32, which a user asking for bf16 to go faster must hear of."""
    import platform
    import warnings
    core = __import__(f'{dns.__name__}.core', fromlist=['core'])
    monkeypatch.setattr(platform, 'machine', lambda: 'x86_64')
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: capability)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        dns.DnS('att', device='cpu', precision=precision)
    emulated = [w for w in caught if issubclass(w.category, core.EmulatedPrecisionWarning)]
    assert len(emulated) == int(warned), [str(w.message) for w in caught]
    if warned:
        assert capability in str(emulated[0].message) and "'fp32'" in str(emulated[0].message)
