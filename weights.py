"""Finding, downloading and loading the published DnS weight files."""
import argparse
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Optional, Union

import torch
from torch import nn
from tqdm import tqdm

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


class WeightsError(RuntimeError):
    """A weight file that cannot be found, downloaded, read or loaded."""


def cache_dir() -> Path:
    """Where the original DnS code's torch.hub downloads land, so they are reused."""
    return Path(torch.hub.get_dir()) / 'checkpoints'


def resolve(file_name: str, *, url: Optional[str] = None, hf_repo: Optional[str] = None,
            progress: bool = True) -> Path:
    """Path of a published file: the torch.hub cache, else a Hugging Face mirror
    (``hf_repo`` or $DNS_HF_REPO), else a download from its published URL."""
    cached = cache_dir() / file_name
    if cached.is_file():
        return cached
    hf_repo = hf_repo or os.environ.get(HF_MIRROR_ENV)
    if hf_repo:
        return _from_hugging_face(hf_repo, file_name)
    url = url or PUBLISHED_URLS.get(file_name)
    if url is None:
        raise WeightsError(f'unknown weight file {file_name!r}; known: {", ".join(PUBLISHED_URLS)}')
    try:
        download(url, cached, progress=progress)
    except (OSError, urllib.error.URLError, WeightsError) as error:
        raise WeightsError(
            f'cannot get {file_name}: download from {url} failed ({error}). Download it by other means and '
            f'put it at {cached}, or name a Hugging Face mirror with hf_repo= or ${HF_MIRROR_ENV}.') from error
    return cached


def _from_hugging_face(repo: str, file_name: str) -> Path:
    import huggingface_hub
    try:
        return Path(huggingface_hub.hf_hub_download(repo_id=repo, filename=file_name))
    except Exception as error:  # the hub raises many types: offline, 404, auth
        raise WeightsError(f'cannot get {file_name} from the Hugging Face repository {repo}: {error}. '
                           f'Or put the file at {cache_dir() / file_name}.') from error


def download(url: str, destination: Path, progress: bool = True) -> None:
    """Download to a temporary file beside ``destination``, renamed into place only when
    complete. torch.hub.download_url_to_file would do, but it accepts a transfer that
    ends before Content-Length as a complete file; this refuses it."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        expected = response.headers.get('Content-Length')
        expected = int(expected) if expected is not None else None
        fd, tmp_name = tempfile.mkstemp(dir=destination.parent, prefix=f'.{destination.name}.', suffix='.partial')
        try:
            received = 0
            with os.fdopen(fd, 'wb') as out, tqdm(total=expected, unit='B', unit_scale=True,
                                                  desc=destination.name, disable=not progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if expected is not None and received != expected:
                raise WeightsError(f'transfer interrupted: {received} of {expected} bytes received')
            os.replace(tmp_name, destination)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


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
