"""The operator's memory stays flat in the video's length (fed an iterator, as a decoder
yields frames): the benchmark's own measurement, in fresh processes."""

import pytest

from support.probes import operator_memory as run

SHORT, LONG = 100, 400  # frames of 360x640; benchmarks/memory.py measures 300 to 3,600


@pytest.mark.slow
@pytest.mark.parametrize('compile', [False, True], ids=['eager', 'compiled'])
def test_operator_memory_is_flat_in_video_length(hub_dir, compile):
    short = run(SHORT, 'iterator', batch_size=32, compile=compile)
    long = run(LONG, 'iterator', batch_size=32, compile=compile)
    print(f"{SHORT} and {LONG} frames: peak RSS {short['peak_rss_mb']:.0f}, {long['peak_rss_mb']:.0f} MB; "
          f"peak anonymous memory {short['peak_anon_mb']:.0f}, {long['peak_anon_mb']:.0f} MB")
    # Peak RSS also counts shared-library pages mapped from the page cache: measured from
    # 1.5 to 2.4 GB for the same run, with the machine's state. The bounds hold what the
    # code allocates: the performance issue's 2 GB and 300 MB of growth (300 to 1,200
    # frames), where 300 more frames' features are 5 MB.
    assert long['peak_anon_mb'] < 2048
    assert long['peak_anon_mb'] - short['peak_anon_mb'] < 300
