"""Finding, downloading and loading the published DnS weight files."""
import argparse
import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Dict, Optional, Union

import torch
from filelock import FileLock
from torch import nn
from tqdm import tqdm

from .atomic_files import replacing
from .file_hash import HASH_CHUNK, sha256_of

DNS_URL = 'https://mever.iti.gr/distill-and-select/models/'
PUBLISHED_URLS: Dict[str, str] = {
    'resnet50-0676ba61.pth': 'https://download.pytorch.org/models/resnet50-0676ba61.pth',
    'pca_resnet50_vcdb_1M.pth': 'http://ndd.iti.gr/visil/pca_resnet50_vcdb_1M.pth',
    **{name: DNS_URL + name for name in (
        'itq_resnet50W_dns100k_1M.pth', 'dns_cg_student.pth', 'dns_fg_att_student.pth',
        'dns_fg_bin_student.pth', 'dns_selector_cg-fg_att.pth', 'dns_selector_cg-fg_bin.pth')},
}
HF_MIRROR_ENV = 'DNS_HF_REPO'
DOWNLOAD_TIMEOUT_S = 60
# Full sha256 of published files, checked on download. Empty until someone with access to the
# published URLs fills it in: a guessed hash would refuse every genuine download.
KNOWN_SHA256: Dict[str, str] = {}
SHA256_RECORDS = 'dns-sha256.json'
# torch.hub's naming convention: 'resnet50-0676ba61.pth' carries the start of its own sha256.
HUB_HASH_PREFIX = re.compile(r'-([0-9a-f]{8,})\.[^.]+$')


class WeightsError(RuntimeError):
    """A weight file that cannot be found, downloaded, read or loaded."""


def cache_dir() -> Path:
    """Where the original DnS code's torch.hub downloads land, so they are reused."""
    return Path(torch.hub.get_dir()) / 'checkpoints'


def resolve(file_name: str, *, url: Optional[str] = None, hf_repo: Optional[str] = None,
            progress: bool = True) -> Path:
    """Path of a published file: the torch.hub cache, else a Hugging Face mirror
    (``hf_repo`` or $DNS_HF_REPO), else a download from its published URL.

    Integrity rule for published files (names in ``PUBLISHED_URLS``) in the cache: a file we
    download is checked before it is renamed into place, against ``KNOWN_SHA256`` and the
    sha256 prefix a torch.hub-style name carries (``resnet50-0676ba61.pth``), so a bad download
    never lands. A file found in the cache without a record (placed there by the user or by the
    original DnS code) is trusted on first use. Either way its sha256 is recorded in
    ``cache_dir()/dns-sha256.json`` and every later resolve recomputes and compares it, so a file
    changed afterwards is refused. Files from the Hugging Face mirror are left to its own checks.
    Concurrent resolves of one file (other processes too) download it once, under a file lock."""
    cached = cache_dir() / file_name
    if cached.is_file():
        _check_against_record(cached)
        return cached
    hf_repo = hf_repo or os.environ.get(HF_MIRROR_ENV)
    if hf_repo:
        return _from_hugging_face(hf_repo, file_name)
    url = url or PUBLISHED_URLS.get(file_name)
    if url is None:
        raise WeightsError(f'unknown weight file {file_name!r}; known: {", ".join(PUBLISHED_URLS)}')
    cached.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cached.with_name(file_name + '.lock'))):
        # Whoever held the lock before us may have just finished this very download.
        if cached.is_file():
            _check_against_record(cached)
            return cached
        try:
            digest = download(url, cached, progress=progress, verify=lambda d: _check_download(file_name, d))
        except (OSError, urllib.error.URLError, WeightsError) as error:
            raise WeightsError(
                f'cannot get {file_name}: download from {url} failed ({error}). Download it by other means and '
                f'put it at {cached}, or name a Hugging Face mirror with hf_repo= or ${HF_MIRROR_ENV}.') from error
        if file_name in PUBLISHED_URLS:
            # A fresh download replaces any record: the user deleted the old file to get this one.
            _write_record(file_name, digest)
    return cached


def _check_download(file_name: str, actual: str) -> None:
    expected = KNOWN_SHA256.get(file_name)
    if expected is not None and actual != expected:
        raise WeightsError(f'the download of {file_name} has sha256 {actual}, expected {expected}')
    prefix = HUB_HASH_PREFIX.search(file_name)
    if prefix and not actual.startswith(prefix.group(1)):
        raise WeightsError(f'the download of {file_name} has sha256 {actual}, which does not start with '
                           f'{prefix.group(1)} as its name says')


def _check_against_record(path: Path) -> None:
    """Trust on first use: record the hash of a file first seen, refuse one changed since."""
    if path.name not in PUBLISHED_URLS:
        return
    actual = sha256_of(path)
    expected = _read_records().get(path.name)
    if expected is None:
        _write_record(path.name, actual)
    elif actual != expected:
        raise WeightsError(f'{path.name} at {path} has changed since it was recorded: sha256 {actual}, '
                           f'expected {expected} (recorded in {cache_dir() / SHA256_RECORDS}); '
                           'delete it and download it again')


def _read_records() -> Dict[str, str]:
    path = cache_dir() / SHA256_RECORDS
    try:
        records = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise WeightsError(f'cannot read the sha256 records {path} ({error}); delete it and they are '
                           'recorded afresh') from error
    if not isinstance(records, dict):
        raise WeightsError(f'{path} is not a JSON object of sha256 records; delete it and they are recorded afresh')
    return records


def _write_record(file_name: str, digest: str) -> None:
    path = cache_dir() / SHA256_RECORDS
    # Read-modify-write under a lock, so processes recording different files keep each other's records;
    # the rename makes a reader see the old or the new JSON, never half of one.
    with FileLock(str(path.with_name(path.name + '.lock'))):
        records = {**_read_records(), file_name: digest}
        with replacing(path, 'w') as out:
            json.dump(records, out, indent=1, sort_keys=True)


def _from_hugging_face(repo: str, file_name: str) -> Path:
    import huggingface_hub
    try:
        return Path(huggingface_hub.hf_hub_download(repo_id=repo, filename=file_name))
    except Exception as error:  # the hub raises many types: offline, 404, auth
        raise WeightsError(f'cannot get {file_name} from the Hugging Face repository {repo}: {error}. '
                           f'Or put the file at {cache_dir() / file_name}.') from error


def download(url: str, destination: Path, progress: bool = True,
             verify: Optional[Callable[[str], None]] = None) -> str:
    """Download to a temporary file beside ``destination``, renamed into place only when
    complete and, if ``verify`` is given, only when it accepts the sha256 (it raises to refuse).
    Returns the sha256 hex. torch.hub.download_url_to_file would do, but it accepts a transfer
    that ends before Content-Length as a complete file; this refuses it."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        expected = response.headers.get('Content-Length')
        expected = int(expected) if expected is not None else None
        received = 0
        digest = hashlib.sha256()  # while streaming: no second pass over the file
        with replacing(destination) as out, tqdm(total=expected, unit='B', unit_scale=True,
                                                 desc=destination.name, disable=not progress) as bar:
            while chunk := response.read(HASH_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
            if expected is not None and received != expected:
                raise WeightsError(f'transfer interrupted: {received} of {expected} bytes received')
            if verify is not None:
                verify(digest.hexdigest())
    return digest.hexdigest()


def load_state_dict(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """Tensors of a weight file: the published format (``{"model": ...}`` with training
    metadata), a bare state dict, or the PCA/ITQ dicts. Only tensors and
    ``argparse.Namespace`` are unpickled: a file carrying anything else is refused."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f'weight file {path} does not exist')
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            content = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:
        if 'Unsupported global' in str(error):  # a class or function the file would import
            raise WeightsError(f'{path} holds objects other than tensors and training metadata; '
                               f'refused for safety: {str(error).splitlines()[0]}') from error
        raise WeightsError(f'{path} is truncated or corrupt ({type(error).__name__}: {error}); '
                           'delete it and download it again') from error
    state = content.get('model', content) if isinstance(content, dict) else content
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise WeightsError(f'{path} is not a weight file: expected a dict of tensors '
                           '(or {"model": dict of tensors}), got ' + type(state).__name__)
    return state


def load_into(module: nn.Module, state_dict: Dict[str, torch.Tensor], source: str) -> None:
    """Load strictly, after checking every key and shape, so a wrong file changes nothing."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [f'{k}: file {list(state_dict[k].shape)}, network {list(v.shape)}'
                  for k, v in own.items() if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or mismatched:
        parts = [f'{title} ({len(keys)}): {", ".join(keys[:10])}{", ..." if len(keys) > 10 else ""}'
                 for title, keys in (('missing keys', missing), ('unexpected keys', unexpected),
                                     ('shape mismatches', mismatched)) if keys]
        raise WeightsError(f'{source} does not fit {type(module).__name__}; is it a checkpoint of another '
                           'network? ' + '; '.join(parts))
    module.load_state_dict(state_dict, strict=True)
