"""Items made ahead in a background thread: while the model works on one batch, the next
frames are being decoded. FFmpeg decodes and scales, and torch computes, without
holding the GIL, so the two overlap in one process.

At most ``depth`` items wait in the queue (plus the one the producer is making), so
memory stays bounded whatever the input's length. An exception in the producer comes
out of ``next()`` in the consumer after the items made before it; a consumer that stops
early (an error, Ctrl-C) closes the producer, which ends at its next item.
"""
import queue
import threading
from typing import Generic, Iterable, Iterator, TypeVar

T = TypeVar('T')
_ITEM, _END, _ERROR = 'item', 'end', 'error'
_POLL_S = 0.1  # how often a blocked producer looks whether the consumer has gone


class Prefetched(Generic[T]):
    """Iterate over ``items``, made ahead in a daemon thread, at most ``depth`` waiting.
    Use it in a ``with`` block (or call ``close()``) so that an early exit stops it."""

    def __init__(self, items: Iterable[T], depth: int = 2):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f'depth must be a positive integer, got {depth!r}')
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._fill, args=(iter(items),), daemon=True, name='dns-prefetch')
        self._thread.start()

    def _fill(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._put((_ITEM, item)):
                    break
            else:
                self._put((_END, None))
        except BaseException as error:  # handed to the consumer, raised there
            self._put((_ERROR, error))
        finally:
            close = getattr(items, 'close', None)
            if close is not None:  # a generator: its open files close in this thread
                close()

    def _put(self, message) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == _ITEM:
            return value
        self._finished = True
        self._thread.join()
        if kind == _ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop the producer and wait for it (it finishes the item in hand first)."""
        self._finished = True
        self._stop.set()
        while self._thread.is_alive():
            try:  # make room, so that a producer blocked on a full queue sees the stop
                self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                pass
        self._thread.join()

    def __enter__(self) -> 'Prefetched[T]':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
