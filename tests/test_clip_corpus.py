"""The clip-search corpus (tests/support/clip_corpus.py): real files, frame-exact truth."""
import numpy as np
import pytest

from support.clip_corpus import CLIP_EDITS, make_clip_corpus
from support.corpus import logo_box, read_frames


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    return make_clip_corpus(tmp_path_factory.mktemp('clips'), hosts=2, copies=len(CLIP_EDITS), negatives=1,
                            host_seconds=30, fps=2, size=(90, 160), seed=3)


def test_queries_copy_the_host_span_the_truth_names(corpus):
    assert [q.edit for q in corpus.copies] == list(CLIP_EDITS) and len(corpus.negatives) == 1
    for q in corpus.copies:
        host = read_frames(q.host)
        query = read_frames(q.path).astype(np.float32)
        assert len(host) == 30 * corpus.fps
        span = host[int(round(q.host_start * corpus.fps)):int(round(q.host_end * corpus.fps))].astype(np.float32)
        assert 4 <= q.host_end - q.host_start <= 20 and q.seconds == len(query) / corpus.fps
        if q.edit == 'speed':
            assert 0.8 <= q.speed <= 1.25 and len(query) == len(np.arange(0, len(span), q.speed))
            continue
        assert len(query) == len(span)
        if q.edit == 'logo':
            top, left, lh, lw = logo_box(*query.shape[1:3])
            query[:, top:top + lh, left:left + lw] = span[:, top:top + lh, left:left + lw]
        if q.edit == 'brightness':
            query -= 45
        if q.edit != 'crop':
            # The same frames, through one or two H.264 generations.
            assert np.abs(query - span).mean() < 12, q.edit
        # An unrelated stretch of the host differs far more.
        other = host[:len(query)].astype(np.float32)
        if q.host_start >= q.seconds:
            assert np.abs(query - other).mean() > np.abs(query - span).mean()


def test_the_truth_file_reads_back(corpus, tmp_path):
    import json
    path = corpus.write_ground_truth(corpus.folder / 'gt.json')
    data = json.loads(path.read_text())
    assert len(data) == len(corpus.copies)
    assert all(len(targets) == 1 for targets in data.values())


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match='longer than the longest clip'):
        make_clip_corpus(tmp_path, hosts=1, host_seconds=10)
    with pytest.raises(ValueError, match='even sizes'):
        make_clip_corpus(tmp_path, hosts=1, size=(91, 160))


def test_a_shared_piece_sits_in_its_second_host_too(tmp_path):
    corpus = make_clip_corpus(tmp_path, hosts=2, copies=1, negatives=0, host_seconds=30, seed=4, shared=1)
    q = corpus.copies[0]
    (other, start, end), = q.also
    assert other != q.host and set(q.truth()) == {str(q.host), str(other)}
    fps = corpus.fps
    first = read_frames(q.host)[int(round(q.host_start * fps)):int(round(q.host_end * fps))].astype(np.float32)
    second = read_frames(other)[int(round(start * fps)):int(round(end * fps))].astype(np.float32)
    assert len(first) == len(second) and np.abs(first - second).mean() < 12
    assert corpus.ground_truth()[str(q.path)] == q.truth()
