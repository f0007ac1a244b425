"""Decoding ahead of the network: the prefetching thread (order, errors, bounded memory,
early exit), the plain engine's batches across videos on real files (the same
representations as one video at a time, a failing file named and skipped, Ctrl-C losing
nothing committed) and the operator's encoder fed by VideoDecoder's generator."""
import importlib
import threading

import numpy as np
import pytest
import torch

from support.checkout import PACKAGE
from support.video_files import make_video, moving_scene

prefetch = importlib.import_module(f'{PACKAGE}.prefetch')
stages = importlib.import_module(f'{PACKAGE}.retrieval.ingestion.stages')
Prefetched = prefetch.Prefetched


def test_items_come_in_order():
    with Prefetched(range(100), depth=3) as items:
        assert list(items) == list(range(100))


def test_an_error_comes_after_the_items_made_before_it():
    def items():
        yield 1
        yield 2
        raise KeyError('third')
    got = []
    with pytest.raises(KeyError, match='third'):
        for item in Prefetched(items(), depth=2):
            got.append(item)
    assert got == [1, 2]


def test_the_producer_stays_at_most_depth_ahead():
    made = []
    consumed = []
    ahead = []

    def items():
        for i in range(50):
            made.append(i)
            yield i
    with Prefetched(items(), depth=2) as stream:
        for item in stream:
            # The queue holds at most 2, and one more may be in the producer's hands.
            ahead.append(len(made) - len(consumed))
            consumed.append(item)
    assert consumed == list(range(50)) and max(ahead) <= 2 + 1 + 1


def test_an_early_exit_stops_the_producer():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()
    stream = Prefetched(endless(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert closed.is_set() and not stream._thread.is_alive()


def test_bad_depth_is_named():
    with pytest.raises(ValueError, match='depth'):
        Prefetched([], depth=0)


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('overlap')
    paths = []
    for i, seconds in enumerate((7, 3, 5)):
        paths.append(str(make_video(folder / f'v{i}.mp4', moving_scene(seconds * 5, 96, 160, seed=i), fps=5)))
    broken = folder / 'broken.mp4'
    broken.write_bytes(b'not a video at all\n' * 10)
    return paths, str(broken)


@pytest.fixture(scope='module')
def dns_small_batches(hub_dir, dns):
    """Batches of 4: videos of 7, 3 and 5 sampled frames cross batch boundaries."""
    return dns.DnS('att', device='cpu', batch_size=4)


def _index(dns, tmp_path, files, tally=None):
    retrieval = importlib.import_module(f'{dns.__name__}.retrieval')
    ingest = importlib.import_module(f'{dns.__name__}.retrieval.ingestion.ingest')
    tally_module = importlib.import_module(f'{dns.__name__}.retrieval.ingestion.tally')

    class Recording(tally_module.IndexTally):
        failures = []

        def failed(self, message):
            super().failed(message)
            self.failures.append(message)
    index = retrieval.VideoIndex(tmp_path / 'index', create=True)
    tally = tally or Recording(len(files), progress=False)
    return index, ingest, tally


def test_batches_across_videos_give_each_video_its_own_representation(dns, dns_small_batches, videos, tmp_path):
    paths, broken = videos
    files = [paths[0], broken, paths[1], paths[0], paths[2]]  # a failing file, a duplicate
    index, ingest, tally = _index(dns, tmp_path, files)
    with index:
        ingest.index_files(index, files, dns_small_batches, tally)
        assert tally.counts['indexed'] == 3 and tally.counts['failed'] == 1
        # The duplicate is byte-identical to a file of this run: said so, not 'already indexed'.
        assert tally.counts['identical'] == 1 and tally.counts['skipped'] == 0
        assert 'byte-identical to a file indexed in this run' in tally.summary(3, 'att')
        assert any(broken in str(error) for error in tally.failures)
        for path in paths:
            alone = ingest.represent_file(path, dns_small_batches, index.settings.time_step)
            stored = index.representation(stages.file_sha256(path))
            np.testing.assert_allclose(stored.fine, alone.fine, atol=2e-3)  # stored as float16
            np.testing.assert_allclose(stored.coarse, alone.coarse, atol=1e-4)
            record = index.catalog.video(stages.file_sha256(path))
            assert (record.width, record.height) == (160, 96) and record.thumbnails > 0


def test_ctrl_c_keeps_what_was_committed(dns, dns_small_batches, videos, tmp_path):
    paths, _ = videos
    tally_module = importlib.import_module(f'{dns.__name__}.retrieval.ingestion.tally')

    class InterruptedAfterOne(tally_module.IndexTally):
        def done(self, path, result):
            super().done(path, result)
            raise KeyboardInterrupt
    index, ingest, tally = _index(dns, tmp_path, paths, InterruptedAfterOne(len(paths), progress=False))
    threads = threading.active_count()
    with index:
        with pytest.raises(KeyboardInterrupt):
            ingest.index_files(index, paths, dns_small_batches, tally)
        assert threading.active_count() == threads  # the decoding thread is gone
        assert len(index) == 1 and index.catalog.video(stages.file_sha256(paths[0])) is not None
    # Indexing again finishes the job.
    index, ingest, tally = _index(dns, tmp_path, paths)
    with index:
        ingest.index_files(index, paths, dns_small_batches, tally)
        assert len(index) == 3 and tally.counts['skipped'] == 1


def test_encoder_fed_by_the_decoder_generator(dns, dns_small_batches, videos):
    decode = importlib.import_module(f'{dns.__name__}.video_decode')
    decoder = decode.VideoDecoder(time_step=1)
    lazy = dns_small_batches.encoder(decoder(videos[0][0]))
    held = dns_small_batches.encoder(list(decoder(videos[0][0])))
    assert lazy.shape == (7, 9, 512)
    torch.testing.assert_close(lazy, held)
