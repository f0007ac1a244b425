"""The README and docs/ stay true to the software.

- Every ```python block of README.md and docs/*.md runs as written, as a user with the
  package installed (scripts/setup.sh) would run it: in a subprocess whose working folder
  is a fresh temporary one (not the checkout), on the deterministic test weights. The
  folder holds the files the examples name: video.mp4, query.mp4, videos/a.mp4,
  videos/b.mp4 (short H.264 files). Towhee finds the operator where scripts/embed.sh puts
  it.
- The README's `dns` quick start runs (tools/quickstart_output.py, on its small corpus
  and the copy model), and the README shows those commands and what they print.
- Every relative link between these files reaches a file, and a heading where it names one.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.processes import free_port
from support.video_files import make_video, moving_scene

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
import quickstart_output  # noqa: E402
import towhee_hub  # noqa: E402

BLOCK = re.compile(r'^```python\n(.*?)^```', re.S | re.M)
DOCUMENTS = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]


def python_blocks():
    """(document, heading above the block, its code) for each ```python block, in order."""
    out = []
    for document in DOCUMENTS:
        text = document.read_text()
        for match in BLOCK.finditer(text):
            headings = re.findall(r'^#+ (.+)$', text[:match.start()], re.M)
            out.append((document.relative_to(ROOT).as_posix(), headings[-1] if headings else 'top', match.group(1)))
    return out


BLOCKS = python_blocks()


def test_the_documents_have_python_examples():
    readme = [code for document, _, code in BLOCKS if document == 'README.md']
    assert len(readme) >= 2 and len(BLOCKS) >= 4
    assert not any(re.search(r'^\s*(from|import) video_decode\b', code, re.M) for _, _, code in BLOCKS), \
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
@pytest.mark.parametrize('document, heading, code', BLOCKS,
                         ids=[f'{d}-{i}-{h}' for i, (d, h, _) in enumerate(BLOCKS)])
def test_python_block_runs(document, heading, code, example_folder, hub_dir, tmp_path):
    folder, towhee_home = example_folder
    work = tmp_path / 'cwd'
    shutil.copytree(folder, work)  # each block starts from the same files (one makes an index)
    env = dict(os.environ, TORCH_HOME=str(hub_dir.parent), TOWHEE_HOME=str(towhee_home), HF_HUB_OFFLINE='1',
               # no network: a download attempt fails fast instead of hanging
               HTTP_PROXY='http://127.0.0.1:9', HTTPS_PROXY='http://127.0.0.1:9')
    env.pop('PYTHONPATH', None)
    result = subprocess.run([sys.executable, '-c', code], cwd=work, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, f'{document}: block under "{heading}" failed:\n{code}\n{result.stderr[-3000:]}'


def masked(text: str) -> list:
    """``text``'s lines with every number replaced by N: what must not change when the
    quick start runs again (figures move with float rounding and the clock)."""
    return [re.sub(r'\d+(\.\d+)?', 'N', line) for line in text.splitlines()]


def readme_quickstart_output() -> str:
    text = (ROOT / 'README.md').read_text()
    start, end = (text.index(m) for m in quickstart_output.MARKERS)
    block = re.search(r'```text\n(.*?)\n```', text[start:end], re.S)
    assert block, 'README.md: the quick-start block holds no ```text output; run tools/quickstart_output.py --write'
    return block.group(1)


def test_the_readme_shows_the_quickstart_commands():
    shown = [quickstart_output.shown(c, quickstart_output.DEFAULT_PORT) for c in quickstart_output.COMMANDS]
    assert quickstart_output.readme_commands((ROOT / 'README.md').read_text()) == shown


@pytest.mark.slow
def test_the_quickstart_runs_and_prints_what_the_readme_shows(copy_model_hub, tmp_path):
    quickstart_output.make_quickstart_corpus(tmp_path)
    transcript = quickstart_output.run_quickstart(tmp_path, copy_model_hub.parent, port=free_port())
    port_free = re.sub(r'127\.0\.0\.1:\d+', '127.0.0.1:PORT', transcript)
    port_free = re.sub(r'dns serve --port \d+ &', 'dns serve &', port_free)
    readme = re.sub(r'127\.0\.0\.1:\d+', '127.0.0.1:PORT', readme_quickstart_output())
    assert masked(port_free) == masked(readme), \
        f'the quick start prints something else now; run tools/quickstart_output.py --write\n{transcript}'


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return text.replace(' ', '-')


def anchors(document: Path) -> set:
    text = re.sub(r'^```.*?^```', '', document.read_text(), flags=re.S | re.M)
    return {slug(h) for h in re.findall(r'^#+ (.+)$', text, re.M)}


LINK = re.compile(r'\]\(([^)\s]+)\)')


@pytest.mark.parametrize('document', DOCUMENTS, ids=[d.relative_to(ROOT).as_posix() for d in DOCUMENTS])
def test_relative_links_reach_a_file_and_a_heading(document):
    broken = []
    for target in LINK.findall(document.read_text()):
        if re.match(r'[a-z]+:', target):
            continue  # http(s), mailto: not this repository's
        path, _, anchor = target.partition('#')
        file = (document.parent / path).resolve() if path else document
        if not file.exists():
            broken.append(f'{target}: no file {file}')
        elif anchor and file.suffix == '.md' and anchor not in anchors(file):
            broken.append(f'{target}: no heading "{anchor}" in {file.name}')
    assert not broken, f'{document.name}:\n' + '\n'.join(broken)


def test_benchmark_tables_live_in_docs_benchmarks_only():
    for document in DOCUMENTS:
        if document.name != 'benchmarks.md':
            assert '<!-- bench:' not in document.read_text(), \
                f'{document.name} holds a benchmark block; benchmarks write docs/benchmarks.md'
