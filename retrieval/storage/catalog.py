"""The index's catalog: one SQLite database, the record of what is committed.

A video is committed by one transaction (its row and its paths) after its fine
features are on disk, so a crash at any point leaves either the whole video or none
of it. Milvus holds a copy of the coarse vectors for search, synchronised from here
(``synced``): the catalog is what a damaged or missing Milvus collection is rebuilt from.
"""
import hashlib
import os
import sqlite3
import time
import uuid
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

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
-- A reviewer's decision on a pair of files (paths as given, a < b), which dedup follows.
CREATE TABLE IF NOT EXISTS decisions (
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('copy', 'not_copy')),
    decided_at REAL NOT NULL,
    PRIMARY KEY (a, b));
'''
# Columns added after the first release, with what older rows hold: NULL (unknown) and
# 0 thumbnails. Opening an older catalog adds them; nothing stored changes.
ADDED_VIDEO_COLUMNS = (('duration', 'REAL'),     # seconds
                       ('width', 'INTEGER'),     # of the decoded (upright) frames
                       ('height', 'INTEGER'),
                       ('thumbnails', 'INTEGER NOT NULL DEFAULT 0'),
                       # float32 [frames]: each sample's seconds from the first frame;
                       # NULL (indexed before): sample i at i * time step
                       ('times', 'BLOB'),
                       # 'top,bottom,left,right': the borders cut off before the extractor,
                       # pixels of the display size; NULL: none looked for (indexed before)
                       ('crop', 'TEXT'))
# A decision written by a group action carries the action's id (NULL: decided by hand), so
# that one undo reverts the whole action and a later action never overrides a hand's.
# score, segments: what the reviewer was shown (the grouping score; the copied segments as
# JSON [[a_start, a_end, b_start, b_end], ...] in seconds); reviewer: the name they gave.
ADDED_DECISION_COLUMNS = (('bulk', 'TEXT'), ('score', 'REAL'), ('segments', 'TEXT'), ('reviewer', 'TEXT'))
RECORD_COLUMNS = 'id, frames, selector, fine_sha256, duration, width, height, thumbnails, indexed_at, crop'
DECISIONS = ('copy', 'not_copy')


class UnknownFileError(ValueError):
    """A path that is no indexed file (as given at index time)."""


BUSY_TIMEOUT_S = 120


@dataclass(frozen=True)
class VideoRecord:
    id: str
    frames: int
    selector: float
    fine_sha256: str
    duration: Optional[float] = None   # None: indexed before durations were recorded
    width: Optional[int] = None
    height: Optional[int] = None
    thumbnails: int = 0
    indexed_at: Optional[float] = None
    crop: Optional[str] = None         # 'top,bottom,left,right' cut off; None: not looked for


@dataclass(frozen=True)
class Decision:
    a: str                 # paths as given at index time, a < b
    b: str
    decision: str          # 'copy' or 'not_copy'
    decided_at: float      # seconds since the epoch
    bulk: Optional[str] = None  # the group action that wrote it; None: decided by hand
    score: Optional[float] = None     # the score the reviewer was shown
    segments: Optional[str] = None    # the copied segments shown, JSON (seconds)
    reviewer: Optional[str] = None


class Catalog:
    def __init__(self, path: Path):
        self.path = Path(path)
        # autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        # check_same_thread=False: the service calls in from its worker threads, one at
        # a time (under its lock); SQLite's own serialisation covers the rest.
        self.db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        self.db.execute('PRAGMA journal_mode=WAL')  # readers never block the indexer
        self.db.execute('PRAGMA synchronous=FULL')  # a commit survives a power cut
        with self.transaction():
            for statement in SCHEMA.split(';'):
                if statement.strip():
                    self.db.execute(statement)
            present = {row[1] for row in self.db.execute('PRAGMA table_info(videos)')}
            for name, kind in ADDED_VIDEO_COLUMNS:
                if name not in present:
                    self.db.execute(f'ALTER TABLE videos ADD COLUMN {name} {kind}')
            present = {row[1] for row in self.db.execute('PRAGMA table_info(decisions)')}
            for name, kind in ADDED_DECISION_COLUMNS:
                if name not in present:
                    self.db.execute(f'ALTER TABLE decisions ADD COLUMN {name} {kind}')

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

    # --- clip windows: which videos' windows the clip collection holds, and how many
    # (retrieval/searching/clips/clip_index.py); -1: the video was extracted again since.
    def start_clip_windows(self) -> None:
        """Make the table, if missing: an index gains it on clip search's first use."""
        with self.transaction():
            self.db.execute('CREATE TABLE IF NOT EXISTS clip_windows (video_id TEXT PRIMARY KEY, '
                            'windows INTEGER NOT NULL)')

    def stale_clip_windows(self) -> List[str]:
        """Videos whose windows the collection holds but should not: removed, or extracted again."""
        return [r[0] for r in self.db.execute('SELECT video_id FROM clip_windows WHERE windows < 0 OR video_id '
                                              'NOT IN (SELECT id FROM videos)')]

    def forget_clip_windows(self, video_ids: Optional[Sequence[str]] = None) -> None:
        """Record that the collection holds the windows of none of ``video_ids`` (None: of no video)."""
        with self.transaction():
            if video_ids is None:
                self.db.execute('DELETE FROM clip_windows')
            else:
                self.db.executemany('DELETE FROM clip_windows WHERE video_id = ?', [(i,) for i in video_ids])

    def record_clip_windows(self, counts: Sequence[Tuple[str, int]]) -> None:
        """Record (video id, windows) the collection now holds, flushed."""
        with self.transaction():
            self.db.executemany('INSERT OR REPLACE INTO clip_windows VALUES (?, ?)', list(counts))

    def clip_window_count(self) -> int:
        """Windows the collection should hold."""
        return self.db.execute('SELECT COALESCE(SUM(windows), 0) FROM clip_windows').fetchone()[0]

    def clip_window_lag(self) -> int:
        """Videos whose windows the collection lacks, or holds but should not."""
        return self.db.execute('SELECT (SELECT COUNT(*) FROM videos WHERE id NOT IN (SELECT video_id FROM clip_windows)) '
                               '+ (SELECT COUNT(*) FROM clip_windows WHERE windows < 0 OR video_id NOT IN '
                               '(SELECT id FROM videos))').fetchone()[0]

    def videos_without_clip_windows(self, after: str, limit: int) -> List[str]:
        """Up to ``limit`` ids of videos whose windows the collection lacks, in id order after ``after``."""
        return [r[0] for r in self.db.execute('SELECT id FROM videos WHERE id > ? AND id NOT IN '
                                              '(SELECT video_id FROM clip_windows) ORDER BY id LIMIT ?',
                                              (after, limit))]

    # --- videos
    def commit_video(self, video_id: str, frames: int, selector: float, coarse: np.ndarray,
                     fine_sha256: str, abspath: str, given: str, duration: Optional[float] = None,
                     width: Optional[int] = None, height: Optional[int] = None, thumbnails: int = 0,
                     times: Optional[np.ndarray] = None, crop: Optional[str] = None) -> Optional[str]:
        """Record a video and its path in one transaction. Returns the id of a video
        this path held before that no path holds any more (its files can go)."""
        with self.transaction():
            previous = self.video_of(abspath)
            self.db.execute('INSERT OR REPLACE INTO videos (id, frames, selector, coarse, fine_sha256, synced, '
                            'indexed_at, duration, width, height, thumbnails, times, crop) '
                            'VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)',
                            (video_id, frames, selector, np.asarray(coarse, np.float32).tobytes(),
                             fine_sha256, time.time(), duration, width, height, thumbnails,
                             None if times is None else np.asarray(times, np.float32).tobytes(), crop))
            self.db.execute('DELETE FROM removed WHERE id = ?', (video_id,))
            self.db.execute('INSERT OR REPLACE INTO paths VALUES (?, ?, ?)', (abspath, given, video_id))
            if self._has_table('clip_windows'):  # a video extracted again: its windows are stale
                self.db.execute('UPDATE clip_windows SET windows = -1 WHERE video_id = ?', (video_id,))
            return self._drop_if_orphan(previous, video_id)

    def _has_table(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (name,)).fetchone() is not None

    def add_path(self, video_id: str, abspath: str, given: str) -> Optional[str]:
        """Another file with the content of an indexed video."""
        with self.transaction():
            previous = self.video_of(abspath)
            self.db.execute('INSERT OR REPLACE INTO paths VALUES (?, ?, ?)', (abspath, given, video_id))
            return self._drop_if_orphan(previous, video_id)

    def remove_paths(self, abspaths: Sequence[str]) -> List[str]:
        """Forget the files at ``abspaths`` in one transaction; return the ids of the
        videos no path holds any more (their rows go now, their files and vectors may)."""
        orphans = []
        with self.transaction():
            for abspath in abspaths:
                previous = self.video_of(abspath)
                self.db.execute('DELETE FROM paths WHERE abspath = ?', (abspath,))
                if (orphan := self._drop_if_orphan(previous, None)) is not None:
                    orphans.append(orphan)
        return orphans

    def indexed_paths(self, abspath: Optional[str] = None) -> List[Tuple[str, str]]:
        """(absolute path, path as given) of every indexed file, or of those at
        ``abspath`` or below it, in order of absolute path."""
        if abspath is None:
            return list(self.db.execute('SELECT abspath, given FROM paths ORDER BY abspath'))
        exact = self.db.execute('SELECT abspath, given FROM paths WHERE abspath = ?', (abspath,)).fetchall()
        if exact:
            return exact
        # Below a folder: the paths from "folder/" up to "folder0" ('0' follows the
        # separator), a range the primary key's index answers without a scan.
        below = abspath.rstrip(os.sep) + os.sep
        after = below[:-1] + chr(ord(os.sep) + 1)
        return list(self.db.execute('SELECT abspath, given FROM paths WHERE abspath >= ? AND abspath < ? '
                                    'ORDER BY abspath', (below, after)))

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
        row = self.db.execute(f'SELECT {RECORD_COLUMNS} FROM videos WHERE id = ?', (video_id,)).fetchone()
        return VideoRecord(*row) if row else None

    def videos(self, ids: Sequence[str]) -> Dict[str, VideoRecord]:
        out = {}
        for chunk in _chunks(list(ids), 500):
            marks = ','.join('?' * len(chunk))
            for row in self.db.execute(f'SELECT {RECORD_COLUMNS} FROM videos WHERE id IN ({marks})', chunk):
                out[row[0]] = VideoRecord(*row)
        return out

    def coarse(self, video_id: str) -> np.ndarray:
        row = self.db.execute('SELECT coarse FROM videos WHERE id = ?', (video_id,)).fetchone()
        return np.frombuffer(row[0], np.float32).copy()

    def coarse_vectors(self) -> Tuple[List[str], np.ndarray]:
        """Every video's id (in id order) and its coarse vector, rows of one float32
        matrix: one query, where one a video costs a round trip each (10^5 videos)."""
        ids, vectors = [], []
        for video_id, coarse in self.db.execute('SELECT id, coarse FROM videos ORDER BY id'):
            ids.append(video_id)
            vectors.append(np.frombuffer(coarse, np.float32))
        return ids, (np.stack(vectors) if vectors else np.empty((0, 0), np.float32))

    def times(self, video_id: str) -> Optional[np.ndarray]:
        """Each sample's seconds from the first frame, None if not recorded (indexed
        before sample times were)."""
        row = self.db.execute('SELECT times FROM videos WHERE id = ?', (video_id,)).fetchone()
        return None if row is None or row[0] is None else np.frombuffer(row[0], np.float32).astype(np.float64)

    def video_ids(self) -> List[str]:
        return [r[0] for r in self.db.execute('SELECT id FROM videos ORDER BY id')]

    def count(self) -> int:
        return self.db.execute('SELECT COUNT(*) FROM videos').fetchone()[0]

    def content_state(self) -> str:
        """A digest of what near-duplicate scores depend on: the videos (their features'
        hashes), their files and the index's settings and thresholds, not the reviewers'
        decisions. Equal digests: the same scores."""
        digest = hashlib.sha256()
        for query in ('SELECT id, fine_sha256, indexed_at FROM videos ORDER BY id',
                      'SELECT abspath, given, video_id FROM paths ORDER BY abspath',
                      'SELECT key, value FROM meta ORDER BY key'):
            for row in self.db.execute(query):
                digest.update(repr(row).encode())
            digest.update(b'\0')
        return digest.hexdigest()

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

    def ids_of_given(self, paths: Sequence[str]) -> Dict[str, str]:
        """The video id of each of ``paths`` that is a path as given at index time."""
        out = {}
        for chunk in _chunks(list(paths), 500):
            marks = ','.join('?' * len(chunk))
            out.update(self.db.execute(f'SELECT given, video_id FROM paths WHERE given IN ({marks})', chunk))
        return out

    # --- reviewers' decisions on pairs
    def decide(self, pairs: Iterable[Tuple[str, str]], decision: Optional[str], bulk: bool = False,
               reviewer: Optional[str] = None,
               shown: Optional[Dict[Tuple[str, str], Tuple[Optional[float], Optional[str]]]] = None,
               ) -> Tuple[List[Decision], Optional[str]]:
        """Record ``decision`` ('copy', 'not_copy'; None forgets it) on each pair of
        paths (as given at index time), in one transaction; return what was recorded and,
        with ``bulk``, the id of this group action: it then decides only the pairs not
        decided yet (a reviewer's own decision stands), and ``undo_bulk`` reverts it.
        ``shown``: (score, segments JSON) the reviewer saw, by ``pair_key``."""
        if decision is not None and decision not in DECISIONS:
            raise ValueError(f'a decision is one of {", ".join(DECISIONS)} (or none), got {decision!r}')
        if bulk and decision is None:
            raise ValueError('a group action decides: give copy or not_copy (undo one with its id)')
        now = time.time()
        keys = sorted({pair_key(a, b) for a, b in pairs})
        for a, b in keys:
            if a == b:
                raise ValueError(f'a pair needs two different files, got {a!r} twice')
        known = self.ids_of_given([path for key in keys for path in key])
        unknown = sorted({path for key in keys for path in key if path not in known})
        if unknown:
            raise UnknownFileError(f'not an indexed file (a path as given at index time): '
                                   f'{", ".join(map(repr, unknown))}')
        action = uuid.uuid4().hex if bulk else None
        with self.transaction():
            if decision is None:
                self.db.executemany('DELETE FROM decisions WHERE a = ? AND b = ?', keys)
            else:
                if bulk:
                    decided = set(self.db.execute('SELECT a, b FROM decisions'))
                    keys = [key for key in keys if key not in decided]
                shown = shown or {}
                made = [Decision(a, b, decision, now, action, *shown.get((a, b), (None, None)), reviewer)
                        for a, b in keys]
                self.db.executemany('INSERT OR REPLACE INTO decisions (a, b, decision, decided_at, bulk, score, '
                                    'segments, reviewer) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                                    [astuple(d) for d in made])
        return ([] if decision is None else made), action

    def undo_bulk(self, action: str) -> List[Tuple[str, str]]:
        """Forget the decisions group action ``action`` wrote that no reviewer has changed
        since; return their pairs."""
        with self.transaction():
            pairs = [tuple(row) for row in self.db.execute('SELECT a, b FROM decisions WHERE bulk = ?', (action,))]
            self.db.execute('DELETE FROM decisions WHERE bulk = ?', (action,))
        return pairs

    def decisions(self) -> Dict[Tuple[str, str], Decision]:
        return {(row[0], row[1]): Decision(*row) for row in self.db.execute(
            'SELECT a, b, decision, decided_at, bulk, score, segments, reviewer FROM decisions ORDER BY a, b')}

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

    def unsynced_count(self) -> int:
        """Committed videos whose coarse vectors Milvus does not hold yet."""
        return self.db.execute('SELECT COUNT(*) FROM videos WHERE synced = 0').fetchone()[0]

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


def pair_key(a: str, b: str) -> Tuple[str, str]:
    """One order for a pair of paths, whichever side it is seen from."""
    return (a, b) if a < b else (b, a)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]
