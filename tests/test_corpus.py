"""The copy-detection corpus (tests/corpus.py): real H.264 files that decode, with the
transformations they claim, deterministic."""
import time

import av
import numpy as np
import pytest

from corpus import (COPY_KINDS, SHIFT_SECONDS, center_crop, logo_box, make_corpus, pip_box, read_frames,
                    resize, speedup_indices)

FPS, SECONDS, SIZE = 4, 8, (96, 128)
N = FPS * SECONDS


def mad(a, b) -> float:
    """Mean absolute difference of two uint8 arrays."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    start = time.perf_counter()
    c = make_corpus(tmp_path_factory.mktemp('corpus'))
    elapsed = time.perf_counter() - start
    assert elapsed < 15, f'the default corpus took {elapsed:.1f} s'
    return c


@pytest.fixture(scope='module')
def decoded(corpus):
    cache = {}

    def get(path):
        if path not in cache:
            cache[path] = read_frames(path)
        return cache[path]
    return get


def test_layout_and_ground_truth(corpus):
    folder = corpus.folder
    assert [p.name for p in corpus.originals] == ['orig0.mp4', 'orig1.mp4', 'orig2.mp4']
    assert [p.name for p in corpus.unrelated] == ['unrelated0.mp4', 'unrelated1.mp4', 'unrelated2.mp4']
    for i, original in enumerate(corpus.originals):
        assert list(corpus.copies[original]) == list(COPY_KINDS)
        for kind, path in corpus.copies[original].items():
            assert path == folder / f'orig{i}_{kind}.mp4' and path.is_file()
    gt = corpus.ground_truth()
    assert set(gt) == {str(o) for o in corpus.originals}
    for o in corpus.originals:
        assert gt[str(o)] == [str(corpus.copies[o][k]) for k in COPY_KINDS]
        assert all(isinstance(p, str) for p in gt[str(o)])
    videos = corpus.all_videos()
    assert len(videos) == len(set(videos)) == 3 + 3 * len(COPY_KINDS) + 3
    assert set(videos) == set(folder.glob('*.mp4'))


def test_every_file_is_h264_with_the_expected_frame_count(corpus, decoded):
    speedup_n = len(speedup_indices(N, 1.5))
    assert speedup_n == 22  # ~2/3 of 32
    for path in corpus.all_videos():
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == 'h264'
            assert (stream.height, stream.width) == SIZE
            assert stream.average_rate == FPS
        frames = decoded(path)
        expected = speedup_n if path.name.endswith('_speedup.mp4') else N
        assert frames.shape == (expected, *SIZE, 3), path.name


def test_exact_and_reencoded(corpus, decoded):
    for original in corpus.originals:
        data = original.read_bytes()
        assert corpus.copies[original]['exact'].read_bytes() == data
        reencoded = corpus.copies[original]['reencoded']
        assert reencoded.read_bytes() != data
        assert reencoded.stat().st_size < 0.5 * len(data)
        # Same content, visibly degraded.
        diff = mad(decoded(reencoded), decoded(original))
        assert 0.5 < diff < 16, diff


def test_geometric_copies_match_their_transformation(corpus, decoded):
    h, w = SIZE
    for original in corpus.originals:
        orig = decoded(original)
        copies = {k: decoded(p) for k, p in corpus.copies[original].items()}
        assert mad(copies['flipped'][0], np.flip(orig[0], axis=1)) < 4
        assert mad(copies['flipped'][0], orig[0]) > 20
        assert mad(copies['cropped'], resize(center_crop(orig, 0.75), h, w)) < 8
        # The shifted copy is the scene SHIFT_SECONDS later: its start is the original's frame 8.
        shift = SHIFT_SECONDS * FPS
        assert mad(copies['shifted'][:N - shift], orig[shift:]) < 4
        assert mad(copies['shifted'][0], orig[0]) > 10
        assert mad(copies['speedup'], orig[speedup_indices(N, 1.5)]) < 4
        # Logo: the corner box is covered, the rest untouched.
        top, left, lh, lw = logo_box(h, w)
        logo = copies['logo']
        box = logo[:, top + 3:top + lh - 3, left + 3:left + lw - 3]
        assert mad(box, box[:1]) < 8  # the same opaque pattern on every frame
        assert 0.1 < lh * lw / (h * w) < 0.2
        outside = np.ones((h, w), bool)
        outside[max(0, top - 8):top + lh + 8, max(0, left - 8):left + lw + 8] = False
        assert mad(logo[:, outside], orig[:, outside]) < 4
        # PiP: the half-size original in the centre, another scene around it.
        top, left, sh, sw = pip_box(h, w)
        pip = copies['pip']
        assert mad(pip[:, top:top + sh, left:left + sw], resize(orig, sh, sw)) < 12
        assert mad(pip[:, :top - 4], orig[:, :top - 4]) > 20


def test_unrelated_videos_differ_from_the_originals(corpus, decoded):
    videos = corpus.originals + corpus.unrelated
    for a in range(len(videos)):
        for b in range(a + 1, len(videos)):
            assert mad(decoded(videos[a]), decoded(videos[b])) > 20, (videos[a].name, videos[b].name)


def test_deterministic(tmp_path, corpus, decoded):
    again = make_corpus(tmp_path / 'again', originals=1, unrelated=1)
    assert np.array_equal(read_frames(again.originals[0]), decoded(corpus.originals[0]))
    for kind in COPY_KINDS:
        assert np.array_equal(read_frames(again.copies[again.originals[0]][kind]),
                              decoded(corpus.copies[corpus.originals[0]][kind])), kind
    assert np.array_equal(read_frames(again.unrelated[0]), decoded(corpus.unrelated[0]))


def test_arguments(tmp_path):
    c = make_corpus(tmp_path, originals=1, unrelated=0, seconds=3, fps=2, size=(64, 80))
    assert c.unrelated == [] and len(c.originals) == 1
    assert read_frames(c.originals[0]).shape == (6, 64, 80, 3)
    assert read_frames(c.copies[c.originals[0]]['speedup']).shape[0] == 4
    with pytest.raises(ValueError):
        make_corpus(tmp_path / 'odd', size=(95, 128))
