"""The review page on a big group, in headless Chromium: one clip and 37 re-encodings
of it (38 videos, one group) and 3 unrelated videos, indexed with the copy model;
`dns serve` on 127.0.0.1. Measured: `/duplicates` cold and warm, the page's first and
second load (until every group and thumbnail shows) with its request count, one
decision (click to its row showing it) and one group action with its undo.

The page is driven only through what every version of it has (rows, buttons with
data-decision, the list of decisions), so the same script measures an older checkout
when run with that checkout's `dns` (its Python).

Then, without a browser, `/duplicates` as the page asks it (with the copied segments) on
an index of long videos: 22 four-minute hosts and 4 clips copied from them
(tests/support/clip_corpus.py): cold, warm, and after a decision (which regroups the
kept searches instead of searching again)."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import benchmark_parser, machine, markdown_table, torch_home_for_subprocesses, update_benchmarks, \
    use_copy_model

from support.browser import PAGE_LOADED, THUMBNAILS_SHOWN, chromium, missing_browser, wait_for
from support.clip_corpus import make_clip_corpus
from support.corpus import varied_scene
from support.service_process import DNS, ServiceProcess, dns_env
from support.video_files import make_video

REVIEW_PAUSE_S = 5.0   # longer than the service's idle release of Milvus Lite (2 s)
VARIANTS = 37     # re-encodings of the clip: with it, a group of 38 videos
UNRELATED = 3
SECONDS, FPS, SIZE = 8, 4, (96, 128)
RESOURCES = "return performance.getEntriesByType('resource').length"
DUPLICATES = '/duplicates?segments=true'  # what the page asks
HOSTS, CLIPS, HOST_SECONDS = 22, 4, 240
# The browser keeps 250 entries by default: a decision that reloads the page passes that.
COUNT_FROM_NOW = 'performance.setResourceTimingBufferSize(100000); performance.clearResourceTimings();'


def make_group(folder: Path) -> None:
    folder.mkdir(parents=True)
    frames = varied_scene(SECONDS * FPS, *SIZE, seed=11)
    make_video(folder / 'clip.mp4', frames, fps=FPS)
    for i in range(VARIANTS):  # each its own bytes, so its own content id
        make_video(folder / f'clip_v{i:02d}.mp4', frames, fps=FPS, crf=20 + i % 20, x264_defaults=i >= 20)
    for j in range(UNRELATED):
        make_video(folder / f'other{j}.mp4', varied_scene(SECONDS * FPS, *SIZE, seed=500 + j), fps=FPS)


def load(driver, url: str):
    start = time.perf_counter()
    driver.get(url)
    wait_for(driver, PAGE_LOADED)
    shown = time.perf_counter() - start
    wait_for(driver, THUMBNAILS_SHOWN)
    return shown, time.perf_counter() - start, driver.execute_script(RESOURCES)


def first_row(driver):
    return driver.execute_script("const r = [...document.querySelectorAll('tr.pair')].find(r => !r.hidden);"
                                 'return [r.dataset.a, r.dataset.b];')


def decide_one(driver, pause: float = 0.0):
    """Click 'copy' on the first row ``pause`` seconds after the page showed; seconds
    until its row shows the decision, and requests."""
    a, b = first_row(driver)
    time.sleep(pause)
    row = f'tr.pair[data-a="{a}"][data-b="{b}"]'
    driver.execute_script(COUNT_FROM_NOW)
    start = time.perf_counter()
    driver.find_element('css selector', f'{row} button[data-decision="copy"]').click()
    wait_for(driver, f"const r = document.querySelector('{row}');"
                     "return r && (r.querySelector('.decision') || {}).textContent === 'decided: copy';", timeout=600)
    took = time.perf_counter() - start
    wait_for(driver, PAGE_LOADED)
    wait_for(driver, f'return document.querySelector(\'li.decided[data-a="{a}"][data-b="{b}"]\') !== null;')
    return took, driver.execute_script(RESOURCES), (a, b)


def group_action(driver, pairs: int):
    """'whole group: not a copy' (accepting a confirmation where one is asked); seconds
    until every pair is in the list of decisions."""
    start = time.perf_counter()
    driver.find_element('css selector', 'section.group button[data-decision="not_copy"]').click()
    try:
        driver.switch_to.alert.accept()
    except Exception:  # no confirmation asked
        pass
    wait_for(driver, f"return document.querySelectorAll('li.decided').length >= {pairs}"
                     ' && document.body.dataset.loaded === "true";', timeout=600)
    return time.perf_counter() - start


def timed_get(client, url: str):
    start = time.perf_counter()
    answer = client.get(url)
    assert answer.status_code == 200, answer.text
    return time.perf_counter() - start, answer.json()


def after_a_decision(client, pair) -> float:
    """Seconds of `/duplicates` once a decision changed the catalog (the decision forgotten after)."""
    client.post('/decisions', json={'pairs': [list(pair)], 'decision': 'copy'})
    try:
        return timed_get(client, DUPLICATES)[0]
    finally:
        client.post('/decisions', json={'pairs': [list(pair)], 'decision': None})


def hosts_rows(root: Path, home: str):
    """`/duplicates` on the index of long hosts: (rows, index note)."""
    corpus = make_clip_corpus(root / 'clips', hosts=HOSTS, copies=CLIPS, negatives=0, host_seconds=HOST_SECONDS)
    start = time.perf_counter()
    subprocess.run([str(DNS), 'index', '--no-progress', '--index', 'hosts-index', 'clips'], cwd=root,
                   env=dict(dns_env(home), DNS_COMPILE='0'), check=True, capture_output=True)
    indexed = time.perf_counter() - start
    with ServiceProcess('hosts-index', root, home) as running, running.client(timeout=1200) as client:
        cold, answer = timed_get(client, DUPLICATES)
        warm, _ = timed_get(client, DUPLICATES)
        pair = next((p['a'], p['b']) for g in answer['groups'] for p in g['pairs'])
        decided = after_a_decision(client, pair)
    groups = len(answer['groups'])
    rows = [[f'`{DUPLICATES}` cold', f'{cold:.2f} s'], [f'`{DUPLICATES}` warm', f'{1000 * warm:.0f} ms'],
            ['the same after a decision', f'{1000 * decided:.0f} ms']]
    note = (f'{HOSTS} hosts of {HOST_SECONDS} s (160x90, 2 frames/s, 1 sampled a second) and {len(corpus.copies)} '
            f'clips copied from them, indexed in {indexed:.0f} s: {groups} group(s)')
    return rows, note


def main() -> None:
    parser = benchmark_parser()
    parser.add_argument('--no-hosts', action='store_true',
                        help='the 38-video group only, printed (the long hosts take some 20 minutes to index)')
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        sys.exit(f'cannot run: {reason}')
    use_copy_model()
    home = torch_home_for_subprocesses()
    with tempfile.TemporaryDirectory(prefix='dns-bench-review-') as folder:
        root = Path(folder)
        make_group(root / 'videos')
        subprocess.run([str(DNS), 'index', '--no-progress', 'videos'], cwd=root, env=dict(dns_env(home), DNS_COMPILE='0'),
                       check=True, capture_output=True)
        rows = []
        with ServiceProcess('dns-index', root, home) as running, running.client(timeout=600) as client:
            cold, answer = timed_get(client, DUPLICATES)
            warm, _ = timed_get(client, DUPLICATES)
            group = max(answer['groups'], key=lambda g: len(g['videos']))
            pairs = len(group['pairs'])
            decided = after_a_decision(client, (group['pairs'][0]['a'], group['pairs'][0]['b']))
            rows.append([f'`{DUPLICATES}`, cold / warm / after a decision',
                         f'{cold:.2f} s / {1000 * warm:.0f} ms / {1000 * decided:.0f} ms', ''])
            driver = chromium()
            try:
                shown, thumbs, requests = load(driver, running.url)
                rows.append(['first load: groups shown / thumbnails shown', f'{shown:.2f} s / {thumbs:.2f} s',
                             f'{requests} requests'])
                shown, thumbs, requests = load(driver, running.url)
                rows.append(['second load: groups shown / thumbnails shown', f'{shown:.2f} s / {thumbs:.2f} s',
                             f'{requests} requests'])
                took, requests, pair = decide_one(driver)
                rows.append(['one decision, click to its row showing it', f'{1000 * took:.0f} ms',
                             f'{requests} requests'])
                client.post('/decisions', json={'pairs': [list(pair)], 'decision': None})
                load(driver, running.url)
                # A reviewer watches the copy first: past the service's idle release of Milvus Lite.
                took, requests, pair = decide_one(driver, pause=REVIEW_PAUSE_S)
                rows.append([f'one decision {REVIEW_PAUSE_S:g} s after the page showed', f'{1000 * took:.0f} ms',
                             f'{requests} requests'])
                client.post('/decisions', json={'pairs': [list(pair)], 'decision': None})
                load(driver, running.url)
                took = group_action(driver, pairs)
                rows.append([f'group action on {pairs} pairs', f'{took:.2f} s', ''])
                undo = driver.find_elements('css selector', 'button.undo-group')
                if undo:
                    start = time.perf_counter()
                    undo[0].click()
                    wait_for(driver, "return document.querySelectorAll('li.decided').length === 0", timeout=600)
                    rows.append(['its undo', f'{1000 * (time.perf_counter() - start):.0f} ms', '1 click'])
                else:
                    rows.append(['its undo', 'one "undo" per pair', f'{pairs} clicks'])
            finally:
                driver.quit()
                client.post('/decisions', json={'pairs': [[p['a'], p['b']] for p in group['pairs']], 'decision': None})
        load_average = os.getloadavg()[0]
        table = markdown_table(['what', 'time', 'traffic'], rows)
        if args.no_hosts:
            print(table + f'\n\n{machine()}; load average {load_average:.1f} at the end.')
            return
        host_rows, host_note = hosts_rows(root, home)
        load_average = os.getloadavg()[0]
        note = (f'\n\nIndex: {VARIANTS + 1} encodings of one {SECONDS}-s {SIZE[1]}x{SIZE[0]} clip (one group of '
                f'{len(group["videos"])} videos, {pairs} pairs) and {UNRELATED} unrelated videos, the copy model, '
                f'1 frame/s; `dns serve` with its defaults, headless Chromium on the same machine.\n\n'
                + markdown_table(['long hosts', 'time'], host_rows) + f'\n\nIndex: {host_note}; the copy model. '
                f'{machine()}; load average {load_average:.1f} at the end (other work on the machine).')
        print(table + note)
        if not args.print_only:
            update_benchmarks('review-page', table + note)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
