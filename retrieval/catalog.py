"""The index's catalog: one SQLite database, the record of what is committed.

A video is committed by one transaction (its row and its paths) after its fine
features are on disk, so a crash at any point leaves either the whole video or none
of it. Milvus holds a copy of the coarse vectors for search, synchronised from here
(``synced``): the catalog is what a damaged or missing Milvus collection is rebuilt from.
"""
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

SCHEMA = '''
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    id TEXT PRIMARY KEY,          -- sha256 of the file's bytes
    frames INTEGER NOT NULL,
    selector REAL NOT NULL,
    coarse BLOB NOT NULL,         -- float32 [1024]
    fine_sha256 TEXT NOT NULL,
    synced INTEGER NOT NULL DEFAULT 0,
    indexed_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS videos_unsynced ON videos (synced) WHERE synced = 0;
CREATE TABLE IF NOT EXISTS paths (
    abspath TEXT PRIMARY KEY,
    given TEXT NOT NULL,          -- the path as given at index time
    video_id TEXT NOT NULL REFERENCES videos (id));
CREATE INDEX IF NOT EXISTS paths_video ON paths (video_id);
-- Videos removed from the catalog whose vectors Milvus may still hold.
CREATE TABLE IF NOT EXISTS removed (id TEXT PRIMARY KEY);
'''
BUSY_TIMEOUT_S = 120


@dataclass(frozen=True)
class VideoRecord:
    id: str
    frames: int
    selector: float
    fine_sha256: str


class Catalog:
    def __init__(self, path: Path):
        self.path = Path(path)
        # autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        self.db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self.db.execute('PRAGMA journal_mode=WAL')  # readers never block the indexer
        self.db.execute('PRAGMA synchronous=FULL')  # a commit survives a power cut
        with self.transaction():
            for statement in SCHEMA.split(';'):
                if statement.strip():
                    self.db.execute(statement)

    def close(self) -> None:
        self.db.close()

    def transaction(self):
        return _Transaction(self.db)

    # --- settings of the index
    def meta(self) -> Dict[str, str]:
        return dict(self.db.execute('SELECT key, value FROM meta'))

    def settle_meta(self, new: Dict[str, str]) -> Dict[str, str]:
        """The index's settings, ``new`` recorded first if there are none yet: in one
        transaction, so that processes creating one index in parallel agree."""
        with self.transaction():
            meta = dict(self.db.execute('SELECT key, value FROM meta'))
            if not meta:
                self.db.executemany('INSERT INTO meta VALUES (?, ?)', list(new.items()))
                meta = dict(new)
        return meta

    def set_meta(self, values: Dict[str, str]) -> None:
        """Record values beside the settings (calibrated thresholds), in one transaction."""
        with self.transaction():
            self.db.executemany('INSERT OR REPLACE INTO meta VALUES (?, ?)', list(values.items()))

    # --- videos
    def commit_video(self, video_id: str, frames: int, selector: float, coarse: np.ndarray,
                     fine_sha256: str, abspath: str, given: str) -> Optional[str]:
        """Record a video and its path in one transaction. Returns the id of a video
        this path held before that no path holds any more (its files can go)."""
        with self.transaction():
            previous = self.video_of(abspath)
            self.db.execute('INSERT OR REPLACE INTO videos VALUES (?, ?, ?, ?, ?, 0, ?)',
                            (video_id, frames, selector, np.asarray(coarse, np.float32).tobytes(),
                             fine_sha256, time.time()))
            self.db.execute('DELETE FROM removed WHERE id = ?', (video_id,))
            self.db.execute('INSERT OR REPLACE INTO paths VALUES (?, ?, ?)', (abspath, given, video_id))
            return self._drop_if_orphan(previous, video_id)

    def add_path(self, video_id: str, abspath: str, given: str) -> Optional[str]:
        """Another file with the content of an indexed video."""
        with self.transaction():
            previous = self.video_of(abspath)
            self.db.execute('INSERT OR REPLACE INTO paths VALUES (?, ?, ?)', (abspath, given, video_id))
            return self._drop_if_orphan(previous, video_id)

    def video_of(self, abspath: str) -> Optional[str]:
        """The id of the video at an absolute path, or None."""
        row = self.db.execute('SELECT video_id FROM paths WHERE abspath = ?', (abspath,)).fetchone()
        return row[0] if row else None

    def _drop_if_orphan(self, previous: Optional[str], current: str) -> Optional[str]:
        if previous is None or previous == current:
            return None
        if self.db.execute('SELECT 1 FROM paths WHERE video_id = ? LIMIT 1', (previous,)).fetchone():
            return None
        self.db.execute('DELETE FROM videos WHERE id = ?', (previous,))
        self.db.execute('INSERT OR IGNORE INTO removed VALUES (?)', (previous,))
        return previous

    def video(self, video_id: str) -> Optional[VideoRecord]:
        row = self.db.execute('SELECT id, frames, selector, fine_sha256 FROM videos WHERE id = ?',
                              (video_id,)).fetchone()
        return VideoRecord(*row) if row else None

    def videos(self, ids: Sequence[str]) -> Dict[str, VideoRecord]:
        out = {}
        for chunk in _chunks(list(ids), 500):
            marks = ','.join('?' * len(chunk))
            for row in self.db.execute(f'SELECT id, frames, selector, fine_sha256 FROM videos WHERE id IN ({marks})',
                                       chunk):
                out[row[0]] = VideoRecord(*row)
        return out

    def coarse(self, video_id: str) -> np.ndarray:
        row = self.db.execute('SELECT coarse FROM videos WHERE id = ?', (video_id,)).fetchone()
        return np.frombuffer(row[0], np.float32).copy()

    def video_ids(self) -> List[str]:
        return [r[0] for r in self.db.execute('SELECT id FROM videos ORDER BY id')]

    def count(self) -> int:
        return self.db.execute('SELECT COUNT(*) FROM videos').fetchone()[0]

    def paths(self, ids: Sequence[str]) -> Dict[str, List[tuple]]:
        """(path as given, absolute path) of the files of each video id: several files
        may share one content."""
        out: Dict[str, List[tuple]] = {}
        for chunk in _chunks(list(ids), 500):
            marks = ','.join('?' * len(chunk))
            for video_id, given, abspath in self.db.execute(
                    f'SELECT video_id, given, abspath FROM paths WHERE video_id IN ({marks}) ORDER BY given', chunk):
                out.setdefault(video_id, []).append((given, abspath))
        return out

    # --- synchronisation with Milvus
    def unsynced(self, limit: int) -> List[tuple]:
        rows = self.db.execute('SELECT id, coarse FROM videos WHERE synced = 0 LIMIT ?', (limit,)).fetchall()
        return [(video_id, np.frombuffer(blob, np.float32)) for video_id, blob in rows]

    def mark_synced(self, ids: Iterable[str]) -> None:
        with self.transaction():
            self.db.executemany('UPDATE videos SET synced = 1 WHERE id = ?', [(i,) for i in ids])

    def mark_all_unsynced(self) -> None:
        with self.transaction():
            self.db.execute('UPDATE videos SET synced = 0')

    def synced_count(self) -> int:
        return self.db.execute('SELECT COUNT(*) FROM videos WHERE synced = 1').fetchone()[0]

    def removed(self) -> List[str]:
        return [r[0] for r in self.db.execute('SELECT id FROM removed')]

    def forget_removed(self, ids: Iterable[str]) -> None:
        with self.transaction():
            self.db.executemany('DELETE FROM removed WHERE id = ?', [(i,) for i in ids])


class _Transaction:
    """BEGIN IMMEDIATE takes the write lock up front: two writers queue instead of
    failing half-way with 'database is locked'."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute('BEGIN IMMEDIATE')
        return self.db

    def __exit__(self, kind, value, traceback):
        self.db.execute('COMMIT' if kind is None else 'ROLLBACK')
        return False


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]
