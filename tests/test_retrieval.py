"""DnS end to end through the retrieval API: a corpus of real encoded videos and their
copies indexed into a real Milvus Lite database, searched, deduplicated, evaluated."""
import importlib
import logging

import numpy as np
import pytest

from conftest import PACKAGE
from support.corpus import make_corpus
from support.video_files import make_video, moving_scene

retrieval = importlib.import_module(f'{PACKAGE}.retrieval')
core = importlib.import_module(f'{PACKAGE}.core')
DnS = importlib.import_module(PACKAGE).DnS
add_file = retrieval.add_file
fine_store = importlib.import_module(f'{PACKAGE}.retrieval.storage.fine_store')
VideoIndex = retrieval.VideoIndex
EASY_COPIES = {'exact', 'reencoded'}


@pytest.fixture(scope='session')
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp('corpus'))


@pytest.fixture(scope='session')
def att_index(hub_dir, corpus, tmp_path_factory):
    index = VideoIndex(tmp_path_factory.mktemp('indexes') / 'att', create=True, fine='att')
    models = DnS(index.settings.fine, device='cpu')
    for path in corpus.all_videos():
        add_file(index, str(path), models)
    yield index, models
    index.close()


def ranking(index, models, original, rerank):
    query = index.representation(index.video_id_of(original))
    return retrieval.search(index, models, query, k=None, rerank=rerank, candidates=None,
                            exclude_paths=[str(original)])


def assert_easy_copies_first(matches, corpus, original):
    """The exact copy ties with the query itself at the top; the re-encoded copy ranks
    above every video that is not a copy of the original."""
    paths = [m.path for m in matches]
    copies = {str(p) for p in corpus.copies[original].values()}
    first_other = next(i for i, p in enumerate(paths) if p not in copies)
    assert paths[0] == str(corpus.copies[original]['exact']), paths
    assert paths.index(str(corpus.copies[original]['reencoded'])) < first_other, paths


# With the deterministic test weights the cg student separates copies well and the fg
# student hardly at all (every similarity 0.097 +- 0.0003): the default fraction, where
# the selector sends few pairs to the fg student, still ranks the easy copies first.
@pytest.mark.parametrize('rerank', [0.0, 0.1])
def test_exact_and_reencoded_copies_come_first(att_index, corpus, rerank):
    index, models = att_index
    for original in corpus.originals:
        assert_easy_copies_first(ranking(index, models, original, rerank), corpus, original)


def test_every_video_is_ranked_once_with_consistent_scores(att_index, corpus):
    index, models = att_index
    original = corpus.originals[0]
    matches = ranking(index, models, original, rerank=0.25)
    assert len(matches) == len(corpus.all_videos()) - 1
    assert len({m.path for m in matches}) == len(matches)
    assert [m.rank for m in matches] == list(range(1, len(matches) + 1))
    assert all(a.score >= b.score for a, b in zip(matches, matches[1:]))
    reranked = [m for m in matches if m.fine_similarity is not None]
    # 25% of the distinct contents (the exact copy shares the original's): ceil(0.25 * n).
    contents = len({m.video_id for m in matches} | {index.video_id_of(original)})
    assert len({m.video_id for m in reranked}) == int(np.ceil(0.25 * contents))
    for m in matches:
        expected = m.coarse_similarity if m.fine_similarity is None else m.fine_similarity / 2 + 0.5
        assert m.score == pytest.approx(expected, abs=1e-6)
        assert 0 < m.selector_score < 1


def test_reranking_uses_the_selectors_choice(att_index, corpus):
    index, models = att_index
    matches = ranking(index, models, corpus.originals[1], rerank=0.1)
    chosen = {m.video_id for m in matches if m.fine_similarity is not None}
    best = sorted({(m.selector_score, m.video_id) for m in matches}, reverse=True)
    assert chosen == {video_id for _, video_id in best[:len(chosen)]}


def test_search_values_are_the_operators(att_index, corpus):
    index, models = att_index
    original = corpus.originals[0]
    query = index.representation(index.video_id_of(original))
    target = index.representation(index.video_id_of(corpus.copies[original]['flipped']))
    match = next(m for m in ranking(index, models, original, 1.0)
                 if m.path == str(corpus.copies[original]['flipped']))
    assert match.coarse_similarity == pytest.approx(float(query.coarse @ target.coarse), abs=1e-5)
    assert match.fine_similarity == pytest.approx(core.fine_similarity(models.fine_student, query.fine, target.fine), abs=1e-6)
    assert match.selector_score == pytest.approx(
        core.selector_scores(models.selector, query.selector, target.selector, match.coarse_similarity), abs=1e-6)


def test_same_content_is_indexed_once_and_skipped_after(att_index, corpus):
    index, models = att_index
    original = corpus.originals[0]
    exact = corpus.copies[original]['exact']
    assert index.video_id_of(exact) == index.video_id_of(original)
    assert len(index) == len(corpus.all_videos()) - len(corpus.originals)  # exact copies share content
    before = len(index)
    result = add_file(index, str(original), models)
    assert (result.status, len(index)) == ('skipped', before)


def test_fine_storage(att_index, corpus):
    index, models = att_index
    representation = index.representation(index.video_id_of(corpus.originals[0]))
    codes = np.sign(np.random.default_rng(0).standard_normal((5, 9, 512))).astype(np.float32)
    data = fine_store.encode(codes, 'bits')
    assert len(data) == 5 * 9 * 512 // 8
    np.testing.assert_array_equal(fine_store.decode(data, 5, 'bits'), codes)
    fine32 = fine_store.decode(fine_store.encode(representation.fine, 'float32'), representation.frames, 'float32')
    fine16 = fine_store.decode(fine_store.encode(fine32, 'float16'), representation.frames, 'float16')
    targets = [index.representation(index.video_id_of(p)).fine for p in corpus.all_videos()[:8]]
    s32 = core.fine_similarity(models.fine_student, fine32, targets)
    s16 = core.fine_similarity(models.fine_student, fine16,
                               [fine_store.decode(fine_store.encode(t, 'float16'), len(t), 'float16') for t in targets])
    assert np.abs(s32 - s16).max() < 1e-3


def small_index(tmp_path, videos, **settings):
    index = VideoIndex(tmp_path / 'index', create=True, **settings)
    models = DnS(index.settings.fine, device='cpu')
    for path in videos:
        add_file(index, str(path), models)
    return index, models


def test_corrupt_fine_file_is_detected_reported_and_reindexed(hub_dir, corpus, tmp_path, caplog):
    original = corpus.originals[0]
    videos = [original, corpus.copies[original]['reencoded'], corpus.unrelated[0]]
    index, models = small_index(tmp_path, videos)
    damaged = index.video_id_of(videos[1])
    path = index.fine_store.path(damaged)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(retrieval.CorruptFeaturesError, match='sha256'):
        index.representation(damaged)
    query = index.representation(index.video_id_of(original))
    with caplog.at_level(logging.WARNING):
        matches = retrieval.search(index, models, query, k=None, rerank=1.0)
    assert str(path) in caplog.text and 'index the video again' in caplog.text
    hit = next(m for m in matches if m.video_id == damaged)
    assert hit.fine_similarity is None and hit.score == hit.coarse_similarity
    path.write_bytes(b'')  # truncated
    assert add_file(index, str(videos[1]), models).status == 'indexed'
    assert index.representation(damaged).frames > 0
    index.close()


def test_settings_are_recorded_and_checked(hub_dir, corpus, tmp_path):
    index, _ = small_index(tmp_path, corpus.unrelated[:1], fine='bin', time_step=2.0)
    index.close()
    with VideoIndex(tmp_path / 'index') as reopened:
        assert (reopened.settings.fine, reopened.settings.fine_dtype, reopened.settings.time_step) == ('bin', 'bits', 2.0)
        assert len(reopened) == 1
    with pytest.raises(retrieval.IndexSettingsError, match="fine = 'bin', not 'att'"):
        VideoIndex(tmp_path / 'index', fine='att')
    with pytest.raises(retrieval.IndexSettingsError, match='no index in'):
        VideoIndex(tmp_path / 'elsewhere')
    with pytest.raises(retrieval.IndexSettingsError, match='stored as'):
        VideoIndex(tmp_path / 'new', create=True, fine='bin', fine_dtype='float16')


def test_a_file_replaced_by_another_video_is_reindexed(hub_dir, tmp_path):
    path = make_video(tmp_path / 'clip.mp4', moving_scene(8, 64, 64, seed=11), fps=2)
    other = make_video(tmp_path / 'other.mp4', moving_scene(8, 64, 64, seed=12), fps=2)
    index, models = small_index(tmp_path, [path, other])
    old = index.video_id_of(path)
    make_video(path, moving_scene(8, 64, 64, seed=13), fps=2)
    assert add_file(index, str(path), models).status == 'indexed'
    new = index.video_id_of(path)
    assert new != old and len(index) == 2 and not index.fine_store.path(old).exists()
    query = index.representation(new)
    ids = {m.video_id for m in retrieval.search(index, models, query, k=None, rerank=0.0)}
    assert ids == {new, index.video_id_of(other)}
    assert index.vectors().count() == 2
    index.close()


def test_bin_index_ranks_copies_with_packed_bits(hub_dir, corpus, tmp_path):
    original = corpus.originals[2]
    copies = corpus.copies[original]
    index, models = small_index(tmp_path, [original, *copies.values(), *corpus.unrelated], fine='bin')
    stored = index.fine_store.path(index.video_id_of(original)).stat().st_size
    assert stored == index.representation(index.video_id_of(original)).frames * 9 * 512 // 8
    assert_easy_copies_first(ranking(index, models, original, 0.0), corpus, original)
    # Re-ranked pairs compare the unpacked codes: exactly the fg_bin student's similarity.
    query = index.representation(index.video_id_of(original))
    target = index.representation(index.video_id_of(copies['logo']))
    assert set(np.unique(target.fine)) == {-1.0, 1.0}
    match = next(m for m in ranking(index, models, original, 1.0) if m.path == str(copies['logo']))
    assert match.fine_similarity == pytest.approx(core.fine_similarity(models.fine_student, query.fine, target.fine), abs=1e-6)
    index.close()


def test_dedup_neighbours_are_the_coarse_collections_answer(att_index):
    # Dedup finds each video's neighbours from the catalog's vectors, blocks of videos at
    # a time, not by a Milvus search a video: the same neighbours, best first.
    index, _ = att_index
    dedup = importlib.import_module(f'{PACKAGE}.retrieval.searching.dedup')
    ids = index.catalog.video_ids()
    limit = len(ids) - 2
    blocked = dedup.CoarseNeighbours(index, ids, block=3 * len(ids))   # blocks of 3 videos
    whole = dedup.CoarseNeighbours(index, ids)
    for video_id in ids:
        milvus = index.vectors().search(index.catalog.coarse(video_id), len(ids))
        true = dict(milvus)
        for neighbours in (blocked, whole):
            found = neighbours.hits(video_id, limit)
            # The test weights' coarse similarities differ in the 7th digit, where float
            # rounding may order near ties differently: compared by similarity.
            assert found[0][0] == video_id and len(found) == limit
            assert np.allclose([s for _, s in found], [s for _, s in milvus[:limit]], atol=1e-5)
            assert np.allclose([s for _, s in found], [true[i] for i, _ in found], atol=1e-5)
    assert blocked.rows == 3 and len(blocked.hits(ids[0], 10 ** 6)) == len(ids)


def test_average_precision():
    ap = retrieval.average_precision
    assert ap(['a', 'b', 'c'], {'a', 'b'}) == 1.0
    assert ap(['x', 'a', 'y', 'b'], {'a', 'b'}) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert ap(['x', 'a'], {'a', 'missing'}) == pytest.approx(0.25)


def test_duplicate_groups(att_index, corpus):
    index, models = att_index
    original = corpus.originals[0]
    copies = corpus.copies[original]
    scores = {m.path: m.score for m in ranking(index, models, original, rerank=0.0)}
    # A threshold between the easy copies and the videos that are no copies, as measured.
    easy = min(scores[str(copies[k])] for k in EASY_COPIES if k != 'exact')
    others = max(s for p, s in scores.items() if p not in set(map(str, copies.values())))
    assert easy > others
    groups = retrieval.find_duplicates(index, models, threshold=(easy + others) / 2, rerank=0.0)
    group = next(g for g in groups if str(original) in g.videos)
    assert {str(original), *(str(copies[k]) for k in EASY_COPIES)} <= set(group.videos)
    assert not {*map(str, corpus.unrelated), *map(str, corpus.originals[1:])} & set(group.videos)
    exact = (min(str(original), str(copies['exact'])), max(str(original), str(copies['exact'])), 1.0)
    assert exact in group.pairs
    # The searches of one video only: pairs with one of its files, scored from its side
    # (a whole dedup takes the better of both sides); an id not indexed is named.
    dedup = importlib.import_module(f'{PACKAGE}.retrieval.searching.dedup')
    searched = index.video_id_of(original)
    own = {given for given, _ in index.catalog.paths([searched])[searched]}
    whole = {(a, b): score for g in groups for a, b, score in g.pairs}
    part = dedup.score_pairs(index, models, threshold=(easy + others) / 2, rerank=0.0, videos=[searched])
    assert len(part.pairs) >= len(EASY_COPIES) and all(own & set(key) for key in part.pairs)
    assert all(key in whole and score <= whole[key] + 1e-6 for key, score in part.pairs.items())
    with pytest.raises(ValueError, match='not in the index'):
        dedup.score_pairs(index, models, videos=['f' * 64])
