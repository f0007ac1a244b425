"""The sha256 of a file, streamed: what names a weight file's content and, in an index,
a video's (whatever its file is called)."""
import hashlib
import os
from pathlib import Path
from typing import Union

HASH_CHUNK = 1 << 20


def sha256_of(path: Union[str, os.PathLike]) -> str:
    """Hex sha256 of a file, read a chunk at a time: weight files and videos run to
    hundreds of MB."""
    digest = hashlib.sha256()
    with open(Path(path), 'rb') as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
