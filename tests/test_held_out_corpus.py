"""The held-out partial-copy corpus (support/held_out_corpus.py): real H.264 files whose
ground truth in seconds matches the decoded frames, each edit as it claims, deterministic."""
import av
import numpy as np
import pytest

from support.corpus import center_crop, read_frames, resize, speedup_indices
from support.held_out_corpus import (BRIGHTEN, CONTRAST, HELD_OUT_FPS, HELD_OUT_KINDS, HELD_OUT_SIZE,
                                     HELD_OUT_SOURCE_SECONDS, add_banner, broadcast_scene, draw_plan, filmed_scene,
                                     make_held_out_corpus, pip_corner_box)


def mad(a, b) -> float:
    """Mean absolute difference of two uint8 arrays."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope='session')
def held_out(tmp_path_factory):
    return make_held_out_corpus(tmp_path_factory.mktemp('held-out') / 'videos')


@pytest.fixture(scope='module')
def decoded(held_out):
    return {path: read_frames(path) for path in [*held_out.sources, *held_out.hosts]}


def expected(kind, source_frames, host_frames):
    """What an insertion of ``kind`` should show, from the decoded source and host."""
    _, h, w, _ = source_frames.shape
    if kind in ('plain', 'speedup', 'reencoded'):
        return source_frames
    if kind == 'flipped':
        return source_frames[:, :, ::-1]
    if kind == 'bright_reencoded':
        return np.clip((source_frames.astype(np.float32) + BRIGHTEN - 128) * CONTRAST + 128, 0, 255).astype(np.uint8)
    if kind == 'cropped_banner':
        return add_banner(resize(center_crop(source_frames, 0.7), h, w))
    if kind == 'pip_corner':
        top, left, ih, iw = pip_corner_box(h, w)
        out = host_frames.copy()
        out[:, top:top + ih, left:left + iw] = resize(source_frames, ih, iw)
        return out
    raise AssertionError(kind)


def test_files_sizes_and_rates(held_out, decoded):
    assert [p.name for p in held_out.sources] == ['source0.mp4', 'source1.mp4', 'source2.mp4']
    assert [p.name for p in held_out.hosts] == [f'host{j}.mp4' for j in range(10)]
    assert held_out.fps == HELD_OUT_FPS
    for path, frames in decoded.items():
        assert frames.shape[1:] == (*HELD_OUT_SIZE, 3)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == 'h264' and stream.average_rate == HELD_OUT_FPS
    assert {i.kind for i in held_out.insertions} == set(HELD_OUT_KINDS)
    # Pieces of 3 to 5 s of the host: 3 to 5 frames sampled at 1 frame a second.
    assert all(3 <= i.target_end - i.target_start <= 5 for i in held_out.insertions)
    assert sum(not any(i.host == h for i in held_out.insertions) for h in held_out.hosts) == 2


def test_ground_truth_matches_the_decoded_frames(held_out, decoded):
    """Inside each true span the host shows the edited source frames; a frame earlier or
    later in either video matches worse, so the spans are exact to the frame."""
    check_ground_truth(held_out, decoded)


def test_a_drawn_corpus_is_another_corpus_with_exact_ground_truth(tmp_path, held_out):
    drawn = make_held_out_corpus(tmp_path / 'drawn', plan_seed=1, hosts=5)
    decoded = {path: read_frames(path) for path in [*drawn.sources, *drawn.hosts]}
    assert len(drawn.hosts) == 5 and drawn.insertions
    check_ground_truth(drawn, decoded)
    fixed_source = read_frames(held_out.sources[0])
    assert mad(decoded[drawn.sources[0]], fixed_source[:len(decoded[drawn.sources[0]])]) > 20


def test_drawn_plans_are_seeded_and_fit():
    plan = draw_plan(1, 21)
    assert plan == draw_plan(1, 21) and plan != draw_plan(2, 21)
    kinds = [p.kind for _, pieces in plan for p in pieces]
    assert len(set(kinds)) >= 5 and any(not pieces for _, pieces in plan)
    for host_seconds, pieces in plan:
        if any(p.kind in ('bright_reencoded', 'reencoded') for p in pieces):
            assert len(pieces) == 1  # the whole host is re-encoded
        end = 0
        for p in pieces:
            length = p.query[1] - p.query[0]
            shown = length / 1.5 if p.kind == 'speedup' else length
            assert 0 <= p.query[0] and p.query[1] <= HELD_OUT_SOURCE_SECONDS and 3 <= shown <= 5 + 1e-9
            assert p.at >= end + 2 - 1e-9 and p.at + shown <= host_seconds
            assert all(abs(t * HELD_OUT_FPS - round(t * HELD_OUT_FPS)) < 1e-6 for t in (*p.query, p.at))
            end = p.at + shown


def check_ground_truth(corpus, decoded):
    fps = corpus.fps
    for ins in corpus.insertions:
        source, host = decoded[ins.source], decoded[ins.host]
        q0, q1 = round(ins.query_start * fps), round(ins.query_end * fps)
        t0, t1 = round(ins.target_start * fps), round(ins.target_end * fps)
        picked = speedup_indices(q1 - q0, 1.5) if ins.kind == 'speedup' else np.arange(q1 - q0)
        assert len(picked) == t1 - t0, ins
        shown = host[t0:t1]
        right = mad(shown, expected(ins.kind, source[q0 + picked], shown))
        # Re-encoding at crf 35 to 38 leaves a few grey levels of difference.
        assert right < 9, (ins.kind, right)
        for dq, dt in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            if 0 <= q0 + dq and q1 + dq <= len(source) and 0 <= t0 + dt and t1 + dt <= len(host):
                moved = host[t0 + dt:t1 + dt]
                assert mad(moved, expected(ins.kind, source[q0 + dq + picked], moved)) > right, (ins, dq, dt)
        if t0 > 0:  # the host's own scene before the piece
            before = host[t0 - 1:t0]
            assert mad(before, expected(ins.kind, source[q0:q0 + 1], before)) > 3 * right + 5, ins


def test_two_pieces_apart_and_hosts_without_insertions(held_out, decoded):
    pairs = {}
    for ins in held_out.insertions:
        pairs.setdefault((ins.source, ins.host), []).append(ins)
    (twice,) = [p for p in pairs.values() if len(p) == 2]
    first, second = sorted(twice, key=lambda i: i.target_start)
    assert second.target_start - first.target_end == 3 and second.query_start - first.query_end == 5
    for host in held_out.hosts:
        if any(i.host == host for i in held_out.insertions):
            continue
        for source in held_out.sources:  # nothing of any source frame in the host
            frames = decoded[source][::HELD_OUT_FPS]
            assert min(mad(decoded[host][t:t + 1], frames[k:k + 1]) for t in range(0, len(decoded[host]), 5)
                       for k in range(len(frames))) > 20


def test_scene_families_are_deterministic_and_not_the_tuning_corpus():
    a, b = filmed_scene(12, 144, 176, 5, seed=3), filmed_scene(12, 144, 176, 5, seed=3)
    assert np.array_equal(a, b) and not np.array_equal(a, filmed_scene(12, 144, 176, 5, seed=4))
    assert np.array_equal(broadcast_scene(8, 144, 176, 5, seed=2), broadcast_scene(8, 144, 176, 5, seed=2))


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match='sources'):
        make_held_out_corpus(tmp_path, sources=2)
    with pytest.raises(ValueError, match='seconds must be at least'):
        make_held_out_corpus(tmp_path, seconds=10)
    with pytest.raises(ValueError, match='even'):
        make_held_out_corpus(tmp_path, size=(143, 176))
    with pytest.raises(ValueError, match='plan_seed'):
        make_held_out_corpus(tmp_path, plan_seed=0)
    with pytest.raises(ValueError, match='hosts'):
        make_held_out_corpus(tmp_path, plan_seed=1, hosts=0)
    assert not list(tmp_path.iterdir())  # nothing written before the arguments are checked
