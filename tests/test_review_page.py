"""The review page in a real browser: headless Chromium driven by Selenium against a
real `dns serve` subprocess on an index of encoded videos (the copy model)."""
import json
import subprocess

import pytest

from support.browser import (chromium, load_page, missing_browser, open_pair, row_selector, wait_for,
                             wait_for_detail)
from support.service_process import DNS, ServiceProcess, dns_env

pytestmark = pytest.mark.skipif(missing_browser() is not None, reason=f'no browser: {missing_browser()}')

ORIGINAL = 'videos/orig0.mp4'
NOT_A_COPY = 'videos/orig0_cropped.mp4'   # marked not a copy in the page
A_COPY = 'videos/orig0_logo.mp4'          # marked a copy
SHIFTED = 'videos/orig0_shifted.mp4'      # the original from 2 s on: the copy starts 2 s into orig0


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


def server_decisions(running):
    with running.client() as client:
        return {(d['a'], d['b']): (d['decision'], d['bulk']) for d in client.get('/decisions').json()}


def forget_all(running):
    """The index is shared with other tests: leave it without decisions."""
    pairs = [list(key) for key in server_decisions(running)]
    if pairs:
        with running.client() as client:
            assert client.post('/decisions', json={'pairs': pairs, 'decision': None}).status_code == 200


def show_every_pair(driver):
    """A big group shows each video against its representative first: show the rest too."""
    for button in driver.find_elements('css selector', 'button.more-pairs'):
        button.click()


def click_decision(driver, a, b, decision):
    row = driver.find_element('css selector', row_selector(a, b))
    row.find_element('css selector', f'button[data-decision="{decision}"]').click()
    wait_for(driver, f'return document.querySelector(\'li.decided[data-a="{a}"][data-b="{b}"]'
                     f'[data-decision="{decision}"]\') !== null')


def press(driver, *keys):
    from selenium.webdriver.common.action_chains import ActionChains
    for key in keys:
        ActionChains(driver).send_keys(key).perform()


def current(driver):
    return driver.execute_script("const r = document.querySelector('tr.pair.current'); return r && [r.dataset.a, r.dataset.b];")


@pytest.mark.slow
def test_review_decide_reload_and_dedup_follows(page):
    driver, running, root, torch_home = page
    load_page(driver, running.url)
    groups = driver.find_elements('css selector', 'section.group')
    assert groups, 'no group rendered'
    widths = driver.execute_script("return [...document.querySelectorAll('.thumbs img')].map(i => i.naturalWidth)")
    videos = driver.find_elements('css selector', '.video')
    assert len(widths) == 4 * len(videos) and all(w > 0 for w in widths)
    meta = driver.execute_script(f'return document.querySelector(\'.video[data-path="{ORIGINAL}"] .meta\').textContent')
    assert '0:08.0' in meta and '128×96' in meta
    pairs = [(a, b) for a, b, _ in rows(driver)]
    assert (ORIGINAL, NOT_A_COPY) in pairs and (ORIGINAL, A_COPY) in pairs
    show_every_pair(driver)

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


def test_keyboard_flow_plays_the_copy_and_decides_in_place(page):
    """By keyboard alone: move, open a pair (both players parked at the copied segment),
    play the match (both play from there), decide (the row changes in place, the next
    undecided pair is selected, no reload), undo, and the help overlay."""
    driver, running, _, _ = page
    forget_all(running)
    load_page(driver, running.url)
    driver.execute_script('window.notReloaded = true;')
    # Times as the page writes them: rounded before carrying into minutes, hours from an hour on.
    assert driver.execute_script('return [clock(59.96), clock(3725), clock(8), clock(0.04)]') == [
        '1:00.0', '1:02:05', '0:08.0', '0:00.0']
    first = current(driver)
    assert first is not None, 'no pair selected on load'
    press(driver, 'j')
    second = current(driver)
    assert second != first
    press(driver, 'k')
    assert current(driver) == first

    show_every_pair(driver)
    for _ in range(len(rows(driver))):  # down to the shifted copy, by keyboard
        if current(driver) == [ORIGINAL, SHIFTED]:
            break
        press(driver, 'j')
    a, b = current(driver)
    assert (a, b) == (ORIGINAL, SHIFTED)
    press(driver, 'o')
    wait_for_detail(driver, a, b)
    detail = row_selector(a, b, 'tr.detail-row')
    players = driver.execute_script(
        f"return [...document.querySelectorAll('{detail} video.player')]"
        '.map(v => [v.dataset.side, v.currentTime, Number(v.dataset.start), Number(v.dataset.end), v.paused]);')
    with running.client() as client:
        ids = driver.execute_script(f"return [...document.querySelectorAll('{detail} video.player')].map(v => v.src)")
        pair = client.get('/pairs/' + '/'.join(src.split('/videos/')[1].split('/')[0] for src in ids)).json()
    best = max(pair['segments'], key=lambda s: s['score'])
    assert [(side, start, end) for side, _, start, end, _ in players] == [
        ('a', best['query_start'], best['query_end']), ('b', best['target_start'], best['target_end'])]
    assert best['query_start'] >= 1.5 and best['target_start'] <= 0.5, best  # the shift, seen
    for side, at, start, _, paused in players:
        assert abs(at - start) < 0.3 and paused, (side, at, start)  # parked on a frame at the copy's start
    text = driver.find_element('css selector', detail).text
    assert 'pairs scoring at or above' in text and ' s of 0:08.0 copied' in text

    press(driver, 'p')
    wait_for(driver, f"return [...document.querySelectorAll('{detail} video.player')]"
                     '.every(v => v.dataset.matching === "true" && (!v.paused || v.ended || v.currentTime > 0));')
    started = driver.execute_script(f"return [...document.querySelectorAll('{detail} video.player')]"
                                    '.map(v => v.currentTime - Number(v.dataset.start));')
    assert all(-0.3 < lead for lead in started), started  # from the copy's start, not from 0

    named = driver.find_element('css selector', '#reviewer')
    named.send_keys('Ada')
    driver.execute_script("arguments[0].dispatchEvent(new Event('change')); arguments[0].blur();", named)
    press(driver, 'c')
    wait_for(driver, f"return document.querySelector('{row_selector(a, b)}').dataset.decision === 'copy'")
    assert current(driver) not in (None, [a, b]), 'no auto-advance to the next undecided pair'
    assert server_decisions(running) == {(a, b): ('copy', None)}
    with running.client() as client:  # kept with it: the score and segments shown, and who decided
        line = client.get('/decisions.csv').text.splitlines()
    score = float(driver.find_element('css selector', row_selector(a, b)).get_attribute('data-score'))
    assert line[0] == 'a,b,decision,decided_at,score,segments,reviewer'
    cells = line[1].split(',')
    assert cells[:3] == [a, b, 'copy'] and cells[4] == f'{score:.4f}' and cells[6] == 'Ada'
    assert f"{best['query_start']:g}-{best['query_end']:g}={best['target_start']:g}-{best['target_end']:g}" in cells[5]
    for _ in range(len(rows(driver))):  # back up to it
        if current(driver) == [a, b]:
            break
        press(driver, 'k')
    press(driver, 'u')
    wait_for(driver, f"return !document.querySelector('{row_selector(a, b)}').dataset.decision")
    assert server_decisions(running) == {}
    assert driver.execute_script("return document.getElementById('progress').textContent").startswith('0 of ')

    press(driver, '?')
    assert driver.find_element('css selector', '#help').is_displayed()
    assert 'play the match' in driver.find_element('css selector', '#help').text
    press(driver, '?')
    assert not driver.find_element('css selector', '#help').is_displayed()

    clear_the_group_by_keyboard(driver, running)
    assert driver.execute_script('return window.notReloaded === true')
    forget_all(running)


def clear_the_group_by_keyboard(driver, running):
    """The whole group decided by keys alone, watching each pair's copy: 'm' shows the
    pairs beyond the representative's, then for each pair 'p' plays both videos from
    their copied segment (their currentTime inside it) and 'c' decides it and moves on,
    the detail following."""
    shown_rows = "return [...document.querySelectorAll('tr.pair')].filter(r => !r.hidden).length"
    press(driver, 'm')
    visible = driver.execute_script(shown_rows)
    assert visible == len(rows(driver)), 'the rest of the group not shown by "m"'
    played = set()
    for _ in range(visible):
        pair = current(driver)
        if pair is None or driver.execute_script(
                f"return !!document.querySelector('{row_selector(*pair)}').dataset.decision"):
            break
        press(driver, 'p')
        detail = row_selector(*pair, 'tr.detail-row')
        at = wait_for(driver, f"const v = [...document.querySelectorAll('{detail} video.player')];"
                              'return v.length === 2 && v.every(x => x.dataset.matching === "true" && x.readyState >= 2'
                              ' && (x.currentTime > Number(x.dataset.start) || x.ended || !x.paused))'
                              ' && v.map(x => [x.currentTime, Number(x.dataset.start), Number(x.dataset.end)]);')
        assert all(start - 0.3 <= time <= end + 0.3 for time, start, end in at), (pair, at)  # inside the copy
        press(driver, 'c')
        wait_for(driver, f"return document.querySelector('{row_selector(*pair)}').dataset.decision === 'copy'")
        played.add(tuple(pair))
    assert len(played) == visible and driver.execute_script(
        "return document.getElementById('progress').textContent").startswith(f'{visible} of {visible} ')
    assert set(server_decisions(running)) == played


def test_group_action_asks_keeps_hand_decisions_and_undoes_in_one_step(page):
    driver, running, _, _ = page
    forget_all(running)
    load_page(driver, running.url)
    show_every_pair(driver)
    click_decision(driver, ORIGINAL, A_COPY, 'copy')  # by hand: a group action must leave it be
    total = len(rows(driver))

    button = driver.find_element('css selector', 'section.group button.group-action[data-decision="not_copy"]')
    button.click()
    alert = driver.switch_to.alert
    assert 'undecided pair' in alert.text and '1 pair(s) already decided stay' in alert.text
    alert.dismiss()  # asked: nothing happens without a yes
    assert server_decisions(running) == {(ORIGINAL, A_COPY): ('copy', None)}

    button.click()
    driver.switch_to.alert.accept()
    wait_for(driver, "return !document.querySelector('button.undo-group').hidden")
    stored = server_decisions(running)
    assert stored[(ORIGINAL, A_COPY)] == ('copy', None)
    by_group = {key for key, (decision, bulk) in stored.items() if bulk}
    assert len(by_group) == total - 1 and all(stored[key][0] == 'not_copy' for key in by_group)
    assert len({stored[key][1] for key in by_group}) == 1  # one action

    driver.find_element('css selector', 'button.undo-group').click()
    wait_for(driver, "return document.querySelectorAll('tr.pair[data-decision]').length === 1")
    assert server_decisions(running) == {(ORIGINAL, A_COPY): ('copy', None)}
    forget_all(running)


def test_a_failed_decision_shows_on_its_row_and_is_retried(page):
    """The service unreachable (the browser offline): the decision's row says it was not
    saved and offers a retry, the banner says why; back online, the retry saves it and
    the banner clears."""
    driver, running, _, _ = page
    forget_all(running)
    load_page(driver, running.url)
    a, b = current(driver)
    driver.set_network_conditions(offline=True, latency=0, download_throughput=-1, upload_throughput=-1)
    try:
        press(driver, 'c')
        wait_for(driver, f"return document.querySelector('{row_selector(a, b)}').dataset.failed === 'true'")
        assert 'not saved' in driver.find_element('css selector', row_selector(a, b)).text
        assert driver.find_element('css selector', '#error').is_displayed()
        assert current(driver) == [a, b], 'moved on from a decision that was not saved'
    finally:
        driver.set_network_conditions(offline=False, latency=0, download_throughput=-1, upload_throughput=-1)
    assert server_decisions(running) == {}
    driver.find_element('css selector', f'{row_selector(a, b)} button.retry').click()
    wait_for(driver, f"return document.querySelector('{row_selector(a, b)}').dataset.decision === 'copy'")
    wait_for(driver, "return document.getElementById('error').hidden")
    assert server_decisions(running) == {(a, b): ('copy', None)}
    forget_all(running)


def test_short_match_filter_and_thumbnails_of_the_copied_part(page):
    """Each row says how much is copied; "short match" shows only the pairs whose copied
    part is under the stated seconds or share (the shifted copy: 6 s of 8), the pairs
    beyond a big group's first ones included. A pair's detail shows thumbnails of its
    copied part (from 2 s into the original for the shifted copy) beside its own."""
    driver, running, _, _ = page
    forget_all(running)
    load_page(driver, running.url)
    wait_for(driver, "return [...document.querySelectorAll('tr.pair')].every(r => r.dataset.share !== undefined)")
    copied = {tuple(r[:2]): r[2:] for r in driver.execute_script(
        "return [...document.querySelectorAll('tr.pair')].map(r => [r.dataset.a, r.dataset.b, Number(r.dataset.copied),"
        " Number(r.dataset.share), r.querySelector('td.copied').textContent]);")}
    seconds, share, text = copied[(ORIGINAL, SHIFTED)]
    assert 5.5 <= seconds <= 6.5 and 0.65 <= share <= 0.8 and text.startswith('copied 6.')
    assert copied[(ORIGINAL, 'videos/orig0_exact.mp4')][:2] == [8.0, 1.0]
    driver.execute_script("document.getElementById('short-seconds').value = '7';"
                          "document.getElementById('short-share').value = '0';")
    driver.find_element('css selector', '#filter-short').click()
    shown = {tuple(r) for r in driver.execute_script(
        "return [...document.querySelectorAll('tr.pair')].filter(r => !r.hidden).map(r => [r.dataset.a, r.dataset.b]);")}
    assert shown == {pair for pair, (seconds, _, _) in copied.items() if seconds < 7}
    assert (ORIGINAL, SHIFTED) in shown and (ORIGINAL, 'videos/orig0_exact.mp4') not in shown
    driver.find_element('css selector', '#filter-short').click()

    show_every_pair(driver)
    open_pair(driver, ORIGINAL, SHIFTED)
    detail = row_selector(ORIGINAL, SHIFTED, 'tr.detail-row')
    strips = wait_for(driver, f"const imgs = [...document.querySelectorAll('{detail} .segment-thumbs img')];"
                              'return imgs.length === 6 && imgs.every(i => i.complete && i.naturalWidth > 0)'
                              ' && imgs.map(i => [i.closest(".thumbs").dataset.side, Number(i.dataset.ms)]);')
    assert [side for side, _ in strips] == ['a'] * 3 + ['b'] * 3
    assert 1500 <= strips[0][1] <= 2500 and strips[3][1] <= 500, strips  # the copy starts 2 s into the original
    wait_for(driver, f"const imgs = [...document.querySelectorAll('{detail} .own-thumbs img')];"
                     'return imgs.length === 8 && imgs.every(i => i.complete && i.naturalWidth > 0);')
