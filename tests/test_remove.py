"""Forgetting indexed files (`dns remove`, ``VideoIndex.remove``): a video leaves the
catalog, its stored features and thumbnails, the coarse and the clip collections of a
real Milvus Lite database with its last file; an unknown path removes nothing; folders,
files deleted from disk, and reviewers' decisions, which stay."""
import importlib
import shutil

import pytest

from conftest import PACKAGE
from support.cli import dns
from support.video_files import make_video, moving_scene

retrieval = importlib.import_module(f'{PACKAGE}.retrieval')
DnS = importlib.import_module(PACKAGE).DnS
UnknownFileError = importlib.import_module(f'{PACKAGE}.retrieval.storage.catalog').UnknownFileError


def _videos(root):
    """a.mp4, its byte copy a_copy.mp4, sub/b.mp4, sub/c.mp4 and sub2/d.mp4 (a folder whose
    name starts like sub's), 6 s at 2 frames/s each."""
    (root / 'sub').mkdir(parents=True)
    (root / 'sub2').mkdir()
    paths = {name: make_video(root / f'{name}.mp4', moving_scene(12, 64, 64, seed=seed), fps=2)
             for seed, name in enumerate(['a', 'sub/b', 'sub/c', 'sub2/d'], start=21)}
    paths['a_copy'] = shutil.copy(paths['a'], root / 'a_copy.mp4')
    return paths


@pytest.fixture
def indexed(hub_dir, tmp_path):
    paths = _videos(tmp_path / 'videos')
    index = retrieval.VideoIndex(tmp_path / 'index', create=True)
    models = DnS(index.settings.fine, device='cpu')
    for path in paths.values():
        retrieval.add_file(index, str(path), models)
    yield index, models, paths
    index.close()


def _found(index, models, path):
    """The video ids a search for the indexed ``path`` returns, clip candidates included."""
    query = index.representation(index.video_id_of(path))
    return {m.video_id for m in retrieval.search(index, models, query, k=None, rerank=0.0)}


def test_a_video_leaves_with_its_last_file(indexed):
    index, models, paths = indexed
    a = index.video_id_of(paths['a'])
    assert len(index) == 4 and index.vectors().count() == 4
    windows = index.clip_collection.window_count()  # indexing synced them
    assert windows > 0

    removal = index.remove([paths['a_copy']])
    assert removal.files == [str(paths['a_copy'])] and removal.videos == []
    assert index.video_id_of(paths['a_copy']) is None and index.video_id_of(paths['a']) == a
    assert len(index) == 4 and index.fine_store.path(a).exists()

    query = index.representation(a)
    assert index.thumbnails.path(a, 0).exists()
    removal = index.remove([paths['a']])
    assert removal.videos == [a] and len(index) == 3
    assert index.catalog.video(a) is None and not index.fine_store.path(a).exists()
    assert not (index.thumbnails.folder / a).exists()
    # Removing syncs: both collections followed at once.
    assert index.vectors().count() == 3
    assert index.clip_collection.window_count() < windows
    assert index.clip_collection.vectors().count() == index.clip_collection.window_count()
    left = {m.video_id for m in retrieval.search(index, models, query, k=None, rerank=0.0)}
    assert a not in left and len(left) == 3


def test_folders_and_unknown_paths(indexed):
    index, models, paths = indexed
    sub = paths['sub/b'].parent
    assert [f.given for f in index.files_at([sub])] == [str(paths['sub/b']), str(paths['sub/c'])]
    with pytest.raises(UnknownFileError, match=r"nowhere\.mp4"):
        index.remove([paths['sub2/d'], sub / 'nowhere.mp4'])
    assert len(index) == 4 and index.video_id_of(paths['sub2/d']) is not None  # nothing removed

    removal = index.remove([sub])
    assert sorted(removal.files) == [str(paths['sub/b']), str(paths['sub/c'])] and len(removal.videos) == 2
    assert index.video_id_of(paths['sub2/d']) is not None  # "sub2" is not below "sub"
    with pytest.raises(UnknownFileError, match='nor a folder'):
        index.remove([sub])


def test_removed_then_indexed_again(indexed):
    index, models, paths = indexed
    d = index.video_id_of(paths['sub2/d'])
    assert index.missing_files() == []
    data = paths['sub2/d'].read_bytes()
    paths['sub2/d'].unlink()
    assert index.missing_files() == [(str(paths['sub2/d']), str(paths['sub2/d']))]
    assert index.remove(index.missing_files()).videos == [d]
    paths['sub2/d'].write_bytes(data)  # the file is back
    assert d not in _found(index, models, paths['a'])
    assert retrieval.add_file(index, str(paths['sub2/d']), models).status == 'indexed'
    assert index.video_id_of(paths['sub2/d']) == d and d in _found(index, models, paths['a'])
    assert index.vectors().count() == len(index) == 4


def test_dns_remove(hub_dir, tmp_path):
    paths = _videos(tmp_path / 'videos')
    dns('index', '--no-progress', 'videos', cwd=tmp_path)
    dns('decisions', '--mark', 'videos/a.mp4', 'videos/sub/b.mp4', 'not_copy', cwd=tmp_path)

    error = dns('remove', cwd=tmp_path, expect=2).stderr
    assert 'give the indexed files or folders to remove, or --missing' in error
    error = dns('remove', 'videos/sub', 'videos/elsewhere', cwd=tmp_path, expect=2).stderr
    assert "'videos/elsewhere'" in error and 'not an indexed file' in error

    paths['sub/c'].unlink()
    dry = dns('remove', '--missing', '--dry-run', cwd=tmp_path).stdout
    assert dry.splitlines() == ['would remove videos/sub/c.mp4', '1 file(s) would be removed; nothing changed']
    out = dns('remove', '--missing', 'videos/a_copy.mp4', cwd=tmp_path).stdout
    assert out.splitlines() == ['removed videos/a_copy.mp4', 'removed videos/sub/c.mp4',
                                'removed 2 file(s), 1 video(s) with them; the index holds 3 videos']

    out = dns('remove', 'videos/sub', cwd=tmp_path).stdout
    assert out.splitlines()[-1] == 'removed 1 file(s), 1 video(s) with them; the index holds 2 videos'
    # The reviewer's decision on a removed file is kept, for when it is indexed again.
    assert 'not_copy  videos/a.mp4  videos/sub/b.mp4' in dns('decisions', cwd=tmp_path).stdout
    found = dns('search', 'videos/a.mp4', '-k', '10', '--rerank', '0', cwd=tmp_path).stdout
    assert 'videos/sub/' not in found and 'videos/sub2/d.mp4' in found
    dns('index', '--no-progress', 'videos/sub', cwd=tmp_path)
    assert 'videos/sub/b.mp4' in dns('search', 'videos/a.mp4', '-k', '10', '--rerank', '0', cwd=tmp_path).stdout
