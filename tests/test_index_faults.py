"""`dns index` killed with SIGKILL at random moments, again and again: every video
committed before a kill survives it exactly once, nothing is half written, and a search
running beside the indexer sees only committed videos. And memory over 500 videos."""
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from support.index_checks import assert_consistent, committed
from support.video_files import make_video, moving_scene

DNS = Path(sys.executable).with_name('dns')
# Each kill costs a `dns index` start-up (about 10 s). 8 random moments in the default run;
# DNS_TEST_KILLS=50 makes it a soak run.
KILLS = int(os.environ.get('DNS_TEST_KILLS', 8))


@pytest.fixture
def many_videos(tmp_path):
    folder = tmp_path / 'videos'
    folder.mkdir()
    for i in range(40):
        make_video(folder / f'v{i:02d}.mp4', moving_scene(6, 48, 64, seed=i), fps=2)
    return folder


@pytest.mark.slow
def test_kill_9_loop_loses_nothing_and_leaves_nothing_half_written(hub_dir, many_videos, tmp_path):
    index_dir = tmp_path / 'index'
    rng = random.Random(7)
    seen = set()
    kills = 0
    # However long it takes: the count of kills ends the loop, never the time. Each kill
    # comes at a random moment after the run has committed a video of its own (or ended),
    # so every kill lands mid-run with progress, however busy the machine.
    while kills < KILLS:
        before = len(committed(index_dir)[0])
        process = subprocess.Popen([str(DNS), 'index', '--index', str(index_dir), '--no-progress', str(many_videos)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while process.poll() is None and len(committed(index_dir)[0]) <= before:
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 1.5))
        if kills == KILLS // 2:  # a search beside the indexer: committed videos only, each once
            search = subprocess.run([str(DNS), 'search', '--index', str(index_dir), '--json', '-k', '100',
                                     '--rerank', '0.5', str(many_videos / 'v00.mp4')],
                                    capture_output=True, text=True, timeout=300)
            if search.returncode == 0:
                found = [r['path'] for r in json.loads(search.stdout)['results']]
                assert len(found) == len(set(found))
                assert set(found) <= assert_consistent(index_dir)
            else:
                assert 'no index in' in search.stderr, search.stderr
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        now = assert_consistent(index_dir)
        assert seen <= now, f'lost after kill {kills}: {sorted(seen - now)}'
        seen = now
    final = subprocess.run([str(DNS), 'index', '--index', str(index_dir), '--no-progress', str(many_videos)],
                           capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert len(assert_consistent(index_dir)) == 40
    assert not list((index_dir / 'fine').glob('*/.*.tmp'))
    # Milvus holds every committed vector once, searchable.
    search = subprocess.run([str(DNS), 'search', '--index', str(index_dir), '--json', '-k', '100', '--rerank', '0',
                             str(many_videos / 'v05.mp4')], capture_output=True, text=True, timeout=300)
    results = json.loads(search.stdout)['results']
    assert len(results) == 40 and results[0]['path'].endswith('v05.mp4')


RSS_SCRIPT = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    from distill_and_select import DnS
    from distill_and_select.retrieval import VideoIndex, add_file
    def rss_mb():
        for line in open('/proc/self/status'):
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    index = VideoIndex(sys.argv[2], create=True)
    models = DnS(index.settings.fine, device='cpu')
    report = {}
    for i, path in enumerate(sorted(Path(sys.argv[1]).glob('*.mp4')), 1):
        add_file(index, str(path), models)
        if i in (100, 300, 500):
            report[i] = rss_mb()
    index.sync()
    report['videos'] = len(index)
    print(json.dumps(report))
''')


@pytest.mark.slow
def test_indexing_500_videos_keeps_flat_memory(hub_dir, tmp_path):
    folder = tmp_path / 'videos'
    folder.mkdir()
    for i in range(500):  # one sampled frame each (1 s at 2 fps), each its own scene
        make_video(folder / f'{i:03d}.mp4', moving_scene(2, 32, 32, seed=i), fps=2)
    result = subprocess.run([sys.executable, '-c', RSS_SCRIPT, str(folder), str(tmp_path / 'index')],
                            capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"RSS after 100, 300, 500 videos: {report['100']:.0f}, {report['300']:.0f}, {report['500']:.0f} MB")
    assert report['videos'] == 500
    assert report['500'] - report['100'] < 60, report
