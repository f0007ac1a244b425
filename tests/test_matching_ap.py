"""The Video Similarity Challenge matching track's micro-AP (localization/matching_ap.py),
on hand-computed cases."""
import importlib
import math

import pytest

from conftest import PACKAGE

matching_ap = importlib.import_module(f'{PACKAGE}.localization.matching_ap')
Segment = importlib.import_module(f'{PACKAGE}.localization').Segment
TRUTH = {('q', 'a'): [(0, 10, 100, 110)]}


def ap(predictions, truth=TRUTH):
    return matching_ap.matching_micro_ap(predictions, truth)


def test_an_exact_prediction_scores_one():
    assert ap({('q', 'a'): [Segment(0, 10, 100, 110, 0.9)]}) == pytest.approx(1.0)


def test_a_wrong_pair_ranked_first_costs_precision():
    # Rank 1: a pair with no truth (precision 0); rank 2: half the true segment on both
    # axes: precision sqrt(5/10 * 5/10) = 0.5, recall 0.5: AP 0.25.
    predictions = {('q', 'b'): [Segment(0, 5, 0, 5, 0.95)], ('q', 'a'): [Segment(0, 5, 100, 105, 0.9)]}
    assert ap(predictions) == pytest.approx(0.25)


def test_recall_is_the_geometric_mean_of_the_axes():
    # The whole query span, but a quarter of the target span: recall sqrt(1 * 0.25) = 0.5,
    # precision sqrt(1 * 1) = 1 (every predicted second lies in the truth).
    assert ap({('q', 'a'): [Segment(0, 10, 100, 102.5, 0.9)]}) == pytest.approx(0.5)


def test_a_box_overlapping_on_one_axis_only_earns_nothing():
    # Right query seconds, wrong target seconds: no overlap in both axes at once.
    assert ap({('q', 'a'): [Segment(0, 10, 200, 210, 0.9)]}) == 0.0


def test_predictions_of_equal_score_enter_together():
    # Together, one step: 20 s predicted on each axis, 10 of them right: precision 0.5,
    # recall 1.
    tied = {('q', 'a'): [Segment(0, 10, 100, 110, 0.5), Segment(20, 30, 0, 10, 0.5)]}
    assert ap(tied) == pytest.approx(0.5)
    # Ordered, the right one first: AP 1.
    ordered = {('q', 'a'): [Segment(0, 10, 100, 110, 0.6), Segment(20, 30, 0, 10, 0.5)]}
    assert ap(ordered) == pytest.approx(1.0)


def test_split_predictions_add_up_and_overlaps_count_once():
    halves = {('q', 'a'): [Segment(0, 5, 100, 105, 0.9), Segment(5, 10, 105, 110, 0.8),
                           Segment(0, 5, 100, 105, 0.7)]}
    # Rank 1: precision 1, recall 0.5; rank 2: precision 1, recall 1; rank 3 adds nothing.
    assert ap(halves) == pytest.approx(1.0)


def test_nothing_predicted_or_nothing_true():
    assert ap({}) == 0.0
    assert ap({('q', 'a'): [Segment(0, 10, 100, 110, 0.9)]}, truth={}) == 0.0
    assert not math.isnan(ap({('q', 'a'): [Segment(3, 3, 100, 100, 0.9)]}))
