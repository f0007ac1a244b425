"""`dns serve` under load: 1, 20 and 100 concurrent clients searching by an indexed
file (path=), uploading a 10-second clip, and browsing the review page (video records,
thumbnails, pairs, heatmaps, decisions) mixed with both; a search issued while
`/duplicates` computes; the service's memory (it and its worker processes).

Builds the retrieval benchmark's corpus (3 originals with 8 copies each, 3 unrelated),
indexes it with `dns index`, starts `dns serve` on 127.0.0.1 and times whole HTTP
requests from client threads, one HTTP client each. A 503 (the service's designed
answer to a full queue) is counted apart from errors. Searches by path at 1 and 20
clients run in alternating rounds: the machine's speed drifts by a tenth and more over
minutes, and a ratio of two rates measured minutes apart would carry that drift. Writes
its tables into docs/benchmarks.md (block `service`).

``--long-query``: instead, a search by path of a 4-minute indexed video among 22
four-minute hosts (block `service-long-query`), at 1 client and at 20 in alternating
rounds. The hosts' fine features are generated (shots of 6 to 20 s, each a direction of
a shared low-rank model plus the video's own, drifting within the shot) and committed
straight into the index: extracting 88 minutes of video would take some 20 minutes of
these 2 cores, and the search reads only what an index stores."""
import itertools
import os
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from common import (benchmark_parser, machine, markdown_table, torch_home_for_subprocesses, update_benchmarks,
                    use_timing_weights)
from support.corpus import make_corpus
from support.process_memory import tree_peak
from support.service_process import DNS, ServiceProcess, dns_env
from support.video_files import make_video, moving_scene

CLIP_SECONDS, CLIP_FPS, CLIP_SIZE = 10, 25, (360, 640)
CLIENTS = (1, 20, 100)
BY_PATH = 'indexed file (path=)'
ROUNDS = 3  # of searches by path at 1 client, then at 20
# Requests per client (per round, for searches by path at 1 and 20 clients): enough for a
# p99 at one client, a bounded run at 100, and runs of searches by path some seconds long.
PER_CLIENT = {BY_PATH: {1: 50, 20: 5, 100: 2},
              f'uploaded {CLIP_SECONDS}-second clip': {1: 4, 20: 1, 100: 1},
              'page traffic with searches and uploads': {1: 14, 20: 7, 100: 7}}


class Outcome:
    def __init__(self):
        self.times, self.errors, self.busy = [], 0, 0
        self.lock = threading.Lock()

    def add(self, seconds: float, status: int) -> None:
        with self.lock:
            if status == 503:  # the designed answer to a full queue, with Retry-After
                self.busy += 1
            else:
                self.times.append(seconds)
                self.errors += status != 200

    @classmethod
    def merged(cls, outcomes) -> 'Outcome':
        out = cls()
        for o in outcomes:
            out.times += o.times
            out.errors += o.errors
            out.busy += o.busy
        return out


def run_clients(running: ServiceProcess, client_count: int, per_client: int, plan) -> tuple:
    """``client_count`` threads with a client each send ``per_client`` requests; the
    i-th request of client c is ``plan(c, i)(client)``. Returns the outcome and the wall time."""
    outcome = Outcome()
    # Made before the clock starts: building an HTTP client costs milliseconds of CPU
    # (its TLS context), which 20 or 100 of them would take from the service being timed.
    https = [running.client(timeout=600) for _ in range(client_count)]

    def client(number):
        http = https[number]
        for i in range(per_client):
            start = time.perf_counter()
            try:
                status = plan(number, i)(http).status_code
            except httpx.HTTPError:  # counted, not raised: the figure is the error count
                status = -1
            outcome.add(time.perf_counter() - start, status)

    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(client_count) as pool:
            list(pool.map(client, range(client_count)))
        return outcome, time.perf_counter() - start
    finally:
        for http in https:
            http.close()


def row(name: str, clients: int, outcome: Outcome, wall: float) -> list:
    times = outcome.times or [float('nan')]
    return [name, clients, len(outcome.times) + outcome.busy, f'{1000 * statistics.median(times):.0f}',
            f'{1000 * float(np.percentile(times, 99)):.0f}', f'{len(outcome.times) / wall:.1f}', outcome.busy,
            outcome.errors]


LONG_HOSTS, LONG_SECONDS = 22, 240
LONG_PER_CLIENT = {1: 20, 20: 3}


def main() -> None:
    parser = benchmark_parser()
    parser.add_argument('--long-query', action='store_true',
                        help='only a 4-minute query among 22 four-minute hosts (block service-long-query)')
    args = parser.parse_args()
    use_timing_weights()
    if args.long_query:
        return long_query(args)
    torch_home = torch_home_for_subprocesses()
    with tempfile.TemporaryDirectory(prefix='dns-bench-service-') as folder:
        root = Path(folder)
        corpus = make_corpus(root / 'videos', originals=3, unrelated=3)
        clip = make_video(root / 'clip.mp4', moving_scene(CLIP_SECONDS * CLIP_FPS, *CLIP_SIZE, seed=7), fps=CLIP_FPS)
        env = dict(dns_env(torch_home), DNS_COMPILE='0')  # indexing is not what is measured here
        subprocess.run([str(DNS), 'index', '--no-progress', 'videos'], cwd=root, env=env, check=True,
                       capture_output=True)
        query = os.path.relpath(corpus.originals[0], root)
        clip_bytes = clip.read_bytes()

        rows, notes = [], []
        with ServiceProcess('dns-index', root, torch_home) as running, running.client() as client:
            def by_path(http):
                return http.post('/search', data={'path': query, 'k': 10, 'rerank': 0.1})

            def upload(http):
                return http.post('/search', files={'video': ('clip.mp4', clip_bytes, 'video/mp4')},
                                 data={'k': 10, 'rerank': 0.1})

            found = by_path(client).json()['results']
            ids = [r['video_id'] for r in found]
            page = [by_path,
                    lambda http: http.get(f'/videos/{ids[1]}'),
                    lambda http: http.get(f'/videos/{ids[1]}/thumbnails/0.jpg'),
                    lambda http: http.get(f'/pairs/{ids[0]}/{ids[1]}'),
                    lambda http: http.get(f'/pairs/{ids[0]}/{ids[1]}/heatmap.png'),
                    lambda http: http.get('/decisions')]
            upload(client)  # warm: first calls pay lazy initialisation
            plans = {BY_PATH: lambda c, i: by_path,
                     f'uploaded {CLIP_SECONDS}-second clip': lambda c, i: upload,
                     # One client in five posts an upload first; the rest browse and search.
                     'page traffic with searches and uploads':
                         lambda c, i: upload if (i == 0 and c % 5 == 0) else page[i % len(page)]}
            rounds = {1: [], 20: []}  # searches by path: (outcome, wall time) of each round
            with tree_peak(running.process.pid) as memory:
                # Untimed: the first run at 20 clients pays for the threads that the service,
                # its Milvus Lite process and this script start on demand.
                run_clients(running, 20, 2, plans[BY_PATH])
                for _ in range(ROUNDS):
                    for clients, runs in rounds.items():
                        runs.append(run_clients(running, clients, PER_CLIENT[BY_PATH][clients], plans[BY_PATH]))
                done = {(BY_PATH, clients): (Outcome.merged(o for o, _ in runs), sum(w for _, w in runs))
                        for clients, runs in rounds.items()}
                for clients in CLIENTS:
                    for name, plan in plans.items():
                        if (name, clients) not in done:
                            done[name, clients] = run_clients(running, clients, PER_CLIENT[name][clients], plan)
                        rows.append(row(name, clients, *done[name, clients]))
                        print(rows[-1], flush=True)
            by_path_rate = {r[1]: float(r[5]) for r in rows if r[0] == BY_PATH}
            rates = {clients: [len(o.times) / w for o, w in runs] for clients, runs in rounds.items()}
            per_round = ', '.join(f'{many / one:.2f}' for one, many in zip(rates[1], rates[20]))
            notes.append(f'Searches by path: 20 clients get {by_path_rate[20] / by_path_rate[1]:.2f}x the requests/s '
                         f'of one ({ROUNDS} alternating rounds of one client then 20; round by round {per_round}), '
                         f'100 clients {by_path_rate[100] / by_path_rate[1]:.2f}x.')
            idle = statistics.median(run_clients(running, 1, 20, lambda c, i: by_path)[0].times)
            during, dedup_s = searches_during_duplicates(running, by_path, corpus, root)
            notes.append(f'A search by path issued while `/duplicates` (re-rank 1.0, its first request: it searches) '
                         f'computed for {dedup_s:.2f} s: p50 {1000 * statistics.median(during):.0f} ms, '
                         f'longest {1000 * max(during):.0f} ms, over {len(during)} searches; the same search idle: '
                         f'p50 {1000 * idle:.0f} ms.')
            notes.append(f'Peak anonymous memory of the service and its processes (workers, Milvus Lite) over the '
                         f'runs above: {memory.peak_mb:.0f} MB.')
            health = client.get('/health').json()
    table = markdown_table(['requests', 'concurrent clients', 'requests', 'p50 (ms)', 'p99 (ms)', 'requests/s',
                            '503 (queue full)', 'errors'], rows)
    text = (f'{table}\n\n' + '\n'.join(notes) + '\n\n'
            f'Corpus: {len(corpus.all_videos())} files of 8 s at 128x96 indexed at 1 frame/s; the clip: '
            f'{CLIP_SECONDS} s of {CLIP_SIZE[1]}x{CLIP_SIZE[0]} H.264 at {CLIP_FPS} frames/s, decoded and '
            f'extracted per request; k=10, re-rank 0.1. Page traffic: each client cycles through a search by path, '
            f'a video record, a thumbnail, a pair, its heatmap and the decisions; one client in five first posts '
            f'an upload. p50/p99 count answered requests (200 or error), not the 503s; requests/s likewise. '
            f'Service: `dns serve` with its defaults ({health_note(health)}). Deterministic test weights. '
            f'{machine()}')
    print(text)
    if not args.print_only:
        update_benchmarks('service', text)


def long_query(args) -> None:
    """A 4-minute indexed video searched by path among 22 four-minute hosts: p50 at one
    client, and 20 clients' rate against one's in alternating rounds."""
    torch_home = torch_home_for_subprocesses()
    with tempfile.TemporaryDirectory(prefix='dns-bench-long-') as folder:
        root = Path(folder)
        paths = long_hosts(root / 'dns-index')
        with ServiceProcess('dns-index', root, torch_home) as running, running.client() as client:
            def by_path(http):
                return http.post('/search', data={'path': paths[0], 'k': 10, 'rerank': 0.1})
            found = by_path(client).json()['results']   # warm: opens the collections
            run_clients(running, 20, 2, lambda c, i: by_path)   # untimed: threads started on demand
            rounds = {1: [], 20: []}
            for _ in range(ROUNDS):
                for clients, runs in rounds.items():
                    runs.append(run_clients(running, clients, LONG_PER_CLIENT[clients], lambda c, i: by_path))
    rows, rates = [], {}
    for clients, runs in rounds.items():
        outcome = Outcome.merged(o for o, _ in runs)
        rows.append(row(BY_PATH, clients, outcome, sum(w for _, w in runs)))
        rates[clients] = [len(o.times) / w for o, w in runs]
        print(rows[-1], flush=True)
    per_round = ', '.join(f'{many / one:.2f}' for one, many in zip(rates[1], rates[20]))
    text = (markdown_table(['requests', 'concurrent clients', 'requests', 'p50 (ms)', 'p99 (ms)', 'requests/s',
                            '503 (queue full)', 'errors'], rows) + '\n\n'
            f'20 clients get {float(rows[1][5]) / float(rows[0][5]):.2f}x the requests/s of one ({ROUNDS} '
            f'alternating rounds; round by round {per_round}). The query: one of {LONG_HOSTS} indexed videos of '
            f'{LONG_SECONDS} s (1 frame/s), searched by path, k=10, re-rank 0.1; {len(found)} results. Fine '
            f'features generated and committed straight into the index (shots of 6 to 20 s). Service: `dns serve` '
            f'with its defaults. Deterministic test weights. {machine()}')
    print(text)
    if not args.print_only:
        update_benchmarks('service-long-query', text)


def long_hosts(folder: Path, seed: int = 0) -> list:
    """An index of ``LONG_HOSTS`` videos of ``LONG_SECONDS`` sampled frames, committed
    from generated fine features; returns their paths."""
    from distill_and_select.core import VideoRepresentation
    from distill_and_select.retrieval import VideoIndex
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((48, 512)).astype(np.float32)
    paths = []
    with VideoIndex(folder, create=True) as index:
        for v in range(LONG_HOSTS):
            tint = rng.standard_normal(512).astype(np.float32)
            frames, shots = [], 0
            while len(frames) < LONG_SECONDS:
                shot = rng.standard_normal(48).astype(np.float32) @ basis / np.sqrt(48) + 0.6 * tint
                regions = shot + rng.standard_normal((9, 512)).astype(np.float32)
                for _ in range(int(rng.integers(6, 21))):
                    regions = regions + 0.3 * rng.standard_normal((9, 512)).astype(np.float32)
                    frames.append(regions)
                shots += 1
            fine = np.stack(frames[:LONG_SECONDS]) / np.sqrt(512)
            coarse = rng.standard_normal(1024).astype(np.float32)
            path = str(folder.parent / f'host{v:02d}.mp4')
            index.commit(path, f'{v:064x}', VideoRepresentation(fine.astype(np.float32),
                                                               coarse / np.linalg.norm(coarse), 0.5))
            paths.append(path)
        index.sync()
    return paths


def health_note(health: dict) -> str:
    workers = health.get('workers')
    if not workers:
        return 'one lock around the models and the index; uploads decoded in the service process'
    return f'{len(workers["pids"])} upload worker process(es)'


def searches_during_duplicates(running: ServiceProcess, by_path, corpus, root) -> tuple:
    """Latencies of searches sent one after another while a /duplicates request runs,
    and how long that request took. Nothing asked /duplicates before, so it searches
    (its searches are kept per state of the videos: a decision would not make it search
    again)."""
    with running.client(timeout=600) as http:
        done, took = threading.Event(), []

        def dedup():
            with running.client(timeout=600) as other:
                start = time.perf_counter()
                other.get('/duplicates', params={'rerank': 1.0}).raise_for_status()
                took.append(time.perf_counter() - start)
            done.set()

        thread = threading.Thread(target=dedup)
        thread.start()
        time.sleep(0.05)  # the /duplicates request is in before the first search
        times = []
        for _ in itertools.count():
            if done.is_set():
                break
            start = time.perf_counter()
            by_path(http).raise_for_status()
            times.append(time.perf_counter() - start)
        thread.join()
    return times or [float('nan')], took[0]


if __name__ == '__main__':
    main()
