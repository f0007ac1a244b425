"""Fine-grained features on disk: one file per video, written atomically, checked on
every read."""
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from ...defaults import DIMS, REGIONS
from ...atomic_files import remove_leftovers, write_atomically

# How each kind of fine representation is stored. fg_bin's values are signs: one bit
# each. fg_att's are floats: float16 halves the disk and reading cost.
FINE_DTYPES = ('bits', 'float16', 'float32')
# Values converted at once from float16: under torch's parallel grain (32,768), so serial.
CONVERT_PIECE = 16_384


class CorruptFeaturesError(RuntimeError):
    """A fine-feature file that is missing or does not hold what the catalog recorded."""

    def __init__(self, path: Path, reason: str):
        self.path = path
        super().__init__(f'fine features {path} are unusable: {reason}; index the video again to repair it')


def encode(fine: np.ndarray, dtype: str) -> bytes:
    if dtype == 'bits':
        return np.packbits(fine > 0, axis=None).tobytes()
    return np.ascontiguousarray(fine, dtype=dtype).tobytes()


def decode(data: bytes, frames: int, dtype: str) -> np.ndarray:
    """Features [frames, 9, 512] float32 of ``data``, which a bytearray lends without a copy."""
    if not isinstance(data, bytearray):   # read-only: NumPy and torch views of it could not be written
        data = bytearray(data)
    if dtype == 'bits':
        bits = np.unpackbits(np.frombuffer(data, np.uint8))
        return (bits.astype(np.float32) * 2 - 1).reshape(frames, REGIONS, DIMS)
    if dtype == 'float16':
        # torch converts float16 with the CPU's conversion instructions, 4 to 9 times
        # faster than NumPy (a dedup reads every video a hundred times), in pieces below
        # its parallel grain: on this calling thread, without waking its thread pool,
        # whose wake-up in a searching process cost more than the conversion.
        half = torch.frombuffer(data, dtype=torch.float16)
        out = torch.empty(half.shape, dtype=torch.float32)
        for first in range(0, len(half), CONVERT_PIECE):
            out[first:first + CONVERT_PIECE].copy_(half[first:first + CONVERT_PIECE])
        return out.numpy().reshape(frames, REGIONS, DIMS)
    return np.frombuffer(data, dtype).reshape(frames, REGIONS, DIMS)


def encoded_size(frames: int, dtype: str) -> int:
    elements = frames * REGIONS * DIMS
    return elements // 8 if dtype == 'bits' else elements * np.dtype(dtype).itemsize


class FineStore:
    """``folder/ab/abcdef....<dtype>``: the file of video ``abcdef...``."""

    def __init__(self, folder: Path, dtype: str):
        if dtype not in FINE_DTYPES:
            raise ValueError(f'fine dtype must be one of {", ".join(FINE_DTYPES)}, got {dtype!r}')
        self.folder = Path(folder)
        self._folder = str(self.folder)
        self.dtype = dtype

    def path(self, video_id: str) -> Path:
        return Path(self._path(video_id))

    def _path(self, video_id: str) -> str:
        # Joined as a string: two pathlib joins cost a tenth of reading a short video's file.
        return os.path.join(self._folder, video_id[:2], f'{video_id}.{self.dtype}')

    def write(self, video_id: str, fine: np.ndarray) -> str:
        """Store ``fine`` [T, 9, 512]; return the sha256 of the bytes, which the catalog
        records so that a read can tell a damaged file."""
        data = encode(fine, self.dtype)
        path = self.path(video_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)
        return hashlib.sha256(data).hexdigest()

    def read(self, video_id: str, frames: int, sha256: str) -> np.ndarray:
        """The fine representation [T, 9, 512] float32 of a committed video."""
        path = self._path(video_id)
        expected = encoded_size(frames, self.dtype)
        try:
            with open(path, 'rb') as file:
                size = os.fstat(file.fileno()).st_size
                if size != expected:
                    raise CorruptFeaturesError(Path(path), f'{size} bytes instead of {expected}')
                data = bytearray(size)   # writable: decoded without a copy
                got = file.readinto(data)
        except OSError as error:
            raise CorruptFeaturesError(Path(path), f'cannot be read ({error.strerror or error})') from error
        if got != expected:
            raise CorruptFeaturesError(Path(path), f'{got} bytes instead of {expected}')
        if hashlib.sha256(data).hexdigest() != sha256:
            raise CorruptFeaturesError(Path(path), 'content differs from what was written (sha256 mismatch)')
        return decode(data, frames, self.dtype)

    def is_intact(self, video_id: str, frames: int, sha256: str) -> bool:
        try:
            self.read(video_id, frames, sha256)
        except CorruptFeaturesError:
            return False
        return True

    def remove(self, video_id: str) -> None:
        self.path(video_id).unlink(missing_ok=True)

    def remove_leftovers(self) -> int:
        """Delete temporary files of indexers that died mid-write; return how many."""
        return remove_leftovers(self.folder)
