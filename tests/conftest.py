import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

from support.checkout import PACKAGE, import_checkout  # noqa: E402,F401
from support.copy_model import write_copy_model  # noqa: E402
from support.golden_weights import write_all  # noqa: E402

# `dns index` compiles by default; the tests index a few seconds of video at a time,
# where compiling costs more than it saves. tests/test_compiled.py tests that path.
os.environ.setdefault('DNS_COMPILE', '0')

import_package = import_checkout
# Registered before any test module imports its submodules by name.
import_checkout()


@pytest.fixture(scope='session')
def hub_dir(tmp_path_factory):
    """A torch.hub dir whose checkpoints/ holds the deterministic weight files, so the
    operator resolves the published file names from the cache, offline."""
    hub = tmp_path_factory.mktemp('torch-home') / 'hub'
    write_all(hub / 'checkpoints')
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(hub))
    # Subprocesses (Towhee's loader test) find the same cache through TORCH_HOME.
    os.environ['TORCH_HOME'] = str(hub.parent)
    yield hub
    torch.hub.set_dir(previous)


@pytest.fixture(scope='session')
def copy_model_hub(tmp_path_factory, hub_dir):
    """A torch.hub dir holding the copy model (tests/support/copy_model.py: weights whose fine-grained
    similarities mean something), written once. Build models inside
    ``with use_hub(copy_model_hub):``; it needs ``hub_dir``, so the golden dir is set first
    and is what ``use_hub`` goes back to."""
    hub = tmp_path_factory.mktemp('copy-torch-home') / 'hub'
    write_copy_model(hub / 'checkpoints')
    return hub


@pytest.fixture(scope='session')
def golden():
    return dict(np.load(TESTS / 'data' / 'golden.npz'))


@pytest.fixture(scope='session')
def operators(hub_dir):
    """Operators by model name, built once: each one loads ResNet-50."""
    dns = import_package()
    cache = {}

    def get(name, **kwargs):
        key = (name, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = dns.DistillAndSelect(name, device='cpu', **kwargs)
        return cache[key]
    return get


@pytest.fixture(scope='session')
def dns():
    return import_package()


@pytest.fixture(scope='session')
def review_index(copy_model_hub, tmp_path_factory):
    """A folder with videos/ (one original, its copies, one unrelated video: real H.264
    files) indexed by `dns index` with the copy model, so duplicates exist. Returns
    (folder, TORCH_HOME of the copy model); paths are given relative to the folder."""
    import subprocess

    from support.corpus import make_corpus
    root = tmp_path_factory.mktemp('review')
    make_corpus(root / 'videos', originals=1, unrelated=1)
    torch_home = copy_model_hub.parent
    dns = Path(sys.executable).with_name('dns')
    result = subprocess.run([str(dns), 'index', '--no-progress', 'videos'], cwd=root, capture_output=True, text=True,
                            env=dict(os.environ, TORCH_HOME=str(torch_home)), timeout=900)
    assert result.returncode == 0, result.stderr
    return root, torch_home
