"""Towhee operator ``video-copy-detection/distill-and-select``: DnS
(Distill-and-Select, Kordopatis-Zilos et al., IJCV 2022)."""
import warnings

# Towhee 1.1.3 imports pkg_resources, whose deprecation warning says nothing to our users.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

from .distill_and_select import DistillAndSelect  # noqa: E402


def distill_and_select(*args, **kwargs) -> DistillAndSelect:
    """Factory called by Towhee's hub loader; arguments as ``DistillAndSelect``."""
    return DistillAndSelect(*args, **kwargs)


__all__ = ['DistillAndSelect', 'distill_and_select']
