"""`dns index --ray` against real parts: a Ray cluster on 127.0.0.1 (`ray start --head`,
one node: see support.ray_cluster), the driver joining it through RAY_ADDRESS, a Milvus server. The index
it builds equals the plain one; a worker killed with SIGKILL mid-run, or the driver
killed and restarted, loses and duplicates nothing."""
import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import PACKAGE
from support.corpus import make_corpus
from support.index_checks import assert_consistent, assert_same_index, assert_same_windows, committed
from support.milvus_server import milvus_server
from support.ray_cluster import start_cluster, worker_pids
from support.video_files import make_video, moving_scene

DNS = Path(sys.executable).with_name('dns')
RUN_TIMEOUT_S = 900  # hang guard for one indexing run on a busy 2-core machine
ACTOR_TITLE = 'MapWorker(MapBatches(Representer))'  # the model actor's process title


def dns_index(*args, env, cwd, timeout=RUN_TIMEOUT_S):
    result = subprocess.run([str(DNS), 'index', '--no-progress', *map(str, args)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f'exit {result.returncode}\n{result.stdout}\n{result.stderr}'
    return result


@pytest.fixture(scope='module')
def videos(hub_dir, tmp_path_factory):
    """Copies of one original (two share its bytes), unrelated videos, a broken file;
    and an index of them made without Ray, the reference."""
    root = tmp_path_factory.mktemp('ray-videos')
    make_corpus(root / 'videos', originals=1, unrelated=2)
    for i in range(6):  # more frames to extract: a kill lands while the actors work
        make_video(root / 'videos' / f'extra{i}.mp4', moving_scene(16, 48, 64, seed=50 + i), fps=2)
    (root / 'videos' / 'broken.mp4').write_bytes(b'not a video at all')
    plain = dns_index('--index', 'plain', 'videos', env=dict(os.environ), cwd=root)
    assert 'indexed 16 videos' in plain.stdout and '1 failed' in plain.stdout
    return root


@pytest.fixture(scope='module')
def cluster(hub_dir, tmp_path_factory):
    """Started after hub_dir: its nodes' workers find the test weights through TORCH_HOME."""
    cluster = start_cluster(tmp_path_factory.mktemp('ray'))
    yield cluster
    cluster.stop()


@pytest.mark.slow
def test_ray_index_equals_the_plain_index(videos, cluster, tmp_path):
    with milvus_server(tmp_path / 'milvus') as uri:
        result = dns_index('--ray', '--index', tmp_path / 'index', '--milvus-uri', uri, 'videos', env=cluster.env,
                           cwd=videos)
        # 18 files: 16 contents (two exact copies of the original), one broken.
        assert 'indexed 16 videos' in result.stdout and '1 byte-identical to a file indexed in this run' in result.stdout
        assert '1 failed' in result.stdout and 'broken.mp4' in result.stderr
        assert_same_index(tmp_path / 'index', videos / 'plain')
        # The coarse vectors are on the server, every one searchable.
        search = subprocess.run([str(DNS), 'search', '--index', tmp_path / 'index', '--json', '-k', '100',
                                 '--rerank', '0', 'videos/orig0.mp4'], cwd=videos, capture_output=True, text=True,
                                timeout=RUN_TIMEOUT_S)
        assert search.returncode == 0, search.stderr
        results = json.loads(search.stdout)['results']
        assert len(results) == 17 and {r['path'] for r in results[:2]} == {'videos/orig0.mp4',
                                                                            'videos/orig0_exact.mp4'}
        assert not (tmp_path / 'index' / 'milvus.db').exists()
        again = dns_index('--ray', '--index', tmp_path / 'index', 'videos', env=cluster.env, cwd=videos)
        assert 'indexed 0 videos' in again.stdout and '17 already indexed' in again.stdout


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(videos, cluster, tmp_path):
    index = tmp_path / 'index'
    driver = subprocess.Popen([str(DNS), 'index', '--ray', '--no-progress', '--index', str(index), 'videos'],
                              cwd=videos, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = []
    try:
        # The first model actor that is working on a call (not building its models) is
        # killed; Ray restarts it and retries the call. The count of kills, not the
        # time, decides: the loop waits for that moment however long it takes.
        while not killed and driver.poll() is None:
            for pid in worker_pids(ACTOR_TITLE):
                if _title(pid).endswith('.submit'):
                    os.kill(pid, signal.SIGKILL)
                    killed.append((pid, len(committed(index)[0])))
                    break
            time.sleep(0.05)
        out, err = driver.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        driver.kill()
    assert driver.returncode == 0, f'{out}\n{err}'
    assert len(killed) == 1, 'the run ended before its actor could be killed'
    print(f'killed actor pid {killed[0][0]} with {killed[0][1]} of 16 videos committed')
    assert killed[0][1] < 16  # mid-run
    assert 'indexed 16 videos' in out and '1 failed' in out
    assert len(assert_consistent(index)) == 17
    assert_same_index(index, videos / 'plain')


@pytest.mark.slow
def test_a_killed_driver_restarted_resumes(videos, cluster, tmp_path):
    index = tmp_path / 'index'
    driver = subprocess.Popen([str(DNS), 'index', '--ray', '--no-progress', '--index', str(index), 'videos'],
                              cwd=videos, env=cluster.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while driver.poll() is None and not committed(index)[0]:  # killed once it has committed a video
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        driver.kill()
    assert assert_consistent(index)
    contents = len(committed(index)[0])
    again = dns_index('--ray', '--index', index, 'videos', env=cluster.env, cwd=videos)
    print(f'{contents} of 16 videos committed before the driver was killed; the restart: {again.stdout.strip()}')
    assert f'indexed {16 - contents} videos' in again.stdout  # the others were not done again
    assert len(assert_consistent(index)) == 17
    assert_same_index(index, videos / 'plain')


@pytest.mark.slow
def test_without_ray_address_a_local_instance_runs(videos, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'RAY_ADDRESS'}
    env.update(RAY_USAGE_STATS_ENABLED='0', RAY_AUTH_MODE='disabled')
    (tmp_path / 'two').mkdir()
    for name in ('orig0.mp4', 'unrelated0.mp4'):
        (tmp_path / 'two' / name).symlink_to(videos / 'videos' / name)
    result = dns_index('--ray', '--index', tmp_path / 'index', tmp_path / 'two', env=env, cwd=tmp_path)
    assert 'indexed 2 videos' in result.stdout
    # Its clip collection holds the plain index's windows of the same videos.
    VideoIndex = importlib.import_module(f'{PACKAGE}.retrieval').VideoIndex
    with VideoIndex(tmp_path / 'index') as ray_index, VideoIndex(videos / 'plain') as plain:
        ids = ray_index.catalog.video_ids()
        built = dict(ray_index.catalog.db.execute('SELECT video_id, windows FROM clip_windows'))
        assert sorted(built) == ids and len(ids) == 2
        for video_id in ids:
            assert_same_windows(ray_index, plain, video_id)


NO_RAY_SCRIPT = textwrap.dedent('''
    import sys
    from distill_and_select import DistillAndSelect
    from distill_and_select.retrieval import VideoIndex
    from distill_and_select.cli import main
    assert main(['index', '--no-progress', '--index', sys.argv[2], sys.argv[1]]) == 0
    print(sorted(name for name in sys.modules if name == 'ray' or name.startswith('ray.')))
''')


def test_without_ray_nothing_of_ray_is_imported(hub_dir, tmp_path):
    video = make_video(tmp_path / 'v.mp4', moving_scene(4, 32, 32, seed=1), fps=2)
    result = subprocess.run([sys.executable, '-c', NO_RAY_SCRIPT, str(video), str(tmp_path / 'index')],
                            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == '[]'


def _title(pid: int) -> str:
    try:
        return Path(f'/proc/{pid}/cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace').strip()
    except OSError:
        return ''
