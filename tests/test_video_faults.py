"""VideoDecoder on faulty, odd and extreme files: each case checks the behaviour and that
the decoder (and the operator) still work on a good video right after."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from towhee.types import VideoFrame

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from support.video_files import (load_video_decode, make_audio, make_video, make_video_with_pts, moving_scene,  # noqa: E402
                         set_mp4_display_matrix)


vd = load_video_decode()
VideoDecoder, VideoDecodeError, decode_frames = vd.VideoDecoder, vd.VideoDecodeError, vd.decode_frames

FPS, N, H, W = 5, 20, 64, 96


@pytest.fixture(scope='module')
def source():
    return moving_scene(N, H, W, seed=3)


@pytest.fixture(scope='module')
def good(tmp_path_factory, source):
    return make_video(tmp_path_factory.mktemp('good') / 'good.mp4', source, fps=FPS)


def mean_diff(a, b):
    return float(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean())


def assert_good_still_decodes(good, source):
    frames = decode_frames(good)
    assert len(frames) == N
    assert all(isinstance(f, VideoFrame) and f.shape == (H, W, 3) for f in frames)
    assert mean_diff(np.stack(frames), source) < 8


def assert_decode_error(path, *reason_parts):
    """VideoDecodeError, on the first next() (not when the generator is made), naming the
    path and the reason; nothing else raised."""
    gen = VideoDecoder(time_step=1)(str(path))
    with pytest.raises(VideoDecodeError) as err:
        next(gen)
    e = err.value
    assert type(e) is VideoDecodeError
    assert e.path == str(path) and str(path) in str(e)
    for part in reason_parts:
        assert part in e.reason and part in str(e), (part, str(e))
    return e


# ---------------------------------------------------------------- damaged files

@pytest.mark.parametrize('keep', [0.3, 0.6, 0.9])
def test_truncated_mid_stream_yields_the_frames_before_the_damage(good, source, tmp_path, keep):
    data = good.read_bytes()
    cut = tmp_path / 'cut.mp4'
    cut.write_bytes(data[:int(len(data) * keep)])
    frames = decode_frames(cut)
    full = decode_frames(good)
    assert 0 < len(frames) < N
    # A prefix of the original: same timestamps, same pictures, in order.
    assert [f.timestamp for f in frames] == [f.timestamp for f in full[:len(frames)]]
    for i, f in enumerate(frames):
        assert f.shape == (H, W, 3)
        assert mean_diff(f, source[i]) < 8, i
    # Roughly as many frames as bytes kept (a GOP of slack).
    assert len(frames) >= int(N * keep) - 2 * FPS
    assert_good_still_decodes(good, source)


def test_zero_byte_file(tmp_path, good, source):
    path = tmp_path / 'empty.mp4'
    path.write_bytes(b'')
    assert_decode_error(path, 'empty file')
    assert_good_still_decodes(good, source)


def test_text_file_is_not_a_video(tmp_path, good, source):
    path = tmp_path / 'notes.mp4'
    path.write_text('this is not a video\n' * 50)
    assert_decode_error(path, 'not a video')
    assert_good_still_decodes(good, source)


def test_random_bytes_are_not_a_video(tmp_path, good, source):
    path = tmp_path / 'noise.mp4'
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    e = assert_decode_error(path)
    assert 'not a video' in e.reason or 'no video stream' in e.reason or 'no decodable frame' in e.reason
    assert_good_still_decodes(good, source)


@pytest.mark.parametrize('ext', ['png', 'jpg', 'webp', 'bmp', 'gif'])
def test_still_image_is_not_a_video(tmp_path, good, source, ext):
    path = tmp_path / f'still.{ext}'
    Image.fromarray(source[0]).save(path)
    assert_decode_error(path, 'a still image, not a video')
    # Whatever the extension says: a PNG named .mp4 is still an image.
    renamed = tmp_path / f'still-{ext}.mp4'
    shutil.copy(path, renamed)
    assert_decode_error(renamed, 'a still image, not a video')
    assert_good_still_decodes(good, source)


def test_animated_gif_is_a_video(tmp_path, source):
    path = tmp_path / 'anim.gif'
    images = [Image.fromarray(f) for f in source[:4]]
    images[0].save(path, save_all=True, append_images=images[1:], duration=200, loop=0)
    frames = decode_frames(path)
    assert len(frames) == 4 and frames[0].shape == (H, W, 3)


@pytest.mark.parametrize('name,codec', [('sine.m4a', 'aac'), ('sine.wav', 'pcm_s16le')])
def test_audio_only_file(tmp_path, good, source, name, codec):
    path = make_audio(tmp_path / name, seconds=0.5, codec=codec)
    e = assert_decode_error(path, 'no video stream')
    assert 'audio' in e.reason
    assert_good_still_decodes(good, source)


def test_unsupported_codec(tmp_path, good, source):
    # The avc1 sample entry renamed to a fourcc FFmpeg has no codec for.
    data = good.read_bytes()
    assert data.count(b'avc1') >= 1
    path = tmp_path / 'unknown-codec.mp4'
    path.write_bytes(data.replace(b'avc1', b'zq9x'))
    assert_decode_error(path, 'unsupported codec', "'zq9x'", 'no decoder')
    assert_good_still_decodes(good, source)


# ---------------------------------------------------------------- odd videos

def test_variable_frame_rate_sampling_follows_timestamps(tmp_path, good, source):
    frames = moving_scene(11, H, W, seed=5)
    pts = [0, 100, 150, 900, 1000, 1050, 2300, 2400, 3100, 3150, 4900]
    path = make_video_with_pts(tmp_path / 'vfr.mp4', frames, pts)
    every = decode_frames(path)
    assert [f.timestamp for f in every] == pts
    # time_step=1: the first frame at or after 0, 1, 2, 3, 4 s; 2300 ms covers 2 s only.
    sampled = decode_frames(path, time_step=1)
    assert [f.timestamp for f in sampled] == [0, 1000, 2300, 3100, 4900]
    for f, i in zip(sampled, [0, 4, 6, 8, 10]):
        diffs = [mean_diff(f, s) for s in frames]
        assert int(np.argmin(diffs)) == i and diffs[i] < 8
    # A window of a VFR video: [1, 3) s.
    assert [f.timestamp for f in decode_frames(path, start_time=1, end_time=3)] == [1000, 1050, 2300, 2400]
    assert [f.timestamp for f in decode_frames(path, time_step=0.5)] == [0, 900, 1000, 2300, 3100, 4900]
    assert_good_still_decodes(good, source)


def test_rotation_metadata_frames_come_out_upright(tmp_path, good, source):
    # A phone's portrait video: stored landscape (H x W) with the tkhd matrix (0, 1, -1, 0),
    # which players show turned 90 degrees clockwise (W x H).
    path = tmp_path / 'portrait.mp4'
    shutil.copy(good, path)
    set_mp4_display_matrix(path, (0, 1, -1, 0))
    frames = decode_frames(path)
    assert len(frames) == N
    upright = np.rot90(source, k=-1, axes=(1, 2))  # clockwise
    assert frames[0].shape == (W, H, 3)
    assert all(f.flags['C_CONTIGUOUS'] for f in frames)
    assert mean_diff(np.stack(frames), upright) < 8
    # The stored top-left corner is now the top-right one.
    assert mean_diff(frames[0][:8, -8:], source[0][:8, :8].transpose(1, 0, 2)[:, ::-1]) < 12
    # autorotate=False: as stored.
    stored = decode_frames(path, autorotate=False)
    assert stored[0].shape == (H, W, 3) and mean_diff(np.stack(stored), source) < 8
    assert_good_still_decodes(good, source)


@pytest.mark.parametrize('degrees,k', [(90, 1), (180, 2), (-90, -1)])
def test_rotation_written_by_pyav(tmp_path, source, degrees, k):
    # set_display_rotation(d): the frame is shown turned d degrees counter-clockwise.
    path = make_video_with_pts(tmp_path / f'rot{degrees}.mp4', source[:5], [0, 200, 400, 600, 800],
                               rotation=degrees)
    frames = decode_frames(path)
    assert mean_diff(np.stack(frames), np.rot90(source[:5], k=k, axes=(1, 2))) < 8


def test_8k_frames_decode_and_run_through_the_feature_extractor(tmp_path, operators):
    small = moving_scene(2, 270, 480, seed=7)
    big = np.repeat(np.repeat(small, 16, axis=1), 16, axis=2)  # 4320 x 7680
    assert big.shape == (2, 4320, 7680, 3)
    path = make_video(tmp_path / '8k.mp4', big, fps=2)
    frames = decode_frames(path)
    assert len(frames) == 2 and frames[0].shape == (4320, 7680, 3)
    assert mean_diff(frames[1], big[1]) < 8
    op = operators('feature_extractor')
    out = op(frames)
    assert out.shape == (2, 9, 512) and out.dtype == np.float32 and np.isfinite(out).all()
    # Same features as from the source pictures, up to the codec's loss.
    ref = op(big)
    cos = (out * ref).sum(-1) / (np.linalg.norm(out, axis=-1) * np.linalg.norm(ref, axis=-1))
    assert cos.min() > 0.95, cos.min()


@pytest.mark.parametrize('t', [1, 4])
def test_very_short_videos(tmp_path, operators, good, source, t):
    path = make_video(tmp_path / f'short{t}.mp4', source[:t], fps=FPS)
    frames = decode_frames(path)
    assert len(frames) == t and mean_diff(np.stack(frames), source[:t]) < 8
    assert len(decode_frames(path, time_step=1)) == 1
    features = operators('feature_extractor')(frames)
    assert features.shape == (t, 9, 512)
    student = operators('fg_att_student', feature_extractor=None)
    indexed = student(features)
    assert indexed.shape == (t, 9, 512)
    self_sim = student.similarity(indexed, indexed)
    assert isinstance(self_sim, float) and np.isfinite(self_sim)
    assert_good_still_decodes(good, source)


# ---------------------------------------------------------------- paths

def test_path_that_does_not_exist(tmp_path, good, source):
    assert_decode_error(tmp_path / 'nowhere' / 'missing.mp4', 'no such file')
    assert_good_still_decodes(good, source)


def test_directory(tmp_path, good, source):
    path = tmp_path / 'folder.mp4'
    path.mkdir()
    assert_decode_error(path, 'a directory')
    assert_good_still_decodes(good, source)


_CHILD = r'''
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location('vd_child', sys.argv[1])
vd = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vd)
if os.geteuid() == 0:  # root reads anything: drop to nobody for a real permission failure
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
out = {'uid': os.geteuid()}
for p in sys.argv[2:]:
    try:
        out[p] = ['ok', sum(1 for _ in vd.FrameDecoder()(p))]
    except vd.VideoDecodeError as e:
        out[p] = ['VideoDecodeError', str(e), e.reason, e.path]
    except BaseException as e:
        out[p] = [type(e).__name__, str(e)]
print(json.dumps(out))
'''


def test_no_read_permission(good, source):
    # pytest's tmp_path is under a 0700 directory: make a searchable one.
    base = Path(tempfile.mkdtemp(prefix='dns-perm-'))
    try:
        base.chmod(0o755)
        readable = base / 'readable.mp4'
        shutil.copy(good, readable)
        readable.chmod(0o644)
        locked = base / 'locked.mp4'
        shutil.copy(good, locked)
        locked.chmod(0o000)
        hidden_dir = base / 'private'
        hidden_dir.mkdir()
        hidden = hidden_dir / 'hidden.mp4'
        shutil.copy(good, hidden)
        hidden.chmod(0o644)
        hidden_dir.chmod(0o000)
        run = subprocess.run([sys.executable, '-c', _CHILD, str(ROOT / 'video_decode.py'),
                              str(readable), str(locked), str(hidden)],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
        out = json.loads(run.stdout.strip().splitlines()[-1])
        assert out['uid'] != 0
        # The same process decodes a readable file: the failures below are permissions.
        assert out[str(readable)] == ['ok', N]
        kind, message, reason, path = out[str(locked)]
        assert kind == 'VideoDecodeError' and path == str(locked) and str(locked) in message
        assert reason == 'permission denied'
        kind, message, reason, path = out[str(hidden)]
        assert kind == 'VideoDecodeError' and path == str(hidden)
        assert reason.startswith('permission denied')
    finally:
        for p in (base / 'private', base / 'locked.mp4'):
            if p.exists():
                p.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
    assert_good_still_decodes(good, source)
