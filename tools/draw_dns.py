"""Draw a block diagram of DnS (Distill-and-Select, Kordopatis-Zilos et al., IJCV 2022).

Usage (from the repository root)::

    .venv/bin/python tools/draw_dns.py            # writes DnS.png
    .venv/bin/python tools/draw_dns.py out.png    # or another path
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# colour pairs: (fill, edge)
TEACHER = ('#fde2c8', '#d9822b')
FG_ATT = ('#d7e8fb', '#2f6db5')
FG_BIN = ('#dcefe0', '#2e8b57')
CG = ('#ece0f6', '#7b4fa6')
SELECT = ('#fff3bf', '#c49a00')
NEUTRAL = ('#f1f3f5', '#5c6670')
FINAL = ('#e6f4f1', '#1f7a6d')
INK = '#1f2933'


def box(ax, x, y, w, h, title, body, colours, title_size=15, body_size=11.5):
    fill, edge = colours
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle='round,pad=0,rounding_size=0.18',
                                facecolor=fill, edgecolor=edge, linewidth=2.2, zorder=2))
    if body:
        ax.text(x + w / 2, y + h - 0.16, title, ha='center', va='top', fontsize=title_size,
                fontweight='bold', color=INK, zorder=3)
        ax.text(x + w / 2, y + h - 0.56, body, ha='center', va='top', fontsize=body_size,
                color=INK, linespacing=1.35, zorder=3)
    else:
        ax.text(x + w / 2, y + h / 2, title, ha='center', va='center', fontsize=title_size,
                fontweight='bold', color=INK, zorder=3)
    return dict(l=(x, y + h / 2), r=(x + w, y + h / 2), t=(x + w / 2, y + h), b=(x + w / 2, y),
                x=x, y=y, w=w, h=h)


def arrow(ax, start, end, colour=INK, label=None, label_xy=None, style='-|>', ls='-',
          rad=0.0, size=11, lw=2.0, ha='center'):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=20, linewidth=lw,
                                 color=colour, linestyle=ls, zorder=1,
                                 connectionstyle=f'arc3,rad={rad}', shrinkA=2, shrinkB=2))
    if label:
        ax.text(*label_xy, label, ha=ha, va='center', fontsize=size, color=colour,
                style='italic', zorder=4,
                bbox=dict(boxstyle='round,pad=0.18', facecolor='white', edgecolor='none'))


def draw(path):
    fig = plt.figure(figsize=(16, 10), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 16)
    ax.set_ylim(0, 10)
    ax.axis('off')

    # ---------------------------------------------------------------- sections
    for y0, h, name in ((5.45, 4.45, '1 · DISTILL  (training)'), (0.1, 5.2, '2 · SELECT  (retrieval)')):
        ax.add_patch(FancyBboxPatch((0.12, y0), 15.76, h, boxstyle='round,pad=0,rounding_size=0.25',
                                    facecolor='#fbfcfd', edgecolor='#c5ccd3', linewidth=1.4,
                                    linestyle=(0, (5, 4)), zorder=0))
        ax.text(0.35, y0 + h - 0.22, name, ha='left', va='top', fontsize=14,
                fontweight='bold', color='#52606d')
    ax.text(15.7, 9.68, 'DnS · Distill-and-Select', ha='right', va='top',
            fontsize=18, fontweight='bold', color=INK)
    ax.text(15.7, 9.3, 'efficient video retrieval\nKordopatis-Zilos et al., IJCV 2022', ha='right', va='top',
            fontsize=12, color='#52606d', style='italic')

    # ---------------------------------------------------------------- distillation
    teacher = box(ax, 4.9, 8.1, 6.2, 1.5, 'Teacher: ViSiL (fine-grained)',
                  'frame-to-frame region similarity + video-level CNN\n'
                  'most accurate, slowest; trained with labels', TEACHER)
    sw, sy, sh = 4.85, 5.65, 1.75
    fg_att = box(ax, 0.45, sy, sw, sh, 'Fine-grained attention student',
                 'fg_att · region vectors [T, 9, 512]\n'
                 'attention-weighted, ViSiL-like similarity\n'
                 'highest accuracy · highest cost', FG_ATT)
    fg_bin = box(ax, 0.45 + sw + 0.3, sy, sw, sh, 'Fine-grained binarization student',
                 'fg_bin · binarized region vectors\n'
                 '1 bit per element (Hamming-like)\n'
                 'near fg_att accuracy · tiny storage', FG_BIN)
    cg = box(ax, 0.45 + 2 * (sw + 0.3), sy, sw, sh, 'Coarse-grained student',
             'cg · one 1024-d vector per video\n'
             'similarity = dot product\n'
             'fastest · fits an ANN index', CG)
    for student, colour in ((fg_att, FG_ATT[1]), (fg_bin, FG_BIN[1]), (cg, CG[1])):
        arrow(ax, teacher['b'], student['t'], colour=colour, lw=2.4)
    arrow(ax, (8, 7.55), (8, 7.56), label='knowledge distillation: teacher similarities as soft targets '
          'on ~100k unlabeled videos (DnS-100K)', label_xy=(8, 7.72), style='-', size=11.5)

    # ---------------------------------------------------------------- retrieval, row 1
    r1y, r1h = 3.25, 1.55
    video = box(ax, 0.45, r1y, 1.75, r1h, 'Video', 'query or\ndatabase', NEUTRAL)
    feats = box(ax, 2.65, r1y, 3.55, r1h, 'Feature extractor',
                'ResNet-50 · L3-iMAC (3×3 regions)\nPCA whitening → [T, 9, 512]', NEUTRAL)
    cg_rank = box(ax, 6.75, r1y, 3.9, r1h, 'Coarse-grained student',
                  'cg similarity of the query\nto the whole database → ranking', CG)
    selector = box(ax, 11.2, r1y, 4.35, r1h, 'Selector network',
                   'self-similarity value per video + cg sim.\n→ MLP → score in (0, 1)',
                   SELECT)
    arrow(ax, video['r'], feats['l'])
    arrow(ax, feats['r'], cg_rank['l'])
    arrow(ax, cg_rank['r'], selector['l'])

    # ---------------------------------------------------------------- retrieval, row 2
    r2y, r2h = 1.45, 1.3
    keep = box(ax, 6.75, r2y, 3.9, r2h, 'Other pairs',
               'keep their cg similarity', CG, title_size=14)
    fg_rerank = box(ax, 11.2, r2y, 4.35, r2h, 'Fine-grained student re-ranks',
                    'fg_att or fg_bin · similarity s → s/2 + 0.5', FG_ATT, title_size=14)
    arrow(ax, selector['b'], fg_rerank['t'], colour=SELECT[1], lw=2.4,
          label='top fraction of pairs\n(highest scores)', label_xy=(13.375, 3.0), size=10.5)
    arrow(ax, (11.7, r1y), (keep['r'][0] - 0.05, r2y + r2h), colour=SELECT[1], lw=2.4, rad=-0.25)
    ax.text(10.95, 2.98, 'the rest', ha='center', va='center', fontsize=10.5,
            color=SELECT[1], style='italic',
            bbox=dict(boxstyle='round,pad=0.18', facecolor='white', edgecolor='none'), zorder=4)

    # ---------------------------------------------------------------- retrieval, row 3
    final = box(ax, 6.75, 0.3, 8.8, 0.85, 'Final ranking  (re-ranked top + cg for the rest)',
                None, FINAL, title_size=14)
    arrow(ax, keep['b'], (keep['b'][0], final['y'] + final['h']), colour=FINAL[1])
    arrow(ax, fg_rerank['b'], (fg_rerank['b'][0], final['y'] + final['h']), colour=FINAL[1])

    # ---------------------------------------------------------------- notes
    ax.text(0.5, 2.75,
            'Why it is fast\n'
            '•  cg ranks the whole database cheaply\n'
            '•  the selector spends the expensive\n'
            '    fine-grained student only on the pairs\n'
            '    where it is likely to change the ranking\n'
            '•  accuracy ≈ fg student on everything,\n'
            '    at a fraction of its time and memory',
            ha='left', va='top', fontsize=11.5, color='#3e4c59', linespacing=1.45,
            bbox=dict(boxstyle='round,pad=0.5', facecolor='white', edgecolor='#c5ccd3'))

    fig.savefig(path, dpi=100, facecolor='white')
    plt.close(fig)
    return path


if __name__ == '__main__':
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / 'DnS.png'
    print(draw(out))
