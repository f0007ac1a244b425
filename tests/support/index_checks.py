"""What an index folder holds, read as another process sees it, for the fault and Ray
tests: committed rows, their consistency with the fine files, and equality of two
indexes."""
import hashlib
import sqlite3
from pathlib import Path

import numpy as np


def committed(index_dir: Path):
    """(video rows, path rows) of the catalog as another process sees it."""
    if not (index_dir / 'catalog.sqlite').exists():  # killed before it was made
        return [], []
    db = sqlite3.connect(f'file:{index_dir / "catalog.sqlite"}?mode=ro', uri=True, timeout=60)
    try:
        videos = db.execute('SELECT id, frames, fine_sha256 FROM videos').fetchall()
        paths = db.execute('SELECT given, video_id FROM paths').fetchall()
    except sqlite3.OperationalError:  # killed before the catalog's tables existed
        return [], []
    finally:
        db.close()
    return videos, paths


def assert_consistent(index_dir: Path):
    """Every video once, with a path and an intact fine file (fg_att, float16); returns
    the paths (as given) of the committed videos."""
    videos, paths = committed(index_dir)
    ids = {v[0] for v in videos}
    assert len(ids) == len(videos)
    assert {video_id for _, video_id in paths} == ids  # every video has a path, every path a video
    for video_id, frames, fine_sha256 in videos:
        data = (index_dir / 'fine' / video_id[:2] / f'{video_id}.float16').read_bytes()
        assert len(data) == frames * 9 * 512 * 2 and hashlib.sha256(data).hexdigest() == fine_sha256
    return {given for given, _ in paths}


def assert_same_index(actual: Path, expected: Path, atol: float = 1e-4) -> None:
    """The same videos (ids), paths and frame counts; representations within ``atol``
    (float16 fine features compare within their own rounding); the same clip windows."""
    import importlib

    from .checkout import PACKAGE
    VideoIndex = importlib.import_module(f'{PACKAGE}.retrieval').VideoIndex
    with VideoIndex(actual) as a, VideoIndex(expected) as b:
        ids = sorted(b.catalog.video_ids())
        assert sorted(a.catalog.video_ids()) == ids
        assert a.catalog.paths(ids) == b.catalog.paths(ids)
        # `dns index` built both clip collections (read before opening them, which would sync).
        windows = [dict(index.catalog.db.execute('SELECT video_id, windows FROM clip_windows')) for index in (a, b)]
        assert windows[0] == windows[1] and sorted(windows[0]) == ids
        for video_id in ids:
            record, expected_record = a.catalog.video(video_id), b.catalog.video(video_id)
            # The review's data too: duration, frame size and the same thumbnails.
            for field in ('frames', 'duration', 'width', 'height', 'thumbnails'):
                assert getattr(record, field) == getattr(expected_record, field), field
            assert record.thumbnails > 0
            for number in range(record.thumbnails):
                assert a.thumbnails.path(video_id, number).read_bytes() == \
                    b.thumbnails.path(video_id, number).read_bytes()
            got, want = a.representation(video_id), b.representation(video_id)
            np.testing.assert_allclose(got.coarse, want.coarse, atol=atol)
            np.testing.assert_allclose(got.selector, want.selector, atol=atol)
            np.testing.assert_allclose(got.fine.astype(np.float32), want.fine.astype(np.float32), atol=atol + 1e-3)
            assert_same_windows(a, b, video_id)


def assert_same_windows(a, b, video_id: str, atol: float = 1e-3) -> None:
    """The clip collections of two indexes hold the same windows of ``video_id``."""
    got, want = (_windows(index, video_id) for index in (a, b))
    assert sorted(got) == sorted(want)
    for start in want:
        np.testing.assert_allclose(got[start], want[start], atol=atol)


def _windows(index, video_id: str):
    return index.clip_collection.vectors().video_windows(video_id)
