"""Deterministic weight files by the rule of the reference README (salt dns-golden-v1),
saved under the published file names and formats."""
import argparse
import json
import math
import zlib
from pathlib import Path
from typing import Dict, List

import torch
from torchvision.models import resnet50

SALT = 'dns-golden-v1'
DATA = Path(__file__).resolve().parents[1] / 'data'
DNS_FILES = {
    'dns_cg_student.pth': 'cg_student',
    'dns_fg_att_student.pth': 'fg_att_student',
    'dns_fg_bin_student.pth': 'fg_bin_student',
    'dns_selector_cg-fg_att.pth': 'selector_att',
    'dns_selector_cg-fg_bin.pth': 'selector_bin',
}


def draw(file_name: str, key: str, shape: List[int]) -> torch.Tensor:
    seed = zlib.crc32(f'{SALT}:{file_name}:{key}'.encode())
    z = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(torch.float32)
    if key.endswith('num_batches_tracked'):
        return torch.zeros(shape, dtype=torch.int64)
    if key.endswith('running_var'):
        return 1 + 0.1 * z.abs()
    if key.endswith('running_mean'):
        return 0.1 * z
    if key == 'pca.mean':
        return 0.01 * z
    if key == 'pca.d':
        return 0.5 + z.abs()
    if len(shape) == 1 and key.endswith('weight'):
        return 1 + 0.1 * z
    if len(shape) <= 1:
        return 0.1 * z
    return z / math.sqrt(math.prod(shape[1:]))


def state_dict(file_name: str, shapes: Dict[str, List[int]]) -> Dict[str, torch.Tensor]:
    return {key: draw(file_name, key, shape) for key, shape in shapes.items()}


def write_all(folder: Path) -> Path:
    """Write every published file into ``folder`` (a torch.hub checkpoints folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = json.loads((DATA / 'checkpoint_keys.json').read_text())
    backbone = {k: list(v.shape) for k, v in resnet50().state_dict().items()}
    torch.save(state_dict('resnet50-0676ba61.pth', backbone), folder / 'resnet50-0676ba61.pth')
    pca = state_dict('pca_resnet50_vcdb_1M.pth', {'pca.mean': [3840], 'pca.V': [3840, 512], 'pca.d': [512]})
    torch.save({k.split('.')[1]: v for k, v in pca.items()}, folder / 'pca_resnet50_vcdb_1M.pth')
    torch.save({'proj': draw('itq_resnet50W_dns100k_1M.pth', 'itq.proj', [512, 512])},
               folder / 'itq_resnet50W_dns100k_1M.pth')
    for file_name, student in DNS_FILES.items():
        torch.save({'model': state_dict(file_name, keys[file_name]), 'global_step': 1,
                    'args': argparse.Namespace(student=student, lr=1e-05)}, folder / file_name)
    return folder
