"""The fine-grained student's view of one pair: its frame-to-frame similarity matrix
with the copied segments found in it, and the comparator's output, as heatmaps."""
import os
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

import numpy as np

from ...localization import Segment
from ..storage.index import VideoIndex, sample_times
from ...core import DnS, VideoRepresentation, copied_segments, fine_similarity, similarity_maps
from ..ingestion.ingest import query_representation
from .segments import background_matches_by_id, background_sample, pair_levels, segment_settings


def draw_pair(index: VideoIndex, dns: DnS, query: str, target: str, out_path: Union[str, os.PathLike],
              segment_threshold: Optional[float] = None,
              segment_background: Optional[bool] = None) -> Tuple[float, List[Segment]]:
    """Write the heatmap PNG of (query, target); return the fg similarity and the copied
    segments (seconds) drawn on it, those scoring at least ``segment_threshold`` (None:
    the index's threshold), against the library too with ``segment_background`` (None:
    as the index was calibrated)."""
    view = pair_view(index, dns, query_representation(index, query, dns),
                     query_representation(index, target, dns), segment_threshold, segment_background,
                     index.video_id_of(target))
    view.plot(query, target, out_path)
    return view.similarity, view.segments_in_seconds()


@dataclass
class PairView:
    frames: np.ndarray           # [Tq, Tt] frame-to-frame similarities
    comparator: np.ndarray       # the comparator's output
    similarity: float            # the fg student's similarity
    segments: List[Segment]      # copied segments, frame indices
    time_step: float
    fine: str
    query_times: Optional[np.ndarray] = None   # each frame's seconds (None: i * time step)
    target_times: Optional[np.ndarray] = None

    def segments_in_seconds(self) -> List[Segment]:
        """The segments in seconds from each video's first frame, cut at holes."""
        query_times = sample_times(self.query_times, self.frames.shape[0], self.time_step)
        target_times = sample_times(self.target_times, self.frames.shape[1], self.time_step)
        return [piece for segment in self.segments
                for piece in segment.on_timelines(query_times, target_times, self.time_step)]

    def plot(self, query: str, target: str, out_path) -> None:
        """The heatmap PNG, into a path or a binary file object."""
        plot_pair(self.frames, self.comparator, self.similarity, self.segments, query, target, self.time_step,
                  self.fine, out_path)


def pair_view(index: VideoIndex, dns: DnS, query: VideoRepresentation, target: VideoRepresentation,
              segment_threshold: Optional[float] = None, segment_background: Optional[bool] = None,
              target_id: Optional[str] = None) -> PairView:
    """What the fg student sees in one pair, and the copied segments scoring at least
    ``segment_threshold`` (None: the index's threshold), measured as search measures them
    (``segments.locate_copies``; ``target_id``: the target's id if it is indexed, which
    is then no background of the pair)."""
    segment_threshold, segment_background = segment_settings(index, segment_threshold, segment_background)
    frames, comparator = similarity_maps(dns.fine_student, query.fine, target.fine)
    similarity = fine_similarity(dns.fine_student, query.fine, target.fine)
    background = background_sample(index) if segment_background else {}
    levels = pair_levels(dns, background_matches_by_id(dns, query.fine, background), target.fine, target_id,
                         background)
    found = copied_segments(dns.fine_student, query.fine, target.fine, segment_threshold, *levels)
    return PairView(frames, comparator, similarity, found, index.settings.time_step, index.settings.fine,
                    query.times, target.times)


def plot_pair(frames: np.ndarray, comparator: np.ndarray, similarity: float, segments: List[Segment], query: str, target: str,
              time_step: float, fine: str, out_path: Union[str, os.PathLike]) -> None:
    """The heatmaps of one pair: ``frames`` [Tq, Tt] with ``segments`` (frame indices)
    drawn in red, and the comparator's output."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    # Both panels in seconds, the video's own time: each cell spans its frames' time.
    seconds = (0, frames.shape[1] * time_step, frames.shape[0] * time_step, 0)
    # The comparator's output is clamped to [-1, 1]; frame similarities have their own range.
    panels = ((frames, f'frame-to-frame similarity (a frame every {time_step:g} s)', (None, None)),
              (comparator, 'comparator output (4 frames a cell)', (-1, 1)))
    for ax, (matrix, name, (vmin, vmax)) in zip(axes, panels):
        image = ax.imshow(matrix, cmap='viridis', vmin=vmin, vmax=vmax, aspect='auto', interpolation='nearest',
                          extent=seconds)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(f'{target} (s)' if len(target) < 40 else 'target (s)', fontsize=8)
        ax.set_ylabel(f'{query} (s)' if len(query) < 40 else 'query (s)', fontsize=8)
        fig.colorbar(image, ax=ax)
    # Each segment as the line from its first matched frames to its last, on the cell centres.
    for segment in segments:
        xs = [(segment.target_start + 0.5) * time_step, (segment.target_end - 0.5) * time_step]
        ys = [(segment.query_start + 0.5) * time_step, (segment.query_end - 0.5) * time_step]
        axes[0].plot(xs, ys, color='red', linewidth=1.5, alpha=0.85)
        axes[0].text(xs[1], ys[1], f' {segment.score:.2f}', color='red', fontsize=8, va='center')
    if segments:
        axes[0].set_title(f'{axes[0].get_title()}\n{len(segments)} copied segment(s), in red', fontsize=10)
    fig.suptitle(f'fg_{fine} similarity {similarity:.4f}\n{query}  vs  {target}', fontsize=11)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
