"""A second test weight set, the "copy model", whose fine-grained similarities mean
something: copies score high, unrelated videos near the noise floor, and a copied
segment shows as a diagonal of the frame-similarity matrix.

The golden weights (golden_weights.py) prove parity with the original implementation,
but their random fine-grained students score every pair of videos about the same. Here,
in the published file names and formats:

- ``resnet50-0676ba61.pth``, ``dns_cg_student.pth`` and both selectors: the golden
  files (same rule, same bytes), so everything loads;
- ``pca_resnet50_vcdb_1M.pth``: PCA whitening fitted on the L3-iMAC region vectors of
  real frames (``varied_scene`` scenes from seed 9000 on, through H.264 and back,
  preprocessed as the operator does), eigenvalues regularised (``EIGEN_SHRINK``);
- ``dns_fg_att_student.pth``: attention 1 everywhere and an identity comparator, so
  its video similarity is the Chamfer similarity of the 4x4-max-pooled relu of the
  region Chamfer similarities of whitened features;
- ``dns_fg_bin_student.pth``: binarization by a random orthogonal W (what ITQ starts
  from) and the same identity comparator; ``itq_resnet50W_dns100k_1M.pth`` holds that W.
"""
import argparse
import importlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Union

import numpy as np
import torch
from torchvision.models import resnet50

from .checkout import PACKAGE, import_checkout
from .corpus import varied_scene
from .golden_weights import DATA, DNS_FILES, state_dict
from .video_files import make_video

BACKBONE_FILE = 'resnet50-0676ba61.pth'
PCA_FILE = 'pca_resnet50_vcdb_1M.pth'
ITQ_FILE = 'itq_resnet50W_dns100k_1M.pth'
MARKER_FILE = 'copy-model.json'
SHA256_RECORDS = 'dns-sha256.json'

# Fitting frames: many scenes with few frames each, because the variety of scenes, not
# the number of frames of one scene, is what brings unrelated videos down to the noise
# floor. The seeds are apart from tests/support/corpus.py's ranges (1000+, 2000+, 3000+ and more).
FIT_SEED = 9000
FIT_SCENES = 128
FIT_FRAMES = (0, 16)  # frames of each scene, 4 s of scene time apart at FIT_FPS
FIT_SIZE = (96, 128)  # tests/support/corpus.py's frame size
FIT_FPS = 4
PCA_DIMS = 512
# 256 frames give 2304 region vectors for 3840 dimensions: the smaller of the 512 kept
# eigenvalues are poorly estimated and whitening would blow their noise up. Stored
# eigenvalues are d_k + EIGEN_SHRINK * mean(d), which bounds the gain of any direction.
# Of 0 to 3 tried, up to 0.3 barely moves the separation of copies from unrelated videos;
# beyond, unrelated videos score higher. 0.1 is the safe side of that.
EIGEN_SHRINK = 0.1
# tanh(10) = 1 - 4e-9 and sigmoid(20 * tanh(10)) = 1 - 2e-9: attention weights of 1.
ATTENTION_BIAS = 10.0
ATTENTION_CONTEXT_SUM = 20.0
BINARIZATION_SEED = 9999
# version 2: the fitting frames are encoded from the test support's own YUV conversion
# (video_files.yuv420p); a cached model fitted before that is written again.
SETTINGS = {'version': 2, 'fit_seed': FIT_SEED, 'fit_scenes': FIT_SCENES, 'fit_frames': list(FIT_FRAMES),
            'fit_size': list(FIT_SIZE), 'pca_dims': PCA_DIMS, 'eigen_shrink': EIGEN_SHRINK,
            'binarization_seed': BINARIZATION_SEED}


def write_copy_model(folder: Union[str, Path]) -> Path:
    """Write the copy model's files into ``folder`` (a torch.hub ``checkpoints`` folder,
    created if missing) and return it. Deterministic; 40 s to 2 min on 2 cores, with
    the machine's load, most of it ResNet-50 on the 256 fitting frames."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f'write_copy_model needs a folder, but {folder} is a file')
    folder.mkdir(parents=True, exist_ok=True)
    # The files are replaced: sha256 records of earlier ones would refuse them.
    (folder / SHA256_RECORDS).unlink(missing_ok=True)
    (folder / MARKER_FILE).unlink(missing_ok=True)
    keys = json.loads((DATA / 'checkpoint_keys.json').read_text())
    backbone = golden_backbone()
    _save(backbone, folder / BACKBONE_FILE)
    for file_name in ('dns_cg_student.pth', 'dns_selector_cg-fg_att.pth', 'dns_selector_cg-fg_bin.pth'):
        _save_dns(state_dict(file_name, keys[file_name]), folder / file_name)
    fg_att, fg_bin = fg_att_state(), fg_bin_state()
    for file_name, model in (('dns_fg_att_student.pth', fg_att), ('dns_fg_bin_student.pth', fg_bin)):
        expected = {k: list(v) for k, v in keys[file_name].items()}
        if {k: list(v.shape) for k, v in model.items()} != expected:
            raise AssertionError(f'{file_name}: keys or shapes differ from checkpoint_keys.json')
        _save_dns(model, folder / file_name)
    _save({'proj': fg_bin['binarization.W'].clone()}, folder / ITQ_FILE)
    _save(fit_pca(fitting_region_vectors(backbone)), folder / PCA_FILE)
    # Written last: a folder with this marker is complete.
    (folder / MARKER_FILE).write_text(json.dumps(SETTINGS, indent=1, sort_keys=True))
    return folder


@contextmanager
def use_hub(hub_dir: Union[str, Path]) -> Iterator[Path]:
    """Load published files from ``hub_dir`` (a torch.hub dir holding ``checkpoints/``)
    inside the block, in this process (torch.hub.set_dir) and in subprocesses
    (TORCH_HOME); both are restored after."""
    hub_dir = Path(hub_dir)
    if hub_dir.name != 'hub':
        raise ValueError(f'hub_dir must be a folder named "hub" (TORCH_HOME/hub for subprocesses), got {hub_dir}')
    if not (hub_dir / 'checkpoints').is_dir():
        raise ValueError(f'hub_dir {hub_dir} has no checkpoints/ folder; write one with write_copy_model')
    previous_dir, previous_home = torch.hub.get_dir(), os.environ.get('TORCH_HOME')
    torch.hub.set_dir(str(hub_dir))
    os.environ['TORCH_HOME'] = str(hub_dir.parent)
    try:
        yield hub_dir
    finally:
        torch.hub.set_dir(previous_dir)
        if previous_home is None:
            os.environ.pop('TORCH_HOME', None)
        else:
            os.environ['TORCH_HOME'] = previous_home


def copy_model_index(folder: Union[str, Path], hub_dir: Union[str, Path], videos) -> tuple:
    """A new att index in ``folder`` holding ``videos``, made with the copy model under
    ``hub_dir``; returns (index, DnS models)."""
    retrieval = importlib.import_module(f'{PACKAGE}.retrieval')
    with use_hub(hub_dir):
        index = retrieval.VideoIndex(folder, create=True, fine='att')
        models = import_checkout().DnS(index.settings.fine, device='cpu')
    for path in videos:
        retrieval.add_file(index, str(path), models)
    return index, models


def golden_backbone() -> Dict[str, torch.Tensor]:
    """The golden ResNet-50 state dict (golden_weights' rule)."""
    shapes = {k: list(v.shape) for k, v in resnet50().state_dict().items()}
    return state_dict(BACKBONE_FILE, shapes)


def fitting_frames() -> np.ndarray:
    """uint8 [FIT_SCENES * len(FIT_FRAMES), H, W, 3]: each scene's frames encoded with
    libx264 and decoded again, so the PCA sees real compressed frames."""
    import_checkout()
    decoder = importlib.import_module(f'{PACKAGE}.video_decode').VideoDecoder()
    h, w = FIT_SIZE
    out = []
    with tempfile.TemporaryDirectory(prefix='copy-model-') as tmp:
        for i in range(FIT_SCENES):
            scene = varied_scene(max(FIT_FRAMES) + 1, h, w, seed=FIT_SEED + i)[list(FIT_FRAMES)]
            path = make_video(Path(tmp) / f'fit{i}.mp4', scene, fps=FIT_FPS)
            out.extend(np.asarray(frame) for frame in decoder(str(path)))
    return np.stack(out)


@torch.inference_mode()
def fitting_region_vectors(backbone: Dict[str, torch.Tensor], batch_size: int = 32) -> torch.Tensor:
    """Pre-PCA region vectors [N * 9, 3840] of ``fitting_frames()``, preprocessed and
    extracted as the operator does."""
    import_checkout()
    model = importlib.import_module(f'{PACKAGE}.model')
    preprocess = importlib.import_module(f'{PACKAGE}.preprocess')
    extractor = model.FeatureExtractor().eval()
    extractor.backbone.load_state_dict(backbone)
    frames = fitting_frames()
    cpu = torch.device('cpu')
    chunks = [extractor.region_vectors(preprocess.resize_center_crop(list(frames[i:i + batch_size]), cpu).float())
              for i in range(0, len(frames), batch_size)]
    return torch.cat(chunks).reshape(-1, chunks[0].shape[-1])


def fit_pca(vectors: torch.Tensor, dims: int = PCA_DIMS, shrink: float = EIGEN_SHRINK) -> Dict[str, torch.Tensor]:
    """PCA of ``vectors`` [N, D] in the published format {"mean" [D], "V" [D, dims],
    "d" [dims]}, eigenvalues regularised to d + shrink * mean(d)."""
    if vectors.ndim != 2 or vectors.shape[0] < dims + 1:
        raise ValueError(f'fit_pca needs [N, D] vectors with N > {dims}, got {list(vectors.shape)}')
    if shrink < 0:
        raise ValueError(f'shrink must be >= 0, got {shrink}')
    x = vectors.double()
    mean = x.mean(dim=0)
    x = x - mean
    n = x.shape[0]
    # Eigenvectors of the covariance from the smaller of the two Gram matrices: with fewer
    # samples than dimensions, from x x^T [N, N] (V = x^T u / sqrt(lambda)). A dense
    # eigh is exact and several times faster here than an SVD of x.
    if n < x.shape[1]:
        eigenvalues, u = torch.linalg.eigh(x @ x.T)
        eigenvalues, u = eigenvalues.flip(0)[:dims], u.flip(1)[:, :dims]
        V = x.T @ u / eigenvalues.clamp(min=1e-30).sqrt()
    else:
        eigenvalues, V = torch.linalg.eigh(x.T @ x)
        eigenvalues, V = eigenvalues.flip(0)[:dims], V.flip(1)[:, :dims]
    if not eigenvalues[-1] > 1e-12 * eigenvalues[0]:
        raise ValueError(f'fit_pca: the vectors span fewer than {dims} dimensions')
    d = eigenvalues / (n - 1)
    # An eigenvector's sign is arbitrary: fix it (largest entry positive) for reproducible files.
    V = V * torch.sign(V.gather(0, V.abs().argmax(dim=0, keepdim=True)))
    d = d + shrink * d.mean()
    return {'mean': mean.float(), 'V': V.float().contiguous(), 'd': d.float()}


def identity_comparator() -> Dict[str, torch.Tensor]:
    """visil_head weights that pass channel 0 through each 3x3 conv's centre tap: the
    comparator's output is then the 4x4 max-pooling of relu(frame similarity)."""
    state = {}
    for name, (out_c, in_c, k) in {'conv1': (32, 1, 3), 'conv2': (64, 32, 3), 'conv3': (128, 64, 3),
                                   'fconv': (1, 128, 1)}.items():
        weight = torch.zeros(out_c, in_c, k, k)
        weight[0, 0, k // 2, k // 2] = 1
        state[f'visil_head.{name}.weight'] = weight
        state[f'visil_head.{name}.bias'] = torch.zeros(out_c)
    return state


def fg_att_state(dims: int = PCA_DIMS) -> Dict[str, torch.Tensor]:
    """fg_att_student with attention weights of 1 and the identity comparator."""
    return {'attention.transform.weight': torch.zeros(dims, dims),
            'attention.transform.bias': torch.full((dims,), ATTENTION_BIAS),
            'attention.context_vector.weight': torch.full((1, dims), ATTENTION_CONTEXT_SUM / dims),
            **identity_comparator()}


def fg_bin_state(dims: int = PCA_DIMS) -> Dict[str, torch.Tensor]:
    """fg_bin_student binarizing by a seeded random orthogonal W (QR of a Gaussian), so
    that each bit is the sign of one random direction of the whitened space."""
    z = torch.randn(dims, dims, generator=torch.Generator().manual_seed(BINARIZATION_SEED), dtype=torch.float64)
    q, r = torch.linalg.qr(z)
    q = q * torch.sign(torch.diagonal(r))  # the unique QR with a positive diagonal: Haar distributed
    return {'binarization.W': q.float().contiguous(), **identity_comparator()}


def _save_dns(model: Dict[str, torch.Tensor], path: Path) -> None:
    student = DNS_FILES[path.name]
    _save({'model': model, 'global_step': 1, 'args': argparse.Namespace(student=student, lr=1e-05)}, path)


def _save(obj, path: Path) -> None:
    # Renamed into place, so a file under its published name is always complete. Written
    # under its own name (torch.save names the archive's records after the file), so the
    # golden files come out byte for byte as golden_weights.write_all writes them.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix='.partial-') as tmp:
        partial = Path(tmp) / path.name
        torch.save(obj, partial)
        os.replace(partial, path)

