"""The DnS feature extractor: ResNet-50 regional features (L3-iMAC) with PCA whitening."""
import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet50

from .layers import l2norm

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Region max-pooling kernel after layer1..layer4; stride is ceil(kernel / 2).
REGION_KERNELS = (28, 14, 6, 3)


class RegionalMaxPooling(nn.Module):
    """Max-pool one stage's activations into a coarse grid of L2-normalised regions."""

    def __init__(self, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.stride = math.ceil(kernel / 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return l2norm(F.max_pool2d(x, self.kernel, self.stride), dim=1)


class PCAWhitening(nn.Module):
    """x -> norm((x - mean) V_k diag(1 / sqrt(d_k + eps))), the K largest components."""

    def __init__(self, in_dims: int = 3840, out_dims: int = 512):
        super().__init__()
        self.register_buffer('mean', torch.zeros(in_dims))
        self.register_buffer('projection', torch.zeros(in_dims, out_dims))

    @torch.no_grad()
    def set_components(self, mean: torch.Tensor, V: torch.Tensor, d: torch.Tensor, eps: float = 1e-7) -> None:
        """Keep the ``out_dims`` columns of V with the largest eigenvalues d."""
        out_dims = self.projection.shape[1]
        if d.shape[0] < out_dims:
            raise ValueError(f'PCA has {d.shape[0]} components, {out_dims} are needed')
        order = torch.argsort(d, descending=True)[:out_dims]
        self.mean.copy_(mean)
        self.projection.copy_(V[:, order] / torch.sqrt(d[order] + eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return l2norm((x - self.mean) @ self.projection)


class FeatureExtractor(nn.Module):
    """Frames [T, H, W, 3] RGB float in 0..255 -> region vectors [T, 9, 512]."""

    def __init__(self, dims: int = 512):
        super().__init__()
        self.backbone = resnet50()
        self.region_pools = nn.ModuleList(RegionalMaxPooling(k) for k in REGION_KERNELS)
        self.pca = PCAWhitening(256 + 512 + 1024 + 2048, dims)
        self.register_buffer('pixel_mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer('pixel_std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def stages(self, x: torch.Tensor):
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        for stage in (b.layer1, b.layer2, b.layer3, b.layer4):
            x = stage(x)
            yield x

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        regions = self.region_vectors(frames)
        # Outside region_vectors' own block, so PCA stays fp32 under the caller's autocast.
        with torch.autocast(frames.device.type, enabled=False):
            return self.pca(regions)

    def region_vectors(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames [T, H, W, 3] RGB float 0..255 -> L3-iMAC region vectors [T, 9, 3840],
        L2-normalised, fp32: the input of the PCA whitening."""
        # NHWC frames permuted to NCHW are channels_last in memory: the layout the CPU
        # and CUDA convolutions run fastest in, with no copy.
        x = frames.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        x = (x - self.pixel_mean) / self.pixel_std
        # The backbone may run under autocast (bf16/fp16); pooling, normalisation and
        # PCA always run in fp32, where the small differences of whitening matter.
        regions = [pool(a.float()) for pool, a in zip(self.region_pools, self.stages(x))]
        with torch.autocast(x.device.type, enabled=False):
            grid = regions[-1].shape[-2:]
            x = torch.cat([l2norm(F.adaptive_max_pool2d(r, grid), dim=1) for r in regions], dim=1)
            return l2norm(x.flatten(2).transpose(1, 2))  # [T, regions, 3840], row-major grid
