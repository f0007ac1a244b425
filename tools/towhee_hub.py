"""Place this checkout where Towhee's hub download puts the operator, so that
``ops.video_copy_detection.distill_and_select`` loads it with no network."""
import os
import shutil
from pathlib import Path
from typing import Optional

OPERATOR_PATH = Path('operators', 'video-copy-detection', 'distill-and-select', 'versions', 'main')
CHECKOUT = Path(__file__).resolve().parent.parent


def towhee_home() -> Path:
    return Path(os.path.expanduser(os.getenv('TOWHEE_HOME', '~/.towhee')))


def install(home: Optional[Path] = None, copy: bool = False) -> Path:
    """Link (or copy) the checkout to ``<TOWHEE_HOME>/operators/.../versions/main``."""
    target = (home or towhee_home()) / OPERATOR_PATH
    if target.is_symlink() and target.resolve() == CHECKOUT:
        return target
    if target.exists() or target.is_symlink():
        raise FileExistsError(f'{target} already exists; remove it to install this checkout there')
    target.parent.mkdir(parents=True, exist_ok=True)
    if copy:
        shutil.copytree(CHECKOUT, target, ignore=shutil.ignore_patterns('.venv', '.git', '__pycache__', 'dns-index'))
    else:
        target.symlink_to(CHECKOUT, target_is_directory=True)
    return target


if __name__ == '__main__':
    print(install())
