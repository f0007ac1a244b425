"""The DnS networks (Kordopatis-Zilos et al., IJCV 2022). Plain PyTorch modules that
know nothing of Towhee."""
from .feature_extractor import FeatureExtractor, PCAWhitening
from .layers import Attention, Binarization, NetVLAD, VideoComparator
from .selector import SelectorNetwork
from .students import CoarseGrainedStudent, FineGrainedStudent
from .tiling import Tiling

__all__ = ['FeatureExtractor', 'PCAWhitening', 'Attention', 'Binarization', 'NetVLAD',
           'VideoComparator', 'SelectorNetwork', 'CoarseGrainedStudent', 'FineGrainedStudent', 'Tiling']
