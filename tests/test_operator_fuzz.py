"""Random inputs to the operator's ``__call__``: the documented output or a ValueError,
never another exception (nor a hang)."""
import contextlib
import signal

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from towhee.types import VideoFrame

PER_EXAMPLE_S = 60
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
DTYPES = ['uint8', 'int16', 'float32', 'float64', 'bool']


@contextlib.contextmanager
def time_limit(seconds=PER_EXAMPLE_S):
    """Fail an example that runs longer than ``seconds`` (SIGALRM; main thread, POSIX)."""
    def on_alarm(signum, frame):
        raise TimeoutError(f'example ran longer than {seconds} s')
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def make_array(shape, dtype, seed, special=None):
    rng = np.random.default_rng(seed)
    if dtype == 'uint8':
        a = rng.integers(0, 256, shape, dtype=np.uint8)
    elif dtype == 'int16':
        a = rng.integers(-300, 300, shape).astype(np.int16)
    elif dtype == 'float32':
        a = rng.random(shape, dtype=np.float32)  # 0..1
    elif dtype == 'float64':
        a = rng.normal(0, 100, shape)
    else:
        a = rng.random(shape) > 0.5
    a = np.asarray(a)  # shape (): a 0-d array, not a numpy scalar
    if special is not None and a.size and a.dtype.kind == 'f':
        with np.errstate(over='ignore'):  # 1e300 in float32: Inf
            a.flat[rng.integers(0, a.size)] = special
    return a


# ---------------------------------------------------------------- frames

sides = st.integers(0, 40)
any_shape = st.lists(st.integers(0, 6), min_size=0, max_size=5).map(tuple)  # ndim 0..5
frame_shape = st.one_of(
    st.tuples(st.integers(1, 40), st.integers(1, 40), st.just(3)),           # valid
    st.tuples(sides, sides, st.sampled_from([0, 1, 2, 3, 4])),
    st.tuples(sides, sides),
    any_shape,
)
dtype = st.sampled_from(DTYPES)
valid_dtype = st.sampled_from(['uint8'] * 3 + DTYPES)  # mostly uint8: reach the model


@st.composite
def a_frame(draw):
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([None, 0, 1.5, 'frame', b'\x00', [], {}, [[1, 2, 3]]]))
    f = make_array(draw(frame_shape), draw(valid_dtype), draw(st.integers(0, 2 ** 16)))
    wrap = draw(st.sampled_from(['array', 'array', 'tensor', 'videoframe']))
    if wrap == 'tensor':
        return torch.from_numpy(f)
    if wrap == 'videoframe':
        return VideoFrame(f, draw(st.sampled_from(['RGB', 'BGR', 'RGBA', 'L', 'HSV'])))
    return f


@st.composite
def frame_input(draw):
    kind = draw(st.sampled_from(['list', 'list', 'same-size list', 'array', 'scalar']))
    if kind == 'list':  # mixed sizes, None, odd types, empty
        return draw(st.lists(a_frame(), min_size=0, max_size=3))
    if kind == 'same-size list':
        h, w, t = draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.integers(1, 3))
        return [make_array((h, w, 3), 'uint8', s) for s in range(t)]
    if kind == 'array':  # a [T, H, W, 3] array, or anything of ndim 0..5
        shape = draw(st.one_of(
            st.tuples(st.integers(0, 3), st.integers(1, 40), st.integers(1, 40), st.just(3)), any_shape))
        return make_array(shape, draw(valid_dtype), draw(st.integers(0, 2 ** 16)))
    return draw(st.sampled_from([None, 3, 'video.mp4', {'frames': []}, np.float32(1.0), iter([])]))


def n_frames(data):
    if isinstance(data, np.ndarray):
        return data.shape[0]
    return len(data)


def output_or_value_error(op, data):
    """The operator's output (a float32 array), or None after a ValueError with a
    message; any other exception, or a hang, fails the test."""
    with time_limit():
        try:
            out = op(data)
        except ValueError as e:
            assert str(e)
            return None
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    return out


@FUZZ
@given(data=frame_input())
def test_feature_extractor_fuzz(operators, data):
    out = output_or_value_error(operators('feature_extractor'), data)
    if out is not None:
        assert out.shape == (n_frames(data), 9, 512)


# ---------------------------------------------------------------- features

feature_shape = st.one_of(
    st.tuples(st.integers(0, 3), st.sampled_from([8, 9, 9, 10]), st.sampled_from([511, 512, 512, 513])),
    st.tuples(st.integers(0, 3), st.just(9 * 512)),
    any_shape,
)


@st.composite
def feature_input(draw):
    kind = draw(st.sampled_from(['array', 'array', 'array', 'tensor', 'other']))
    if kind == 'other':
        return draw(st.sampled_from([None, [], [[1.0]], 1.0, 'features', {'a': 1}, np.array('x'),
                                     np.zeros((2, 9, 512), np.complex64)]))
    special = draw(st.sampled_from([None, None, np.nan, np.inf, -np.inf, 1e30, 1e300]))
    a = make_array(draw(feature_shape), draw(dtype), draw(st.integers(0, 2 ** 16)), special)
    return torch.from_numpy(a) if kind == 'tensor' else a


@FUZZ
@given(data=feature_input())
def test_cg_student_features_fuzz(operators, data):
    out = output_or_value_error(operators('cg_student', feature_extractor=None), data)
    if out is None:
        return
    assert out.shape == (1024,)
    values = np.asarray(data, dtype=np.float64)
    assert values.ndim == 3 and values.shape[1:] == (9, 512) and np.isfinite(values.astype(np.float32)).all()


# ---------------------------------------------------------------- explicit cases

FRAME = np.zeros((32, 32, 3), np.uint8)


@pytest.mark.parametrize('data, parts', [
    ([], ['expected at least one video frame', 'got none']),
    ([FRAME, None, FRAME], ['frame 1 is None', 'expected an HxWx3 uint8 array']),
    ([np.full((32, 32, 3), 0.5, np.float32)], ['expected dtype uint8', 'got float32', 'multiply by 255']),
    ([np.zeros((32, 32, 3), np.int16)], ['expected dtype uint8', 'got int16']),
    (np.zeros((2, 32, 32), np.uint8), ['expected a [T, H, W, 3] array', 'got shape [2, 32, 32]']),
    ([np.zeros((32, 32, 4), np.uint8)], ['expects shape [H, W, 3]', 'got [32, 32, 4]']),
])
def test_bad_frames_name_expected_and_got(operators, data, parts):
    with pytest.raises(ValueError) as err:
        operators('feature_extractor')(data)
    for part in parts:
        assert part in str(err.value), (part, str(err.value))


def _with(value):
    a = np.zeros((2, 9, 512), np.float32)
    a[1, 4, 100] = value
    return a


@pytest.mark.parametrize('data, parts', [
    (_with(np.nan), ['features contain NaN or Inf']),
    (_with(np.inf), ['features contain NaN or Inf']),
    (_with(-np.inf), ['features contain NaN or Inf']),
    (np.zeros((2, 9, 511), np.float32), ['expected features of shape [T, 9, 512]', 'got [2, 9, 511]']),
    (np.zeros((9, 512), np.float32), ['expected features of shape [T, 9, 512]', 'got [9, 512]']),
    (np.zeros((0, 9, 512), np.float32), ['with T >= 1', 'got [0, 9, 512]']),
    (np.zeros((2, 9, 512), bool), ['expected features as a float array', 'got dtype bool']),
    ([[1.0]], ['expected features as a numpy array or torch tensor', 'got list']),
])
def test_bad_features_name_expected_and_got(operators, data, parts):
    for name in ('cg_student', 'fg_att_student'):
        with pytest.raises(ValueError) as err:
            operators(name, feature_extractor=None)(data)
        for part in parts:
            assert part in str(err.value), (name, part, str(err.value))


def test_operators_still_work_after_the_fuzzing(operators):
    frames = [np.random.default_rng(i).integers(0, 256, (24, 30, 3), dtype=np.uint8) for i in range(2)]
    feats = operators('feature_extractor')(frames)
    assert feats.shape == (2, 9, 512) and np.isfinite(feats).all()
    assert operators('cg_student', feature_extractor=None)(feats).shape == (1024,)
