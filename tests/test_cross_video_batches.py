"""Frames of many videos in full batches (retrieval/ray_engine/batching.py), and where
the Ray engine puts its model actors: pure functions, no Ray needed."""
import importlib

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from support.checkout import PACKAGE

batching = importlib.import_module(f'{PACKAGE}.retrieval.ray_engine.batching')
driver = importlib.import_module(f'{PACKAGE}.retrieval.ray_engine.driver')


@given(st.lists(st.integers(0, 40), max_size=12), st.integers(1, 33))
def test_batches_are_full_and_cover_every_frame_once(lengths, batch_size):
    batches = list(batching.batch_pieces(lengths, batch_size))
    sizes = [sum(stop - start for _, start, stop in pieces) for pieces in batches]
    assert all(size == batch_size for size in sizes[:-1])
    assert sum(sizes) == sum(lengths) and (not batches or 0 < sizes[-1] <= batch_size)
    # Pieces in order, contiguous, non-empty: each frame of each video exactly once.
    flat = [piece for pieces in batches for piece in pieces]
    assert all(start < stop for _, start, stop in flat)
    covered = [(video, frame) for video, start, stop in flat for frame in range(start, stop)]
    assert covered == [(video, frame) for video, length in enumerate(lengths) for frame in range(length)]


def test_eight_frame_videos_fill_batches_of_32():
    batches = list(batching.batch_pieces([8] * 9, 32))
    assert [len(pieces) for pieces in batches] == [4, 4, 1]
    assert batches[2] == [(8, 0, 8)]


@given(st.lists(st.integers(0, 20), min_size=1, max_size=8), st.integers(1, 16))
def test_outputs_come_back_per_video(lengths, batch_size):
    videos = [np.arange(n * 3, dtype=np.float32).reshape(n, 3) + 100 * i for i, n in enumerate(lengths)]
    calls = []

    def network(rows):
        calls.append(len(rows))
        return torch.from_numpy(rows).sum(dim=1, keepdim=True) * 2

    outputs = batching.run_across_videos(videos, batch_size, network)
    assert len(outputs) == len(videos)
    for video, out in zip(videos, outputs):
        if len(video):
            np.testing.assert_array_equal(out.numpy(), video.sum(axis=1, keepdims=True) * 2)
        else:
            assert len(out) == 0
    assert all(size == batch_size for size in calls[:-1])


def test_a_network_that_drops_rows_is_an_error():
    with pytest.raises(ValueError, match='returned 1 rows for a batch of 4'):
        batching.run_across_videos([np.zeros((4, 2))], 8, lambda rows: torch.zeros(1, 2))


@pytest.mark.parametrize('bad', [0, -1, 2.5])
def test_batch_size_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match='batch_size must be a positive integer'):
        list(batching.batch_pieces([3], bad))


def test_placement_one_actor_per_gpu_or_cpus_left_for_decoding():
    place = driver.placement
    assert place({'CPU': 64, 'GPU': 8}, {'device': None}) == driver.Placement(8, 1, 1)
    assert place({'CPU': 64, 'GPU': 8}, {'device': 'cuda'}, actors=2) == driver.Placement(2, 1, 1)
    # Models asked to run on the CPU of a GPU cluster: CPU actors.
    assert place({'CPU': 16, 'GPU': 2}, {'device': 'cpu'}) == driver.Placement(2, 4, 0)
    assert place({'CPU': 4}, {}) == driver.Placement(1, 2, 0)
    assert place({'CPU': 2}, {}) == driver.Placement(1, 1, 0)
    with pytest.raises(ValueError, match='at least 1'):
        place({'CPU': 4}, {}, actors=0)
