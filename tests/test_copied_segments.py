"""Where the copy is, end to end: the partial-copy corpus (pieces of source videos
inserted into longer hosts at known seconds) indexed into a real Milvus Lite database
with the test model whose similarities mean something, then searched, deduplicated and
evaluated with segments, through the API and the `dns` command."""
import csv
import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import PACKAGE
from support.checkout import import_checkout
from support.copy_model import use_hub
from support.corpus import make_partial_corpus

from support.segment_scoring import compare, coverage, truth_of

retrieval = importlib.import_module(f'{PACKAGE}.retrieval')
core = importlib.import_module(f'{PACKAGE}.core')
localization = importlib.import_module(f'{PACKAGE}.localization')
defaults = importlib.import_module(f'{PACKAGE}.defaults')
DNS = Path(sys.executable).with_name('dns')
# Kinds whose pieces the test model finds at the default threshold (measured: see the
# README's localization table); picture in picture, a quarter of the frame, it does not.
FOUND_KINDS = {'plain', 'reencoded', 'cropped_logo', 'flipped', 'speedup'}


@pytest.fixture(scope='module')
def partial(copy_model_hub, tmp_path_factory):
    """The corpus indexed once, by the command as users run it (`dns index`), given by its
    absolute path so that results name the corpus's own paths; the API tests open that index."""
    root = tmp_path_factory.mktemp('partial')
    corpus = make_partial_corpus(root / 'videos')
    dns(root, 'index', '--index', 'cli-index', '--no-progress', root / 'videos', hub=copy_model_hub)
    with use_hub(copy_model_hub):
        index = retrieval.VideoIndex(root / 'cli-index')
        models = import_checkout().DnS(index.settings.fine, device='cpu')
    assert sorted(index.catalog.video_ids()) == sorted({index.video_id_of(p) for p in (*corpus.sources,
                                                                                         *corpus.hosts)})
    yield root, corpus, index, models
    index.close()


def query_of(index, path):
    return index.representation(index.video_id_of(path))


def test_search_finds_the_inserted_pieces_in_seconds(partial):
    _, corpus, index, models = partial
    for source in corpus.sources:
        matches = retrieval.search(index, models, query_of(index, source), k=None, rerank=1.0, segments=True,
                                   exclude_paths=[str(source)])
        by_host = {m.path: m.segments for m in matches}
        for insertion in corpus.insertions:
            if insertion.source != source:
                continue
            found = by_host[str(insertion.host)]
            span = (insertion.query_start, insertion.query_end, insertion.target_start, insertion.target_end)
            if insertion.kind in FOUND_KINDS:
                assert coverage(found, span) > 0.6, (insertion, found)
            for segment in found:  # seconds, half-open, on the sampling grid
                assert segment.query_start < segment.query_end and segment.target_start < segment.target_end
                assert float(segment.query_start).is_integer() and float(segment.target_end).is_integer()


def test_no_segment_where_nothing_was_inserted(partial):
    _, corpus, index, models = partial
    inserted = {(i.source, i.host) for i in corpus.insertions}
    for source in corpus.sources:
        matches = retrieval.search(index, models, query_of(index, source), k=None, rerank=1.0, segments=True,
                                   exclude_paths=[str(source)])
        for m in matches:
            if (source, Path(m.path)) not in inserted and Path(m.path) in corpus.hosts:
                assert m.segments == [], (source, m.path, m.segments)


def test_several_pieces_in_one_host_are_several_segments(partial):
    _, corpus, index, models = partial
    host = max(corpus.hosts, key=lambda h: sum(i.host == h for i in corpus.insertions))
    source = corpus.sources[0]
    pieces = [i for i in corpus.insertions if i.host == host and i.source == source]
    assert len(pieces) >= 2
    matches = retrieval.search(index, models, query_of(index, source), k=None, rerank=1.0, segments=True)
    found = next(m.segments for m in matches if m.path == str(host))
    for piece in pieces:
        span = (piece.query_start, piece.query_end, piece.target_start, piece.target_end)
        assert any(coverage([s], span) > 0.5 for s in found), (piece, found)


def test_operator_segments_are_frame_indices_of_the_same_segments(partial):
    _, corpus, index, models = partial
    insertion = next(i for i in corpus.insertions if i.kind == 'speedup')
    query, target = query_of(index, insertion.source), query_of(index, insertion.host)
    frames = core.copied_segments(models.fine_student, query.fine, target.fine)
    seconds = retrieval.locate_copies(index, models, query, [index.video_id_of(insertion.host)])
    assert [s.to_seconds(index.settings.time_step) for s in frames] == seconds[index.video_id_of(insertion.host)]
    best = frames[0]
    # Played 1.5x faster: the host's span is shorter than the source's.
    assert (best.query_end - best.query_start) / (best.target_end - best.target_start) == pytest.approx(1.5, rel=0.2)
    assert all(isinstance(v, int) for v in (best.query_start, best.query_end, best.target_start, best.target_end))


def test_localization_beats_the_temporal_network_at_its_best_threshold(partial):
    """The issue's goal on this corpus: the project at its default threshold against the
    baseline at the threshold best for it, on the same similarity matrices."""
    _, corpus, index, models = partial
    matrices = {(str(s), str(h)): core.similarity_maps(models.fine_student, query_of(index, s).fine,
                                                       query_of(index, h).fine)[0]
                for s in corpus.sources for h in corpus.hosts}
    results = compare(matrices, truth_of(corpus))
    ours, tn = results['ours_default'].scores, results['tn_best'].scores
    print(f'local alignment F1 {ours.f1:.3f} (P {ours.precision:.3f}, R {ours.recall:.3f}); temporal network '
          f'at {results["tn_best"].settings} F1 {tn.f1:.3f}; with its best score threshold '
          f'{results["tn_best_two"].scores.f1:.3f}')
    assert ours.f1 > tn.f1
    assert ours.f1 > results['tn_best_two'].scores.f1


def test_evaluate_segments_and_calibrate(partial, tmp_path):
    _, corpus, index, models = partial
    gt = retrieval.load_ground_truth(corpus.write_ground_truth(tmp_path / 'gt.json'))
    assert gt.segments is not None and set(gt.positives) == set(gt.segments)
    report = retrieval.evaluate_segments(index, models, gt)
    assert report.best.f1 >= report.current.f1 > 0.5
    assert 0 < report.current.precision <= 1 and set(report.axes) == {
        'query_precision', 'query_recall', 'target_precision', 'target_recall'}
    assert 0 < report.micro_ap <= 1  # the matching track's micro-AP, beside P/R/F1
    copies = retrieval.evaluate_copies(index, models, gt)
    assert copies.best.f1 >= copies.current.f1
    assert not index.thresholds().segment_calibrated
    try:
        stored = index.calibrate(copy=copies.best.threshold, segment=report.best.threshold)
        assert (stored.copy, stored.segment) == (copies.best.threshold, report.best.threshold)
        assert stored.copy_calibrated and stored.segment_calibrated
        # Search uses the stored threshold: above every segment's score, none is kept.
        index.calibrate(segment=1000.0)
        source = corpus.sources[0]
        matches = retrieval.search(index, models, query_of(index, source), k=None, rerank=1.0, segments=True)
        assert all(m.segments == [] for m in matches)
    finally:  # the module's other tests use the defaults
        index.catalog.db.execute("DELETE FROM meta WHERE key IN ('copy_threshold', 'segment_threshold', "
                                 "'segment_scale')")
    assert not index.thresholds().segment_calibrated


@pytest.mark.parametrize('stored, scale', [('0.31', None), ('2.9', 'robust-z')])
def test_a_threshold_of_an_earlier_score_scale_is_kept_but_not_used(partial, stored, scale):
    """An index calibrated before segment scores were standard deviations holds a
    threshold on the similarity scale (0.3 or so), and one calibrated before the size
    offset a threshold in standard deviations that long pairs exceed by chance: applied
    now either would keep noise. The default stands, with a warning, until the index is
    calibrated again; the stored value stays in the index."""
    _, _, index, _ = partial
    # As an earlier version wrote it.
    index.catalog.set_meta({'segment_threshold': stored, **({'segment_scale': scale} if scale else {})})
    try:
        with pytest.warns(retrieval.StaleThresholdWarning, match=f'{stored}.*dns evaluate --calibrate'):
            thresholds = index.thresholds()
        assert thresholds.segment == defaults.SEGMENT_THRESHOLD and not thresholds.segment_calibrated
        assert thresholds.stale_segment == pytest.approx(float(stored))
        assert index.catalog.meta()['segment_threshold'] == stored
        recalibrated = index.calibrate(segment=4.5)
        assert (recalibrated.segment, recalibrated.segment_calibrated, recalibrated.stale_segment) == (4.5, True, None)
    finally:
        index.catalog.db.execute("DELETE FROM meta WHERE key IN ('segment_threshold', 'segment_scale')")


def test_bad_segment_ground_truth_is_named(tmp_path):
    bad = tmp_path / 'gt.json'
    for content, message in (({'q.mp4': {'t.mp4': [[5, 2, 0, 3]]}}, 'start < end'),
                             ({'q.mp4': {'t.mp4': [[0, 1, 2]]}}, r'\[query_start, query_end'),
                             ({'q.mp4': {'t.mp4': 'x'}}, 'must be a list')):
        bad.write_text(json.dumps(content))
        with pytest.raises(ValueError, match=message):
            retrieval.load_ground_truth(bad)


# --- the `dns` command, as users run it


def dns(root, *args, hub, expect=0):
    env = {**os.environ, 'TORCH_HOME': str(Path(hub).parent)}
    result = subprocess.run([str(DNS), *map(str, args)], cwd=root, capture_output=True, text=True, timeout=600,
                            env=env)
    assert result.returncode == expect, f'exit {result.returncode}\n{result.stdout}\n{result.stderr}'
    return result.stdout


@pytest.fixture
def cli_partial(partial, copy_model_hub):
    """The index `partial` made with the command, its Milvus Lite database let go by this
    process (one process at a time opens it); thresholds a test calibrates are taken out
    again, so the other tests see the defaults."""
    root, corpus, index, _ = partial
    index.release_vectors()
    yield root, corpus, copy_model_hub
    index.catalog.db.execute("DELETE FROM meta WHERE key IN ('copy_threshold', 'segment_threshold', "
                             "'segment_scale')")


def test_search_segments_json_and_vsc_csv(cli_partial):
    root, corpus, hub = cli_partial
    insertion = next(i for i in corpus.insertions if i.kind == 'plain')
    query = str(insertion.source)
    host = str(insertion.host)
    out = json.loads(dns(root, 'search', '--index', 'cli-index', query, '--segments', '--json', '-k', '20',
                         '--rerank', '1', hub=hub))
    match = next(r for r in out['results'] if r['path'] == host)
    assert match['segments'] and set(match['segments'][0]) == {'query_start', 'query_end', 'target_start',
                                                                'target_end', 'score'}
    best = match['segments'][0]
    assert abs(best['query_start'] - insertion.query_start) <= 1 and abs(best['target_end'] - insertion.target_end) <= 1
    rows = list(csv.reader(io.StringIO(dns(root, 'search', '--index', 'cli-index', query, '--csv', '-k', '20',
                                           '--rerank', '1', hub=hub))))
    assert rows[0] == ['query_id', 'ref_id', 'query_start', 'query_end', 'ref_start', 'ref_end', 'score']
    assert [query, host, *map(str, [best['query_start'], best['query_end'], best['target_start'],
                                    best['target_end']])] in [r[:6] for r in rows[1:]]
    text = dns(root, 'search', '--index', 'cli-index', query, '--segments', '-k', '20', '--rerank', '1', hub=hub)
    assert 'copied ' in text and ' -> ' in text


def test_dedup_segments_evaluate_calibrate_show(cli_partial):
    root, corpus, hub = cli_partial
    corpus.write_ground_truth(root / 'gt.json')
    out = json.loads(dns(root, 'evaluate', '--index', 'cli-index', 'gt.json', '--json', '--calibrate',
                         '--plot', 'eval.png', hub=hub))
    assert out['calibrated'] and out['segments']['best']['f1'] >= out['segments']['current']['f1']
    assert 0 < out['segments']['micro_ap'] <= 1 and 'micro_ap' not in out['videos']
    assert (root / 'eval-pr.png').read_bytes()[:4] == b'\x89PNG'
    with retrieval.VideoIndex(root / 'cli-index') as index:
        thresholds = index.thresholds()
    assert thresholds.segment == pytest.approx(out['segments']['best']['threshold'])
    assert thresholds.copy == pytest.approx(out['videos']['best']['threshold'])
    groups = json.loads(dns(root, 'dedup', '--index', 'cli-index', '--segments', '--json', hub=hub))
    assert groups['threshold'] == pytest.approx(thresholds.copy)  # the calibrated one
    pairs = [p for g in groups['groups'] for p in g['pairs']]
    assert pairs and all('segments' in p for p in pairs)
    assert any(p['segments'] for p in pairs)
    insertion = next(i for i in corpus.insertions if i.kind == 'flipped')
    text = dns(root, 'show', '--index', 'cli-index', str(insertion.source),
               str(insertion.host), '--out', 'pair.png', hub=hub)
    assert 'copied segment(s)' in text and (root / 'pair.png').stat().st_size > 10_000
