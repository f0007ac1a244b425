"""Turning what users pass to the operator into model input: decoded frames into
[N, 256, 256, 3] float batches, features into checked tensors."""
from itertools import groupby, islice
from typing import Any, Iterable, Iterator, List

import numpy as np
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from .defaults import DIMS, FRAME_SIZE, REGIONS


def iter_rgb_frames(data: Any) -> Iterator[np.ndarray]:
    """Yield every frame of ``data`` as an HxWx3 uint8 RGB array.

    ``data``: a [T, H, W, 3] uint8 array, or a list / iterator of frames, each a
    ``towhee.types.VideoFrame`` (mode RGB, BGR, RGBA or L) or an HxWx3 uint8 RGB array.
    """
    if data is None:
        raise ValueError('expected video frames (a list of HxWx3 uint8 frames or a [T, H, W, 3] array), got None')
    if isinstance(data, torch.Tensor):
        data = data.cpu().numpy()
    if isinstance(data, np.ndarray) and not hasattr(data, 'mode'):
        if data.ndim != 4 or data.shape[-1] != 3:
            raise ValueError(f'expected a [T, H, W, 3] array of frames, got shape {list(data.shape)}'
                             + (' (one frame? pass it as [1, H, W, 3] or in a list)' if data.ndim == 3 else ''))
    elif isinstance(data, (str, bytes, dict)) or not isinstance(data, Iterable):
        raise ValueError(f'expected video frames (a list of HxWx3 uint8 frames or a [T, H, W, 3] array), '
                         f'got {type(data).__name__}')
    count = 0
    for index, frame in enumerate(data):
        count += 1
        yield _to_rgb(frame, index)
    if count == 0:
        raise ValueError('expected at least one video frame, got none')


def _to_rgb(frame: Any, index: int) -> np.ndarray:
    if frame is None:
        raise ValueError(f'frame {index} is None; expected an HxWx3 uint8 array or VideoFrame')
    if isinstance(frame, torch.Tensor):
        frame = frame.cpu().numpy()
    if not isinstance(frame, np.ndarray):
        raise ValueError(f'frame {index}: expected an HxWx3 uint8 array or VideoFrame, got {type(frame).__name__}')
    if frame.dtype != np.uint8:
        raise ValueError(f'frame {index}: expected dtype uint8 with values 0..255, got {frame.dtype}'
                         ' (float frames in 0..1: multiply by 255 and convert to uint8)')
    mode = getattr(frame, 'mode', None) or 'RGB'
    frame = np.asarray(frame)
    if mode == 'L':
        if frame.ndim == 3 and frame.shape[-1] == 1:
            frame = frame[..., 0]
        if frame.ndim != 2:
            raise ValueError(f'frame {index}: mode L expects HxW or HxWx1, got shape {list(frame.shape)}')
        frame, mode = np.repeat(frame[..., None], 3, axis=-1), 'RGB'
    expected_channels = {'RGB': 3, 'BGR': 3, 'RGBA': 4}.get(mode)
    if expected_channels is None:
        raise ValueError(f'frame {index}: unsupported mode {mode!r}; expected RGB, BGR, RGBA or L')
    if frame.ndim != 3 or frame.shape[-1] != expected_channels or min(frame.shape[:2]) < 1:
        raise ValueError(f'frame {index}: mode {mode} expects shape [H, W, {expected_channels}], '
                         f'got {list(frame.shape)}')
    if mode == 'BGR':
        frame = frame[..., ::-1]
    return frame[..., :3]


def frame_batches(frames: Iterable[np.ndarray], batch_size: int) -> Iterator[List[np.ndarray]]:
    """Consume ``frames`` lazily, ``batch_size`` at a time, so a video never has to sit in
    memory whole."""
    iterator = iter(frames)
    while batch := list(islice(iterator, batch_size)):
        yield batch


def resize_center_crop(frames: List[np.ndarray], device: torch.device) -> torch.Tensor:
    """Shorter side to 256 (bicubic, antialiased, rounded to 0..255 like PIL), centre
    crop 256x256, as the original operator's PIL transforms, but batched per run of
    equal-size frames: uint8 [N, 256, 256, 3] (4x smaller than float, for crops made in
    one process and extracted in another)."""
    out = []
    for _, run in groupby(frames, key=lambda f: f.shape):
        batch = torch.from_numpy(np.stack(list(run)))
        if device.type == 'cuda':
            # uint8 frames cross the bus (4x fewer bytes than float) from pinned memory,
            # asynchronously; resizing then runs on the GPU.
            batch = batch.pin_memory().to(device, non_blocking=True)
        else:
            batch = batch.to(device)
        batch = batch.permute(0, 3, 1, 2)
        batch = TF.resize(batch, [FRAME_SIZE], interpolation=InterpolationMode.BICUBIC, antialias=True)
        out.append(TF.center_crop(batch, [FRAME_SIZE, FRAME_SIZE]))
    # One run of equal-size frames (the usual case) needs no concatenation, a copy.
    return (out[0] if len(out) == 1 else torch.cat(out)).permute(0, 2, 3, 1)


def check_features(features: Any, what: str = 'features') -> torch.Tensor:
    """Region features [T, 9, 512] (numpy or torch), finite -> float32 tensor."""
    tensor = _as_tensor(features, what)
    if tensor.ndim != 3 or tuple(tensor.shape[1:]) != (REGIONS, DIMS) or tensor.shape[0] < 1:
        raise ValueError(f'expected {what} of shape [T, {REGIONS}, {DIMS}] with T >= 1, got {list(tensor.shape)}')
    return _finite(tensor, what)


def check_vector(vector: Any, dims: int, what: str) -> torch.Tensor:
    tensor = _as_tensor(vector, what)
    if tuple(tensor.shape) != (dims,):
        raise ValueError(f'expected {what} of shape [{dims}], got {list(tensor.shape)}')
    return _finite(tensor, what)


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
            raise ValueError(f'expected {what} as a float array, got dtype {value.dtype}')
        value = torch.from_numpy(np.ascontiguousarray(value))
    elif isinstance(value, (float, int)) and not isinstance(value, bool):
        value = torch.tensor(value)
    if not isinstance(value, torch.Tensor):
        raise ValueError(f'expected {what} as a numpy array or torch tensor, got {type(value).__name__}')
    if value.is_complex() or value.dtype == torch.bool:
        raise ValueError(f'expected {what} as real numbers, got {value.dtype}')
    return value.float()


def _finite(tensor: torch.Tensor, what: str) -> torch.Tensor:
    # NaN and Inf propagate into the sum: a finite sum proves every value finite at a
    # fraction of an element-wise check's cost (it matters for thousands of targets).
    if not torch.isfinite(tensor.sum()) and not torch.isfinite(tensor).all():
        raise ValueError(f'{what} contain NaN or Inf values; expected finite numbers')
    return tensor
