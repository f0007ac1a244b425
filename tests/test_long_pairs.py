"""Fine-grained comparison in bounded memory: the tiled path (frame similarities block by
block, the comparator tile by tile, Chamfer folded row by row) gives the padded batch's
values, and memory stays flat as the videos grow (fresh processes)."""
import importlib

import pytest
import torch

from conftest import PACKAGE

model = importlib.import_module(f'{PACKAGE}.model')
similarities = importlib.import_module(f'{PACKAGE}.model.similarities')
tiling = importlib.import_module(f'{PACKAGE}.model.tiling')
Tiling = tiling.Tiling

from support.probes import long_pairs as run

# Tiny tiles, so that short videos cross many tile edges: 3 x 3 output cells of frame
# similarities at a time (12 frames and the halo), comparator calls of 2 x 2 cells,
# matrix products of 7 x 7 frames.
SMALL_TILES = Tiling(memory_budget=0, region=3, tile=2, frame_block=7)
# Lengths under 4 (stretched), not multiples of 4, of the tiles, or of the blocks.
QUERY_LENGTHS = [1, 3, 6, 29]
TARGET_LENGTHS = [1, 2, 5, 13, 30, 47]
TOLERANCE = 1e-6  # float rounding: block shapes change the kernels' summation order


def student(binarized: bool) -> torch.nn.Module:
    """A student with random weights of realistic scale (the values do not matter here)."""
    net = model.FineGrainedStudent(binarization=binarized)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in net.parameters():
            fan_in = p[0].numel() if p.ndim > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
    return net.eval()


def videos(lengths, seed, net):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        out = []
        for t in lengths:
            x = torch.randn(t, 9, 512, generator=g)
            out.append(net.index_video(x / x.norm(dim=-1, keepdim=True)))
        return out


def with_tiling(net, plan, fn):
    previous, net.tiling = net.tiling, plan
    try:
        return fn()
    finally:
        net.tiling = previous


@pytest.fixture(scope='module', params=[False, True], ids=['fg_att', 'fg_bin'])
def net(request):
    return student(request.param)


@pytest.mark.parametrize('tq', QUERY_LENGTHS)
def test_tiled_similarity_equals_padded_batch(net, tq):
    query, = videos([tq], tq, net)
    targets = videos(TARGET_LENGTHS, 100 + tq, net)
    padded = with_tiling(net, Tiling(memory_budget=2 ** 40), lambda: net.similarity(query, targets))
    tiled = with_tiling(net, SMALL_TILES, lambda: net.similarity(query, targets))
    assert tiled.shape == padded.shape == (len(targets),)
    assert torch.isfinite(tiled).all()
    assert (tiled - padded).abs().max() <= TOLERANCE
    # Default tile sizes: one region and one comparator call for these lengths.
    default = with_tiling(net, Tiling(memory_budget=0), lambda: net.similarity(query, targets))
    assert (default - padded).abs().max() <= TOLERANCE


def test_budget_mixes_batches_and_tiles_in_target_order(net):
    """A budget between the targets' needs: short targets in padded batches (sorted by
    length), long ones through tiles; every value lands at its target's position."""
    query, = videos([37], 1, net)
    lengths = [47, 2, 13, 5, 30, 4, 47, 1]
    targets = videos(lengths, 2, net)
    alone = torch.stack([net.similarity(query, [t])[0] for t in targets])
    budget = tiling.padded_bytes(37, 30, 2)
    mixed = with_tiling(net, Tiling(memory_budget=budget, region=3, tile=2, frame_block=7),
                        lambda: net.similarity(query, targets))
    assert (mixed - alone).abs().max() <= TOLERANCE


@pytest.mark.parametrize('tq', [3, 29])
def test_tiled_maps_equal_padded_maps(net, tq):
    query, = videos([tq], tq, net)
    targets = videos([2, 13, 47], 200 + tq, net)
    frames, cells, sizes = with_tiling(net, Tiling(memory_budget=2 ** 40), lambda: net.compare(query, targets))
    t_frames, t_cells, t_sizes = with_tiling(net, SMALL_TILES, lambda: net.compare(query, targets))
    assert t_frames.shape == frames.shape and t_cells.shape == cells.shape
    assert torch.equal(t_sizes, sizes)
    assert (t_frames - frames).abs().max() <= TOLERANCE
    for n, (rows, cols) in enumerate(sizes.tolist()):
        assert (t_cells[n, :rows, :cols] - cells[n, :rows, :cols]).abs().max() <= TOLERANCE
        assert not t_cells[n, :, cols:].any()  # beyond a target's size: 0
        # The maps are what the similarity is made of.
        mask = torch.ones(1, rows, cols, dtype=torch.bool)
        expected = with_tiling(net, SMALL_TILES, lambda: net.similarity(query, [targets[n]]))
        assert (similarities.chamfer(t_cells[n:n + 1, :rows, :cols], mask) - expected).abs().max() <= TOLERANCE


def test_frame_similarity_matrix_is_the_region_similarity(net):
    query, target = videos([23, 41], 3, net)
    matrix = with_tiling(net, SMALL_TILES, lambda: net.frame_similarity_matrix(query, target))
    assert matrix.shape == (23, 41)
    naive = torch.einsum('iod,jpd->ijop', query, target).amax(dim=-1).mean(dim=-1)
    if net.binarized:
        naive = naive / net.dims
    assert (matrix - naive).abs().max() <= TOLERANCE
    # Lengths under 4 are not stretched here: a frame matrix exists for any length.
    assert net.frame_similarity_matrix(query[:1], target[:2]).shape == (1, 2)


@pytest.mark.parametrize('shape', [(4, 4), (7, 13), (33, 18), (64, 61)])
@pytest.mark.parametrize('tile', [1, 2, 5])
def test_tiled_comparator_equals_whole_matrix(shape, tile):
    comparator = student(False).visil_head
    sim = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape))) * 2 - 1
    with torch.no_grad():
        whole = comparator(sim[None, None])[0, 0]
        rows, cols = shape[0] // 4, shape[1] // 4
        tiled = tiling.tiled_comparator(comparator, sim, (0, 0), shape, (0, rows), (0, cols), tile)
        assert (tiled - whole).abs().max() <= TOLERANCE
        # Some cells from the part of the matrix that their halo needs, at an offset.
        i, j = (rows // 2, rows), (cols // 3, cols)
        r, c = tiling.comparator_window(i, shape[0]), tiling.comparator_window(j, shape[1])
        part = sim[r[0]:r[1], c[0]:c[1]].clone()
        cells = tiling.tiled_comparator(comparator, part, (r[0], c[0]), shape, i, j, tile)
        assert (cells - whole[i[0]:i[1], j[0]:j[1]]).abs().max() <= TOLERANCE
        if r[0] > 0:
            with pytest.raises(ValueError, match='does not cover'):
                tiling.tiled_comparator(comparator, part[1:], (r[0] + 1, c[0]), shape, i, j, tile)


def test_pairs_of_different_queries_score_as_each_alone(net):
    """Pairs of any lengths (under 4 frames: stretched) compared together, padded to the
    batch's longest query and target, give each pair's value alone; so do they with a
    budget that batches some and leaves the longest to tiles."""
    queries = videos([1, 3, 6, 29, 12, 40], 5, net)
    targets = videos([47, 2, 13, 30, 5, 9], 6, net)
    alone = torch.stack([net.similarity(q, [t])[0] for q, t in zip(queries, targets)])
    mixed = Tiling(memory_budget=tiling.padded_bytes(29, 30, 1) - 1)   # the 29 x 30 pair goes to tiles
    batches, tiled = tiling.pair_batches([(max(4, len(q)), max(4, len(t))) for q, t in zip(queries, targets)],
                                         mixed.memory_budget)
    assert tiled == [3] and max(map(len, batches)) > 1
    for plan in (Tiling(memory_budget=2 ** 40), mixed):
        together = with_tiling(net, plan, lambda: net.pair_similarities(list(zip(queries, targets))))
        assert together.shape == alone.shape and (together - alone).abs().max() <= TOLERANCE
    with pytest.raises(ValueError, match='at least one pair'):
        net.pair_similarities([])


def test_pair_batches_fit_the_budget():
    shapes = [(50, 30), (4, 5), (300, 400), (60, 12), (10, 30), (20, 90)]
    budget = tiling.padded_bytes(50, 90, 2)
    batches, alone = tiling.pair_batches(shapes, budget)
    assert alone == [2]  # too big for the budget alone
    assert sorted(i for b in batches for i in b) == [0, 1, 3, 4, 5]
    for batch in batches:
        rows, cols = max(shapes[i][0] for i in batch), max(shapes[i][1] for i in batch)
        assert tiling.padded_bytes(rows, cols, len(batch)) <= budget


def test_padded_batches_fit_the_budget():
    lengths = [30, 5, 400, 12, 30, 90, 7]
    budget = tiling.padded_bytes(50, 90, 2)
    batches, alone = tiling.padded_batches(50, lengths, budget)
    assert alone == [2]  # too big for the budget alone
    assert sorted(i for b in batches for i in b) == [0, 1, 3, 4, 5, 6]
    for batch in batches:
        assert tiling.padded_bytes(50, max(lengths[i] for i in batch), len(batch)) <= budget
    assert tiling.padded_batches(50, lengths, 0) == ([], sorted(range(7), key=lambda k: lengths[k]))


def test_bad_inputs_are_refused(net):
    query, target = videos([8, 8], 4, net)
    with pytest.raises(ValueError, match='at least one target'):
        net.similarity(query, [])
    with pytest.raises(ValueError, match=r'target 1 of shape \[T, R, 512\]'):
        net.similarity(query, [target, target[0]])
    with pytest.raises(ValueError, match='query of shape'):
        net.compare(query[:0], [target])
    with pytest.raises(ValueError, match='regions per frame'):
        net.frame_similarity_matrix(query, target[:, :4])
    for bad in (dict(region=0), dict(tile=-1), dict(frame_block=2.5), dict(memory_budget=-1)):
        with pytest.raises(ValueError, match='Tiling'):
            Tiling(**bad)


@pytest.mark.slow
@pytest.mark.parametrize('student_name', ['fg_att_student', 'fg_bin_student'])
def test_memory_is_flat_in_the_lengths(hub_dir, student_name):
    """The operator's similarity of a query with 4 targets, at 600 and 1,200 frames each
    (fresh processes): the memory beyond the inputs stays small and does not grow with
    the lengths, where the code before tiling grew by gigabytes."""
    work = {}
    for frames in (600, 1200):
        r = run(student_name, frames, frames, 4, time_frames=False)
        work[frames] = r['peak_anon_mb'] - r['inputs_anon_mb']
    # The padded batch's product of region vectors alone: [Tq * 9, N * Tt * 9] floats.
    before = {t: 81 * 4 * t * 4 * t / 2 ** 20 for t in work}
    message = (f'{student_name}: working memory {work[600]:.0f} MB at 600 frames, {work[1200]:.0f} MB at 1,200; '
               f'the code before tiling needed over {before[600]:.0f} and {before[1200]:.0f} MB')
    print(message)
    # The tiled path's buffers take ~30 MB; the rest is the allocator's retained heap,
    # measured from 40 to 115 MB at 600 to 4,800 frames.
    assert work[1200] - work[600] < 128, message
    assert work[1200] < 256, message
