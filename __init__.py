"""Towhee operator ``video-copy-detection/distill-and-select``: DnS
(Distill-and-Select, Kordopatis-Zilos et al., IJCV 2022).

``DnS`` (core.py) is the framework-free model; ``DistillAndSelect`` the Towhee operator
over it. Both are imported on first use, so that ``distill_and_select.retrieval`` and
the `dns` command do not import Towhee.
"""
import importlib
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported on first use (it imports Towhee)
    from .distill_and_select import DistillAndSelect

# Towhee 1.1.3 imports pkg_resources, whose deprecation warning says nothing to our users.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

_LAZY = {'DistillAndSelect': '.distill_and_select', 'DnS': '.core', 'VideoRepresentation': '.core'}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def distill_and_select(*args, **kwargs) -> 'DistillAndSelect':
    """Factory called by Towhee's hub loader; arguments as ``DistillAndSelect``."""
    from .distill_and_select import DistillAndSelect
    return DistillAndSelect(*args, **kwargs)


__all__ = ['DistillAndSelect', 'DnS', 'VideoRepresentation', 'distill_and_select']
