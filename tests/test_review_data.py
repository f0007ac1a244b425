"""What the review page stands on: thumbnails kept from the indexer's own frames in
bounded memory, duration and frame size in the catalog, old indexes opening with
nothing lost, and reviewers' decisions that `dns dedup` follows."""
import io
import json
import shutil
import sqlite3
import subprocess

import numpy as np
import pytest
from PIL import Image

from support.service_process import DNS, dns_env
from support.video_files import make_video, moving_scene


def gray_frames(count: int):
    """Frame i is a uniform grey of value i (count <= 256), so a thumbnail tells which frame it is."""
    for i in range(count):
        yield np.full((48, 64, 3), i, np.uint8)


@pytest.mark.parametrize('length', [1, 3, 9, 200, 256])
def test_thumbnails_are_evenly_spread_in_bounded_memory(length):
    from distill_and_select.retrieval.storage.thumbnails import ThumbnailKeeper
    keeper = ThumbnailKeeper(count=4, size=32)
    passed, most_held = [], 0
    for frame in keeper.watch(gray_frames(length)):
        passed.append(int(frame[0, 0, 0]))
        most_held = max(most_held, keeper.held)
    assert passed == list(range(length))                     # the stream goes through unchanged
    assert most_held <= 2 * 4 + 1
    jpegs = keeper.jpegs()
    assert len(jpegs) == min(4, length) and (keeper.width, keeper.height) == (64, 48)
    shown = [float(np.asarray(Image.open(io.BytesIO(j))).mean()) for j in jpegs]
    wanted = [(k + 0.5) * length / 4 for k in range(4)][:len(jpegs)] if length >= 4 else list(range(length))
    for frame, at in zip(shown, wanted):
        assert abs(frame - at) <= max(1.5, length / 8) + 1.5     # JPEG rounding, at most half a spacing off
    assert Image.open(io.BytesIO(jpegs[0])).size == (32, 24)


def test_an_index_made_before_thumbnails_opens_with_nothing_lost(hub_dir, tmp_path):
    from distill_and_select import DnS
    from distill_and_select.retrieval import VideoIndex, add_file, search
    videos = [make_video(tmp_path / f'v{i}.mp4', moving_scene(20, 96, 128, seed=40 + i), fps=5) for i in range(2)]
    folder = tmp_path / 'index'
    with VideoIndex(folder, create=True) as index:
        models = DnS(index.settings.fine, device='cpu')
        for video in videos:
            add_file(index, video, models)
        ids = [index.video_id_of(v) for v in videos]
        record = index.catalog.video(ids[0])
        assert (record.duration, record.width, record.height, record.thumbnails) == (4.0, 128, 96, 4)
        assert all(index.thumbnails.path(ids[0], i).read_bytes()[:3] == b'\xff\xd8\xff' for i in range(4))
        before = [(m.path, m.score) for m in search(index, models, index.representation(ids[0]), k=None)]
    # Back to the first format: no media columns, no decisions table, no thumbnails.
    db = sqlite3.connect(folder / 'catalog.sqlite')
    for column in ('duration', 'width', 'height', 'thumbnails'):
        db.execute(f'ALTER TABLE videos DROP COLUMN {column}')
    db.execute('DROP TABLE decisions')
    db.commit()
    db.close()
    shutil.rmtree(folder / 'thumbs')
    with VideoIndex(folder) as index:
        record = index.catalog.video(ids[0])
        assert (record.duration, record.width, record.height, record.thumbnails) == (None, None, None, 0)
        assert record.frames == 4 and len(index) == 2
        after = [(m.path, m.score) for m in search(index, models, index.representation(ids[0]), k=None)]
        assert after == before
        assert index.catalog.decisions() == {}


def dns(root, torch_home, *args, expect=0):
    result = subprocess.run([str(DNS), *args], cwd=root, env=dns_env(torch_home), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == expect, result.stderr
    return result


def test_dedup_follows_decisions_and_they_export_as_csv(review_index, tmp_path):
    root, torch_home = review_index
    original, unrelated, logo = 'videos/orig0.mp4', 'videos/unrelated0.mp4', 'videos/orig0_logo.mp4'
    dns(root, torch_home, 'decisions', '--mark', unrelated, original, 'copy')   # below the threshold: joined
    dns(root, torch_home, 'decisions', '--mark', original, logo, 'not_copy')    # above it: kept apart
    try:
        out = json.loads(dns(root, torch_home, 'dedup', '--json').stdout)
        pairs = {(p['a'], p['b']): p for g in out['groups'] for p in g['pairs']}
        assert pairs[(original, unrelated)] == {'a': original, 'b': unrelated, 'score': None, 'decision': 'copy'}
        assert (original, logo) not in pairs
        group = next(g for g in out['groups'] if original in g['videos'])
        assert unrelated in group['videos'] and set(group['video_ids']) == set(group['videos'])
        assert {(d['a'], d['b'], d['decision']) for d in out['decisions']} == {
            (original, unrelated, 'copy'), (original, logo, 'not_copy')}
        text = dns(root, torch_home, 'dedup').stdout
        assert 'marked copy by a reviewer' in text and '1 pair(s) marked not a copy' in text
        dns(root, torch_home, 'decisions', '--csv', tmp_path / 'decisions.csv')
        rows = (tmp_path / 'decisions.csv').read_text().splitlines()
        assert rows[0] == 'a,b,decision,decided_at,score,segments,reviewer' and len(rows) == 3
        assert rows[1].startswith(f'{original},{logo},not_copy,20')
        unknown = dns(root, torch_home, 'decisions', '--mark', original, '../../etc/passwd', 'copy', expect=2)
        assert 'not an indexed file' in unknown.stderr
        wrong = dns(root, torch_home, 'decisions', '--mark', original, logo, 'maybe', expect=2)
        assert "one of copy, not_copy" in wrong.stderr
    finally:
        dns(root, torch_home, 'decisions', '--mark', unrelated, original, 'none')
        dns(root, torch_home, 'decisions', '--mark', original, logo, 'none')
    assert dns(root, torch_home, 'decisions').stdout.strip().endswith('0 decision(s)')


def test_a_thumbnail_at_a_time_shows_the_frame_shown_then(tmp_path):
    """A segment's thumbnail is of the frame a player shows at its time (the last one at
    or before it), not of one spread over the whole video; none past the end."""
    from distill_and_select.retrieval.storage.thumbnails import THUMBNAIL_SIZE, thumbnail_at
    frames = np.stack([np.full((96, 128, 3), 8 * i, np.uint8) for i in range(32)])  # 8 s at 4 fps
    path = make_video(tmp_path / 'greys.mp4', frames, fps=4)
    for seconds, frame in ((0.0, 0), (2.0, 8), (5.3, 21), (7.75, 31), (7.95, 31), (0.9, 3)):
        image = Image.open(io.BytesIO(thumbnail_at(path, seconds)))
        assert image.size == (128, 96) and THUMBNAIL_SIZE >= 128  # never enlarged
        assert abs(np.asarray(image, np.float32).mean() - 8 * frame) < 3, (seconds, frame)
    assert thumbnail_at(path, 9.0) is None


def test_a_decision_leaves_the_scored_pairs_valid_and_regroups_them(review_index, copy_model_hub, tmp_path):
    """/duplicates keeps its searches per content state: reviewers' decisions leave that
    state as it is (no search again), and the groups of the kept pairs with the new
    decisions equal what a full pass finds; a new threshold is a new state."""
    from distill_and_select.core import DnS
    from distill_and_select.retrieval.storage.catalog import Catalog
    from distill_and_select.retrieval.searching.dedup import find_duplicates, group_pairs, score_pairs
    from distill_and_select.retrieval.storage.index import VideoIndex
    from support.copy_model import use_hub
    root, _ = review_index
    original, logo = 'videos/orig0.mp4', 'videos/orig0_logo.mp4'
    with use_hub(copy_model_hub), VideoIndex(root / 'dns-index') as index:
        models = DnS(index.settings.fine, device='cpu')
        scored = score_pairs(index, models, segments=True)
        state = index.catalog.content_state()
        index.catalog.decide([(original, logo)], 'not_copy')
        try:
            assert index.catalog.content_state() == state
            regrouped = [g.as_dict() for g in group_pairs(scored, index.catalog.decisions())]
            assert regrouped == [g.as_dict() for g in find_duplicates(index, models, segments=True)]
            assert (original, logo) not in {(p['a'], p['b']) for g in regrouped for p in g['pairs']}
            assert (original, logo) in scored.pairs  # the kept pairs themselves unchanged
        finally:
            index.catalog.decide([(original, logo)], None)
        with sqlite3.connect(index.catalog.path) as source, sqlite3.connect(tmp_path / 'copy.sqlite') as copy:
            source.backup(copy)  # a copy: the index is shared with other tests
    copied = Catalog(tmp_path / 'copy.sqlite')
    try:
        assert copied.content_state() == state
        copied.set_meta({'copy_threshold': '0.5'})
        assert copied.content_state() != state
    finally:
        copied.close()
