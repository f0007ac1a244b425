"""The copy-detection corpora (tests/support/corpus.py): real H.264 files that decode, with the
transformations they claim, deterministic; the partial corpus' ground truth in seconds
matches the decoded frames."""
import json

import av
import numpy as np
import pytest

from support.corpus import (COPY_KINDS, PARTIAL_KINDS, SHIFT_SECONDS, add_logo, center_crop, logo_box, make_corpus,
                    make_partial_corpus, pip_box, read_frames, read_ground_truth, resize, speedup_indices)

FPS, SECONDS, SIZE = 4, 8, (96, 128)
N = FPS * SECONDS


def mad(a, b) -> float:
    """Mean absolute difference of two uint8 arrays."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp('corpus'))


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


def test_default_corpus_is_small(corpus, decoded):
    # Tests index this corpus through the real networks: its size is what keeps them quick.
    frames = sum(len(decoded(p)) for p in corpus.all_videos())
    assert frames == 3 * N + 3 * (len(COPY_KINDS) - 1) * N + 3 * len(speedup_indices(N, 1.5)) + 3 * N
    assert frames / FPS <= 240  # seconds of video
    assert sum(p.stat().st_size for p in corpus.all_videos()) < 8_000_000


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


# The partial corpus: pieces of sources inserted into hosts, ground truth in seconds.

PARTIAL_SOURCE_FRAMES = 24 * FPS
PLAIN_TOLERANCE = 4  # mean absolute difference per frame: x264 at crf 18 on these scenes stays under ~3
# The transformation recomputed from the decoded source differs from the host's frames by
# the encoding noise of both files (and, re-encoded, a crf 38 generation); a frame from one
# step earlier or later differs by 9 or more.
KIND_TOLERANCE = {'plain': PLAIN_TOLERANCE, 'reencoded': 12, 'cropped_logo': 7, 'flipped': PLAIN_TOLERANCE,
                  'speedup': PLAIN_TOLERANCE, 'pip': 9}
UNRELATED = 20  # every pair of frames of unrelated scenes differs by more (measured: 40 or more)


def frame_mads(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute difference of each pair of frames, [T]."""
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=(1, 2, 3))


def frames_of(seconds: float, fps: int = FPS) -> int:
    """``seconds`` as a frame index, asserting it is a whole frame."""
    frame = seconds * fps
    assert frame == int(frame), f'{seconds} s is not a whole frame at {fps} fps'
    return int(frame)


@pytest.fixture(scope='module')
def partial(tmp_path_factory):
    return make_partial_corpus(tmp_path_factory.mktemp('partial'))


def expected_frames(kind: str, source: np.ndarray) -> np.ndarray:
    """The source frames of a piece as the host should show them (pip: the inset only)."""
    h, w = SIZE
    if kind in ('plain', 'reencoded'):
        return source
    if kind == 'cropped_logo':
        return add_logo(resize(center_crop(source, 0.75), h, w))
    if kind == 'flipped':
        return source[:, :, ::-1]
    if kind == 'speedup':
        return source[speedup_indices(len(source), 1.5)]
    if kind == 'pip':
        _, _, sh, sw = pip_box(h, w)
        return resize(source, sh, sw)
    raise AssertionError(kind)


def shown_region(kind: str, host: np.ndarray) -> np.ndarray:
    """The part of host frames where the piece shows."""
    if kind != 'pip':
        return host
    top, left, sh, sw = pip_box(*SIZE)
    return host[:, top:top + sh, left:left + sw]


def test_partial_layout_covers_the_cases(partial, decoded):
    assert partial.fps == FPS
    assert [p.name for p in partial.sources] == ['source0.mp4', 'source1.mp4', 'source2.mp4']
    assert [p.name for p in partial.hosts] == [f'host{j}.mp4' for j in range(9)]
    assert set(partial.folder.glob('*.mp4')) == set(partial.sources + partial.hosts)
    ins = partial.insertions
    assert {i.kind for i in ins} == set(PARTIAL_KINDS)
    assert all(i.source in partial.sources and i.host in partial.hosts for i in ins)
    with_insertion = {i.host for i in ins}
    assert len(set(partial.hosts) - with_insertion) >= 2
    per_host = {h: [i for i in ins if i.host == h] for h in with_insertion}
    # One host holds two pieces of the same source and a piece of another source.
    assert any(len(v) >= 3 and len({i.source for i in v}) == 2 for v in per_host.values())
    lengths = [i.query_end - i.query_start for i in ins]
    assert min(lengths) <= 4 and 12 <= max(lengths) <= 16
    assert any(i.target_start != int(i.target_start) for i in ins)  # off a whole second
    assert any(i.target_start == int(i.target_start) for i in ins)
    assert all(i.query_start >= 1 for i in ins)  # taken from the middle, not the first second
    # Small: indexing it at 1 frame/s must stay quick.
    durations = {p: len(decoded(p)) / FPS for p in partial.sources + partial.hosts}
    assert all(d == 24 for p, d in durations.items() if p in partial.sources)
    assert all(30 <= d <= 45 for p, d in durations.items() if p in partial.hosts)
    assert sum(durations.values()) <= 400


def test_partial_files_are_h264(partial, decoded):
    for path in partial.sources + partial.hosts:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == 'h264'
            assert (stream.height, stream.width) == SIZE and stream.average_rate == FPS
        assert decoded(path).shape[1:] == (*SIZE, 3)


def test_ground_truth_is_frame_exact(partial, decoded):
    for i in partial.insertions:
        first, last = frames_of(i.query_start), frames_of(i.query_end)
        start, end = frames_of(i.target_start), frames_of(i.target_end)
        assert 0 <= first < last <= len(decoded(i.source))
        assert 0 <= start < end <= len(decoded(i.host))
        if i.kind == 'speedup':
            assert end - start == len(speedup_indices(last - first, 1.5))
            assert i.target_end - i.target_start == pytest.approx((i.query_end - i.query_start) / 1.5)
        else:
            assert end - start == last - first
    # Pieces of one host never overlap.
    for host in partial.hosts:
        spans = sorted((i.target_start, i.target_end) for i in partial.insertions if i.host == host)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_plain_pieces_are_the_source_frames(partial, decoded):
    plain = [i for i in partial.insertions if i.kind == 'plain']
    assert len(plain) >= 3
    for i in plain:
        source, host = decoded(i.source), decoded(i.host)
        piece = host[frames_of(i.target_start):frames_of(i.target_end)]
        original = source[frames_of(i.query_start):frames_of(i.query_end)]
        assert frame_mads(piece, original).max() < PLAIN_TOLERANCE, (i.host.name, i.segment())


def test_every_piece_shows_its_transformed_source_frames(partial, decoded):
    for i in partial.insertions:
        source, host = decoded(i.source), decoded(i.host)
        expected = expected_frames(i.kind, source[frames_of(i.query_start):frames_of(i.query_end)])
        start, end = frames_of(i.target_start), frames_of(i.target_end)
        shown = shown_region(i.kind, host)
        mads = frame_mads(shown[start:end], expected)
        assert mads.max() < KIND_TOLERANCE[i.kind], (i.kind, i.host.name, mads.max())
        # One frame early or late aligns worse: the stated start is the true one.
        for shift in (-1, 1):
            lo, hi = max(start + shift, 0), min(end + shift, len(host))
            off = frame_mads(shown[lo:hi], expected[lo - start - shift:hi - start - shift])
            assert off.mean() > mads.mean() + 3, (i.kind, i.host.name, shift)
        if i.kind == 'pip':
            # Around the inset: the host's own scene, not the source at full size.
            top = pip_box(*SIZE)[0]
            full = source[frames_of(i.query_start):frames_of(i.query_end)]
            assert frame_mads(host[start:end, :top - 4], full[:, :top - 4]).min() > UNRELATED


def test_ground_truth_is_complete(partial, decoded):
    """Host frames outside every true span, including whole hosts with no insertion, share
    no frame with any source: nothing copied goes unlisted."""
    sources = [decoded(s).astype(np.int16) for s in partial.sources]
    for host in partial.hosts:
        frames = decoded(host)
        outside = np.ones(len(frames), bool)
        for i in partial.insertions:
            if i.host == host:
                outside[frames_of(i.target_start):frames_of(i.target_end)] = False
        for source, path in zip(sources, partial.sources):
            closest = min(np.abs(f.astype(np.int16)[None] - source).mean(axis=(1, 2, 3)).min()
                          for f in frames[outside])
            assert closest > UNRELATED, (host.name, path.name, closest)


def test_sources_are_unrelated_to_each_other(partial, decoded):
    s = [decoded(p) for p in partial.sources]
    for a in range(len(s)):
        for b in range(a + 1, len(s)):
            assert min(frame_mads(s[b], f[None]).min() for f in s[a]) > UNRELATED


def test_segments_and_ground_truth_file_round_trip(partial, tmp_path):
    segments = partial.segments()
    assert set(segments) == {str(i.source) for i in partial.insertions}
    assert sum(len(segs) for targets in segments.values() for segs in targets.values()) == len(partial.insertions)
    for i in partial.insertions:
        assert i.segment() in segments[str(i.source)][str(i.host)]
    # Only pairs with an insertion are listed: hosts with none appear nowhere.
    listed = {t for targets in segments.values() for t in targets}
    assert listed == {str(i.host) for i in partial.insertions}
    # Written next to the videos and elsewhere: paths relative to the file's folder.
    for path in (partial.folder / 'ground_truth.json', tmp_path / 'elsewhere' / 'gt.json'):
        written = partial.write_ground_truth(path)
        assert written == path.resolve() and written.is_file()
        data = json.loads(written.read_text())
        keys = list(data) + [t for targets in data.values() for t in targets]
        assert not any(k.startswith('/') for k in keys)
        assert read_ground_truth(written) == segments
    beside = json.loads((partial.folder / 'ground_truth.json').read_text())
    assert set(beside) == {i.source.name for i in partial.insertions}
    assert beside['source0.mp4']['host6.mp4'] == segments[str(partial.sources[0])][str(partial.hosts[6])]


def test_partial_deterministic(partial, decoded, tmp_path):
    again = make_partial_corpus(tmp_path / 'again')
    assert [i.segment() for i in again.insertions] == [i.segment() for i in partial.insertions]
    assert [i.kind for i in again.insertions] == [i.kind for i in partial.insertions]
    for a, b in zip(again.sources + again.hosts, partial.sources + partial.hosts):
        assert np.array_equal(read_frames(a), decoded(b)), b.name


def test_partial_arguments(tmp_path):
    # At 2 fps the plan's quarter seconds round to whole frames; the ground truth stays exact.
    c = make_partial_corpus(tmp_path / 'small', sources=2, fps=2, size=(64, 80))
    assert len(c.sources) == 2 and len(c.hosts) == 9 and c.fps == 2
    assert {i.source for i in c.insertions} == set(c.sources)
    for i in c.insertions:
        for t in i.segment():
            frames_of(t, 2)
        host = read_frames(i.host)
        assert host.shape[1:] == (64, 80, 3) and frames_of(i.target_end, 2) <= len(host)
    plain = next(i for i in c.insertions if i.kind == 'plain')
    piece = read_frames(plain.host)[frames_of(plain.target_start, 2):frames_of(plain.target_end, 2)]
    original = read_frames(plain.source)[frames_of(plain.query_start, 2):frames_of(plain.query_end, 2)]
    assert frame_mads(piece, original).max() < PLAIN_TOLERANCE
    for bad in ({'size': (95, 128)}, {'sources': 0}, {'fps': 0}, {'fps': 2.5}, {'seconds': 10}):
        with pytest.raises(ValueError):
            make_partial_corpus(tmp_path / 'bad', **bad)
    assert not (tmp_path / 'bad').exists()
