"""Copied segments measured against the library (`--segment-background`), end to end: the
held-out partial-copy corpus, whose sources look alike under the test model (1/f
landscapes), its hosts indexed into a real Milvus Lite database, searched with and
without the library, through the API, the operator and the `dns` command."""
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PACKAGE
from support.copy_model import copy_model_index, use_hub
from support.held_out_corpus import make_held_out_corpus
from support.segment_scoring import coverage, truth_of

retrieval = importlib.import_module(f'{PACKAGE}.retrieval')
core = importlib.import_module(f'{PACKAGE}.core')
localization = importlib.import_module(f'{PACKAGE}.localization')
package = importlib.import_module(PACKAGE)
DNS = Path(sys.executable).with_name('dns')
# Pieces far above any look-alike under the test model, which the library must not cost.
STRONG_KINDS = {'reencoded'}


@pytest.fixture(scope='module')
def held_out(copy_model_hub, tmp_path_factory):
    """The held-out corpus with its hosts indexed (the sources are the queries)."""
    root = tmp_path_factory.mktemp('held-out-library')
    corpus = make_held_out_corpus(root / 'videos')
    index, models = copy_model_index(root / 'dns-index', copy_model_hub, corpus.hosts)
    queries = {source: retrieval.query_representation(index, str(source), models) for source in corpus.sources}
    yield root, corpus, index, models, queries
    index.close()


def searched(held_out, background):
    """Every source's segments in every host: {(source, host): [segments in seconds]}."""
    _, corpus, index, models, queries = held_out
    found = {}
    for source, query in queries.items():
        for match in retrieval.search(index, models, query, k=None, rerank=1.0, segments=True,
                                      segment_background=background):
            found[(str(source), match.path)] = match.segments
    return found


def test_the_library_stops_look_alike_segments_and_keeps_the_copies(held_out):
    """Without the library, a source matches hosts holding pieces of the other sources,
    whose landscapes look like its own: precision about 0.4. Against the library those
    frames rise above nothing, and true pieces still do."""
    _, corpus, _, _, _ = held_out
    truth = truth_of(corpus)
    alone, against = searched(held_out, False), searched(held_out, True)
    before, after = localization.segment_scores(alone, truth), localization.segment_scores(against, truth)
    print(f'without the library P {before.precision:.3f} R {before.recall:.3f} F1 {before.f1:.3f}; '
          f'against it P {after.precision:.3f} R {after.recall:.3f} F1 {after.f1:.3f}')
    assert after.precision > before.precision + 0.25
    assert after.f1 > before.f1

    for insertion in corpus.insertions:
        if insertion.kind in STRONG_KINDS:
            pair = (str(insertion.source), str(insertion.host))
            assert coverage(against[pair], insertion.segment()) > 0.5, (insertion, against[pair])


def test_the_operator_gives_the_same_segments_given_the_same_background(held_out, copy_model_hub):
    """The Towhee operator's ``segments(..., background=)`` measures as search does when
    given the library search drew (every host but the pair's own)."""
    _, corpus, index, models, queries = held_out
    insertion = next(i for i in corpus.insertions if i.kind == 'reencoded')
    host_id = index.video_id_of(insertion.host)
    records = index.catalog.videos(index.catalog.video_ids())
    background = [index.fine_features(record) for video_id, record in sorted(records.items()) if video_id != host_id]
    with use_hub(copy_model_hub):
        operator = package.DistillAndSelect('fg_att_student', feature_extractor=None)
    query, target = queries[insertion.source].fine, index.fine_features(records[host_id])
    frames = operator.segments(query, target, background=background)
    seconds = retrieval.locate_copies(index, models, queries[insertion.source], [host_id], background=True)
    assert frames and [s.to_seconds(index.settings.time_step) for s in frames] == seconds[host_id]
    assert operator.segments(query, target) == core.copied_segments(models.fine_student, query, target)  # the pair alone


def test_copies_of_a_video_are_no_background_of_it(held_out):
    _, corpus, index, models, _ = held_out
    fine = [index.fine_features(index.catalog.video(index.video_id_of(host))) for host in corpus.hosts[:3]]
    matches = core.background_matches(models.fine_student, fine[0], fine)
    assert matches[0] is None  # the video itself
    assert all(m.shape == (len(fine[0]),) and (m < 1).all() for m in matches[1:])
    assert core.background_matches(models.fine_student, fine[0], []) == []


def dns(root, *args, hub):
    env = {**os.environ, 'TORCH_HOME': str(Path(hub).parent)}
    result = subprocess.run([str(DNS), *map(str, args)], cwd=root, capture_output=True, text=True, timeout=900,
                            env=env)
    assert result.returncode == 0, f'exit {result.returncode}\n{result.stdout}\n{result.stderr}'
    return result.stdout


def test_calibration_stores_the_library_choice_and_search_follows_it(held_out, copy_model_hub):
    """`dns evaluate --calibrate --segment-background on` measures segments against the
    library and stores that beside the threshold; search then measures so unless told
    otherwise."""
    root, corpus, index, models, queries = held_out
    corpus.write_ground_truth(root / 'gt.json')
    index.release_vectors()  # Milvus Lite admits one process at a time
    try:
        out = json.loads(dns(root, 'evaluate', 'gt.json', '--index', 'dns-index', '--calibrate', '--json',
                             '--segment-background', 'on', '--plot', 'eval.png', hub=copy_model_hub))
        thresholds = index.thresholds()
        assert thresholds.segment_background and thresholds.segment == pytest.approx(out['segments']['best']['threshold'])
        source = next(i.source for i in corpus.insertions if i.kind == 'reencoded')
        query = os.path.relpath(source, root)

        def cli_segments(*options):
            results = json.loads(dns(root, 'search', query, '--index', 'dns-index', '--segments', '--json', '-k', '20',
                                     '--rerank', '1', *options, hub=copy_model_hub))['results']
            return {os.path.abspath(os.path.join(root, r['path'])): [
                [s['query_start'], s['query_end'], s['target_start'], s['target_end']] for s in r['segments']]
                for r in results}

        def api_segments(background):
            matches = retrieval.search(index, models, queries[source], k=None, rerank=1.0, segments=True,
                                       segment_background=background)
            index.release_vectors()
            return {os.path.abspath(m.path): [[s.query_start, s.query_end, s.target_start, s.target_end]
                                              for s in m.segments] for m in matches}

        index.release_vectors()
        on, off = cli_segments(), cli_segments('--segment-background', 'off')
        assert on == api_segments(True) and off == api_segments(False)
        assert on != off
    finally:  # the module's other tests use the defaults
        index.catalog.db.execute("DELETE FROM meta WHERE key IN ('copy_threshold', 'segment_threshold', "
                                 "'segment_scale', 'segment_background')")
    assert not index.thresholds().segment_background
