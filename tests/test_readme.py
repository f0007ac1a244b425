"""Every ```python block of README.md runs as written, as a user with the package
installed (scripts/setup.sh) would run it: in a subprocess whose working folder is a
fresh temporary one (not the checkout), on the deterministic test weights. The folder
holds the files the examples name: video.mp4, query.mp4, videos/a.mp4, videos/b.mp4
(short H.264 files). Towhee finds the operator where scripts/embed.sh puts it."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.video_files import make_video, moving_scene

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
import towhee_hub  # noqa: E402

BLOCK = re.compile(r'^```python\n(.*?)^```', re.S | re.M)


def python_blocks():
    """(heading above the block, its code) for each ```python block, in order."""
    text = (ROOT / 'README.md').read_text()
    out = []
    for match in BLOCK.finditer(text):
        headings = re.findall(r'^#+ (.+)$', text[:match.start()], re.M)
        out.append((headings[-1] if headings else 'top', match.group(1)))
    return out


BLOCKS = python_blocks()


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 3
    assert not any(re.search(r'^\s*(from|import) video_decode\b', code, re.M) for _, code in BLOCKS), \
        'an example imports video_decode from the checkout folder; installed users have distill_and_select.video_decode'


@pytest.fixture(scope='module')
def example_folder(tmp_path_factory):
    """The files the examples name, and the Towhee home where scripts/embed.sh puts the operator."""
    folder = tmp_path_factory.mktemp('readme')
    make_video(folder / 'video.mp4', moving_scene(30, 96, 128, seed=11), fps=5)
    make_video(folder / 'query.mp4', moving_scene(30, 96, 128, seed=12), fps=5)
    (folder / 'videos').mkdir()
    make_video(folder / 'videos' / 'a.mp4', moving_scene(30, 96, 128, seed=13), fps=5)
    shutil.copy(folder / 'videos' / 'a.mp4', folder / 'videos' / 'b.mp4')
    towhee_home = tmp_path_factory.mktemp('towhee-home')
    towhee_hub.install(towhee_home)
    return folder, towhee_home


@pytest.mark.slow
@pytest.mark.parametrize('heading, code', BLOCKS, ids=[f'{i}-{h}' for i, (h, _) in enumerate(BLOCKS)])
def test_readme_python_block_runs(heading, code, example_folder, hub_dir, tmp_path):
    folder, towhee_home = example_folder
    work = tmp_path / 'cwd'
    shutil.copytree(folder, work)  # each block starts from the same files (one makes an index)
    env = dict(os.environ, TORCH_HOME=str(hub_dir.parent), TOWHEE_HOME=str(towhee_home), HF_HUB_OFFLINE='1',
               # no network: a download attempt fails fast instead of hanging
               HTTP_PROXY='http://127.0.0.1:9', HTTPS_PROXY='http://127.0.0.1:9')
    env.pop('PYTHONPATH', None)
    result = subprocess.run([sys.executable, '-c', code], cwd=work, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, f'README block under "{heading}" failed:\n{code}\n{result.stderr[-3000:]}'
