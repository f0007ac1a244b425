"""What one `dns index` run did, whichever engine ran it: progress bars for videos and
frames while it runs, failures as they happen, the counts and a summary at the end."""
import logging
import sys
import time

from .index import AddResult

log = logging.getLogger('dns')


class IndexTally:
    def __init__(self, videos: int, progress: bool = True):
        from tqdm import tqdm
        self._write = tqdm.write
        self.counts = {'indexed': 0, 'skipped': 0, 'failed': 0}
        self.frames = 0  # of the videos indexed in this run
        self._start = time.perf_counter()
        self._videos = tqdm(total=videos, unit='video', disable=not progress, position=0)
        self._frames = tqdm(unit='frame', disable=not progress, position=1)

    def frame(self, count: int = 1) -> None:
        """More frames decoded: one at a time as they come (the plain engine), or a
        video's all at once (Ray)."""
        self._frames.update(count)

    def done(self, path: str, result: AddResult) -> None:
        """A file indexed or found already indexed."""
        self.counts[result.status] += 1
        if result.status == 'indexed':
            self.frames += result.frames
        log.info('%s %s (%d frames)', result.status, path, result.frames)
        self._videos.update()

    def failed(self, message: str) -> None:
        self.counts['failed'] += 1
        self._write(f'dns index: failed: {message}', file=sys.stderr)
        self._videos.update()

    def close(self) -> None:
        self._frames.close()
        self._videos.close()

    def summary(self, held: int, fine: str) -> str:
        counts = self.counts
        return (f'indexed {counts["indexed"]} videos ({self.frames} frames), {counts["skipped"]} already indexed, '
                f'{counts["failed"]} failed, in {time.perf_counter() - self._start:.1f} s; the index holds {held} '
                f'videos ({fine} student)')
