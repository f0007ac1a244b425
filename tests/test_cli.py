"""The `dns` command as users run it: a subprocess of the command that setup installs
in .venv/bin, on real video files, a real Milvus Lite database."""
import importlib
import json
import os
import shutil
from pathlib import Path

import pytest

from support.checkout import PACKAGE
from support.cli import dns
from support.corpus import make_corpus


@pytest.fixture(scope='module')
def workdir(hub_dir, tmp_path_factory):
    """A folder with videos/ (one original, its copies, unrelated videos, a broken file)
    indexed with the bin student; paths are given relative to it."""
    root = tmp_path_factory.mktemp('cli')
    corpus = make_corpus(root / 'videos', originals=1, unrelated=2)
    (root / 'videos' / 'broken.mp4').write_bytes(b'not a video at all')
    result = dns('index', '--fine', 'bin', '--no-progress', 'videos', cwd=root)
    return root, corpus, result


def test_index_summary_and_failures(workdir):
    root, corpus, result = workdir
    assert 'indexed 10 videos' in result.stdout and '1 failed' in result.stdout  # 11 files share 10 contents
    assert 'bin student' in result.stdout
    assert 'broken.mp4' in result.stderr and 'cannot decode video' in result.stderr
    again = dns('index', '--no-progress', '--strict', 'videos', cwd=root, expect=1)
    assert 'indexed 0 videos' in again.stdout and '11 already indexed' in again.stdout


def test_search_json(workdir):
    root, corpus, _ = workdir
    out = json.loads(dns('search', 'videos/orig0.mp4', '--json', '-k', '5', cwd=root).stdout)
    results = out['results']
    assert [r['rank'] for r in results] == [1, 2, 3, 4, 5]
    assert {r['path'] for r in results[:2]} == {'videos/orig0.mp4', 'videos/orig0_exact.mp4'}
    assert set(results[0]) == {'rank', 'path', 'score', 'coarse_similarity', 'selector_score', 'fine_similarity',
                               'video_id', 'source', 'clip_similarity', 'copy'}
    # A small index: every video is a video-level candidate, most clip candidates too.
    assert {r['source'] for r in results} <= {'video', 'both'} and results[0]['source'] == 'both'
    # The verdict the text output shows as '(copy)'.
    assert [r['copy'] for r in results] == [r['score'] >= out['copy_threshold'] for r in results]
    assert results[0]['copy']
    text = dns('search', 'videos/orig0.mp4', '-k', '3', cwd=root).stdout.splitlines()
    assert text[0].split() == ['rank', 'score', 'coarse', 'selector', 'fine', 'clip', 'path'] and len(text) == 4


def test_search_with_a_file_outside_the_index(workdir, tmp_path):
    root, corpus, _ = workdir
    outside = shutil.copy(corpus.copies[corpus.originals[0]]['reencoded'], tmp_path / 'query.mp4')
    out = json.loads(dns('search', outside, '--json', '-k', '3', '--rerank', '0', cwd=root).stdout)
    assert out['results'][0]['path'] == 'videos/orig0_reencoded.mp4'


def test_dedup_json_and_csv(workdir):
    root, _, _ = workdir
    groups = json.loads(dns('dedup', '--json', '--threshold', '0.99', '--rerank', '0', cwd=root).stdout)['groups']
    group = next(g for g in groups if 'videos/orig0.mp4' in g['videos'])
    assert 'videos/orig0_exact.mp4' in group['videos']
    assert {'a': 'videos/orig0.mp4', 'b': 'videos/orig0_exact.mp4', 'score': 1.0} in group['pairs']
    rows = dns('dedup', '--csv', '--threshold', '0.99', '--rerank', '0', cwd=root).stdout.splitlines()
    assert rows[0] == 'group,path' and len(rows) == 1 + sum(len(g['videos']) for g in groups)


def test_evaluate_curve_and_plot(workdir):
    root, corpus, _ = workdir
    (root / 'gt.json').write_text(json.dumps({'videos/orig0.mp4': [
        f'videos/{Path(p).name}' for p in corpus.copies[corpus.originals[0]].values()]}))
    out = json.loads(dns('evaluate', 'gt.json', '--json', '--plot', 'curve.png', cwd=root).stdout)
    assert [p['fraction'] for p in out['curve']] == [round(0.05 * i, 2) for i in range(21)]
    assert all(0 < p['mean_ap'] <= 1 and p['seconds_per_query'] > 0 for p in out['curve'])
    assert (root / 'curve.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_show_writes_a_heatmap(workdir):
    root, _, _ = workdir
    out = dns('show', 'videos/orig0.mp4', 'videos/orig0_flipped.mp4', '--out', 'pair.png', cwd=root).stdout
    assert out.startswith('fg similarity ') and (root / 'pair.png').stat().st_size > 10_000


def test_a_search_writes_nothing_and_dns_sync_brings_milvus_in_step(workdir, tmp_path):
    """An indexer killed after committing two videos, before its sync: a search reads
    Milvus as it is (those two missing, the lag named, nothing written), and `dns sync`
    copies them in."""
    root, corpus, _ = workdir
    folder = shutil.copytree(root / 'dns-index', tmp_path / 'index')
    storage = importlib.import_module(f'{PACKAGE}.retrieval.storage.index')
    copies = corpus.copies[corpus.originals[0]]
    with storage.VideoIndex(folder) as index:
        lost = [index.video_id_of(copies[kind]) for kind in ('flipped', 'reencoded')]
        index.vectors().delete(lost)
        index.vectors().flush()
        index.clip_collection.vectors().delete_videos(lost)
        index.clip_collection.vectors().flush()
        with index.catalog.transaction():
            index.catalog.db.executemany('UPDATE videos SET synced = 0 WHERE id = ?', [(i,) for i in lost])
        index.catalog.forget_clip_windows(lost)

    def search():
        result = dns('search', 'videos/orig0.mp4', '--index', folder, '--json', '-k', '20', cwd=root)
        return {r['video_id'] for r in json.loads(result.stdout)['results']}, result.stderr

    found, stderr = search()
    assert found and not found & set(lost)
    assert '2 committed video(s) not synced' in stderr and f'dns sync --index {folder}' in stderr
    with storage.VideoIndex(folder) as index:
        assert index.catalog.unsynced_count() == 2 and index.catalog.clip_window_lag() == 2
    out = dns('sync', '--index', folder, cwd=root).stdout
    assert 'the coarse vectors of 2 and the clip windows of 2 video(s)' in out
    found, stderr = search()
    assert set(lost) <= found and 'dns sync' not in stderr


def test_clear_errors(workdir, tmp_path):
    root, _, _ = workdir
    missing = dns('search', 'videos/orig0.mp4', '--index', tmp_path / 'none', cwd=root, expect=2)
    assert 'no index in' in missing.stderr
    other = dns('index', '--fine', 'att', 'videos', cwd=root, expect=2)
    assert "made with fine = 'bin', not 'att'" in other.stderr
    query = dns('search', 'videos/absent.mp4', cwd=root, expect=1)
    assert 'absent.mp4' in query.stderr and 'no such file' in query.stderr
    moved = dns('move-vectors', 'lite', cwd=root, expect=2)
    assert 'already at the Milvus Lite database' in moved.stderr
    unsynced = dns('sync', '--index', tmp_path / 'none', cwd=root, expect=2)
    assert 'no index in' in unsynced.stderr


@pytest.mark.parametrize('argv, unset, with_zero', [
    (['index', 'videos'], True, False),
    (['search', 'q.mp4'], False, False),
    (['serve'], False, False),
    (['dedup'], False, False),
    (['index', '--no-compile', 'videos'], False, False),
    (['serve', '--compile'], True, True),
])
def test_only_indexing_compiles_unless_told(monkeypatch, argv, unset, with_zero):
    """`dns index` compiles by default (DNS_COMPILE=0 turns that off); a search, the
    service's upload workers and the rest do not, whatever was set up for indexing:
    compiling takes 20 s and more, and a query is a few seconds of frames."""
    parser = importlib.import_module(f'{PACKAGE}.cli.parser')
    commands = importlib.import_module(f'{PACKAGE}.cli.commands')
    for env, expected in ((None, unset), ('0', with_zero)):
        if env is None:
            monkeypatch.delenv('DNS_COMPILE', raising=False)
        else:
            monkeypatch.setenv('DNS_COMPILE', env)
        # The index command's parser is built too, before the one asked for is parsed.
        args = parser.build_parser().parse_args(argv)
        assert commands._model_options(args)['compile'] is expected, (argv, env)
