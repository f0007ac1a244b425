"""Frames of many videos in full batches (retrieval/ingestion/stages.py, which both engines use),
and where the Ray engine puts its model actors: no Ray needed."""
import importlib

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from support.checkout import PACKAGE

stages = importlib.import_module(f'{PACKAGE}.retrieval.ingestion.stages')
driver = importlib.import_module(f'{PACKAGE}.retrieval.ingestion.ray_engine.driver')


def _videos(lengths):
    """Video i's frame k is the row [i, k]: where every row went is visible."""
    return [torch.tensor([[i, k] for k in range(n)], dtype=torch.float32).reshape(n, 2) for i, n in enumerate(lengths)]


@given(st.lists(st.integers(0, 40), max_size=12), st.integers(1, 33))
def test_batches_are_full_and_cover_every_frame_once_in_order(lengths, batch_size):
    calls = []

    def network(rows):
        calls.append(rows.clone())
        return rows * 2
    outputs = stages.run_across_videos(_videos(lengths), batch_size, network)
    sizes = [len(rows) for rows in calls]
    assert all(size == batch_size for size in sizes[:-1])
    assert sum(sizes) == sum(lengths) and (not calls or 0 < sizes[-1] <= batch_size)
    seen = [tuple(int(v) for v in row) for rows in calls for row in rows]
    assert seen == [(i, k) for i, n in enumerate(lengths) for k in range(n)]
    for video, out in zip(_videos(lengths), outputs):
        got = torch.cat(out) if out else torch.empty(0, 2)
        torch.testing.assert_close(got, video * 2)


def test_eight_frame_videos_fill_batches_of_32():
    calls = []
    stages.run_across_videos(_videos([8] * 9), 32, lambda rows: calls.append(len(rows)) or rows)
    assert calls == [32, 32, 8]


def test_frames_added_as_they_are_decoded_and_a_failed_video_dropped():
    calls = []
    batches = stages.CrossVideoBatches(lambda rows: calls.append(len(rows)) or rows, 4)
    a, b, c = _videos([3, 5, 2])
    batches.add('a', a[:2])
    assert calls == [] and batches.waiting('a') == 2
    batches.add('b', b[:3])    # 5 queued: one batch of 4 (a's 2, b's first 2) runs
    assert calls == [4] and batches.waiting('a') == 0 and batches.waiting('b') == 1
    batches.add('c', c)
    batches.drop('b')          # b's file failed: its queued frame leaves, c's two wait
    assert batches.waiting('b') == 0 and batches.waiting('c') == 2
    batches.add('a', a[2:])
    batches.flush()
    assert calls == [4, 3]
    torch.testing.assert_close(torch.cat(batches.take('a')), a)
    torch.testing.assert_close(torch.cat(batches.take('c')), c)
    assert batches.take('b') == []


def test_a_network_that_drops_rows_is_an_error():
    with pytest.raises(ValueError, match='returned 1 rows for a batch of 4'):
        stages.run_across_videos([torch.zeros(4, 2)], 8, lambda rows: torch.zeros(1, 2))


@pytest.mark.parametrize('bad', [0, -1, 2.5, True])
def test_batch_size_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match='batch_size must be a positive integer'):
        stages.CrossVideoBatches(lambda rows: rows, bad)


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
