"""The temporal-network baseline on synthetic similarity matrices: copies drawn as lines
of high similarity in low noise, checked against the spans they were drawn at and
against an exhaustive search for the heaviest path."""
import importlib

import numpy as np
import pytest

from conftest import PACKAGE

localization = importlib.import_module(f'{PACKAGE}.localization')
temporal_network = localization.temporal_network
Segment = localization.Segment

THRESHOLD = 0.5


def noise(rows, cols, seed=0, high=0.2):
    return np.random.default_rng(seed).uniform(0, high, (rows, cols)).astype(np.float32)


def draw_line(sim, query_start, query_end, target_start, slope=1.0, value=1.0):
    """A copy of target frames from ``target_start`` in query frames [query_start, query_end)
    played at ``slope`` target frames per query frame."""
    for i in range(query_start, query_end):
        sim[i, target_start + int(round((i - query_start) * slope))] = value


def spans(segment):
    return segment.query_start, segment.query_end, segment.target_start, segment.target_end


def test_one_diagonal_gives_one_segment_with_its_spans():
    sim = noise(100, 120)
    draw_line(sim, 20, 60, 50)
    found = temporal_network(sim, THRESHOLD)
    assert len(found) == 1
    assert spans(found[0]) == (20, 60, 50, 90)
    assert found[0].score == pytest.approx(1.0)
    assert all(isinstance(value, int) for value in spans(found[0]))


def test_two_diagonals_give_two_segments_heavier_first():
    sim = noise(100, 120, seed=1)
    draw_line(sim, 20, 60, 50)                 # 40 frames of 1.0
    draw_line(sim, 70, 90, 10, value=0.9)      # 20 frames of 0.9, earlier in the target
    found = temporal_network(sim, THRESHOLD)
    assert [spans(s) for s in found] == [(20, 60, 50, 90), (70, 90, 10, 30)]
    assert found[1].score == pytest.approx(0.9)


def test_max_segments_keeps_the_heaviest():
    sim = noise(100, 120, seed=1)
    draw_line(sim, 20, 60, 50)
    draw_line(sim, 70, 90, 10, value=0.9)
    found = temporal_network(sim, THRESHOLD, max_segments=1)
    assert [spans(s) for s in found] == [(20, 60, 50, 90)]


def test_a_sped_up_copy_is_found():
    sim = noise(100, 200, seed=2)
    draw_line(sim, 10, 70, 5, slope=1.5, value=0.8)   # target steps of 1 and 2 frames
    found = temporal_network(sim, THRESHOLD)
    assert len(found) == 1
    assert spans(found[0]) == (10, 70, 5, 5 + round(59 * 1.5) + 1)
    assert found[0].score == pytest.approx(0.8)


def test_a_slowed_down_copy_is_found():
    sim = noise(120, 100, seed=3)
    # Each target frame shown for two query frames: only every other query frame can be
    # a node on a strictly increasing path, and steps of 2 query frames are allowed.
    for i in range(10, 90):
        sim[i, 20 + (i - 10) // 2] = 0.9
    found = temporal_network(sim, THRESHOLD)
    assert len(found) == 1
    query_start, query_end, target_start, target_end = spans(found[0])
    assert (target_start, target_end) == (20, 60)
    assert query_start in (10, 11) and query_end in (89, 90)


def test_pure_noise_below_the_threshold_gives_nothing():
    assert temporal_network(noise(80, 90, seed=4), THRESHOLD) == []


def test_a_gap_longer_than_max_step_splits_a_copy():
    sim = noise(100, 100, seed=5)
    draw_line(sim, 10, 30, 10)
    draw_line(sim, 45, 70, 45)    # same offset, but 15 frames later
    assert [spans(s) for s in temporal_network(sim, THRESHOLD, max_step=10)] == [(45, 70, 45, 70), (10, 30, 10, 30)]
    assert [spans(s) for s in temporal_network(sim, THRESHOLD, max_step=16)] == [(10, 70, 10, 70)]


def test_a_step_longer_than_the_matrix_is_no_different_from_a_step_as_long():
    sim = noise(30, 50, seed=13)
    draw_line(sim, 2, 8, 3)
    draw_line(sim, 20, 28, 40)
    assert temporal_network(sim, THRESHOLD, max_step=1000) == temporal_network(sim, THRESHOLD, max_step=50)
    assert [spans(s) for s in temporal_network(sim, THRESHOLD, max_step=50)] == [(2, 28, 3, 48)]


def test_a_few_damaged_frames_are_bridged():
    sim = noise(60, 60, seed=6)
    draw_line(sim, 5, 50, 8)
    sim[20:24] = 0.1              # four query frames match nothing
    found = temporal_network(sim, THRESHOLD)
    assert [spans(s) for s in found] == [(5, 50, 8, 53)]


def test_min_length_counts_nodes():
    sim = noise(40, 40, seed=7)
    draw_line(sim, 10, 13, 20)     # 3 nodes
    assert [spans(s) for s in temporal_network(sim, THRESHOLD, min_length=3)] == [(10, 13, 20, 23)]
    assert temporal_network(sim, THRESHOLD, min_length=4) == []


def test_min_length_finds_a_long_light_path_behind_a_short_heavy_one():
    sim = noise(40, 40, seed=8)
    sim[5, 5] = 1.0                          # 1 node, weight 1.0
    draw_line(sim, 20, 23, 20, value=0.55)   # 3 nodes, weight 1.65
    draw_line(sim, 30, 32, 2, value=0.99)    # 2 nodes, weight 1.98
    assert [spans(s) for s in temporal_network(sim, THRESHOLD, min_length=3)] == [(20, 23, 20, 23)]
    assert [spans(s) for s in temporal_network(sim, THRESHOLD, min_length=2)] == [(30, 32, 2, 4), (20, 23, 20, 23)]
    assert [spans(s) for s in temporal_network(sim, THRESHOLD, min_length=1)] == [
        (30, 32, 2, 4), (20, 23, 20, 23), (5, 6, 5, 6)]


def test_parallel_paths_through_a_smooth_copy_are_one_segment():
    # A copy whose neighbouring target frames are nearly as similar (a smooth video): the
    # top-k nodes of each query frame form parallel paths, shifted by a frame, which
    # must not come back as more copies.
    rng = np.random.default_rng(12)
    rows = np.arange(80)[:, None]
    cols = np.arange(100)[None, :]
    sim = 0.05 + 0.9 * np.exp(-0.5 * ((cols - rows - 10) / 2.5) ** 2) + rng.uniform(0, 0.02, (80, 100))
    sim[60:] = 0.05
    assert (sim[:60] >= THRESHOLD).sum(axis=1).min() >= 5    # 5 nodes in every copied frame
    found = temporal_network(sim, THRESHOLD)
    assert [spans(s) for s in found[:1]] == [(0, 60, 10, 70)]
    # What is left are stubs at the box's corners: nothing on either timeline beyond a
    # few frames.
    for segment in found[1:]:
        assert segment.query_end - segment.query_start <= 3
        assert segment.target_end - segment.target_start <= 3


def test_first_segment_is_the_heaviest_path_found_exhaustively():
    rng = np.random.default_rng(9)
    for trial in range(20):
        sim = rng.uniform(-0.2, 1.0, (12, 9)).astype(np.float32)
        top_k, max_step, min_length = 3, 3, 2 + trial % 3
        expected = _heaviest_path_exhaustive(sim, 0.3, top_k, max_step, min_length)
        found = temporal_network(sim, 0.3, top_k=top_k, max_step=max_step, min_length=min_length)
        if expected is None:
            assert found == []
            continue
        weight, path = expected
        rows, cols = zip(*path)
        assert spans(found[0]) == (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1)
        assert found[0].score == pytest.approx(weight / len(path), abs=1e-6)


def _heaviest_path_exhaustive(sim, threshold, top_k, max_step, min_length):
    """The heaviest path with at least ``min_length`` nodes, by trying every node sequence
    (a depth-first search over the DAG): (weight, [(row, col), ...]) or None."""
    nodes = [(i, j) for i in range(sim.shape[0]) for j in np.argsort(-sim[i], kind='stable')[:top_k]
             if sim[i, j] >= threshold]
    best = None

    def extend(path, weight):
        nonlocal best
        if len(path) >= min_length and (best is None or weight > best[0]):
            best = (weight, list(path))
        i, j = path[-1]
        for node in nodes:
            if 0 < node[0] - i <= max_step and 0 < node[1] - j <= max_step:
                path.append(node)
                extend(path, weight + float(sim[node]))
                path.pop()

    for node in nodes:
        extend([node], float(sim[node]))
    return best


def test_a_large_matrix_finds_its_copies():
    # 20 minutes against 30 at 1 frame a second, three copies, one sped up.
    sim = noise(1200, 1800, seed=10, high=0.25)
    draw_line(sim, 100, 400, 900, value=0.7)
    draw_line(sim, 600, 700, 50, slope=1.25, value=0.6)
    draw_line(sim, 1000, 1150, 1500, value=0.8)
    found = temporal_network(sim, 0.4)
    assert sorted(spans(s) for s in found) == [(100, 400, 900, 1200), (600, 700, 50, 175), (1000, 1150, 1500, 1650)]


def test_segments_convert_to_seconds():
    segment = temporal_network(_one_copy(), THRESHOLD)[0]
    assert spans(segment.to_seconds(0.5)) == (10.0, 15.0, 12.5, 17.5)
    assert segment.to_seconds(0.5).as_dict() == {'query_start': 10.0, 'query_end': 15.0, 'target_start': 12.5,
                                                 'target_end': 17.5, 'score': segment.score}


def _one_copy():
    sim = noise(40, 40, seed=11)
    draw_line(sim, 20, 30, 25)
    return sim


def test_empty_and_tiny_matrices():
    assert temporal_network(np.zeros((0, 5)), THRESHOLD) == []
    assert temporal_network(np.zeros((5, 0)), THRESHOLD) == []
    assert temporal_network(np.ones((1, 1)), THRESHOLD) == []
    assert [spans(s) for s in temporal_network(np.ones((1, 1)), THRESHOLD, min_length=1)] == [(0, 1, 0, 1)]
    assert [spans(s) for s in temporal_network(np.eye(3), THRESHOLD, top_k=50)] == [(0, 3, 0, 3)]


@pytest.mark.parametrize('sim, kwargs, message', [
    (np.ones(5), {}, 'shape'),
    (np.ones((2, 2, 2)), {}, 'shape'),
    (np.array([[1.0, np.nan]]), {}, 'NaN'),
    ([['a', 'b']], {}, 'numbers'),
    (np.ones((3, 3)), {'top_k': 0}, 'top_k'),
    (np.ones((3, 3)), {'max_step': 0}, 'max_step'),
    (np.ones((3, 3)), {'min_length': 0}, 'min_length'),
    (np.ones((3, 3)), {'max_segments': 0}, 'max_segments'),
    (np.ones((3, 3)), {'top_k': 2.5}, 'top_k'),
    (np.ones((3, 3)), {'threshold': float('nan')}, 'threshold'),
])
def test_bad_input_is_a_value_error(sim, kwargs, message):
    kwargs = {'threshold': THRESHOLD, **kwargs}
    with pytest.raises(ValueError, match=message):
        temporal_network(sim, **kwargs)


@pytest.mark.parametrize('fields, message', [
    ((5, 4, 0, 1, 1.0), 'query_end'),
    ((0, 1, 5, 4, 1.0), 'target_end'),
    ((0, float('inf'), 0, 1, 1.0), 'finite'),
    ((0, 1, 0, 1, float('nan')), 'NaN'),
    (('0', 1, 0, 1, 1.0), 'number'),
])
def test_bad_segments_are_value_errors(fields, message):
    with pytest.raises(ValueError, match=message):
        Segment(*fields)


def test_segment_seconds_and_fields():
    segment = Segment(np.int64(2), 6, 10, 14, np.float32(0.5))
    assert type(segment.query_start) is int and type(segment.score) is float
    assert segment.to_seconds(2).as_dict() == {'query_start': 4.0, 'query_end': 12.0, 'target_start': 20.0,
                                               'target_end': 28.0, 'score': 0.5}
    with pytest.raises(ValueError, match='time_step'):
        segment.to_seconds(0)
    with pytest.raises(ValueError, match='time_step'):
        segment.to_seconds(float('nan'))


def test_more_candidates_below_the_threshold_change_nothing():
    sim = _one_copy()
    draw_line(sim, 2, 12, 3, value=0.7)
    first = [spans(s) for s in temporal_network(sim, THRESHOLD, top_k=3)]
    assert first == [(20, 30, 25, 35), (2, 12, 3, 13)]
    for top_k in (1, 4, 7, 40):
        assert [spans(s) for s in temporal_network(sim, THRESHOLD, top_k=top_k)] == first
