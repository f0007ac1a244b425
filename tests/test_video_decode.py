"""VideoDecoder on real libx264 videos made with PyAV."""
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from towhee.types import VideoFrame

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
for p in (str(TESTS), str(ROOT.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from support.video_files import load_video_decode, make_video, moving_scene  # noqa: E402



vd = load_video_decode()
VideoDecoder, VideoDecodeError, decode_frames = vd.VideoDecoder, vd.VideoDecodeError, vd.decode_frames

FPS, SECONDS, H, W = 5, 10, 128, 160


@pytest.fixture(scope='module')
def source():
    return moving_scene(FPS * SECONDS, H, W, seed=0)


@pytest.fixture(scope='module')
def video(tmp_path_factory, source):
    return make_video(tmp_path_factory.mktemp('videos') / 'scene.mp4', source, fps=FPS)


def timestamps(frames):
    return [f.timestamp for f in frames]


def test_time_step_one_second(video):
    frames = list(VideoDecoder(time_step=1)(str(video)))
    assert len(frames) == SECONDS
    np.testing.assert_allclose(timestamps(frames), np.arange(SECONDS) * 1000, atol=1)


def test_window_with_time_step(video):
    frames = decode_frames(str(video), start_time=2, end_time=5, time_step=1)
    np.testing.assert_allclose(timestamps(frames), [2000, 3000, 4000], atol=1)


def test_window_without_time_step(video):
    frames = decode_frames(video, start_time=3.3, end_time=4.5)
    np.testing.assert_allclose(timestamps(frames), [3400, 3600, 3800, 4000, 4200, 4400], atol=1)


def test_every_frame_is_rgb_and_close_to_source(video, source):
    gen = VideoDecoder()(str(video))
    assert iter(gen) is gen  # a generator
    frames = list(gen)
    assert len(frames) == FPS * SECONDS
    np.testing.assert_allclose(timestamps(frames), np.arange(FPS * SECONDS) * 1000 / FPS, atol=1)
    assert frames[0].key_frame == 1
    for f in frames:
        assert isinstance(f, VideoFrame) and f.mode == 'RGB'
        assert f.dtype == np.uint8 and f.shape == (H, W, 3)
    diff = np.abs(np.stack(frames).astype(np.int16) - source.astype(np.int16)).mean()
    assert diff < 8, diff  # lossy codec, but the same picture
    # and not merely some picture: frames differ from their neighbours in the source
    assert np.abs(frames[10].astype(np.int16) - source[20].astype(np.int16)).mean() > 2 * diff


def test_threads_off_gives_same_frames(video):
    a = decode_frames(video, time_step=2)
    b = decode_frames(video, time_step=2, threads=False)
    assert timestamps(a) == timestamps(b)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def _audio_only(path):
    with av.open(str(path), 'w') as c:
        s = c.add_stream('pcm_s16le', rate=8000)
        s.layout = 'mono'
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format='s16', layout='mono')
        fr.sample_rate, fr.pts, fr.time_base = 8000, 0, Fraction(1, 8000)
        c.mux(s.encode(fr))
        c.mux(s.encode())
    return path


@pytest.mark.parametrize('kind', ['missing', 'text', 'empty', 'audio', 'directory'])
def test_bad_inputs_raise_with_path(tmp_path, kind):
    path = tmp_path / f'{kind}.mp4'
    if kind == 'text':
        path.write_text('this is not a video\n' * 20)
    elif kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'audio':
        path = _audio_only(tmp_path / 'audio.wav')
    elif kind == 'directory':
        path.mkdir()
    with pytest.raises(VideoDecodeError) as err:
        list(VideoDecoder(time_step=1)(str(path)))
    assert str(path) in str(err.value)
    assert err.value.path == str(path)


def test_truncated_file_yields_frames_before_the_damage(video, tmp_path):
    data = video.read_bytes()
    cut = tmp_path / 'truncated.mp4'
    cut.write_bytes(data[:int(len(data) * 0.6)])
    frames = decode_frames(cut)
    assert 0 < len(frames) < FPS * SECONDS
    assert timestamps(frames) == sorted(timestamps(frames))


def test_invalid_arguments():
    with pytest.raises(ValueError):
        VideoDecoder(time_step=0)
    with pytest.raises(ValueError):
        VideoDecoder(start_time=5, end_time=2)


def test_inside_a_towhee_pipe(video):
    from towhee import pipe
    p = (pipe.input('path')
         .map('path', 'frames', VideoDecoder(time_step=1))
         .map('frames', 'count', lambda frames: (len(frames), [f.timestamp for f in frames]))
         .output('frames', 'count'))
    frames, (count, stamps) = p(str(video)).get()
    # Towhee's map consumes a generator output into a list.
    assert isinstance(frames, list) and count == SECONDS
    assert all(isinstance(f, VideoFrame) and f.mode == 'RGB' for f in frames)
    np.testing.assert_allclose(stamps, np.arange(SECONDS) * 1000, atol=1)
