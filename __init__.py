"""Towhee operator ``video-copy-detection/distill-and-select``: DnS
(Distill-and-Select, Kordopatis-Zilos et al., IJCV 2022)."""
from .distill_and_select import DistillAndSelect


def distill_and_select(*args, **kwargs) -> DistillAndSelect:
    """Factory called by Towhee's hub loader; arguments as ``DistillAndSelect``."""
    return DistillAndSelect(*args, **kwargs)


__all__ = ['DistillAndSelect', 'distill_and_select']
