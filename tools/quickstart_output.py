"""Run the README's `dns` quick start on a small corpus and print what it prints, so the
README's shown output comes from a real run and can be regenerated:

    .venv/bin/python tools/quickstart_output.py            # print the transcript
    .venv/bin/python tools/quickstart_output.py --write    # and put it into README.md

The weights are the copy model (tests/support/copy_model.py): test weights in the
published formats whose fine-grained similarities tell copies from unrelated videos.
The deterministic parity weights would score every pair alike, which shows nothing.

The corpus (tests/support/corpus.py, real H.264 files): an original with its 8 copies
(exact, re-encoded, cropped, flipped, shifted, sped up, logo, picture in picture) and 2
unrelated videos, all 8 s long; and a 24 s source with 2 longer videos into which
pieces of it were inserted (host0: source 10-22 s at 9.5-21.5 s; host6: source 2-6 s,
16-20 s and 12.5-22.5 s at 3, 14.5 and 30.25 s).

tests/test_readme.py runs the same commands through :func:`run_quickstart` and checks
that the README shows them."""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tests'))

import httpx  # noqa: E402

from support.corpus import make_corpus, make_partial_corpus  # noqa: E402
from support.processes import stop_process  # noqa: E402

README = ROOT / 'README.md'
DEFAULT_PORT = 8000
SERVE = 'dns serve &'
# The quick start, in order. `dns serve &` starts the service that the commands after it ask.
COMMANDS = (
    'dns index videos/',
    'dns search videos/orig0.mp4 --rerank 1',
    'dns search videos/source0.mp4 --rerank 1 --segments -k 3',
    'dns dedup',
    SERVE,
    'curl -s -F path=videos/orig0.mp4 -F k=2 http://127.0.0.1:8000/search',
)
# Of the partial-copy corpus: the source and two of its hosts (make_partial_corpus's plan).
PARTIAL_KEPT = ('source0.mp4', 'host0.mp4', 'host6.mp4')
START_TIMEOUT_S = 300  # a hang guard: loading the models on a busy machine
COMMAND_TIMEOUT_S = 1800
MARKERS = ('<!-- quickstart -->', '<!-- /quickstart -->')


def make_quickstart_corpus(folder: Path) -> Path:
    """Write the corpus into ``folder``/videos and return that folder."""
    videos = Path(folder) / 'videos'
    make_corpus(videos, originals=1, unrelated=2)
    with tempfile.TemporaryDirectory(prefix='dns-quickstart-') as partial:
        make_partial_corpus(partial, sources=1)
        for name in PARTIAL_KEPT:
            os.replace(Path(partial) / name, videos / name)
    return videos


def shown(command: str, port: int) -> str:
    """``command`` as it is written when the service listens on ``port``."""
    if port == DEFAULT_PORT:
        return command
    if command == SERVE:
        return f'dns serve --port {port} &'
    return command.replace(f':{DEFAULT_PORT}/', f':{port}/')


ANSI_ESCAPE = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')
PROGRESS_BAR = re.compile(r'(video|frame)/s\]$|s/(video|frame)\]$')


def terminal_text(raw: str) -> str:
    """The lines of ``raw`` without `dns index`'s progress bars (tqdm's lines, which a
    terminal redraws in place) and trailing spaces."""
    lines = [ANSI_ESCAPE.sub('', line.split('\r')[-1]).rstrip() for line in raw.replace('\r\n', '\n').split('\n')]
    return '\n'.join(line for line in lines if line and not PROGRESS_BAR.search(line))


def run_quickstart(folder: Path, torch_home: Path, port: int = DEFAULT_PORT) -> str:
    """Run :data:`COMMANDS` in ``folder`` (holding videos/) as a user whose shell finds
    this environment's `dns`, with the weights under ``torch_home``; return the
    transcript. Raises ``RuntimeError`` naming the command that failed."""
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, TORCH_HOME=str(torch_home), PATH=f'{bin_dir}{os.pathsep}{os.environ.get("PATH", "")}')
    env.pop('DNS_TOKEN', None)
    transcript: List[str] = []
    service: Optional[subprocess.Popen] = None
    try:
        for command in COMMANDS:
            text = shown(command, port)
            transcript.append(f'$ {text}')
            if command == SERVE:
                log = open(Path(folder) / 'serve.log', 'wb')
                service = subprocess.Popen(['dns', 'serve', '--port', str(port)], cwd=folder, env=env, stdout=log,
                                           stderr=subprocess.STDOUT)
                log.close()
                _wait_for_service(service, port, Path(folder) / 'serve.log')
                continue
            result = subprocess.run(['bash', '-c', text], cwd=folder, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, timeout=COMMAND_TIMEOUT_S)
            output = terminal_text(result.stdout)
            if result.returncode != 0:
                raise RuntimeError(f'`{text}` exited with {result.returncode}:\n{output}')
            if output:
                transcript.append(output)
    finally:
        if service is not None:
            stop_process(service)
    return '\n'.join(transcript)


def _wait_for_service(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f'dns serve exited with {process.returncode}:\n{log.read_text()}')
        try:
            if httpx.get(f'http://127.0.0.1:{port}/health', timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f'dns serve did not answer on port {port} in {START_TIMEOUT_S} s:\n{log.read_text()}')


def readme_commands(text: str) -> List[str]:
    """The ``$ `` lines of the README's quick-start block, in order."""
    start, end = (text.index(m) for m in MARKERS)
    return [line[2:] for line in text[start:end].splitlines() if line.startswith('$ ')]


def write_into_readme(transcript: str) -> None:
    text = README.read_text()
    start, end = MARKERS
    pattern = re.compile(re.escape(start) + '.*?' + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f'{README} has no {start} ... {end} block')
    README.write_text(pattern.sub(lambda _: f'{start}\n```text\n{transcript}\n```\n{end}', text))
    print(f'{README.relative_to(ROOT)}: quick start output updated', file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--write', action='store_true', help='replace the quick-start output in README.md')
    parser.add_argument('--port', type=int, default=DEFAULT_PORT, help='port of `dns serve` (default: 8000)')
    args = parser.parse_args()
    from support.measure import torch_home_for_subprocesses, use_copy_model
    use_copy_model()
    home = torch_home_for_subprocesses()
    with tempfile.TemporaryDirectory(prefix='dns-quickstart-') as folder:
        make_quickstart_corpus(Path(folder))
        transcript = run_quickstart(Path(folder), home, args.port)
    print(transcript)
    if args.write:
        write_into_readme(transcript)
    return 0


if __name__ == '__main__':
    sys.exit(main())
