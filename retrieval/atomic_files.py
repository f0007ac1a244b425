"""Files of an index written whole or not at all: a temporary name, fsync, rename. The
writer's pid in the temporary name keeps parallel writers apart and tells a dead one's
leftovers."""
import os
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` into ``path`` (its folder must exist), durable before it is visible."""
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
