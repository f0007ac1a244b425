"""Every entry of golden.npz (the original implementation's outputs on deterministic
weights) against the operator's public API, within the reference tolerances."""
import numpy as np
import pytest

VIDEOS = 'ABC'
FLOAT_TOL = {'A': 2e-4, 'B': 2e-4, 'C': 1e-3}
SIM_TOL = {'fg_att_student': 1e-4, 'fg_bin_student': 2e-3, 'cg_student': 1e-4}


@pytest.mark.parametrize('video', VIDEOS)
def test_feature_extractor(operators, golden, video):
    out = operators('feature_extractor')(golden[f'frames_{video}'])
    assert out.dtype == np.float32 and out.shape == golden[f'feature_extractor_{video}'].shape
    assert np.abs(out - golden[f'feature_extractor_{video}']).max() <= FLOAT_TOL[video]


@pytest.mark.parametrize('video', VIDEOS)
@pytest.mark.parametrize('model', ['fg_att_student', 'cg_student', 'selector_att', 'selector_bin'])
def test_float_networks_from_frames(operators, golden, model, video):
    out = operators(model)(list(golden[f'frames_{video}']))
    expected = golden[f'{model}_{video}']
    assert out.dtype == np.float32 and out.shape == expected.shape
    assert np.abs(out - expected).max() <= FLOAT_TOL[video]


@pytest.mark.parametrize('video', VIDEOS)
def test_fg_bin_signs(operators, golden, video):
    out = operators('fg_bin_student')(golden[f'frames_{video}'])
    assert out.shape == golden[f'fg_bin_student_{video}'].shape
    assert (out == golden[f'fg_bin_student_{video}']).mean() >= 0.999


@pytest.mark.parametrize('model', ['fg_att_student', 'fg_bin_student', 'cg_student', 'selector_att', 'selector_bin'])
@pytest.mark.parametrize('video', VIDEOS)
def test_index_from_reference_features(operators, golden, model, video):
    op = operators(model, feature_extractor=None)
    out = op(golden[f'feature_extractor_{video}'])
    expected = golden[f'{model}_{video}']
    if model == 'fg_bin_student':
        assert (out == expected).mean() >= 0.999
    else:
        assert np.abs(out - expected).max() <= 2e-4


@pytest.mark.parametrize('student', ['fg_att_student', 'fg_bin_student', 'cg_student'])
@pytest.mark.parametrize('pair', ['AB', 'BA', 'AA', 'AC'])
def test_similarity(operators, golden, student, pair):
    op = operators(student, feature_extractor=None)
    query, target = (golden[f'{student}_{v}'] for v in pair)
    sim = op.similarity(query, target)
    assert isinstance(sim, float)
    assert abs(sim - golden[f'sim_{student}_{pair}']) <= SIM_TOL[student]


@pytest.mark.parametrize('student', ['fg_att_student', 'fg_bin_student', 'cg_student'])
def test_many_targets_equal_each_pair_alone(operators, golden, student):
    """Targets of different lengths in one call: each value equals the pair alone."""
    op = operators(student, feature_extractor=None)
    targets = [golden[f'{student}_{v}'] for v in 'BACB']
    sims = op.similarity(golden[f'{student}_A'], targets)
    assert sims.shape == (4,)
    for target, sim in zip(targets, sims):
        assert sim == pytest.approx(op.similarity(golden[f'{student}_A'], target), abs=1e-6)
    for sim, v in zip(sims, 'BACB'):
        assert abs(sim - golden[f'sim_{student}_A{v}']) <= SIM_TOL[student]


@pytest.mark.parametrize('selector', ['selector_att', 'selector_bin'])
@pytest.mark.parametrize('pair', ['AB', 'AC'])
def test_selector_score(operators, golden, selector, pair):
    op = operators(selector, feature_extractor=None)
    q, t = pair
    score = op.score(golden[f'{selector}_{q}'], golden[f'{selector}_{t}'], golden[f'sim_cg_student_{pair}'])
    assert isinstance(score, float) and 0 < score < 1
    assert abs(score - golden[f'score_{selector}_{pair}']) <= 1e-4


def test_selector_scores_many_targets(operators, golden):
    op = operators('selector_att', feature_extractor=None)
    scores = op.score(golden['selector_att_A'], [golden['selector_att_B'], golden['selector_att_C']],
                      [golden['sim_cg_student_AB'], golden['sim_cg_student_AC']])
    np.testing.assert_allclose(scores, [golden['score_selector_att_AB'], golden['score_selector_att_AC']], atol=1e-4)
