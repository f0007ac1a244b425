"""Files written whole or not at all: a temporary name beside the file, fsync, rename.
The writer's pid in the temporary name keeps parallel writers apart and tells a dead
one's leftovers. Every file the package writes for keeps (weights, sha256 records, an
index's fine features and thumbnails) goes through :func:`replacing`.
"""
import os
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


@contextmanager
def replacing(path: Path, mode: str = 'wb') -> Iterator[IO]:
    """A file open for writing that takes ``path``'s place, durable, when the block ends
    without an error, and is deleted when it raises. ``path``'s folder must exist."""
    path = Path(path)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` into ``path``, durable before it is visible."""
    with replacing(path) as f:
        f.write(data)


def remove_leftovers(folder: Path) -> int:
    """Delete the temporary files of writers that died mid-write in the subfolders of
    ``folder``; return how many."""
    removed = 0
    for tmp in Path(folder).glob('*/.*.tmp'):
        pid = tmp.name.rsplit('.', 2)[-2]
        if not (pid.isdigit() and _alive(int(pid))):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
