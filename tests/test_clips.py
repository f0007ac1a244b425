"""Clip search (retrieval/searching/clips): windows, background normalisation, offset voting, the
clip collection kept in step with the catalog (Milvus Lite, and one test on a Milvus
server), the upgrade of an index made without it, and bad inputs. Indexes here hold
synthetic fine features committed directly: no video is decoded."""
import importlib
import logging
import shutil

import numpy as np
import pytest

from conftest import PACKAGE
from support.milvus_server import milvus_server

windows = importlib.import_module(f'{PACKAGE}.retrieval.storage.clip_windows')
voting = importlib.import_module(f'{PACKAGE}.retrieval.searching.clips.voting')
clip_index = importlib.import_module(f'{PACKAGE}.retrieval.searching.clips.clip_index')
store = importlib.import_module(f'{PACKAGE}.retrieval.storage.clip_vectors')
window_files = importlib.import_module(f'{PACKAGE}.retrieval.storage.clip_window_files')
clip_collection = importlib.import_module(f'{PACKAGE}.retrieval.storage.clip_collection')
merge = importlib.import_module(f'{PACKAGE}.retrieval.searching.clips.merge')
index_module = importlib.import_module(f'{PACKAGE}.retrieval.storage.index')
core = importlib.import_module(f'{PACKAGE}.core')
defaults = importlib.import_module(f'{PACKAGE}.defaults')
WindowHits, VotingSettings = voting.WindowHits, voting.VotingSettings


# --- windows
@pytest.mark.parametrize('frames', [1, 2, 3, 4, 5, 17, 240])
def test_windows_cover_the_video_and_pool_their_frames(frames):
    rng = np.random.default_rng(frames)
    fine = rng.standard_normal((frames, 9, 512)).astype(np.float32)
    spec = windows.WindowSpec(3, 2)
    starts, vectors = windows.pooled_windows(fine, spec)
    assert starts[0] == 0 and min(starts[-1] + spec.length, frames) == frames
    assert np.all(np.diff(starts) <= spec.stride) and np.all(np.diff(starts) > 0)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    for s, v in zip(starts, vectors):
        direct = fine[s:s + spec.length].mean(axis=(0, 1))
        assert np.allclose(v, direct / np.linalg.norm(direct), atol=1e-5)
    query_starts, _ = windows.pooled_windows(fine, spec, stride=1)
    assert list(query_starts) == list(range(max(1, frames - spec.length + 1)))


def test_every_five_second_copy_holds_an_indexed_window():
    # At 1 frame/s a copy of 5 s holds at least 4 sampled frames, whatever its phase.
    spec = windows.DEFAULT_SPEC
    assert spec.shortest_covered <= 4
    starts = spec.starts(600)
    for first in range(0, 590):
        inside = [s for s in starts if first <= s and s + spec.length <= first + 4]
        assert inside, first


@pytest.mark.parametrize('frames', [4, 62, 63, 240, 600, 3600, 5401])
def test_a_long_query_keeps_its_window_budget_and_its_copies_line_up(frames):
    """Up to the budget a query has a window at every frame; past it about the budget,
    at a stride prime to the indexed one, and every copy of ``shortest_lined_up`` frames,
    whatever its place in the query and in the host, holds a query window exactly at an
    indexed window's place."""
    spec, budget = windows.DEFAULT_SPEC, 60
    stride = spec.query_stride(frames, budget)
    starts = spec.starts(frames, stride)
    assert len(starts) <= budget + 1
    if frames - spec.length + 1 <= budget:
        assert stride == 1 and len(starts) == frames - spec.length + 1
        return
    assert stride > 1 and np.gcd(stride, spec.stride) == 1 and len(starts) >= budget // 3
    span = spec.shortest_lined_up(stride)
    for first in range(0, min(frames - span, 4 * stride) + 1):   # the pattern repeats every 2 x stride
        for host_phase in range(spec.stride):                    # host frame = query frame + offset
            lined_up = [s for s in starts if first <= s and s + spec.length <= first + span
                        and (s + host_phase) % spec.stride == 0]
            assert lined_up, (first, host_phase)
    with pytest.raises(ValueError, match='budget'):
        spec.query_stride(frames, 0)


def test_bad_window_settings_and_features_are_refused():
    with pytest.raises(ValueError, match='positive integers'):
        windows.WindowSpec(0, 2)
    with pytest.raises(ValueError, match='fine features must be'):
        windows.pooled_windows(np.zeros((4, 512), np.float32))


# --- normalisation and voting
def test_normalisation_subtracts_the_background_neighbour():
    margins = voting.normalise(np.array([0.9, 0.8, 0.5, 0.4]), background_rank=3)
    assert np.allclose(margins, [0.4, 0.3, 0.0, 0.0])
    # Fewer hits than the rank: the last one is the background.
    assert np.allclose(voting.normalise(np.array([0.7, 0.6]), background_rank=32), [0.1, 0.0])


def test_a_plain_window_near_everything_gives_no_vote():
    # Every indexed window looks alike to this query window: no margin, no vote.
    hits = [WindowHits(0.0, [f'v{i}' for i in range(40)], [0.0] * 40, [0.95] * 40)]
    assert voting.vote(hits) == []


def test_a_run_at_one_offset_outweighs_stronger_scattered_hits():
    settings = VotingSettings(hits_per_window=4, background_rank=4, bin_seconds=2.0)
    hits = []
    for q in range(10):
        # 'host': a modest match at offset 100 s for every query window; 'noise': a
        # better match per window, but each at another offset; the rest background.
        hits.append(WindowHits(float(q), ['noise', 'host', 'x', 'y'], [q * 37.0 % 300, q + 100.0, 0.0, 0.0],
                               [0.9, 0.7, 0.5, 0.5]))
    votes = voting.vote(hits, settings)
    assert [v.video_id for v in votes] == ['host', 'noise']
    assert votes[0].windows == 10 and votes[0].score == pytest.approx(2.0, abs=1e-5)
    assert abs(votes[0].offset - 100) <= 2
    assert (votes[0].query_first, votes[0].query_last) == (0.0, 9.0)  # the part of the query it holds
    assert votes[1].score < 0.8


def test_a_speed_change_drifting_across_a_bin_edge_stays_one_vote():
    # 1.25x: the offset drifts by 0.25 s per query second, across a bin edge.
    hits = [WindowHits(float(q), ['host', 'a', 'b'], [1.25 * q + 50.0, 0.0, 0.0], [0.8, 0.3, 0.3])
            for q in range(8)]
    votes = voting.vote(hits, VotingSettings(hits_per_window=3, background_rank=3, bin_seconds=2.0))
    assert votes[0].video_id == 'host' and votes[0].windows == 8


def test_one_vote_per_query_window_even_with_several_hits_in_the_video():
    # Adjacent windows of one video match the same query window: counted once.
    hits = [WindowHits(0.0, ['host', 'host', 'host', 'z'], [10.0, 11.0, 12.0, 0.0], [0.8, 0.8, 0.8, 0.2])]
    votes = voting.vote(hits, VotingSettings(hits_per_window=4, background_rank=4))
    assert votes[0].windows == 1 and votes[0].score == pytest.approx(0.6)


def test_merged_candidates_take_turns_and_respect_the_cap():
    assert merge.merge_candidates(['a', 'b', 'c'], ['x', 'a', 'y'], 4) == ['a', 'x', 'b', 'c']
    assert merge.merge_candidates(['a'], ['x', 'y'], 1) == ['a']
    assert merge.merge_candidates([], ['x', 'y'], None) == ['x', 'y']


# --- the clip collection of an index
def fake_video(rng, frames):
    fine = rng.standard_normal((frames, 9, 512)).astype(np.float32)
    coarse = rng.standard_normal(1024).astype(np.float32)
    return core.VideoRepresentation(fine, coarse / np.linalg.norm(coarse), 0.5)


def make_index(folder, videos=6, frames=120, seed=0, clips=True, **settings):
    """An index of synthetic videos committed directly and synced; ``clips=False``: as an
    earlier version left it (catalog, fine features and coarse vectors, no clip collection)."""
    rng = np.random.default_rng(seed)
    index = index_module.VideoIndex(folder, create=True, **settings)
    fines = {}
    for i in range(videos):
        video = fake_video(rng, frames)
        video_id = f'{seed:08x}{i:056x}'
        index.commit(f'/nowhere/video{i}.mp4', video_id, video)
        fines[video_id] = video.fine
    if clips:
        index.sync()
    else:
        index._sync_coarse()
    return index, fines


def planted_query(fines, video_id, start, length, seed=1):
    """Frames [start, start + length) of a video, with noise as an edit would add."""
    rng = np.random.default_rng(seed)
    piece = fines[video_id][start:start + length]
    return piece + 0.6 * rng.standard_normal(piece.shape).astype(np.float32)


def test_an_old_index_gains_its_clip_collection_at_its_next_sync(tmp_path, caplog):
    index, fines = make_index(tmp_path / 'index', clips=False)
    assert 'clip_windows' not in {r[0] for r in index.catalog.db.execute("SELECT name FROM sqlite_master")}
    index.close()
    # Opened by a new version to search: read as it is (a search writes nothing), the lag named.
    index = index_module.VideoIndex(tmp_path / 'index')
    video_id = sorted(fines)[3]
    query = planted_query(fines, video_id, 50, 6)
    with caplog.at_level(logging.WARNING):
        assert clip_index.ClipIndex(index).candidates(query) == []
    assert 'behind its catalog (6 video(s)' in caplog.text and 'dns sync' in caplog.text
    assert index.clip_collection.vectors().count() == 0
    # Reopened after a release (the service's idle one): the lag is not checked again.
    index.release_vectors()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert index.clip_collection.vectors().count() == 0 and index.vectors() is not None
    assert 'behind its catalog' not in caplog.text
    # Synced: the windows come from the stored fine features (the video files do not
    # exist, so nothing can have been decoded).
    assert index.sync() == (0, 6)
    expected = sum(len(windows.DEFAULT_SPEC.starts(len(f))) for f in fines.values())
    assert index.clip_collection.vectors().count() == expected == index.clip_collection.window_count()
    votes = clip_index.ClipIndex(index).candidates(query)
    assert votes[0].video_id == video_id
    assert abs(votes[0].offset - 50) <= 2
    # A second sync finds nothing to do; reopening keeps the collection.
    assert index.sync() == (0, 0)
    index.close()
    index = index_module.VideoIndex(tmp_path / 'index')
    assert index.sync() == (0, 0) and index.clip_collection.vectors().count() == expected
    index.close()


def test_sync_recovers_from_a_crash_and_a_lost_collection(tmp_path):
    index, fines = make_index(tmp_path / 'index', videos=4)
    clips = index.clip_collection
    count = clips.vectors().count()
    # A crash after the upsert, before the catalog row: the video is redone, by key.
    index.catalog.db.execute('DELETE FROM clip_windows WHERE video_id = ?', (sorted(fines)[0],))
    assert clips.sync() == 1 and clips.vectors().count() == count
    # The windows' files lost: a search reads them empty; the next sync makes them again
    # from the stored features.
    shutil.rmtree(tmp_path / 'index' / clip_collection.FILES_FOLDER)
    clips.release()
    assert clips.vectors().count() == 0
    assert index.sync() == (0, 4) and clips.vectors().count() == count
    index.close()


def test_a_replaced_video_leaves_no_windows_behind(tmp_path):
    index, fines = make_index(tmp_path / 'index', videos=3)
    clips = index.clip_collection
    before = clips.vectors().count()
    old = index.video_id_of('/nowhere/video0.mp4')
    video = fake_video(np.random.default_rng(7), 30)
    index.commit('/nowhere/video0.mp4', 'f' * 64, video)   # the path now holds another video
    index.sync()
    assert clips.vectors().count() == before - len(windows.DEFAULT_SPEC.starts(120)) \
        + len(windows.DEFAULT_SPEC.starts(30))
    assert all(v.video_id != old for v in clip_index.ClipIndex(index).candidates(fines[old][10:20]))
    index.close()


def test_a_video_extracted_again_has_only_its_new_windows(tmp_path):
    """`dns index --reread` commits a video again under its id: its old windows go."""
    index, fines = make_index(tmp_path / 'index', videos=3)
    clips = index.clip_collection
    before = clips.vectors().count()
    video_id = index.video_id_of('/nowhere/video0.mp4')
    index.commit('/nowhere/video0.mp4', video_id, fake_video(np.random.default_rng(8), 30))
    index.sync()
    assert clips.vectors().count() == clips.window_count() == before - len(windows.DEFAULT_SPEC.starts(120)) \
        + len(windows.DEFAULT_SPEC.starts(30))
    index.close()


def test_a_clip_shorter_than_a_window_is_still_searched(tmp_path):
    index, fines = make_index(tmp_path / 'index')
    video_id = sorted(fines)[2]
    one_frame = fines[video_id][40:41]
    votes = clip_index.ClipIndex(index).candidates(one_frame)
    assert votes and votes[0].video_id == video_id
    index.close()


def test_a_long_query_finds_a_copy_of_the_length_its_stride_promises(tmp_path):
    index, fines = make_index(tmp_path / 'index', videos=3)
    video_id = sorted(fines)[1]
    rng = np.random.default_rng(5)
    long_query = rng.standard_normal((600, 9, 512)).astype(np.float32)  # 10 minutes at 1 frame/s
    stride = windows.DEFAULT_SPEC.query_stride(len(long_query), defaults.QUERY_WINDOWS)
    copy = windows.DEFAULT_SPEC.shortest_lined_up(stride)
    assert stride > 1 and copy < 40
    long_query[401:401 + copy] = planted_query(fines, video_id, 20, copy)   # with an edit's noise
    clips = clip_index.ClipIndex(index)
    starts, vectors = clips.query_windows(long_query)
    assert len(starts) == len(vectors) <= defaults.QUERY_WINDOWS + 1
    votes = clips.candidates(long_query, limit=5)
    assert votes[0].video_id == video_id and abs(votes[0].offset - (20 - 401)) <= 2
    index.close()


def test_the_clip_collection_moves_to_hnsw_past_its_size_and_votes_alike(tmp_path):
    """FLAT while small; HNSW once a sync finds the collection at the size given (lowered
    here from the default through ``hnsw_from``), recorded in Milvus and kept on reopening;
    the planted copies vote as under exact search."""
    index, fines = make_index(tmp_path / 'index', videos=4, frames=60)   # 4 x 30 windows
    index.close()
    index = index_module.VideoIndex(tmp_path / 'index')
    clips = index.clip_collection
    clips.hnsw_from = 150   # before the collection opens
    assert clips.vectors().index_type == 'FLAT' and clips.window_count() == 120
    rng = np.random.default_rng(3)
    for i in range(2):
        index.commit(f'/nowhere/more{i}.mp4', f'{9:08x}{i:056x}', fake_video(rng, 60))
    assert index.sync() == (2, 2) and clips.window_count() == 180
    vectors = clips.vectors()
    assert vectors.index_type == 'HNSW' and vectors.search_params() == defaults.CLIP_HNSW_SEARCH
    queries = [planted_query(fines, video_id, 7 * n, 8, seed=n) for n, video_id in enumerate(sorted(fines))]
    search = clip_index.ClipIndex(index)
    approximate = [search.candidates(q) for q in queries]
    vectors.rebuild_index('FLAT')   # the same windows searched exactly
    assert vectors.index_type == 'FLAT' and vectors.search_params() == {}
    for video_id, query, votes in zip(sorted(fines), queries, approximate):
        exact = search.candidates(query)
        assert votes[0].video_id == video_id
        assert [(v.video_id, v.offset, v.windows) for v in votes] == [(v.video_id, v.offset, v.windows) for v in exact]
        assert [v.score for v in votes] == pytest.approx([v.score for v in exact], abs=1e-4)   # float sums
    # A sync finds the collection past the size and makes it HNSW again.
    assert clips.sync() == 0 and vectors.index_type == 'HNSW'
    index.close()
    index = index_module.VideoIndex(tmp_path / 'index')
    vectors = index.clip_collection.vectors()
    assert vectors.index_type == 'HNSW' and vectors.count() == 180
    with pytest.raises(ValueError, match='FLAT or HNSW'):
        vectors.rebuild_index('IVF_PQ')
    # A flush cut short before CURRENT was replaced: its files are ignored, then removed.
    folder = tmp_path / 'index' / clip_collection.FILES_FOLDER
    (folder / 'base-99.faiss').write_bytes(b'cut short')
    (folder / 'rows-99.npz').write_bytes(b'cut short')
    reopened = window_files.ClipWindowFiles(folder)
    assert reopened.index_type == 'HNSW' and reopened.count() == 180
    reopened.flush()
    assert not (folder / 'base-99.faiss').exists() and not (folder / 'rows-99.npz').exists()
    with pytest.raises(ValueError, match='must be positive'):
        window_files.ClipWindowFiles(folder, hnsw_from=0)
    index.close()


# --- the clip windows' files (the embedded default)
def structured_windows(rng, videos, per_video):
    """Unit windows as footage gives them: a shared low-rank part, a video's own tint,
    slow drift from window to window."""
    basis = rng.standard_normal((16, 512)).astype(np.float32)
    out = {}
    for v in range(videos):
        tint = rng.standard_normal(512).astype(np.float32)
        own = np.cumsum(0.3 * rng.standard_normal((per_video, 512)).astype(np.float32), axis=0)
        x = (rng.standard_normal((per_video, 16)).astype(np.float32) @ basis) / 4 + own + tint
        out[f'v{v:03d}'] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def exact_hits(live, query, limit):
    """(video, start, similarity) of the ``limit`` nearest live windows, by NumPy."""
    keys = [(video, 2 * i) for video, vectors in live.items() for i in range(len(vectors))]
    sims = query @ np.concatenate(list(live.values())).T
    return [[(*keys[i], float(row[i])) for i in np.argsort(-row, kind='stable')[:limit]] for row in sims]


def store_hits(clip_store, query, limit):
    hits = clip_store.search(np.arange(len(query), dtype=float), query, limit, lambda video, start: start)
    return [list(zip(h.videos, h.starts, h.similarities)) for h in hits]


def test_window_files_answer_as_exact_search_of_the_live_windows(tmp_path):
    """Exact while small: every answer equals NumPy's over the live windows, through
    additions kept beside the base, replaced and removed videos, the compaction that
    drops removed rows, and a reopening from the files alone."""
    rng = np.random.default_rng(0)
    videos = structured_windows(rng, 12, 20)
    folder = tmp_path / 'clip-windows'
    clip_store = window_files.ClipWindowFiles(folder, hnsw_from=10 ** 6, compact_dead=0.3)
    live = {}
    for n, (video, vectors) in enumerate(videos.items()):
        clip_store.upsert(video, np.arange(0, 40, 2), vectors)
        live[video] = vectors
        if n % 5 == 4:
            clip_store.flush()
    query = videos['v003'][::4] + 0.1 * rng.standard_normal((5, 512)).astype(np.float32)

    def check(store_now):
        assert store_now.count() == sum(len(v) for v in live.values())
        for got, expected in zip(store_hits(store_now, query, 16), exact_hits(live, query, 16)):
            assert [(v, s) for v, s, _ in got] == [(v, s) for v, s, _ in expected]
            assert [x for _, _, x in got] == pytest.approx([x for _, _, x in expected], abs=1e-5)
    check(clip_store)   # two videos not yet flushed: searched from memory
    clip_store.flush()
    replaced = structured_windows(np.random.default_rng(1), 1, 10)['v000']
    clip_store.upsert('v003', np.arange(0, 20, 2), replaced)   # extracted again: its old windows go
    live['v003'] = replaced
    clip_store.delete_videos(['v005', 'v007', 'nowhere'])
    del live['v005'], live['v007']
    check(clip_store)
    clip_store.flush()   # 50 of 230 rows removed: under the share, kept masked
    check(window_files.ClipWindowFiles(folder))
    clip_store.delete_videos(['v008', 'v009'])
    del live['v008'], live['v009']
    clip_store.flush()   # 90 of 230: the base made again of the live rows
    assert len(list(folder.glob('base-*.faiss'))) == 1 and len(list(folder.glob('rows-*.npz'))) == 1
    check(clip_store)
    check(window_files.ClipWindowFiles(folder))


CODE_TOLERANCE = 0.01   # a window's similarity through the HNSW graph's 8-bit codes


def test_the_store_moves_to_hnsw_by_size_and_its_codes_keep_the_scores(tmp_path):
    """FLAT under the size given (lowered here through ``hnsw_from``), HNSW over 8-bit
    codes from it on; each hit's similarity within CODE_TOLERANCE of the exact one, the
    planted windows found first; windows added later (the exact tail) and removed
    videos (masked in the graph) answer as they should."""
    rng = np.random.default_rng(2)
    videos = structured_windows(rng, 40, 30)
    clip_store = window_files.ClipWindowFiles(tmp_path / 'clip-windows', hnsw_from=600, tail_limit=100)
    names = sorted(videos)
    for video in names[:15]:
        clip_store.upsert(video, np.arange(0, 60, 2), videos[video])
    clip_store.flush()
    assert clip_store.index_type == 'FLAT' and clip_store.search_params() == {}
    for video in names[15:30]:
        clip_store.upsert(video, np.arange(0, 60, 2), videos[video])
    clip_store.flush()
    assert clip_store.index_type == 'HNSW' and clip_store.search_params() == defaults.CLIP_HNSW_SEARCH
    for video in names[30:33]:   # 90 windows: under the tail's limit, beside the graph
        clip_store.upsert(video, np.arange(0, 60, 2), videos[video])
    clip_store.flush()
    clip_store.delete_videos([names[4]])
    clip_store.flush()   # 30 of 990 rows removed: masked in the graph
    live = {v: videos[v] for v in names[:33] if v != names[4]}
    picks = [(names[n], w) for n in (1, 4, 12, 20, 31, 32) for w in (3, 17)]
    query = np.stack([videos[v][w] for v, w in picks]) + 0.05 * rng.standard_normal((len(picks), 512)).astype(np.float32)
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    got = store_hits(clip_store, query, 32)
    expected = exact_hits(live, query, 32)
    for q, ((video, window), hits, exact) in enumerate(zip(picks, got, expected)):
        assert all(v != names[4] for v, _, _ in hits)
        if video != names[4]:
            assert hits[0][:2] == exact[0][:2] == (video, 2 * window)
        for v, s, x in hits:
            assert abs(x - float(query[q] @ live[v][s // 2])) <= CODE_TOLERANCE
        assert len({(v, s) for v, s, _ in hits} & {(v, s) for v, s, _ in exact}) >= 28
    reopened = window_files.ClipWindowFiles(tmp_path / 'clip-windows')
    assert reopened.index_type == 'HNSW' and reopened.count() == clip_store.count() == 32 * 30
    assert store_hits(reopened, query, 32) == got
    # Every video removed: the graph goes (no windows to set its codes by), exact again.
    reopened.delete_videos(names)
    reopened.flush()
    assert reopened.count() == 0 and reopened.index_type == 'FLAT' and store_hits(reopened, query, 4)[0] == []
    reopened.upsert(names[1], np.arange(0, 60, 2), videos[names[1]])
    reopened.flush()
    assert store_hits(reopened, query[:1], 4)[0][0][:2] == (names[1], 6)


def test_an_index_whose_windows_milvus_lite_held_opens_and_answers(tmp_path, caplog):
    """Made by the version that kept the windows in a Milvus Lite collection: searched
    there as it is until the next sync, which makes the files from the stored features,
    answering as before, and drops the collection. Recorded as moved (to a server and
    back), the files are made again."""
    index, fines = make_index(tmp_path / 'index', videos=4, clips=False)
    client = index.vectors().client
    name = f'{index.settings.collection}_clips'
    old = store.ClipVectors(client, name, lite=True)
    index.catalog.start_clip_windows()
    for video_id, fine in fines.items():
        starts, vectors = windows.pooled_windows(fine, windows.DEFAULT_SPEC)
        old.upsert(video_id, starts, vectors)
        old.flush()
        index.catalog.record_clip_windows([(video_id, len(starts))])
    video_id = sorted(fines)[1]
    query = planted_query(fines, video_id, 40, 8)
    reader = clip_index.ClipIndex(index)
    starts, vectors = reader.query_windows(query)
    hits = old.search(starts, vectors, VotingSettings().search_limit, reader.seconds_of())
    before = [(v.video_id, v.offset, v.windows) for v in voting.vote(hits)]
    assert before[0][0] == video_id
    index.close()
    index = index_module.VideoIndex(tmp_path / 'index')
    assert isinstance(index.clip_collection.vectors(), store.ClipVectors)
    assert [(v.video_id, v.offset, v.windows) for v in clip_index.ClipIndex(index).candidates(query)] == before
    expected = sum(len(windows.DEFAULT_SPEC.starts(len(f))) for f in fines.values())
    with caplog.at_level(logging.INFO, logger=clip_collection.log.name):
        assert index.sync() == (0, 4)
    assert 'refilling' in caplog.text and 'moved from Milvus Lite' in caplog.text
    clips = index.clip_collection
    assert isinstance(clips.vectors(), window_files.ClipWindowFiles) and clips.vectors().count() == expected
    assert [(v.video_id, v.offset, v.windows) for v in clip_index.ClipIndex(index).candidates(query)] == before
    assert not index.vectors().client.has_collection(name)
    assert index.catalog.meta()['clip_store'] == clip_collection.FILES_PLACE
    # Files left from an earlier stay in the folder (a stale video in them), the windows
    # recorded as on a server since: made again by the next sync.
    clips.vectors().upsert('f' * 64, [0], fines[video_id][:3].mean(axis=(0, 1))[None])
    clips.vectors().flush()
    index.catalog.set_meta({'clip_store': 'http://127.0.0.1:1'})
    assert index.sync() == (0, 4) and clips.vectors().count() == expected
    assert all(v.video_id != 'f' * 64 for v in clip_index.ClipIndex(index).candidates(fines[video_id][:3]))
    index.close()


def test_damaged_clip_windows_give_a_clear_error_and_video_search_goes_on(tmp_path, hub_dir, caplog):
    index, fines = make_index(tmp_path / 'index', videos=4)
    index.close()
    # The windows' faiss file cut short (a disk fault, a copy interrupted).
    base = next((tmp_path / 'index' / clip_collection.FILES_FOLDER).glob('base-*.faiss'))
    base.write_bytes(base.read_bytes()[:1000])
    index = index_module.VideoIndex(tmp_path / 'index')
    with pytest.raises(store.ClipIndexError, match='clip windows in .* cannot be read.*delete the folder'):
        index.clip_collection.vectors()
    search = importlib.import_module(f'{PACKAGE}.retrieval.searching.search')
    models = core.DnS(index.settings.fine, device='cpu')
    video_id = sorted(fines)[0]
    query = index.representation(video_id)
    with caplog.at_level(logging.WARNING):
        matches = search.search(index, models, query, k=2, rerank=0, candidates=2)
    assert matches[0].video_id == video_id
    assert 'clip search is unavailable' in caplog.text
    index.close()


def test_an_index_moves_to_a_milvus_server_without_extracting_again(tmp_path):
    """Made on Milvus Lite, then moved (`dns move-vectors`): the server's collections are
    filled from the catalog and the stored fine features (the videos' files never
    existed), and answer as Lite did; the Lite database stays as it was."""
    index, fines = make_index(tmp_path / 'index', videos=4)
    video_id = sorted(fines)[2]
    query = planted_query(fines, video_id, 30, 8)
    expected = sum(len(windows.DEFAULT_SPEC.starts(len(f))) for f in fines.values())
    on_lite = [(v.video_id, v.offset) for v in clip_index.ClipIndex(index).candidates(query)]
    coarse_on_lite = index.vectors().search(index.catalog.coarse(video_id), 4)
    with pytest.raises(index_module.IndexSettingsError, match='already at the Milvus Lite database'):
        index.move_vectors('')
    lite_file = tmp_path / 'index' / index_module.LITE_FILE
    with milvus_server(tmp_path / 'milvus') as uri:
        assert index.move_vectors(uri) == (4, 4)
        assert index.settings.milvus_uri == uri and index.clip_collection.vectors().count() == expected
        assert [(v.video_id, v.offset) for v in clip_index.ClipIndex(index).candidates(query)] == on_lite
        index.close()
        moved = index_module.VideoIndex(tmp_path / 'index')  # the server is recorded in the index
        assert moved.settings.milvus_uri == uri and moved.sync() == (0, 0)
        on_server = moved.vectors().search(moved.catalog.coarse(video_id), 4)
        assert [i for i, _ in on_server] == [i for i, _ in coarse_on_lite]
        assert [s for _, s in on_server] == pytest.approx([s for _, s in coarse_on_lite], abs=1e-5)
        # A video removed while on the server, then back into the folder: the clip
        # windows' files of the earlier stay still hold it, and are made again.
        gone = moved.video_id_of('/nowhere/video0.mp4')
        moved.remove(['/nowhere/video0.mp4'])
        moved.move_vectors('')
        clips = moved.clip_collection
        assert clips.vectors().count() == clips.window_count() == expected - len(windows.DEFAULT_SPEC.starts(120))
        search = clip_index.ClipIndex(moved)
        assert all(v.video_id != gone for v in search.candidates(fines[gone][10:20]))
        if gone != video_id:
            assert [(v.video_id, v.offset) for v in search.candidates(query)][0] == on_lite[0]
        moved.close()
    assert lite_file.exists()


# --- clip candidates in search
def test_a_clip_candidate_is_judged_by_its_copied_part_and_outranks_unrelated_long_videos(tmp_path, hub_dir):
    """An unrelated video lies nearest the query by coarse similarity (as a long video
    alike in style does); the host of the copied clip is far from it by coarse similarity
    and comes in by clip votes only. Default settings, a budget of 2 or 3 candidates."""
    search = importlib.import_module(f'{PACKAGE}.retrieval.searching.search')
    index, fines = make_index(tmp_path / 'index', videos=6, frames=240)
    models = core.DnS(index.settings.fine, device='cpu')
    host, decoy = sorted(fines)[:2]
    coarse = index.catalog.coarse(decoy) + 0.002 * np.random.default_rng(3).standard_normal(1024)
    query = core.VideoRepresentation(planted_query(fines, host, 150, 8), coarse / np.linalg.norm(coarse), 0.5)
    copy = index.thresholds().copy
    for candidates in (2, 3):
        matches = search.search(index, models, query, candidates=candidates)
        first = matches[0]
        assert (first.video_id, first.source) == (host, 'clip')
        assert first.fine_similarity is None and first.score == pytest.approx(first.clip_similarity / 2 + 0.5)
        assert first.score >= copy
        # The nearest video by coarse similarity is among the candidates, and the fg
        # student judged it (whole, or on the part its own clip votes point at).
        nearest = next(m for m in matches if m.video_id == decoy)
        assert nearest.coarse_similarity > 0.9 and nearest.source in {'video', 'both'}
        assert {nearest.fine_similarity, nearest.clip_similarity} != {None} and nearest.score < first.score
        # Never both: a candidate compared whole is not compared again on a part.
        assert None in (nearest.fine_similarity, nearest.clip_similarity)
    index.close()


def test_copied_part_follows_the_vote():
    vote = voting.ClipVote('v', 3.0, offset=100.0, windows=5, query_first=4.0, query_last=12.0)
    q, t = search_module().copied_part(vote, query_frames=30, target_frames=400, window=3, time_step=1.0,
                                       bin_seconds=2.0)
    assert (q.start, q.stop) == (4, 15)
    assert t.start <= 104 and t.stop >= 115 and t.stop - t.start <= 11 + 2 * (2 + 11 // 4)
    # A lone window is widened to two; an offset outside the target gives nothing.
    lone = voting.ClipVote('v', 1.0, offset=0.0, windows=1, query_first=0.0, query_last=0.0)
    q, _ = search_module().copied_part(lone, 30, 400, 3, 1.0, 2.0)
    assert (q.start, q.stop) == (0, 6)
    outside = voting.ClipVote('v', 1.0, offset=-100.0, windows=1, query_first=0.0, query_last=0.0)
    assert search_module().copied_part(outside, 30, 400, 3, 1.0, 2.0) is None


def test_copied_parts_compared_together_score_as_each_alone(tmp_path, monkeypatch, hub_dir):
    """Clip candidates' copied parts (on one stretch of the query or on others) go to
    the fg student together: each similarity is still that of its part alone, also when
    the parts held are compared in several rounds."""
    search = search_module()
    index, fines = make_index(tmp_path / 'index', videos=5, frames=60)
    models = core.DnS(index.settings.fine, device='cpu')
    ids = sorted(fines)
    query = core.VideoRepresentation(planted_query(fines, ids[0], 10, 30), index.catalog.coarse(ids[0]), 0.5)
    # Three votes on one stretch of the query (at other offsets, so parts of other
    # lengths), one on another stretch, one outside its video (no part).
    votes = {ids[0]: voting.ClipVote(ids[0], 3.0, 10.0, 5, 0.0, 12.0),
             ids[1]: voting.ClipVote(ids[1], 2.0, 40.0, 5, 0.0, 12.0),
             ids[2]: voting.ClipVote(ids[2], 2.0, -2.0, 5, 0.0, 12.0),
             ids[3]: voting.ClipVote(ids[3], 1.0, 5.0, 2, 16.0, 20.0),
             ids[4]: voting.ClipVote(ids[4], 1.0, 500.0, 1, 0.0, 0.0)}
    records = index.catalog.videos(ids)
    window, bin_seconds = index.clip_collection.spec.length, VotingSettings().bin_seconds
    alone = []
    for video_id in ids:
        target = index.fine_features(records[video_id])
        part = search.copied_part(votes[video_id], len(query.fine), len(target), window, index.settings.time_step,
                                  bin_seconds, query.times, index.catalog.times(video_id))
        alone.append(None if part is None else
                     core.fine_similarity(models.fine_student, query.fine[part[0]], target[part[1]]))
    assert alone[-1] is None and None not in alone[:-1]
    for held in (search.COPIED_PARTS_HELD, 1):   # 1 byte: every part compared as soon as read
        monkeypatch.setattr(search, 'COPIED_PARTS_HELD', held)
        got = search._copied_part_similarities(index, models, query, records, ids, votes)
        assert got[-1] is None
        # Float rounding only: a padded batch's kernels sum in another order than a pair's alone.
        assert got[:-1] == pytest.approx(alone[:-1], abs=1e-5)
    index.close()


def search_module():
    return importlib.import_module(f'{PACKAGE}.retrieval.searching.search')
