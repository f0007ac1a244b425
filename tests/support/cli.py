"""The `dns` command as users run it: the command setup installs beside this Python."""
import subprocess
import sys
from pathlib import Path

DNS = Path(sys.executable).with_name('dns')


def dns(*args, cwd, expect: int = 0, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `dns ARGS...` in ``cwd`` and check its exit status is ``expect``."""
    result = subprocess.run([str(DNS), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == expect, f'exit {result.returncode}\n{result.stdout}\n{result.stderr}'
    return result
