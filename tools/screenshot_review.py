"""Draw the pictures of the review page: the test corpus (one original, its copies, an
unrelated video) indexed with the copy model (weights whose similarities tell copies
apart), `dns serve` on 127.0.0.1, headless Chromium. docs/review-list.png: the list,
one decision made; docs/review.png (the README's): one pair's detail open, both players
at the copied segment with its thumbnails; docs/review-help.png: the keyboard's help."""
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'benchmarks'))
sys.path.insert(0, str(ROOT / 'tests'))

import subprocess  # noqa: E402

from support.browser import chromium, load_page, missing_browser, open_pair, wait_for  # noqa: E402
from common import torch_home_for_subprocesses, use_copy_model  # noqa: E402
from support.corpus import make_corpus  # noqa: E402
from support.service_process import DNS, ServiceProcess, dns_env  # noqa: E402

DOCS = ROOT / 'docs'
OUT = DOCS / 'review.png'


def shoot(driver, path: Path, width: int = 1300, most: int = 2600) -> None:
    height = driver.execute_script('return document.body.scrollHeight')
    driver.set_window_size(width, min(height + 40, most))
    driver.save_screenshot(str(path))
    print(f'wrote {path}')


def main() -> int:
    reason = missing_browser()
    if reason:
        print(f'cannot draw the screenshot: {reason}', file=sys.stderr)
        return 1
    use_copy_model()
    with tempfile.TemporaryDirectory(prefix='dns-review-') as folder:
        root = Path(folder)
        home = torch_home_for_subprocesses()
        make_corpus(root / 'videos', originals=1, unrelated=1)
        subprocess.run([str(DNS), 'index', '--no-progress', 'videos'], cwd=root, env=dns_env(home), check=True,
                       capture_output=True)
        with ServiceProcess('dns-index', root, home) as running:
            driver = chromium(width=1300, height=1500)
            try:
                load_page(driver, running.url)
                for button in driver.find_elements('css selector', 'button.more-pairs'):
                    button.click()
                row = 'tr.pair[data-a="videos/orig0.mp4"][data-b="videos/orig0_reencoded.mp4"]'
                driver.find_element('css selector', f'{row} button[data-decision="copy"]').click()
                wait_for(driver, "return document.querySelector('li.decided') !== null")
                wait_for(driver, "return [...document.querySelectorAll('tr.pair')].every(r => r.dataset.share)")
                shoot(driver, DOCS / 'review-list.png', most=1400)
                open_pair(driver, 'videos/orig0.mp4', 'videos/orig0_shifted.mp4')
                wait_for(driver, "return [...document.querySelectorAll('.detail img')]"
                                 '.every(i => i.complete && i.naturalWidth > 0);')
                driver.execute_script("document.querySelector('tr.detail-row').scrollIntoView()")
                shoot(driver, OUT)
                driver.set_window_size(1300, 900)
                driver.execute_script("document.getElementById('help').hidden = false; window.scrollTo(0, 0);")
                driver.save_screenshot(str(DOCS / 'review-help.png'))
                print(f'wrote {DOCS / "review-help.png"}')
            finally:
                driver.quit()
    return 0


if __name__ == '__main__':
    sys.exit(main())
