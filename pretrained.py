"""The six DnS networks by name, built and loaded with their published weights."""
from pathlib import Path
from typing import Callable, Dict, NamedTuple, Optional, Union

from torch import nn

from .model import CoarseGrainedStudent, FeatureExtractor, FineGrainedStudent, SelectorNetwork
from .weights import WeightsError, load_into, load_state_dict, resolve

BACKBONE_FILE = 'resnet50-0676ba61.pth'
PCA_FILE = 'pca_resnet50_vcdb_1M.pth'


class Network(NamedTuple):
    build: Callable[[], nn.Module]
    file_name: Optional[str]  # None: the feature extractor, made of two published files


NETWORKS: Dict[str, Network] = {
    'feature_extractor': Network(FeatureExtractor, None),
    'fg_att_student': Network(lambda: FineGrainedStudent(binarization=False), 'dns_fg_att_student.pth'),
    'fg_bin_student': Network(lambda: FineGrainedStudent(binarization=True), 'dns_fg_bin_student.pth'),
    'cg_student': Network(CoarseGrainedStudent, 'dns_cg_student.pth'),
    'selector_att': Network(SelectorNetwork, 'dns_selector_cg-fg_att.pth'),
    'selector_bin': Network(SelectorNetwork, 'dns_selector_cg-fg_bin.pth'),
}


def load_network(name: str, weight_path: Union[str, Path, None] = None,
                 hf_repo: Optional[str] = None) -> nn.Module:
    """Build network ``name`` in eval mode with its weights: from ``weight_path`` (the
    published format or a bare state dict of the module) or the published files."""
    if name not in NETWORKS:
        raise ValueError(f'unknown model_name {name!r}; expected one of {", ".join(NETWORKS)}')
    network = NETWORKS[name]
    module = network.build()
    if weight_path is not None:
        load_into(module, load_state_dict(weight_path), str(weight_path))
    elif network.file_name is None:
        _load_published_feature_extractor(module, hf_repo)
    else:
        path = resolve(network.file_name, hf_repo=hf_repo)
        load_into(module, load_state_dict(path), str(path))
    return module.eval()


def _load_published_feature_extractor(module: FeatureExtractor, hf_repo: Optional[str]) -> None:
    backbone_path = resolve(BACKBONE_FILE, hf_repo=hf_repo)
    pca_path = resolve(PCA_FILE, hf_repo=hf_repo)
    pca = load_state_dict(pca_path)
    dims, out_dims = module.pca.projection.shape
    if (set(pca) != {'mean', 'V', 'd'} or pca['mean'].shape != (dims,) or pca['V'].ndim != 2
            or pca['V'].shape[0] != dims or pca['d'].shape != pca['V'].shape[1:] or pca['d'].shape[0] < out_dims):
        raise WeightsError(f'{pca_path} is not a PCA file: expected mean [{dims}], V [{dims}, K], d [K] with '
                           f'K >= {out_dims}, got ' + ', '.join(f'{k} {list(v.shape)}' for k, v in pca.items()))
    # Check the backbone completely before touching the PCA, so no partial load.
    backbone = load_state_dict(backbone_path)
    load_into(module.backbone, backbone, str(backbone_path))
    module.pca.set_components(pca['mean'], pca['V'], pca['d'])
