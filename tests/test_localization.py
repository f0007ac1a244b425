"""The project's localization method, ``find_segments``, on similarity matrices whose
copied segments are known: diagonals, other slopes, several pieces, short pieces, noise."""
import importlib

import numpy as np
import pytest

from conftest import PACKAGE
from support.segment_scoring import unrelated_similarities

localization = importlib.import_module(f'{PACKAGE}.localization')
defaults = importlib.import_module(f'{PACKAGE}.defaults')
standardized = importlib.import_module(f'{PACKAGE}.localization.background').standardized
find_segments = localization.find_segments
Segment = localization.Segment


def noise(rows, cols, seed=0, level=0.05):
    """Unrelated frames: similarities around 0.05, as the fine students give them."""
    return np.random.default_rng(seed).normal(level, 0.05, (rows, cols)).astype(np.float32)


def draw_line(sim, q0, t0, frames, slope=1.0, value=0.6):
    """Copied frames: query frame q0 + k matches target frame t0 + round(k / slope)."""
    for k in range(frames):
        sim[q0 + k, t0 + int(round(k / slope))] = value
    return sim


def spans(segment):
    return segment.query_start, segment.query_end, segment.target_start, segment.target_end


def test_a_diagonal_is_one_segment_with_exact_spans():
    sim = draw_line(noise(60, 80), 10, 30, 20)
    (segment,) = find_segments(sim)
    assert spans(segment) == (10, 30, 30, 50)
    # The mean evidence on the path, shrunk by the prior's zero cell, less the size
    # offset: 0.6 against a background of 0.05 +- 0.05 is about 11 standard deviations.
    evidence = standardized(sim)[np.arange(10, 30), np.arange(30, 50)]
    assert segment.score == pytest.approx(evidence.sum() / 21 - localization.chance_offset(60, 80), rel=1e-5)
    assert 9 < segment.score < 12


def test_a_copy_scores_the_same_whatever_the_pairs_background():
    """The same copy in a pair of unrelated frames around 0.05 and in one where they are
    alike (around 0.12) and the copy stands out half as much: one score, in standard
    deviations above each pair's background. On the similarity scale, 0.8 against 0.5."""
    sim = draw_line(noise(60, 80, seed=11, level=0.0) * 2 + 0.05, 10, 30, 20, value=0.8)
    alike = 0.1 + 0.5 * sim
    (segment,), (same,) = find_segments(sim), find_segments(alike)
    assert spans(segment) == spans(same) == (10, 30, 30, 50)
    assert same.score == pytest.approx(segment.score, rel=1e-3)
    on_similarity_scale = [s[np.arange(10, 30), np.arange(30, 50)].mean() for s in (sim, alike)]
    assert on_similarity_scale == pytest.approx([0.8, 0.5])


def test_evidence_is_measured_against_the_row_and_the_column():
    """A target frame that resembles every query frame somewhat (a dark frame, a title
    card) stands out in each row but not in its own column: no evidence there."""
    sim = noise(40, 40, seed=12)
    sim[:, 25] = 0.2
    sim[7, 30] = 0.2
    z = standardized(sim)
    assert z[7, 30] > 2.5 and abs(z[7, 25]) < 0.5
    # A high background is no background but the copy itself (a static shot): capped.
    assert standardized(np.full((5, 5), 0.9)).min() > 10


def test_a_copy_of_a_scene_the_query_comes_back_to_keeps_its_evidence():
    """Real footage returns to its scenes: here query frames 15-21 show the copied shot's
    place again (0.6-0.75 against the copied host frames), so the copied columns spread
    widely. The copy (0.93-0.97 on its diagonal, 0.8-0.9 beside it in the same shot) is
    still one segment, copied frames only: the spread is capped (SPREAD_CAP)."""
    rng = np.random.default_rng(21)
    sim = rng.uniform(0.05, 0.4, (24, 34)).astype(np.float32)  # unrelated real frames spread wider
    sim[4:10, 13:19] = rng.uniform(0.8, 0.9, (6, 6))            # the copied shot: a pan, frames alike
    sim[np.arange(4, 10), np.arange(13, 19)] = rng.uniform(0.93, 0.97, 6)
    sim[15:22, 13:19] = rng.uniform(0.6, 0.75, (7, 6))          # the scene again, later in the query
    found = find_segments(sim)
    assert [spans(s) for s in found] == [(4, 10, 13, 19)]


def test_a_query_of_a_few_frames_is_measured_against_its_rows():
    """Four query frames: a column of four cells has no background (the copied cell is a
    quarter of it), so the rows, 60 cells long, give it."""
    sim = draw_line(noise(4, 60, seed=13), 0, 20, 4, value=0.35)
    row_z = (sim - np.median(sim, axis=1, keepdims=True)) / np.maximum(
        1.4826 * np.median(np.abs(sim - np.median(sim, axis=1, keepdims=True)), axis=1, keepdims=True), 0.04)
    assert np.allclose(standardized(sim), row_z, atol=1e-5)
    assert [spans(s) for s in find_segments(sim)] == [(0, 4, 20, 24)]


def test_several_pieces_short_and_long_best_first():
    sim = noise(80, 120, seed=1)
    draw_line(sim, 5, 60, 30, value=0.7)      # long
    draw_line(sim, 50, 10, 4, value=0.8)      # short: 4 frames
    draw_line(sim, 40, 100, 12, value=0.5)    # the same query frames can appear elsewhere too
    found = find_segments(sim)
    assert sorted(map(spans, found)) == sorted([(5, 35, 60, 90), (50, 54, 10, 14), (40, 52, 100, 112)])
    assert [s.score for s in found] == sorted((s.score for s in found), reverse=True)


def test_the_same_piece_copied_twice_into_the_target():
    sim = noise(30, 100, seed=2)
    draw_line(sim, 5, 10, 15)
    draw_line(sim, 5, 70, 15)
    assert sorted(map(spans, find_segments(sim))) == [(5, 20, 10, 25), (5, 20, 70, 85)]


@pytest.mark.parametrize('slope', [1.5, 2.0, 0.5, 1 / 1.5])
def test_faster_and_slower_copies(slope):
    """A copy played 1.5x or 2x faster (or slower) is a line of another slope: query
    frames advance ``slope`` times as fast as target frames."""
    sim = noise(120, 120, seed=3)
    frames = 30 if slope >= 1 else 14
    for k in range(int(frames * max(1.0, 1 / slope))):
        q, t = (10 + k, 20 + int(k / slope)) if slope >= 1 else (10 + int(k * slope), 20 + k)
        sim[q, t] = 0.6
    (segment,) = find_segments(sim)
    q_len, t_len = segment.query_end - segment.query_start, segment.target_end - segment.target_start
    # Sampling a line of another slope repeats a frame now and then: the path, which
    # advances on both videos, may start one frame later on one of them.
    assert abs(segment.query_start - 10) + abs(segment.target_start - 20) <= 1
    assert q_len / t_len == pytest.approx(slope, rel=0.1)


def test_a_few_damaged_frames_do_not_split_a_segment():
    sim = draw_line(noise(60, 60, seed=4), 10, 10, 30)
    sim[24, 24] = sim[25, 25] = 0.0  # two frames lost to a glitch
    (segment,) = find_segments(sim)
    assert spans(segment) == (10, 40, 10, 40)


def test_unrelated_videos_have_no_segment():
    for seed in range(5):
        assert find_segments(noise(200, 150, seed=10 + seed)) == []


def alike_neighbours(rows, cols, seed):
    """Unrelated frames whose neighbours look alike, as within a shot."""
    return unrelated_similarities(rows, cols, 2, np.random.default_rng(seed))


def test_the_size_offset_grows_with_the_log_of_the_pairs_cells():
    offset = localization.chance_offset
    assert offset(60, 60) == offset(10, 100) == offset(1, 1) == 0  # up to the reference size
    slope = importlib.import_module(f'{PACKAGE}.localization.alignment').SIZE_SLOPE
    assert offset(600, 60) == pytest.approx(slope * np.log(10))
    assert offset(3600, 3600) == pytest.approx(slope * np.log(3600))
    assert offset(20, 3600) < offset(300, 300) < offset(3600, 3600)


def test_a_copy_in_a_bigger_pair_scores_its_mean_evidence_less_the_offset():
    small = draw_line(noise(60, 60, seed=13), 10, 30, 20)
    big = draw_line(noise(600, 600, seed=13), 10, 30, 20)
    (copy_small,), (copy_big,) = find_segments(small), find_segments(big)
    assert spans(copy_small) == spans(copy_big) == (10, 30, 30, 50)
    path = np.arange(10, 30), np.arange(30, 50)
    assert copy_small.score == pytest.approx(standardized(small)[path].sum() / 21, rel=1e-5)
    assert copy_big.score == pytest.approx(standardized(big)[path].sum() / 21 - localization.chance_offset(600, 600),
                                           rel=1e-5)


def test_long_unrelated_pairs_rarely_hold_a_false_segment():
    """Bigger pairs offer chance more places to line noise up: without the size offset,
    nearly every one of these 10-minute pairs would hold a false segment at the default
    threshold; with it, a few (2 of these 12), where 1 of 40 1-minute pairs holds one."""
    def best(size, seed):
        return max([s.score for s in find_segments(alike_neighbours(size, size, seed), threshold=None)] + [0])
    offset = localization.chance_offset(600, 600)
    short = np.array([best(60, seed) for seed in range(40)])
    long = np.array([best(600, seed) for seed in range(12)])
    threshold = defaults.SEGMENT_THRESHOLD
    assert (long + offset >= threshold).mean() >= 0.9
    assert (long >= threshold).mean() <= 0.2 and (short >= threshold).mean() <= 0.1


def test_threshold_none_returns_every_segment_found_for_calibration():
    sim = draw_line(noise(60, 60, seed=5), 0, 0, 20, value=0.19)  # a weak copy
    assert find_segments(sim) == []                                # below the default
    weak, *others = find_segments(sim, threshold=None)   # noise makes segments too, all weaker
    assert spans(weak) == (0, 20, 0, 20) and weak.score < 3
    assert all(other.score < weak.score / 2 for other in others)
    assert find_segments(sim, threshold=weak.score) == [weak]


def test_a_one_or_two_frame_match_must_stand_out_far():
    sim = noise(40, 40, seed=6)
    sim[10, 20] = sim[11, 21] = 0.25   # two frames 4 standard deviations up: noise, by the prior
    assert find_segments(sim) == []
    sim[10, 20] = sim[11, 21] = 0.95   # two near-identical frames
    assert [spans(s) for s in find_segments(sim)] == [(10, 12, 20, 22)]


def test_short_videos_and_empty_matrices():
    assert find_segments(np.zeros((0, 5))) == []
    one = find_segments(np.array([[0.99]]))
    assert [spans(s) for s in one] == [(0, 1, 0, 1)]   # a 1-frame video copied whole
    assert find_segments(np.full((3, 3), 0.01)) == []


def test_a_copy_of_a_static_shot_is_found_whole():
    """Every frame like every other: the median is the copy, not a background. Any
    frame matches any other, so the segments cover both videos whole."""
    sim = np.random.default_rng(8).uniform(0.85, 0.9, (20, 30)).astype(np.float32)
    best, *rest = find_segments(sim)
    assert (best.query_start, best.query_end) == (0, 20) and best.score > 10
    covered = set()
    for segment in [best, *rest]:
        covered |= set(range(segment.target_start, segment.target_end))
    assert covered == set(range(30))


def test_a_similar_background_does_not_stretch_a_segment():
    sim = noise(60, 60, seed=9, level=0.2)   # two videos alike all through: a high background
    draw_line(sim, 20, 30, 10, value=0.7)
    assert [spans(s) for s in find_segments(sim)] == [(20, 30, 30, 40)]


def test_max_segments_bounds_the_search():
    sim = noise(100, 100, seed=7)
    for i in range(5):
        draw_line(sim, 20 * i, 80 - 20 * i, 10)
    assert len(find_segments(sim)) == 5
    assert len(find_segments(sim, max_segments=2)) == 2


def test_frames_to_seconds():
    segment = Segment(3, 10, 0, 7, 0.5)
    assert spans(segment.to_seconds(0.5)) == (1.5, 5.0, 0.0, 3.5)


@pytest.mark.parametrize('bad, message', [
    (np.zeros(5), r'\[Tq, Tt\]'),
    (np.array([[0.1, np.nan]]), 'NaN'),
    ([['a', 'b']], 'numbers'),
])
def test_bad_matrices_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        find_segments(bad)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match='max_segments'):
        find_segments(np.zeros((4, 4)), max_segments=0)
    with pytest.raises(ValueError, match='min_frames'):
        find_segments(np.zeros((4, 4)), min_frames=0)


def test_library_levels_are_each_frames_third_best_video():
    best = np.array([[0.9, 0.1], [0.5, 0.2], [0.3, 0.6], [0.2, 0.4]], dtype=np.float32)  # [videos, frames]
    np.testing.assert_allclose(localization.library_levels(best), [0.3, 0.2])
    np.testing.assert_allclose(localization.library_levels(best, rank=1), [0.9, 0.6])
    # Fewer videos than the rank: too few to tell a look-alike from a copy.
    assert localization.library_levels(best[:2]) is None
    assert localization.library_levels(np.zeros((0, 5))) is None


@pytest.mark.parametrize('bad, kwargs, message', [
    (np.zeros(4), {}, r'\[videos, frames\]'),
    (np.full((3, 2), np.nan), {}, 'finite'),
    (np.zeros((3, 2)), {'rank': 0}, 'rank'),
])
def test_bad_library_matches_are_named(bad, kwargs, message):
    with pytest.raises(ValueError, match=message):
        localization.library_levels(bad, **kwargs)


def test_a_look_alike_is_no_segment_against_the_library_and_a_copy_still_is():
    """Two lines of the same height in one pair: a look-alike whose frames reach as much
    in other videos of the library, and a copy that rises far above what they reach. The
    pair's own background cannot tell them apart; the library levels can."""
    sim = draw_line(draw_line(noise(60, 80), 5, 10, 15, value=0.55), 35, 50, 15, value=0.55)
    query_levels = np.full(60, 0.1, np.float32)
    query_levels[5:20] = 0.55        # the look-alike's query frames match as well elsewhere
    target_levels = np.full(80, 0.1, np.float32)
    alone = find_segments(sim)
    assert sorted(spans(s) for s in alone) == [(5, 20, 10, 25), (35, 50, 50, 65)]
    against = find_segments(sim, query_levels=query_levels, target_levels=target_levels)
    assert [spans(s) for s in against] == [(35, 50, 50, 65)]
    copy = next(s for s in alone if s.query_start == 35)
    assert against[0].score == pytest.approx(copy.score, rel=1e-6)  # far above the levels: as before
    # The target's levels count as well, and a cell counts against the higher of the two.
    target_levels[50:65] = 0.55
    assert find_segments(sim, query_levels=query_levels, target_levels=target_levels) == []
    assert find_segments(sim, target_levels=target_levels) == [s for s in alone if s.query_start == 5]


def test_bad_library_levels_are_named():
    sim = noise(10, 12)
    with pytest.raises(ValueError, match=r'query_levels must have one value per query frame \(10\)'):
        find_segments(sim, query_levels=np.zeros(12))
    with pytest.raises(ValueError, match=r'target_levels must have one value per target frame \(12\)'):
        find_segments(sim, target_levels=np.zeros((12, 1)))
    with pytest.raises(ValueError, match='target_levels must be finite'):
        find_segments(sim, target_levels=np.full(12, np.inf))
