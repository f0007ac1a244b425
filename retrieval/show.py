"""The fine-grained student's view of one pair: its frame-to-frame similarity matrix
with the copied segments found in it, and the comparator's output, as heatmaps."""
from typing import List, Optional, Tuple

from ..localization import Segment
from .index import VideoIndex
from .representation import DnSModels


def draw_pair(index: VideoIndex, models: DnSModels, query: str, target: str, out_path,
              segment_threshold: Optional[float] = None) -> Tuple[float, List[Segment]]:
    """Write the heatmap PNG of (query, target); return the fg similarity and the copied
    segments (seconds) drawn on it, those scoring at least ``segment_threshold`` (None:
    the index's threshold)."""
    q = index.representation_of_file(query, models)
    t = index.representation_of_file(target, models)
    if segment_threshold is None:
        segment_threshold = index.thresholds().segment
    frames, comparator = models.fine_student.similarity_maps(q.fine, t.fine)
    similarity = float(models.fine_student.similarity(q.fine, t.fine))
    found = models.fine_student.segments(q.fine, t.fine, threshold=segment_threshold)
    plot_pair(frames, comparator, similarity, found, query, target, index.settings.time_step, index.settings.fine,
              out_path)
    return similarity, [segment.to_seconds(index.settings.time_step) for segment in found]


def plot_pair(frames, comparator, similarity: float, segments: List[Segment], query: str, target: str,
              time_step: float, fine: str, out_path) -> None:
    """The heatmaps of one pair: ``frames`` [Tq, Tt] with ``segments`` (frame indices)
    drawn in red, and the comparator's output."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    # The comparator's output is clamped to [-1, 1]; frame similarities have their own range.
    panels = ((frames, f'frame-to-frame similarity (a frame every {time_step:g} s)', 'target frame', 'query frame',
               None),
              (comparator, 'comparator output (4 frames a cell)', 'target', 'query', (-1, 1)))
    for ax, (matrix, name, xlabel, ylabel, limits) in zip(axes, panels):
        vmin, vmax = limits or (None, None)
        image = ax.imshow(matrix, cmap='viridis', vmin=vmin, vmax=vmax, aspect='auto', interpolation='nearest')
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        fig.colorbar(image, ax=ax)
    # Each segment as the line from its first matched frames to its last, on the cell centres.
    for segment in segments:
        axes[0].plot([segment.target_start, segment.target_end - 1], [segment.query_start, segment.query_end - 1],
                     color='red', linewidth=1.5, alpha=0.85)
        axes[0].text(segment.target_end - 1, segment.query_end - 1, f' {segment.score:.2f}', color='red',
                     fontsize=8, va='center')
    if segments:
        axes[0].set_title(f'{axes[0].get_title()}\n{len(segments)} copied segment(s), in red', fontsize=10)
    fig.suptitle(f'fg_{fine} similarity {similarity:.4f}\n{query}  vs  {target}', fontsize=11)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
