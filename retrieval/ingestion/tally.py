"""What one `dns index` run did, whichever engine ran it: progress bars for videos and
frames while it runs, failures as they happen, the counts and a summary at the end."""
import logging
import sys
import time

from ..storage.index import AddResult

log = logging.getLogger('dns')


class IndexTally:
    def __init__(self, videos: int, progress: bool = True):
        from tqdm import tqdm
        self._write = tqdm.write
        self.counts = {'indexed': 0, 'skipped': 0, 'identical': 0, 'failed': 0}
        self._indexed_ids = set()  # contents indexed in this run
        self.changed: list = []   # (path, changes) of videos indexed before, read differently now
        self.frames = 0  # of the videos indexed in this run
        self._start = time.perf_counter()
        self._videos = tqdm(total=videos, unit='video', disable=not progress, position=0)
        self._frames = tqdm(unit='frame', disable=not progress, position=1)

    def frame(self, count: int = 1) -> None:
        """More frames decoded: one at a time as they come (the plain engine), or a
        video's all at once (Ray)."""
        self._frames.update(count)

    def done(self, path: str, result: AddResult) -> None:
        """A file indexed or found already indexed (before this run, or byte for byte
        identical to a file indexed in this run)."""
        status = result.status
        if status == 'indexed':
            self.frames += result.frames
            self._indexed_ids.add(result.video_id)
        elif status == 'skipped' and result.video_id in self._indexed_ids:
            status = 'identical'
        if result.changes:
            self.changed.append((path, result.changes))
            self._write(f'dns index: indexed by an earlier version, read differently now: {path} '
                        f'({", ".join(result.changes)})', file=sys.stderr)
        self.counts[status] += 1
        log.info('%s %s (%d frames)', 'identical to a file indexed now:' if status == 'identical' else status,
                 path, result.frames)
        self._videos.update()

    def failed(self, error: Exception) -> None:
        """A file that could not be indexed (a VideoDecodeError, which names it and says why)."""
        self.counts['failed'] += 1
        self._write(f'dns index: failed: {error}', file=sys.stderr)
        self._videos.update()

    def close(self) -> None:
        self._frames.close()
        self._videos.close()

    def summary(self, held: int, fine: str) -> str:
        counts = self.counts
        identical = (f'{counts["identical"]} byte-identical to a file indexed in this run (not indexed twice), '
                     if counts['identical'] else '')
        return (f'indexed {counts["indexed"]} videos ({self.frames} frames), {identical}'
                f'{counts["skipped"]} already indexed, {counts["failed"]} failed, '
                f'in {time.perf_counter() - self._start:.1f} s; the index holds {held} '
                f'videos ({fine} student)' + self._changed_summary())

    def _changed_summary(self) -> str:
        if not self.changed:
            return ''
        return (f'\n{len(self.changed)} videos indexed by an earlier version would now be read differently '
                f'(start time, sample aspect ratio or borders): `dns index --reread` extracts them again')
