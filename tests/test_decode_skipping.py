"""Decoding only what sampling needs, on real libx264 files made with x264's defaults
(3 B-frames, B-pyramid, a key frame every 250 frames): skipped non-reference frames,
frames converted straight to the extractor's size, the GPU option's CPU fallback."""
import warnings

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from support.copy_model import use_hub
from support.video_files import load_video_decode, make_video, make_video_with_pts, moving_scene

vd = load_video_decode()
VideoDecoder = vd.VideoDecoder

FPS, SECONDS, H, W = 25, 12, 216, 384  # 300 frames: a key frame every 250 gives two GOPs


@pytest.fixture(scope='module')
def source():
    return moving_scene(FPS * SECONDS, H, W, seed=5)


@pytest.fixture(scope='module')
def video(tmp_path_factory, source):
    return make_video(tmp_path_factory.mktemp('x264') / 'defaults.mp4', source, fps=FPS, crf=23, x264_defaults=True)


class DecodedCount:
    """How many frames FFmpeg hands out while decoding (the module's decode loop, wrapped)."""

    def __init__(self, monkeypatch):
        self.frames = 0
        inner = vd._decode_until_damage

        def counting(*args):
            for frame in inner(*args):
                self.frames += 1
                yield frame
        monkeypatch.setattr(vd, '_decode_until_damage', counting)


def same_frames(a, b):
    assert [f.timestamp for f in a] == [f.timestamp for f in b]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize('threads', [True, False])
@pytest.mark.parametrize('window', [dict(time_step=1), dict(time_step=0.5), dict(time_step=1.3),
                                    dict(time_step=1, start_time=2.5, end_time=9)])
def test_skipping_keeps_the_exact_frames(video, monkeypatch, threads, window):
    exact = list(VideoDecoder(threads=threads, exact=True, **window)(str(video)))
    count = DecodedCount(monkeypatch)
    fast = list(VideoDecoder(threads=threads, **window)(str(video)))
    assert len(exact) >= 6
    same_frames(exact, fast)
    # It does skip: x264's defaults leave about half the frames unreferenced.
    assert count.frames < 0.75 * FPS * SECONDS


def test_every_frame_is_decoded_without_a_time_step_or_when_asked(video, monkeypatch):
    count = DecodedCount(monkeypatch)
    assert len(list(VideoDecoder()(str(video)))) == FPS * SECONDS
    assert count.frames == FPS * SECONDS
    list(VideoDecoder(time_step=1, exact=True)(str(video)))
    assert count.frames == 2 * FPS * SECONDS


def test_a_time_step_near_the_frame_duration_decodes_every_frame(video, monkeypatch):
    count = DecodedCount(monkeypatch)
    frames = list(VideoDecoder(time_step=1 / FPS)(str(video)))
    assert len(frames) == FPS * SECONDS and count.frames == FPS * SECONDS


def test_variable_frame_rate_keeps_no_earlier_frame(tmp_path, source):
    """Irregular gaps (up to 4 average frame durations): the kept frames are at or after
    each sampling time, and never earlier than the exact path's."""
    rng = np.random.default_rng(1)
    pts = np.cumsum(rng.choice([20, 40, 40, 40, 160], size=200))
    path = make_video_with_pts(tmp_path / 'vfr.mp4', source[:200], pts)
    exact = list(VideoDecoder(time_step=1, exact=True)(str(path)))
    fast = list(VideoDecoder(time_step=1)(str(path)))
    assert len(fast) == len(exact) and len(exact) >= 5
    for k, (e, f) in enumerate(zip(exact, fast)):
        assert f.timestamp >= e.timestamp >= k * 1000


def test_short_side_frames(video):
    full = list(VideoDecoder(time_step=1)(str(video)))
    small = list(VideoDecoder(time_step=1, short_side=256)(str(video)))
    assert [f.timestamp for f in small] == [f.timestamp for f in full]
    assert all(f.shape == (256, 455, 3) and f.source_size == (W, H) and f.mode == 'RGB' for f in small)
    # Against the exact path's resize of full-size frames (torchvision, bicubic, antialiased).
    ref = TF.resize(torch.from_numpy(np.stack(full)).permute(0, 3, 1, 2), [256],
                    interpolation=InterpolationMode.BICUBIC, antialias=True).permute(0, 2, 3, 1).numpy()
    diff = np.abs(ref.astype(np.int16) - np.stack(small).astype(np.int16))
    assert diff.mean() < 1.5, diff.mean()  # measured 0.3 to 1 on these files
    assert vd.scaled_size(1920, 1080, 256) == (455, 256) and vd.scaled_size(1080, 1920, 256) == (256, 455)


def test_short_side_of_a_rotated_video(tmp_path, source):
    path = make_video_with_pts(tmp_path / 'portrait.mp4', source[:30], np.arange(30) * 40, rotation=90)
    frame = next(VideoDecoder(time_step=1, short_side=64)(str(path)))
    assert frame.shape == (int(64 * W / H), 64, 3)  # upright: taller than wide
    assert frame.source_size == (H, W)


def test_features_of_the_fast_path_match_the_exact_path(tmp_path, copy_model_hub, dns):
    """The measured difference, with the copy model (PCA fitted on real frames): the fast
    path (skipping, frames scaled by FFmpeg while converting) against the exact one
    (every frame decoded, full-size RGB resized by torchvision), on a 640x360 file as
    HD files are scaled down. The frames are the same; only the scaling differs. For
    scale: a frame one frame duration away (what taking the nearest decodable frame
    would give) differs far more."""
    seconds = 6
    path = str(make_video(tmp_path / 'hd.mp4', moving_scene(seconds * FPS, 360, 640, seed=7), fps=FPS, crf=23,
                          x264_defaults=True))
    with use_hub(copy_model_hub):
        extractor = dns.DistillAndSelect('feature_extractor', device='cpu')
        student = dns.DistillAndSelect('fg_att_student', device='cpu', feature_extractor=None)
    exact = extractor(list(VideoDecoder(time_step=1, exact=True)(path)))
    fast = extractor(list(VideoDecoder(time_step=1, short_side=256)(path)))
    shifted = extractor(list(VideoDecoder(start_time=1.01 / FPS, time_step=1, exact=True)(path)))[:seconds]
    assert exact.shape == fast.shape == shifted.shape == (seconds, 9, 512)

    def cosine(a, b):
        return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    scaling, one_frame = cosine(exact, fast), cosine(exact, shifted)
    assert scaling.mean() > 0.98 and scaling.min() > 0.9, (scaling.mean(), scaling.min())
    assert 1 - scaling.mean() < 0.5 * (1 - one_frame.mean()), (scaling.mean(), one_frame.mean())
    similarity = student.similarity(student(exact), student(fast))
    assert similarity > 0.98, similarity


def test_gpu_asked_without_one_falls_back_to_the_cpu(video):
    if torch.cuda.is_available():
        pytest.skip('a GPU is here: the fallback is for machines without one')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        on_gpu = list(VideoDecoder(time_step=2, short_side=128, device='cuda')(str(video)))
    fallbacks = [w for w in caught if issubclass(w.category, vd.DecodeDeviceFallback)]
    assert len(fallbacks) == 1 and 'on the CPU, not the GPU' in str(fallbacks[0].message)
    same_frames(list(VideoDecoder(time_step=2, short_side=128)(str(video))), on_gpu)


def test_decode_device_follows_the_model():
    assert vd.decode_device('cpu') == 'cpu'
    assert vd.decode_device(torch.device('cuda')) == 'cuda'
    assert vd.decode_device('cuda:1') == 'cuda:1'


@pytest.mark.parametrize('device', ['gpu', 'cpu:0', 'cuda:x', ''])
def test_bad_device_is_named(device):
    with pytest.raises(ValueError, match='device must be'):
        VideoDecoder(device=device)


@pytest.mark.parametrize('short_side', [0, -1, 2.5])
def test_bad_short_side_is_named(short_side):
    with pytest.raises(ValueError, match='short_side'):
        VideoDecoder(short_side=short_side)
