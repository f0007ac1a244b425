"""`dns serve` latency: search by an indexed file (path=) and by an uploaded 10-second
clip, with 1 and with 20 concurrent clients, against the one-shot `dns search` command.

Builds the retrieval benchmark's corpus (3 originals with 8 copies each, 3 unrelated),
indexes it with `dns index`, starts `dns serve` on 127.0.0.1 and times whole HTTP
requests from client threads. Writes its table into docs/benchmarks.md (block `service`)."""
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from common import (ROOT, benchmark_parser, machine, markdown_table, torch_home_for_subprocesses, update_benchmarks,
                    use_timing_weights)

sys.path.insert(0, str(ROOT / 'tests'))
from support.corpus import make_corpus  # noqa: E402
from support.service_process import DNS, ServiceProcess, dns_env  # noqa: E402
from support.video_files import make_video, moving_scene  # noqa: E402

CLIP_SECONDS, CLIP_FPS, CLIP_SIZE = 10, 25, (360, 640)


def requests_of(client_count: int, per_client: int, send) -> tuple:
    """Latencies (s) of ``client_count`` threads each sending ``per_client`` requests
    at once, and the number of errors (an exception or a status other than 200)."""
    def client(_):
        times, errors = [], 0
        for _ in range(per_client):
            start = time.perf_counter()
            try:
                ok = send().status_code == 200
            except Exception:  # counted, not raised: the figure is the error count
                ok = False
            times.append(time.perf_counter() - start)
            errors += not ok
        return times, errors
    with ThreadPoolExecutor(client_count) as pool:
        results = list(pool.map(client, range(client_count)))
    return [t for times, _ in results for t in times], sum(e for _, e in results)


def percentile(values, q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    args = benchmark_parser().parse_args()
    use_timing_weights()
    torch_home = torch_home_for_subprocesses()
    with tempfile.TemporaryDirectory(prefix='dns-bench-service-') as folder:
        root = Path(folder)
        corpus = make_corpus(root / 'videos', originals=3, unrelated=3)
        clip = make_video(root / 'clip.mp4', moving_scene(CLIP_SECONDS * CLIP_FPS, *CLIP_SIZE, seed=7), fps=CLIP_FPS)
        env = dns_env(torch_home)
        subprocess.run([str(DNS), 'index', '--no-progress', 'videos'], cwd=root, env=env, check=True,
                       capture_output=True)
        query = os.path.relpath(corpus.originals[0], root)

        one_shot = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([str(DNS), 'search', query, '--json'], cwd=root, env=env, check=True, capture_output=True)
            one_shot.append(time.perf_counter() - start)

        clip_bytes = clip.read_bytes()
        rows, errors_total = [], 0
        with ServiceProcess('dns-index', root, torch_home) as running, running.client() as client:
            by_path = lambda: client.post('/search', data={'path': query, 'k': 10, 'rerank': 0.1})  # noqa: E731
            upload = lambda: client.post('/search', files={'video': ('clip.mp4', clip_bytes, 'video/mp4')},  # noqa: E731
                                         data={'k': 10, 'rerank': 0.1})
            by_path(), upload()  # warm: first calls pay lazy initialisation
            for name, send, plan in (('indexed file (path=)', by_path, ((1, 50), (20, 10))),
                                     (f'uploaded {CLIP_SECONDS}-second clip', upload, ((1, 10), (20, 2)))):
                for clients, per_client in plan:
                    start = time.perf_counter()
                    times, errors = requests_of(clients, per_client, send)
                    wall = time.perf_counter() - start
                    errors_total += errors
                    rows.append([name, clients, len(times), f'{1000 * statistics.median(times):.0f}',
                                 f'{1000 * percentile(times, 99):.0f}', f'{len(times) / wall:.1f}', errors])
                    print(rows[-1], flush=True)
    table = markdown_table(['query', 'concurrent clients', 'requests', 'p50 (ms)', 'p99 (ms)', 'requests/s',
                            'errors'], rows)
    text = (f'{table}\n\nOne-shot `dns search {Path(query).name} --json` (start-up, models, Milvus Lite, search): '
            f'{statistics.median(one_shot):.1f} s wall (median of 3). Corpus: {len(corpus.all_videos())} files of '
            f'8 s at 128x96 indexed at 1 frame/s; the clip: {CLIP_SECONDS} s of {CLIP_SIZE[1]}x{CLIP_SIZE[0]} H.264 '
            f'at {CLIP_FPS} frames/s, decoded and extracted per request; k=10, re-rank 0.1. Requests are served one '
            f'at a time (one lock around the models and the index), so with 20 clients a request waits for those '
            f'ahead of it. Deterministic test weights. {machine()}')
    print(text)
    if errors_total:
        print(f'{errors_total} request(s) failed', file=sys.stderr)
    if not args.print_only:
        update_benchmarks('service', text)


if __name__ == '__main__':
    main()
