"""Copied-segment localization: where in two videos a copied piece lies, found in their
frame-to-frame similarity matrix (``find_segments``, the project's method; the temporal
network, the field's baseline), and how well found segments match the true ones.

Only numpy and the standard library are needed here.
"""
from .alignment import chance_offset, find_segments
from .background import library_levels
from .metrics import SegmentScores, ThresholdPoint, best_threshold, precision_recall_curve, segment_scores
from .segment import Segment
from .temporal_network import temporal_network

__all__ = [
    'Segment',
    # The project's method: local alignment of the similarity matrix.
    'find_segments', 'chance_offset', 'library_levels',
    # The baseline: Tan et al.'s temporal network, as VCSL runs it.
    'temporal_network',
    # Evaluation in seconds on both videos' timelines.
    'SegmentScores', 'ThresholdPoint', 'segment_scores', 'precision_recall_curve', 'best_threshold',
]

