"""Headless Chromium through Selenium: Debian's `chromium` and `chromium-driver`
(scripts/setup.sh installs them where it can), the driver given by path so that
Selenium never tries to download one."""
import shutil
from typing import Optional

WAIT_S = 300  # a hang guard on a busy machine, not a timing check


def missing_browser() -> Optional[str]:
    """Why the browser cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return 'selenium is not installed (pip install -r requirements-dev.txt)'
    for program, package in (('chromium', 'chromium'), ('chromedriver', 'chromium-driver')):
        if shutil.which(program) is None:
            return (f'{program} is not installed: `apt-get install {package}` as root (scripts/setup.sh does it '
                    'where apt-get and root are available)')
    return None


def chromium(width: int = 1400, height: int = 1000):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which('chromium')
    for argument in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                     f'--window-size={width},{height}'):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which('chromedriver')), options=options)
    driver.set_page_load_timeout(WAIT_S)
    return driver


def wait_for(driver, script: str, timeout: float = WAIT_S):
    """Wait until the JavaScript ``script`` returns something truthy; return it."""
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: d.execute_script(script))


PAGE_LOADED = "return document.body.dataset.loaded === 'true' && document.getElementById('error').hidden"
THUMBNAILS_SHOWN = ("const images = [...document.querySelectorAll('.thumbs img')];"
                    "return images.length > 0 && images.every(i => i.complete && i.naturalWidth > 0)"
                    " && images.map(i => i.naturalWidth);")


def load_page(driver, url: str) -> None:
    """Open (or reload) the review page and wait until its groups and thumbnails show."""
    driver.get(url)
    wait_for(driver, PAGE_LOADED)
    wait_for(driver, THUMBNAILS_SHOWN)


def row_selector(a: str, b: str, kind: str = 'tr.pair') -> str:
    return f'{kind}[data-a="{a}"][data-b="{b}"]'


def open_pair(driver, a: str, b: str) -> None:
    """Show the detail of one pair (players, timelines, heatmap), and wait until the
    heatmap is drawn."""
    row = driver.find_element('css selector', row_selector(a, b))
    row.find_element('css selector', 'button.compare').click()
    wait_for_detail(driver, a, b)


def wait_for_detail(driver, a: str, b: str) -> None:
    """Wait until the detail of a pair shows its heatmap and both players know their
    video's length (parked at the copy)."""
    detail = row_selector(a, b, 'tr.detail-row')
    wait_for(driver, f'const img = document.querySelector(\'{detail} img.heatmap\');'
                     'return img && img.complete && img.naturalWidth > 0;')
    wait_for(driver, f"const players = [...document.querySelectorAll('{detail} video.player')];"
                     'return players.length === 2 && players.every(v => v.readyState >= 1 || v.error);')
    errors = driver.execute_script(f"return [...document.querySelectorAll('{detail} video.player')]"
                                   '.filter(v => v.error).map(v => v.error.code + " " + v.error.message);')
    assert not errors, f'the browser cannot play the videos: {errors}'
