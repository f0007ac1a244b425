"""A check a store makes the first time it opens in an object's life, not when reopened."""
from typing import Callable


class FirstOpening:
    """Calls ``check`` the first time it is called, and never again.

    The index's stores compare themselves with the catalog when they open. On 10^5
    videos that SQL takes tens of milliseconds, and the service lets a store go when idle
    and opens it again at the next request: it would pay them on every reopening."""

    def __init__(self, check: Callable[[], None]):
        self._check = check
        self.done = False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self._check()
