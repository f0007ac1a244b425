"""The operator's memory stays flat in the video's length (fed an iterator, as a decoder
yields frames): the benchmark's own measurement, in fresh processes."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'benchmarks'))
from memory import run  # noqa: E402

SHORT, LONG = 100, 400  # frames of 360x640; benchmarks/memory.py measures 300 to 3,600


@pytest.mark.slow
def test_operator_memory_is_flat_in_video_length(hub_dir):
    short = run(SHORT, 'iterator', batch_size=32)
    long = run(LONG, 'iterator', batch_size=32)
    print(f"peak RSS: {SHORT} frames {short['peak_rss_mb']:.0f} MB, {LONG} frames {long['peak_rss_mb']:.0f} MB")
    assert long['peak_rss_mb'] < 2048
    # The performance issue's bound (300 to 1,200 frames within 300 MB); the features of
    # 300 more frames are only 5 MB, the rest is the allocator's and the transformer's.
    assert long['peak_rss_mb'] - short['peak_rss_mb'] < 300
