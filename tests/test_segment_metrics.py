"""Segment-level precision and recall: hand-computed cases, the precision-recall curve
against a plain recomputation at every threshold, and bad input."""
import importlib
import math
from collections import namedtuple

import numpy as np
import pytest

from conftest import PACKAGE

localization = importlib.import_module(f'{PACKAGE}.localization')
Segment = localization.Segment
segment_scores = localization.segment_scores
precision_recall_curve = localization.precision_recall_curve
best_threshold = localization.best_threshold
ThresholdPoint = localization.ThresholdPoint

PAIR = ('q1', 't1')
OTHER = ('q1', 't2')


def seg(qs, qe, ts, te, score=1.0):
    return Segment(qs, qe, ts, te, score)


def check(scores, precision, recall, f1=None, axes=None):
    assert scores.precision == pytest.approx(precision)
    assert scores.recall == pytest.approx(recall)
    if f1 is None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    assert scores.f1 == pytest.approx(f1)
    if axes is not None:
        assert (scores.query_precision, scores.query_recall, scores.target_precision, scores.target_recall) \
            == pytest.approx(axes)


def test_perfect_prediction():
    truth = {PAIR: [(0.0, 10.0, 5.0, 15.0)]}
    check(segment_scores({PAIR: [seg(0, 10, 5, 15)]}, truth), 1, 1, 1, axes=(1, 1, 1, 1))


def test_half_overlap_on_both_axes():
    truth = {PAIR: [(0.0, 10.0, 5.0, 15.0)]}
    # Query [5, 15) meets [0, 10) for 5 s; target [10, 20) meets [5, 15) for 5 s.
    check(segment_scores({PAIR: [seg(5, 15, 10, 20)]}, truth), 0.25, 0.25, 0.25, axes=(0.5, 0.5, 0.5, 0.5))


def test_a_prediction_inside_the_truth_is_precise_but_incomplete():
    truth = {PAIR: [(0.0, 10.0, 5.0, 15.0)]}
    check(segment_scores({PAIR: [seg(0, 5, 5, 10)]}, truth), 1, 0.25, 0.4, axes=(1, 0.5, 1, 0.5))


def test_a_prediction_on_the_wrong_pair_is_all_wrong():
    truth = {PAIR: [(0.0, 10.0, 0.0, 10.0)]}
    check(segment_scores({OTHER: [seg(0, 10, 0, 10)]}, truth), 0, 0, 0, axes=(0, 0, 0, 0))
    # Beside a right one it halves each axis' precision.
    both = {PAIR: [seg(0, 10, 0, 10)], OTHER: [seg(0, 10, 0, 10)]}
    check(segment_scores(both, truth), 0.25, 1, 0.4, axes=(0.5, 1, 0.5, 1))


def test_overlapping_predictions_count_once():
    truth = {PAIR: [(0.0, 10.0, 0.0, 10.0)]}
    check(segment_scores({PAIR: [seg(0, 6, 0, 6), seg(4, 10, 4, 10)]}, truth), 1, 1, 1)
    check(segment_scores({PAIR: [seg(0, 10, 0, 10)] * 3}, truth), 1, 1, 1)
    # The union [0, 15) holds 10 true seconds of 15.
    check(segment_scores({PAIR: [seg(0, 10, 0, 10), seg(5, 15, 5, 15)]}, truth), 4 / 9, 1,
          axes=(2 / 3, 1, 2 / 3, 1))


def test_two_true_segments_in_one_pair():
    truth = {PAIR: [(0.0, 10.0, 20.0, 30.0), (50.0, 60.0, 0.0, 10.0)]}
    check(segment_scores({PAIR: [seg(0, 10, 20, 30)]}, truth), 1, 0.25, 0.4, axes=(1, 0.5, 1, 0.5))
    check(segment_scores({PAIR: [seg(0, 10, 20, 30), seg(50, 60, 0, 10)]}, truth), 1, 1, 1)


def test_overlapping_true_segments_count_once():
    truth = {PAIR: [(0.0, 10.0, 0.0, 10.0), (5.0, 15.0, 5.0, 15.0)]}
    check(segment_scores({PAIR: [seg(0, 15, 0, 15)]}, truth), 1, 1, 1)


def test_pairs_are_micro_averaged():
    # 90 true seconds found, 10 missed elsewhere: recall 0.9 on each axis.
    truth = {PAIR: [(0.0, 90.0, 0.0, 90.0)], OTHER: [(0.0, 10.0, 0.0, 10.0)]}
    check(segment_scores({PAIR: [seg(0, 90, 0, 90)]}, truth), 1, 0.81, axes=(1, 0.9, 1, 0.9))


def test_empty_predictions():
    truth = {PAIR: [(0.0, 10.0, 0.0, 10.0)]}
    # Nothing predicted: no predicted second is wrong, none of the true ones is found.
    check(segment_scores({}, truth), 1, 0, 0, axes=(1, 0, 1, 0))
    check(segment_scores({PAIR: []}, truth), 1, 0, 0)
    # Nothing true: nothing to miss; any prediction is wrong.
    check(segment_scores({}, {}), 1, 1, 1)
    check(segment_scores({PAIR: [seg(0, 1, 0, 1)]}, {}), 0, 1, 0)
    check(segment_scores({PAIR: [seg(0, 1, 0, 1)]}, {PAIR: []}), 0, 1, 0)


def test_threshold_leaves_out_lower_scores():
    truth = {PAIR: [(0.0, 10.0, 0.0, 10.0)]}
    predictions = {PAIR: [seg(0, 10, 0, 10, score=0.9), seg(20, 30, 20, 30, score=0.4)]}
    check(segment_scores(predictions, truth), 0.25, 1)
    check(segment_scores(predictions, truth, threshold=0.5), 1, 1)
    check(segment_scores(predictions, truth, threshold=0.4), 0.25, 1)    # at least the threshold
    check(segment_scores(predictions, truth, threshold=0.95), 1, 0)


def small_example():
    truth = {PAIR: [(0.0, 10.0, 0.0, 10.0)]}
    predictions = {
        PAIR: [seg(0, 5, 0, 5, 0.9), seg(20, 30, 20, 30, 0.8), seg(5, 10, 5, 10, 0.7), seg(6, 8, 6, 8, 0.7)],
        OTHER: [seg(40, 50, 40, 50, 0.5)],
    }
    return predictions, truth


def test_curve_on_a_small_example():
    curve = precision_recall_curve(*small_example())
    assert [point.threshold for point in curve] == [0.9, 0.8, 0.7, 0.5]
    # Per axis (overlap, predicted): 0.9: (5, 5); 0.8: (5, 15); 0.7: (10, 20); 0.5: (10, 30)
    # of 10 true seconds; precision and recall square the axis values.
    expected = [(1, 0.25), (1 / 9, 0.25), (0.25, 1), (1 / 9, 1)]
    for point, (precision, recall) in zip(curve, expected):
        assert isinstance(point, ThresholdPoint)
        assert (point.precision, point.recall) == pytest.approx((precision, recall))
        assert point.f1 == pytest.approx(2 * precision * recall / (precision + recall))


def test_best_threshold_takes_the_higher_of_equal_f1():
    best = best_threshold(*small_example())
    # F1 is 0.4 at 0.9 (precise, half found) and at 0.7 (all found, half precise).
    assert best.threshold == 0.9
    assert best.f1 == pytest.approx(0.4)


def test_best_threshold_without_predictions_is_a_value_error():
    with pytest.raises(ValueError, match='no predicted segments'):
        best_threshold({PAIR: []}, {PAIR: [(0.0, 1.0, 0.0, 1.0)]})
    assert precision_recall_curve({}, {PAIR: [(0.0, 1.0, 0.0, 1.0)]}) == []


def test_curve_matches_scores_recomputed_at_each_threshold():
    predictions, truth = random_example(np.random.default_rng(0), pairs=6, true_per_pair=3, predicted=400)
    curve = precision_recall_curve(predictions, truth)
    scores = sorted({s.score for segments in predictions.values() for s in segments}, reverse=True)
    assert [point.threshold for point in curve] == scores
    for point in curve[::7] + curve[-1:]:
        expected = naive_scores(predictions, truth, point.threshold)
        assert (point.precision, point.recall) == pytest.approx(expected, abs=1e-9)
        direct = segment_scores(predictions, truth, threshold=point.threshold)
        assert (direct.precision, direct.recall, direct.f1) == (point.precision, point.recall, point.f1)


def test_a_large_curve():
    # Thousands of segments over many pairs: the curve's last point is all predictions.
    predictions, truth = random_example(np.random.default_rng(1), pairs=300, true_per_pair=2, predicted=5000)
    curve = precision_recall_curve(predictions, truth)
    assert len(curve) == 5000
    last = curve[-1]
    assert (last.precision, last.recall) == pytest.approx(naive_scores(predictions, truth, -math.inf), abs=1e-9)
    recalls = [point.recall for point in curve]
    assert all(a <= b + 1e-12 for a, b in zip(recalls, recalls[1:]))    # recall only grows


def random_example(rng, pairs, true_per_pair, predicted):
    truth = {}
    for p in range(pairs):
        rows = []
        for _ in range(true_per_pair):
            qs, ts = rng.uniform(0, 300, 2)
            length = rng.uniform(5, 60)
            rows.append((qs, qs + length, ts, ts + length * rng.uniform(0.8, 1.25)))
        truth[(f'q{p}', f't{p}')] = rows
    predictions = {}
    keys = list(truth) + [(f'q{p}', 'unrelated') for p in range(pairs // 3 + 1)]
    for i in range(predicted):
        key = keys[rng.integers(len(keys))]
        if key in truth and rng.uniform() < 0.7:
            qs, qe, ts, te = truth[key][rng.integers(true_per_pair)]
            jitter = rng.normal(0, 5, 4)
            qs, qe, ts, te = qs + jitter[0], max(qs + jitter[0], qe + jitter[1]), ts + jitter[2], \
                max(ts + jitter[2], te + jitter[3])
        else:
            qs, ts = rng.uniform(0, 300, 2)
            qe, te = qs + rng.uniform(0, 40), ts + rng.uniform(0, 40)
        predictions.setdefault(key, []).append(Segment(qs, qe, ts, te, float(rng.uniform()) + i * 1e-9))
    return predictions, truth


def naive_scores(predictions, truth, threshold):
    """Precision and recall by the definition, with no incremental bookkeeping."""
    overlap, predicted, true = np.zeros(2), np.zeros(2), np.zeros(2)
    for pair in set(predictions) | set(truth):
        kept = [s for s in predictions.get(pair, []) if s.score >= threshold]
        for axis in range(2):
            mine = union([(s.query_start, s.query_end) if axis == 0 else (s.target_start, s.target_end)
                          for s in kept])
            theirs = union([(row[0], row[1]) if axis == 0 else (row[2], row[3]) for row in truth.get(pair, [])])
            predicted[axis] += sum(e - s for s, e in mine)
            true[axis] += sum(e - s for s, e in theirs)
            overlap[axis] += sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in mine for s2, e2 in theirs)
    precision = np.prod([o / p if p else 1.0 for o, p in zip(overlap, predicted)])
    recall = np.prod([o / t if t else 1.0 for o, t in zip(overlap, true)])
    return precision, recall


def union(intervals):
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        elif end > start:
            merged.append([start, end])
    return merged


def test_segments_of_another_class_with_the_same_fields_are_accepted():
    Match = namedtuple('Match', 'query_start query_end target_start target_end score')
    truth = {PAIR: [(0.0, 10.0, 0.0, 10.0)]}
    check(segment_scores({PAIR: [Match(0.0, 10.0, 0.0, 10.0, 0.5)]}, truth), 1, 1, 1)


@pytest.mark.parametrize('predictions, truth, message', [
    ([], {}, 'predictions must be a dict'),
    ({}, [], 'truth must be a dict'),
    ({'q1': [seg(0, 1, 0, 1)]}, {}, 'keys'),
    ({}, {('q1', 't1', 'x'): []}, 'keys'),
    ({PAIR: [(0, 1, 0, 1, 1.0)]}, {}, 'expected Segments'),
    ({PAIR: seg(0, 1, 0, 1)}, {}, 'list of segments'),
    ({}, {PAIR: [(0.0, 1.0, 0.0)]}, r'\(qs, qe, ts, te\)'),
    ({}, {PAIR: [(2.0, 1.0, 0.0, 1.0)]}, 'end is before'),
    ({}, {PAIR: [(0.0, float('nan'), 0.0, 1.0)]}, 'finite'),
    ({}, {PAIR: ['abcd']}, r'\(qs, qe, ts, te\)'),
])
def test_bad_input_is_a_value_error(predictions, truth, message):
    with pytest.raises(ValueError, match=message):
        segment_scores(predictions, truth)


def test_a_nan_threshold_is_a_value_error():
    with pytest.raises(ValueError, match='threshold'):
        segment_scores({}, {}, threshold=float('nan'))


def test_copy_contrast_and_its_ceiling():
    """The benchmark's measure of what the similarities allow: a piece well above the
    best matches of its frames elsewhere counts, a piece below them (a picture in
    picture the features miss) does not, and the oracle on the first alone scores it."""
    from dataclasses import replace
    from pathlib import Path

    from support.corpus import Insertion, PartialCorpus
    from support.segment_scoring import contrast_ceiling, copy_contrast

    a, b, x, y = (Path(f'/corpus/{name}.mp4') for name in ('a', 'b', 'x', 'y'))
    corpus = PartialCorpus(Path('/corpus'), sources=[a, b], hosts=[x, y], insertions=[
        Insertion(a, x, 'plain', 2.0, 5.0, 4.0, 7.0),
        Insertion(b, x, 'pip', 0.0, 3.0, 10.0, 13.0)])
    rng = np.random.default_rng(0)
    matrices = {(str(s), str(h)): rng.uniform(0.0, 0.1, (12, 14)).astype(np.float32)
                for s in (a, b) for h in (x, y)}
    for i in range(3):
        matrices[(str(a), str(x))][2 + i, 4 + i] = 0.8
        matrices[(str(b), str(x))][i, 10 + i] = 0.2   # the copy, weak
        matrices[(str(b), str(y))][i, 5] = 0.3        # a look-alike of its frames
    plain, pip = copy_contrast(corpus, matrices)
    assert plain.kind == 'plain' and plain.copy == pytest.approx(0.8) and plain.look_alike < 0.1
    assert pip.kind == 'pip' and pip.copy == pytest.approx(0.2) and pip.look_alike == pytest.approx(0.3)
    ceiling = contrast_ceiling(corpus, [plain, pip])
    assert ceiling.precision == pytest.approx(1.0)
    assert ceiling.recall == pytest.approx(0.5 * 0.5)  # half of each axis's true seconds
    assert contrast_ceiling(corpus, [plain, replace(pip, copy=0.5)]).recall == pytest.approx(1.0)
