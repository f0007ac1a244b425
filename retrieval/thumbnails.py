"""A few small JPEGs of a video, taken from the frames the indexer decodes anyway, so a
reviewer sees the video without anything decoding it again."""
import io
import shutil
from pathlib import Path
from typing import Dict, Iterable, Iterator, Sequence, Tuple

import numpy as np

from ..defaults import THUMBNAILS
from .atomic_files import remove_leftovers, write_atomically

THUMBNAIL_SIZE = 160  # pixels, the longer side
JPEG_QUALITY = 80


class ThumbnailKeeper:
    """Passes a frame stream through while keeping ``count`` evenly spread frames, shrunk
    at once. The length is not known in advance: frames at multiples of a stride are
    kept, and the stride doubles whenever more than ``2 * count`` are held, so memory is
    bounded (at most ``2 * count + 1`` small images) whatever the length, and the kept
    frames stay at most ``length / count`` apart."""

    def __init__(self, count: int = THUMBNAILS, size: int = THUMBNAIL_SIZE):
        if count < 1 or size < 1:
            raise ValueError(f'count and size must be positive, got {count} and {size}')
        self.count, self.size = count, size
        self.frames = 0
        self.width = self.height = 0  # of the first frame, as decoded (upright)
        self._stride = 1
        self._kept: Dict[int, object] = {}

    def watch(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Yield ``frames`` (HxWx3 uint8 RGB) unchanged, keeping the sample on the way."""
        for frame in frames:
            index = self.frames
            self.frames += 1
            if index == 0:
                self.height, self.width = int(frame.shape[0]), int(frame.shape[1])
            if index % self._stride == 0:
                self._kept[index] = self._shrink(frame)
                if len(self._kept) > 2 * self.count:
                    self._stride *= 2
                    self._kept = {i: image for i, image in self._kept.items() if i % self._stride == 0}
            yield frame

    @property
    def held(self) -> int:
        """How many shrunk frames are held now (at most ``2 * count + 1``)."""
        return len(self._kept)

    def _shrink(self, frame: np.ndarray):
        from PIL import Image
        image = Image.fromarray(np.ascontiguousarray(frame[..., :3], dtype=np.uint8), 'RGB')
        image.thumbnail((self.size, self.size), Image.Resampling.BILINEAR)
        return image

    def jpegs(self) -> Tuple[bytes, ...]:
        """The kept frames nearest to ``count`` evenly spread times, as JPEG bytes."""
        if not self._kept:
            return ()
        kept = sorted(self._kept)
        wanted = [(j + 0.5) * self.frames / self.count for j in range(min(self.count, len(kept)))]
        chosen = sorted({min(kept, key=lambda i: abs(i - at)) for at in wanted})
        return tuple(_jpeg(self._kept[i]) for i in chosen)


def _jpeg(image) -> bytes:
    out = io.BytesIO()
    image.save(out, 'JPEG', quality=JPEG_QUALITY)
    return out.getvalue()


class ThumbnailStore:
    """``folder/<video id>/<i>.jpg``. Each file is written to a temporary name and
    renamed, before the catalog records the video; the catalog's count says how many a
    video has (0 for videos indexed before thumbnails existed)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, video_id: str, number: int) -> Path:
        return self.folder / video_id / f'{number}.jpg'

    def write(self, video_id: str, jpegs: Sequence[bytes]) -> int:
        if not jpegs:
            return 0
        (self.folder / video_id).mkdir(parents=True, exist_ok=True)
        for number, data in enumerate(jpegs):
            write_atomically(self.path(video_id, number), data)
        return len(jpegs)

    def remove_leftovers(self) -> int:
        """Delete temporary files of indexers that died mid-write; return how many."""
        return remove_leftovers(self.folder)

    def remove(self, video_id: str) -> None:
        shutil.rmtree(self.folder / video_id, ignore_errors=True)
