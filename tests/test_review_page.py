"""The review page in a real browser: headless Chromium driven by Selenium against a
real `dns serve` subprocess on an index of encoded videos (the copy model)."""
import json
import subprocess

import pytest

from support.browser import chromium, load_page, missing_browser, open_pair, wait_for
from support.service_process import DNS, ServiceProcess, dns_env

pytestmark = pytest.mark.skipif(missing_browser() is not None, reason=f'no browser: {missing_browser()}')

ORIGINAL = 'videos/orig0.mp4'
NOT_A_COPY = 'videos/orig0_cropped.mp4'   # marked not a copy in the page
A_COPY = 'videos/orig0_logo.mp4'          # marked a copy


@pytest.fixture(scope='module')
def page(review_index):
    root, torch_home = review_index
    with ServiceProcess('dns-index', root, torch_home) as running:
        driver = chromium()
        try:
            yield driver, running, root, torch_home
        finally:
            driver.quit()


def rows(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('tr.pair')].map(r => [r.dataset.a, r.dataset.b,"
        " (r.querySelector('.decision') || {}).textContent || null]);")


def decided(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('li.decided')].map(li => [li.dataset.a, li.dataset.b,"
        " li.dataset.decision]);")


def click_decision(driver, a, b, decision):
    row = driver.execute_script(f'return document.querySelector(\'tr.pair[data-a="{a}"][data-b="{b}"]\')')
    row.find_element('css selector', f'button[data-decision="{decision}"]').click()
    wait_for(driver, f'return document.querySelector(\'li.decided[data-a="{a}"][data-b="{b}"]'
                     f'[data-decision="{decision}"]\') !== null')


@pytest.mark.slow
def test_review_decide_reload_and_dedup_follows(page):
    driver, running, root, torch_home = page
    load_page(driver, running.url)
    groups = driver.find_elements('css selector', 'section.group')
    assert groups, 'no group rendered'
    widths = driver.execute_script("return [...document.querySelectorAll('.thumbs img')].map(i => i.naturalWidth)")
    videos = driver.find_elements('css selector', '.video')
    assert len(widths) == 4 * len(videos) and all(w > 0 for w in widths)
    meta = driver.find_element('css selector', f'.video[data-path="{ORIGINAL}"] .meta').text
    assert '0:08.0' in meta and '128×96' in meta
    pairs = [(a, b) for a, b, _ in rows(driver)]
    assert (ORIGINAL, NOT_A_COPY) in pairs and (ORIGINAL, A_COPY) in pairs

    open_pair(driver, ORIGINAL, A_COPY)
    assert driver.find_elements('css selector', '.timeline .segment'), 'no copied segment on the timeline'

    click_decision(driver, ORIGINAL, NOT_A_COPY, 'not_copy')
    click_decision(driver, ORIGINAL, A_COPY, 'copy')
    load_page(driver, running.url)  # a reload: what shows now comes from the catalog
    assert [ORIGINAL, NOT_A_COPY, 'not_copy'] in decided(driver)
    assert [ORIGINAL, A_COPY, 'copy'] in decided(driver)
    shown = {(a, b): state for a, b, state in rows(driver)}
    assert (ORIGINAL, NOT_A_COPY) not in shown
    assert shown[(ORIGINAL, A_COPY)] == 'decided: copy'

    # The command line follows the decisions too (the service lets go of Milvus Lite when idle).
    result = subprocess.run([str(DNS), 'dedup', '--json'], cwd=root, env=dns_env(torch_home), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    joined = {(p['a'], p['b']): p.get('decision') for g in out['groups'] for p in g['pairs']}
    assert (ORIGINAL, NOT_A_COPY) not in joined and joined[(ORIGINAL, A_COPY)] == 'copy'
    assert {(d['a'], d['b'], d['decision']) for d in out['decisions']} >= {
        (ORIGINAL, NOT_A_COPY, 'not_copy'), (ORIGINAL, A_COPY, 'copy')}
    # Undone from the page: the index is shared with other tests.
    load_page(driver, running.url)
    for a, b in ((ORIGINAL, NOT_A_COPY), (ORIGINAL, A_COPY)):
        driver.find_element('css selector', f'li.decided[data-a="{a}"][data-b="{b}"] button.undo').click()
        wait_for(driver, f'return document.querySelector(\'li.decided[data-a="{a}"][data-b="{b}"]\') === null')
