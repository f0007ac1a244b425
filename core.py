"""DnS in plain torch, framework-free: decoded frames to region features, what each
network keeps of a video, and the comparisons between videos.

The Towhee operator, retrieval (plain and Ray engines) and the service all stand on
this module; it knows nothing of Towhee, Milvus, Ray or HTTP. Inputs are checked here,
once, so that every layer above gives the same errors.
"""
import platform
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from . import defaults
from .compilation import CompiledExtractor
from .localization import Segment, find_segments, library_levels
from .model import CoarseGrainedStudent
from .prefetch import Prefetched
from .preprocess import check_features, check_vector, frame_batches, iter_rgb_frames, resize_center_crop
from .pretrained import load_network

AUTOCAST_DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}

# The fine-grained student chosen for an index, and the selector trained with it.
FINE_STUDENTS: Dict[str, Tuple[str, str]] = {
    'att': ('fg_att_student', 'selector_att'),
    'bin': ('fg_bin_student', 'selector_bin'),
}


def pick_device(device: Union[str, torch.device, None]) -> torch.device:
    """``device``, or CUDA when available and none is named."""
    return torch.device(device if device is not None else ('cuda' if torch.cuda.is_available() else 'cpu'))


class EmulatedPrecisionWarning(RuntimeWarning):
    """bf16 asked of an x86 CPU without AVX-512: it runs, but emulated, several times
    slower than fp32."""


def warn_if_emulated(device: torch.device, precision: str) -> None:
    """Warn when ``precision`` has no native instructions on ``device`` (bf16 on an x86
    CPU without AVX-512, where oneDNN emulates it: measured 5x slower than fp32)."""
    if device.type != 'cpu' or precision != 'bf16' or platform.machine().lower() not in ('x86_64', 'amd64'):
        return
    capability = torch.backends.cpu.get_cpu_capability()
    if not capability.startswith('AVX512'):
        warnings.warn(f"precision='bf16' on this CPU ({capability}, no AVX-512) runs emulated, several times slower "
                      f"than 'fp32': use 'fp32' here", EmulatedPrecisionWarning, stacklevel=3)


def check_encoder_options(device: torch.device, batch_size: int, precision: str, compile: bool) -> None:
    """Refuse options a ``FrameEncoder`` cannot run with, naming the option."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
    if precision not in AUTOCAST_DTYPES or (precision == 'fp16' and device.type != 'cuda'):
        raise ValueError(f"precision must be 'fp32', 'bf16' or (on CUDA) 'fp16', got {precision!r} "
                         f'on {device.type}')
    if not isinstance(compile, bool):
        raise ValueError(f'compile must be True or False, got {compile!r}')


class FrameEncoder:
    """The feature extractor run on a video: decoded frames in, region features
    [T, 9, 512] out, ``batch_size`` frames at a time, so only the features accumulate
    (never the frames or the activations).

    precision: 'fp32', 'bf16' (CPU or CUDA) or 'fp16' (CUDA): autocast of the backbone;
        everything after it stays fp32.
    compile: run the network through ``torch.compile`` in fixed batch shapes
        (compilation.py): faster from a few hundred frames on, cached on disk.
    """

    def __init__(self, network: nn.Module, device: torch.device, batch_size: int = defaults.BATCH_SIZE,
                 precision: str = defaults.PRECISION, compile: bool = False):
        check_encoder_options(device, batch_size, precision, compile)
        warn_if_emulated(device, precision)
        self.device, self.batch_size, self.precision = device, batch_size, precision
        self.network = network.eval().to(device, memory_format=torch.channels_last)
        if compile:
            self.network = CompiledExtractor(self.network, batch_size, device)

    @torch.inference_mode()
    def __call__(self, frames: Any) -> torch.Tensor:
        """Region features [T, 9, 512] (float32, on ``device``) of one video's frames:
        a list, array or iterator of HxWx3 uint8 RGB frames (or Towhee VideoFrames),
        consumed lazily. An iterator (a decoder's generator) is read ahead in a
        thread, ``defaults.PREFETCH_BATCHES`` batches at most: the next frames decode while the
        network works on these."""
        batches = frame_batches(iter_rgb_frames(frames), self.batch_size)
        with Prefetched(batches, defaults.PREFETCH_BATCHES) if _is_lazy(frames) else nullcontext(batches) as batches:
            chunks = [self.encode_crops(resize_center_crop(batch, self.device)) for batch in batches]
        # One check per video: a per-batch check would wait for the GPU every batch.
        return check_features(torch.cat(chunks), 'feature extractor output')

    @torch.inference_mode()
    def encode_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """Region features [N, 9, 512] (float32, unchecked) of frames already resized and
        cropped (``preprocess.resize_center_crop``: [N, 256, 256, 3], 0..255), in one batch."""
        if crops.device.type == 'cpu' and self.device.type == 'cuda':
            crops = crops.pin_memory()  # so that the copy to the GPU runs asynchronously
        dtype = AUTOCAST_DTYPES[self.precision]
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            return self.network(crops.to(self.device, non_blocking=True).float()).float()


def _is_lazy(frames: Any) -> bool:
    """Frames made as they are read (a generator, an iterator), not held already."""
    return isinstance(frames, Iterator)


@dataclass
class VideoRepresentation:
    """Everything DnS keeps of a video: the fine-grained student's [T, 9, 512], the
    coarse-grained student's unit vector [1024] and the selector's value; for review,
    a few small JPEGs of it and its decoded frame size (empty and 0 when not made)."""
    fine: np.ndarray
    coarse: np.ndarray
    selector: float
    thumbnails: Tuple[bytes, ...] = ()
    width: int = 0
    height: int = 0
    times: Optional[np.ndarray] = None  # each sample's seconds from the first frame (None: unknown)
    crop: Optional[Tuple[int, int, int, int]] = None  # borders cut (top, bottom, left, right); None: unknown

    @property
    def frames(self) -> int:
        return len(self.fine)


class DnS:
    """The four networks of DnS for one fine-grained student ('att' or 'bin'): the
    feature extractor, the fine student, the coarse student and the matching selector.

    weights: local weight files by network name (e.g. ``{'cg_student': 'my.pth'}``);
        the others are the published files (downloaded once into torch.hub's cache, or
        from ``hf_repo``, a Hugging Face mirror).
    """

    def __init__(self, fine: str = defaults.FINE_STUDENT, *, device: Union[str, torch.device, None] = None,
                 precision: str = defaults.PRECISION, batch_size: int = defaults.BATCH_SIZE, compile: bool = False,
                 hf_repo: Optional[str] = None, weights: Optional[Mapping[str, str]] = None):
        if fine not in FINE_STUDENTS:
            raise ValueError(f'fine must be one of {", ".join(FINE_STUDENTS)}, got {fine!r}')
        weights = dict(weights or {})
        fine_name, selector_name = FINE_STUDENTS[fine]
        unknown = set(weights) - {'feature_extractor', fine_name, 'cg_student', selector_name}
        if unknown:
            raise ValueError(f'weights for networks this DnS does not use: {", ".join(sorted(unknown))}')
        self.fine = fine
        self.device = pick_device(device)

        def network(name: str) -> nn.Module:
            return load_network(name, weights.get(name), hf_repo).to(self.device)

        self.encoder = FrameEncoder(network('feature_extractor'), self.device, batch_size, precision, compile)
        self.fine_student = network(fine_name)
        self.coarse_student = network('cg_student')
        self.selector = network(selector_name)

    @torch.inference_mode()
    def represent(self, frames: Any) -> VideoRepresentation:
        """The frames of one video (a list, an array or an iterator, consumed batch by
        batch) -> its representation. Raises ValueError when there is no usable frame."""
        return self.represent_features(self.encoder(frames))

    @torch.inference_mode()
    def represent_features(self, features: Union[np.ndarray, torch.Tensor]) -> VideoRepresentation:
        """The feature extractor's output [T, 9, 512] of one video -> its representation."""
        features = check_features(features).to(self.device)
        return VideoRepresentation(fine=embed(self.fine_student, features),
                                   coarse=embed(self.coarse_student, features),
                                   selector=float(embed(self.selector, features)))


def embed(network: nn.Module, features: torch.Tensor) -> np.ndarray:
    """What a student or selector keeps of one video's checked features [T, 9, 512]:
    fg students [T, 9, 512], the cg student [1024], a selector a 0-d array; float32."""
    with torch.inference_mode():
        if isinstance(network, CoarseGrainedStudent):  # it pools a batch of videos
            out = network.index_video(features[None])[0]
        else:
            out = network.index_video(features)
        return out.float().cpu().numpy()


def _device_of(network: nn.Module) -> torch.device:
    return next(network.parameters()).device


def _targets(target: Any, check, query_ndim: int) -> Tuple[List[torch.Tensor], bool]:
    """Targets as a checked list and whether one target (not a list) was given."""
    single = not isinstance(target, (list, tuple)) and np.ndim(target) == query_ndim
    targets = [target] if single else list(target)
    if not targets:
        raise ValueError('expected at least one target, got an empty list')
    return [check(t, f'target {i}') for i, t in enumerate(targets)], single


@torch.inference_mode()
def fine_similarity(student: nn.Module, query: Any, target: Any) -> Union[float, np.ndarray]:
    """An fg student's similarity of ``query`` [T, 9, 512] with one target (a float) or
    a list of targets (an array), each value that of the pair alone, in memory bounded
    whatever the lengths and the number of targets."""
    device = _device_of(student)
    q = check_features(query, 'query').to(device)
    targets, single = _targets(target, check_features, q.ndim)
    sims = student.similarity(q, [t.to(device) for t in targets]).float().cpu().numpy()
    return float(sims[0]) if single else sims


@torch.inference_mode()
def fine_pair_similarities(student: nn.Module, pairs: Sequence[Tuple[Any, Any]]) -> np.ndarray:
    """An fg student's similarity of each (query, target) pair of [T, 9, 512] features, an
    array, each value that of the pair alone (``fine_similarity`` of it); the pairs are
    compared together (many short pairs of different queries cost about one call)."""
    device = _device_of(student)
    if len(pairs) == 0:
        raise ValueError('expected at least one (query, target) pair, got an empty list')
    checked = [(check_features(query, f'query {i}').to(device), check_features(target, f'target {i}').to(device))
               for i, (query, target) in enumerate(pairs)]
    return student.pair_similarities(checked).float().cpu().numpy()


@torch.inference_mode()
def coarse_similarity(query: Any, target: Any) -> Union[float, np.ndarray]:
    """The cg student's similarity: dot products of [1024] unit vectors."""
    def check(vector, what):
        return check_vector(vector, defaults.COARSE_DIMS, what)
    q = check(query, 'query')
    targets, single = _targets(target, check, q.ndim)
    sims = CoarseGrainedStudent.similarity(q, torch.stack(targets)).float().numpy()
    return float(sims[0]) if single else sims


@torch.inference_mode()
def selector_scores(selector: nn.Module, query: Any, target: Any, coarse: Any) -> Union[float, np.ndarray]:
    """Selector scores in (0, 1) of (query, target) pairs from their selector values and
    cg similarity; one target (a float) or a list (an array)."""
    device = _device_of(selector)
    q = check_vector(np.atleast_1d(np.asarray(query, dtype=np.float32)), 1, 'query selector value')[0]
    single = np.ndim(target) == 0
    t = check_vector(np.atleast_1d(np.asarray(target, dtype=np.float32)), np.size(target), 'targets')
    c = check_vector(np.atleast_1d(np.asarray(coarse, dtype=np.float32)), len(t),
                     'coarse similarities (one per target)')
    if len(t) == 0:
        raise ValueError('expected at least one target, got an empty list')
    scores = selector.score(q.to(device), t.to(device), c.to(device)).float().cpu().numpy()
    return float(scores[0]) if single else scores


@torch.inference_mode()
def similarity_maps(student: nn.Module, query: Any, target: Any) -> Tuple[np.ndarray, np.ndarray]:
    """What an fg student's similarity of one pair is made of: the frame-to-frame
    similarity matrix [Tq, Tt] and the comparator's output [Tq/4, Tt/4], whose Chamfer
    similarity is the pair's similarity (videos shorter than 4 frames are stretched
    first)."""
    device = _device_of(student)
    q = check_features(query, 'query').to(device)
    t = check_features(target, 'target').to(device)
    frames, out, sizes = student.compare(q, [t])
    rows, cols = sizes[0].tolist()
    return frames[0].float().cpu().numpy(), out[0, :rows, :cols].float().cpu().numpy()


@torch.inference_mode()
def copied_segments(student: nn.Module, query: Any, target: Any,
                    threshold: Optional[float] = defaults.SEGMENT_THRESHOLD,
                    query_levels: Optional[np.ndarray] = None,
                    target_levels: Optional[np.ndarray] = None) -> List[Segment]:
    """Where the copy is: the copied segments of one pair, from its frame-to-frame
    similarity matrix, best first, in frame indices, half-open. Only segments scoring at
    least ``threshold`` are returned (None: all found). With the frames' library levels
    (:func:`frame_levels`), cells count only as far as they rise above them."""
    device = _device_of(student)
    q = check_features(query, 'query').to(device)
    t = check_features(target, 'target').to(device)
    sim = student.frame_similarity_matrix(q, t)
    return find_segments(sim.float().cpu().numpy(), threshold=threshold, query_levels=query_levels,
                         target_levels=target_levels)


# A fine similarity from which two videos are copies (the default copy threshold, on the
# fine student's scale): such a video is no background of the other.
COPY_SIMILARITY = 2 * defaults.COPY_THRESHOLD - 1


@torch.inference_mode()
def background_matches(student: nn.Module, video: Any, background: Sequence[Any]) -> List[Optional[np.ndarray]]:
    """For each ``background`` video (fine features of another video of the library), the
    best similarity of each frame of ``video`` [T, 9, 512] in it [T]; None for a
    background video the student judges a copy of ``video`` (fine similarity of at least
    COPY_SIMILARITY): a copy is no background. ``localization.library_levels`` of the
    rows kept gives the frames' library levels."""
    device = _device_of(student)
    v = check_features(video, 'video').to(device)
    out: List[Optional[np.ndarray]] = []
    for i, b in enumerate(background):
        other = check_features(b, f'background video {i}').to(device)
        # One comparison gives both: the frame matrix and the comparator's output, whose
        # Chamfer similarity is the pair's fine similarity.
        frames, comparator = similarity_maps(student, v, other)
        if comparator.max(axis=1).mean() >= COPY_SIMILARITY:
            out.append(None)
        elif len(frames) == len(v):
            out.append(frames.max(axis=1))
        else:  # a video of fewer frames than the comparator takes was stretched: its own rows
            out.append(student.frame_similarity_matrix(v, other).amax(dim=1).float().cpu().numpy())
    return out


def frame_levels(matches: Sequence[Optional[np.ndarray]]) -> Optional[np.ndarray]:
    """The library levels of a video's frames from its :func:`background_matches` (None:
    too few background videos that are not copies)."""
    kept = [m for m in matches if m is not None]
    return library_levels(np.stack(kept)) if kept else None
