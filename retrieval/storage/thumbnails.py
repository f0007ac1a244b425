"""A few small JPEGs of a video, taken from the frames the indexer decodes anyway, so a
reviewer sees the video without anything decoding it again."""
import io
import shutil
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ...defaults import THUMBNAILS
from ...atomic_files import remove_leftovers, write_atomically

THUMBNAIL_SIZE = 160  # pixels, the longer side
LOOK_BACK_S = 2.0  # a thumbnail at a time decodes from this much before it
JPEG_QUALITY = 80


class ThumbnailKeeper:
    """Passes a frame stream through while keeping ``count`` evenly spread frames, shrunk
    at once. The length is not known in advance: frames at multiples of a stride are
    kept, and the stride doubles whenever more than ``2 * count`` are held, so memory is
    bounded (at most ``2 * count + 1`` small images) whatever the length, and the kept
    frames stay at most ``length / count`` apart."""

    def __init__(self, count: int = THUMBNAILS, size: int = THUMBNAIL_SIZE):
        if count < 0 or size < 1:
            raise ValueError(f'count must be 0 or more and size positive, got {count} and {size}')
        self.count, self.size = count, size  # count 0: no thumbnails, only the size and times
        self.frames = 0
        self.width = self.height = 0  # of the first frame's source (upright, display aspect)
        self.times: List[float] = []  # each frame's seconds from the video's first frame
        self.crop: Optional[Tuple[int, int, int, int]] = None  # the borders the decoder cut
        self._stride = 1
        self._kept: Dict[int, object] = {}

    def source_size(self, frames: Iterable[Any]) -> Iterator[Any]:
        """Yield ``frames`` unchanged, taking the video's size from the first one's
        ``source_size`` (width, height) where the decoder scaled it down, and each one's
        ``timestamp`` (ms from the first frame), before ``iter_rgb_frames`` drops the
        attributes; else ``watch`` takes the shape."""
        for index, frame in enumerate(frames):
            if index == 0 and getattr(frame, 'source_size', None):
                self.width, self.height = (int(v) for v in frame.source_size)
            if index == 0 and getattr(frame, 'crop', None) is not None:
                self.crop = tuple(int(v) for v in frame.crop)
            stamp = getattr(frame, 'timestamp', None)
            if stamp is not None:
                self.times.append(stamp / 1000)
            yield frame

    def sample_times(self) -> Optional[np.ndarray]:
        """Each frame's seconds from the first frame, None unless every frame had one."""
        if not self.times or len(self.times) != self.frames:
            return None
        return np.asarray(self.times, np.float64)

    def watch(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Yield ``frames`` (HxWx3 uint8 RGB) unchanged, keeping the sample on the way."""
        for frame in frames:
            index = self.frames
            self.frames += 1
            if index == 0 and not self.width:
                self.height, self.width = int(frame.shape[0]), int(frame.shape[1])
            if self.count and index % self._stride == 0:
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


def thumbnail_at(path: Path, seconds: float, size: int = THUMBNAIL_SIZE) -> Optional[bytes]:
    """A thumbnail, as the index makes them, of the frame a player shows at ``seconds``
    (from the first frame, as segment times count): the last frame at or before it. The
    copied part of a long host, which its few thumbnails spread over the whole video
    rarely show. None past the video's end (its last frame's time and one frame more)."""
    from ...video_decode import FrameDecoder
    decoder = FrameDecoder(start_time=max(0.0, seconds - LOOK_BACK_S), threads=False)
    shown, at, step = None, 0.0, 0.0
    for frame in decoder(str(path)):
        time = frame.timestamp / 1000
        if time > seconds:
            shown = shown if shown is not None else frame  # none before it: the first after
            break
        if shown is not None:
            step = time - at
        shown, at = frame, time
    else:
        if shown is None or seconds >= at + max(step, 1e-3):
            return None
    keeper = ThumbnailKeeper(1, size)
    for _ in keeper.watch([np.asarray(shown)]):
        pass
    return keeper.jpegs()[0]
