"""retrieval/storage/lite_host.py: a Milvus Lite folder served from a process of its own, as
`dns serve` does so that searches do not share the GIL of the threads answering
requests. The folder is locked while served and free once closed, the child survives
being killed (a fresh one serves on the next open), and the parent's death frees the
folder."""
import importlib
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import PACKAGE
from support.checkout import ROOT
from support.listening import beyond_loopback, listening

lite_host = importlib.import_module(f'{PACKAGE}.retrieval.storage.lite_host')
vector_store = importlib.import_module(f'{PACKAGE}.retrieval.storage.vector_store')
COARSE_DIMS = importlib.import_module(f'{PACKAGE}.defaults').COARSE_DIMS
COLLECTION = 'videos'


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(COARSE_DIMS).astype(np.float32)
    return vector / np.linalg.norm(vector)


@pytest.fixture(autouse=True)
def path_without_the_checkout_root(monkeypatch):
    """The host's child imports the package by name, as in a `dns` process. Under
    `python -m pytest` run from the checkout, the checkout's root is on the path, where
    the name is the operator's module: the child gets the path without it."""
    monkeypatch.setattr(sys, 'path', [p for p in sys.path if os.path.abspath(p or '.') != str(ROOT)])


@pytest.fixture
def folder(tmp_path):
    """A Lite database holding three vectors, written and released in this process."""
    path = str(tmp_path / 'milvus.db')
    store = vector_store.CoarseVectors(path, COLLECTION, lite=True)
    store.upsert(['a' * 64, 'b' * 64, 'c' * 64], [unit(0), unit(1), unit(2)])
    store.flush()
    store.close()
    return path


def hosted_store(host, folder):
    return vector_store.CoarseVectors(host.open(folder), COLLECTION, lite=True, hosted=True)


def locked_here(folder) -> bool:
    """Whether opening the folder in this process fails on its lock."""
    from milvus_lite.db import MilvusLite
    from milvus_lite.exceptions import DataDirLockedError
    try:
        MilvusLite(folder).close()
    except DataDirLockedError:
        return True
    return False


def test_the_host_serves_the_folder_locks_it_while_open_and_frees_it_when_closed(folder):
    host = lite_host.LiteHost()
    try:
        store = hosted_store(host, folder)
        assert store.search(unit(1), 2)[0] == ('b' * 64, pytest.approx(1.0, abs=1e-5))
        assert locked_here(folder)
        assert [address for address in listening([host.pid])], 'the host serves no socket'
        assert beyond_loopback(listening([host.pid])) == []
        store.close()
        host.close()
        assert not locked_here(folder)
        # Reopened in the same child: what was stored is all there.
        store = hosted_store(host, folder)
        assert store.count() == 3
        store.close()
    finally:
        host.shutdown()
    assert not locked_here(folder)


def test_a_killed_host_is_replaced_on_the_next_open(folder):
    host = lite_host.LiteHost()
    try:
        first = host.pid
        os.kill(first, signal.SIGKILL)
        store = hosted_store(host, folder)  # a fresh child serves it
        assert host.pid != first
        assert store.count() == 3
        store.close()
    finally:
        host.shutdown()


def test_the_parents_death_frees_the_folder(folder, tmp_path):
    parent = textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        from support.checkout import import_checkout
        import_checkout()
        from {PACKAGE}.retrieval.storage.lite_host import LiteHost
        host = LiteHost()
        host.open(sys.argv[1])
        print('open', flush=True)
        sys.stdin.read()
    ''')
    process = subprocess.Popen([sys.executable, '-c', parent, folder], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert process.stdout.readline().strip() == 'open'
        assert locked_here(folder)
        process.kill()  # no clean-up runs in the parent
        process.wait()
        # The child sees EOF on its pipe and lets go; a store waits for the lock as it
        # would for any other process's.
        store = vector_store.CoarseVectors(folder, COLLECTION, lite=True)
        assert store.count() == 3
        store.close()
    finally:
        process.kill()
        process.wait()


def test_a_folder_that_cannot_be_served_is_named(tmp_path):
    host = lite_host.LiteHost()
    try:
        not_a_folder = tmp_path / 'file'
        not_a_folder.write_text('not a database')
        with pytest.raises(vector_store.VectorStoreError, match='cannot open the Milvus Lite database .*file'):
            host.open(str(not_a_folder))
    finally:
        host.shutdown()
