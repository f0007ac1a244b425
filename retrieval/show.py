"""The fine-grained student's view of one pair: its frame-to-frame similarity matrix
and the comparator's output, as a heatmap."""
from .index import VideoIndex
from .representation import DnSModels


def draw_pair(index: VideoIndex, models: DnSModels, query: str, target: str, out_path) -> float:
    """Write the heatmap PNG of (query, target); return the fg similarity."""
    q = index.representation_of_file(query, models)
    t = index.representation_of_file(target, models)
    frames, comparator = models.fine_student.similarity_maps(q.fine, t.fine)
    similarity = float(models.fine_student.similarity(q.fine, t.fine))
    _plot(frames, comparator, similarity, query, target, index.settings.time_step, index.settings.fine, out_path)
    return similarity


def _plot(frames, comparator, similarity: float, query: str, target: str, time_step: float, fine: str,
          out_path) -> None:
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
    fig.suptitle(f'fg_{fine} similarity {similarity:.4f}\n{query}  vs  {target}', fontsize=11)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
