"""Files the way they come from the field (tests/support/field_files.py): sampling counts
from the first frame's timestamp (MPEG-TS, start offsets), each sample keeps its time
(variable frame rate holes show as holes in durations and segments), anamorphic frames
come out at their display size."""
import importlib

import numpy as np
import pytest
from PIL import Image

from conftest import PACKAGE
from support.copy_model import copy_model_index
from support.corpus import varied_scene
from support.field_files import HOLE, make_variant
from support.video_files import load_video_decode, make_video

video_decode = load_video_decode()
localization = importlib.import_module(f'{PACKAGE}.localization')
retrieval = importlib.import_module(f'{PACKAGE}.retrieval')
core = importlib.import_module(f'{PACKAGE}.core')
clip_index = importlib.import_module(f'{PACKAGE}.retrieval.searching.clips.clip_index')
index_module = importlib.import_module(f'{PACKAGE}.retrieval.storage.index')

FPS = 4
SECONDS = 10


@pytest.fixture(scope='module')
def source():
    return varied_scene(SECONDS * FPS, 48, 64, seed=7300)


@pytest.fixture(scope='module')
def files(source, tmp_path_factory):
    folder = tmp_path_factory.mktemp('field')
    return {kind: make_variant(kind, folder, source, FPS)
            for kind in ('reencode', 'ts_start', 'mp4_offset', 'vfr_hole', 'anamorphic', 'letterbox', 'pillarbox')}


def sampled(path, **options):
    return list(video_decode.FrameDecoder(time_step=1, **options)(str(path)))


def nearest_source_frame(frame, source):
    return int(np.argmin([np.abs(frame.astype(int) - s.astype(int)).mean() for s in source]))


@pytest.mark.parametrize('kind', ['ts_start', 'mp4_offset'])
def test_sampling_counts_from_the_first_frame(files, source, kind):
    """An MPEG-TS starting at 1.48 s and an MP4 starting at 30.5 s are sampled at 0, 1,
    2 s of their picture, as a file starting at 0 is: the same source frames, ten
    samples for ten seconds, timestamps from the first frame; skipping keeps the frames
    every decoded frame would."""
    frames = sampled(files[kind])
    assert [f.timestamp for f in frames] == [1000 * k for k in range(SECONDS)]
    assert [nearest_source_frame(f, source) for f in frames] == [FPS * k for k in range(SECONDS)]
    exact = sampled(files[kind], exact=True)
    assert all(np.array_equal(a, b) for a, b in zip(frames, exact)) and len(frames) == len(exact)
    later = sampled(files[kind], start_time=2.0, end_time=5.0)
    assert [f.timestamp for f in later] == [2000, 3000, 4000]


@pytest.mark.parametrize('kind', ['mpeg2_ts', 'hevc_10bit', 'mpeg4', 'vp9', 'av1', 'mjpeg', 'prores', 'wmv'])
def test_other_codecs_and_containers_are_sampled_alike(source, tmp_path, kind):
    """MPEG-2 in an MPEG-TS starting at 1.48 s (at 25 frames/s, frames repeated), 10-bit
    HEVC, MPEG-4 Part 2 in AVI, VP9 in WebM, AV1 in Matroska, Motion JPEG, ProRes 422
    (10-bit) and WMV: sampled at 0, 1, 2 s of their picture, the source's frames."""
    frames = sampled(make_variant(kind, tmp_path, source, FPS))
    assert [f.timestamp for f in frames] == [1000 * k for k in range(SECONDS)]
    assert [nearest_source_frame(f, source) for f in frames] == [FPS * k for k in range(SECONDS)]
    assert frames[0].shape == (48, 64, 3)


def test_an_interlaced_pal_dvd_picture_is_shown_and_cut_as_players_do(source, tmp_path):
    """Interlaced MPEG-2 in an MPEG program stream, 720x576 at the 16:9 sample aspect
    ratio 64:45 (shown 1024x576), the 4:3 source pillarboxed into it: frames at display
    size, the bars (128 columns each side) cut, the source's picture left."""
    path = make_variant('pal_576i', tmp_path, source[:2 * FPS], FPS)
    frames = sampled(path, crop_borders=True)
    assert [f.timestamp for f in frames] == [0, 1000] and frames[0].source_size == (1024, 576)
    top, bottom, left, right = frames[0].crop
    assert top == bottom == 0 and 124 <= left <= 132 and 124 <= right <= 132, frames[0].crop
    assert [nearest_source_frame(np.asarray(Image.fromarray(f).resize((64, 48))), source) for f in frames] == [0, FPS]


def test_a_hole_in_a_variable_frame_rate_file_keeps_its_time(files):
    frames = sampled(files['vfr_hole'])
    expected = [k for k in range(SECONDS) if not HOLE[0] <= k < HOLE[1]]
    assert [f.timestamp for f in frames] == [1000 * k for k in expected]


def test_anamorphic_frames_come_out_at_their_display_size(files, source):
    """480x272 at 4:3 is shown 640x272: here 48x48 stored, shown 64x48, as the source."""
    frames = sampled(files['anamorphic'])
    assert frames[0].shape == (48, 64, 3) and frames[0].source_size == (64, 48)
    scaled = sampled(files['anamorphic'], short_side=24)
    assert scaled[0].shape == (24, 32, 3) and scaled[0].source_size == (64, 48)
    # The picture is the source's, not a squeezed one: closer to it than to its squeeze.
    error = np.abs(frames[0].astype(int) - source[0].astype(int)).mean()
    squeezed = np.abs(frames[0][:, 8:56].astype(int) - source[0][:, 8:56].astype(int)).mean()
    assert error < 12 and error < squeezed


@pytest.mark.parametrize('kind, crop', [('letterbox', (6, 6, 0, 0)), ('pillarbox', (0, 0, 8, 8)),
                                         ('reencode', (0, 0, 0, 0))])
def test_borders_are_found_and_cut(files, source, kind, crop):
    """Bars added around the source's 64x48 picture (6 rows, 8 columns each side) are cut:
    the frames are the source's picture again, the crop says what was cut."""
    frames = sampled(files[kind], crop_borders=True)
    assert tuple(frames[0].crop) == crop and frames[0].shape == (48, 64, 3)
    assert [nearest_source_frame(f, source) for f in frames] == [FPS * k for k in range(SECONDS)]
    assert sampled(files[kind])[0].crop is None  # not asked: nothing looked for, nothing cut
    scaled = sampled(files[kind], crop_borders=True, short_side=24)
    assert scaled[0].shape[0] == 24 and abs(scaled[0].shape[1] - 32) <= 1


def test_a_dark_picture_is_no_border(source, tmp_path):
    """A dark scene (the source at 12 % brightness) and fades to black keep every pixel."""
    dark = make_video(tmp_path / 'dark.mp4', (source * 0.12).astype(np.uint8), fps=FPS)
    assert not video_decode.find_borders(str(dark))
    faded = source.copy()
    faded[::2] = 0  # every other frame black: they do not vote
    assert not video_decode.borders_of([f.mean(axis=2) for f in faded])


def test_borders_that_come_and_go_follow_the_majority():
    picture = np.full((20, 30), 120.0)
    barred = picture.copy()
    barred[:4] = barred[-4:] = 0
    assert tuple(video_decode.borders_of([barred, barred, barred, picture])) == (4, 4, 0, 0)
    assert not video_decode.borders_of([barred, picture, picture, picture])


def test_display_size():
    assert video_decode.display_size(480, 272, video_decode.Fraction(4, 3)) == (640, 272)
    assert video_decode.display_size(720, 576, video_decode.Fraction(64, 45)) == (1024, 576)
    assert video_decode.display_size(640, 480, None) == (640, 480)


def test_segments_are_cut_at_holes():
    segment = localization.Segment(0, 10, 0, 7, 0.8)
    with_hole = [0, 1, 2, 6, 7, 8, 9]
    pieces = segment.on_timelines(np.arange(10.0), with_hole, 1.0)
    assert [(p.query_start, p.query_end, p.target_start, p.target_end) for p in pieces] == \
        [(0, 3, 0, 3), (6, 10, 6, 10)]
    assert all(p.score == 0.8 for p in pieces)
    # Without holes: what to_seconds gives.
    plain = localization.Segment(2, 5, 3, 6, 0.5)
    assert plain.on_timelines(np.arange(10) * 0.5, np.arange(10) * 0.5, 0.5) == [plain.to_seconds(0.5)]
    with pytest.raises(ValueError, match='time_step'):
        plain.on_timelines(np.arange(10.0), np.arange(10.0), 0)


@pytest.fixture(scope='module')
def field_index(files, copy_model_hub, tmp_path_factory):
    index, models = copy_model_index(tmp_path_factory.mktemp('field-index') / 'index', copy_model_hub,
                                     [files['reencode'], files['ts_start'], files['vfr_hole'], files['letterbox'],
                                      files['anamorphic']])
    yield index, models
    index.close()


def test_durations_and_segments_come_from_timestamps(field_index, files):
    index, models = field_index
    record = {kind: index.catalog.video(index.video_id_of(files[kind])) for kind in ('ts_start', 'vfr_hole')}
    assert (record['ts_start'].frames, record['ts_start'].duration) == (10, 10.0)
    assert (record['vfr_hole'].frames, record['vfr_hole'].duration) == (7, 10.0)
    vfr_id = index.video_id_of(files['vfr_hole'])
    assert index.representation(vfr_id).times.tolist() == [0, 1, 2, 6, 7, 8, 9]
    # A query made now (not indexed) keeps its times too.
    query = retrieval.ingestion.ingest.query_representation(index, files['mp4_offset'], models)
    assert query.times.tolist() == list(range(SECONDS))
    found = retrieval.locate_copies(index, models, query, [vfr_id])[vfr_id]
    spans = sorted((s.target_start, s.target_end) for s in found)
    assert len(spans) == 2, found
    (a0, a1), (b0, b1) = spans
    assert a0 <= 1 and 2 <= a1 <= HOLE[0] and HOLE[1] <= b0 <= 7 and b1 >= 9, found


def test_an_index_without_sample_times_reads_as_before(field_index, files):
    """Videos indexed before times were recorded: sample i at i * time step."""
    index, models = field_index
    vfr_id = index.video_id_of(files['vfr_hole'])
    with index.catalog.transaction() as db:
        db.execute('UPDATE videos SET times = NULL WHERE id = ?', (vfr_id,))
    try:
        assert index.representation(vfr_id).times is None
        assert index_module.sample_times(None, 3, 0.5).tolist() == [0, 0.5, 1.0]
        query = index.representation(index.video_id_of(files['reencode']))
        found = retrieval.locate_copies(index, models, query, [vfr_id])[vfr_id]
        assert found and all(float(s.target_end).is_integer() and s.target_end <= 7 for s in found)
    finally:
        times = np.arange(7.0) + (np.arange(7) >= 3) * 3
        with index.catalog.transaction() as db:
            db.execute('UPDATE videos SET times = ? WHERE id = ?', (times.astype(np.float32).tobytes(), vfr_id))


def test_the_catalog_records_display_size_and_borders(field_index, files):
    index, models = field_index
    letterbox = index.catalog.video(index.video_id_of(files['letterbox']))
    assert (letterbox.width, letterbox.height, letterbox.crop) == (64, 60, '6,6,0,0')
    anamorphic = index.catalog.video(index.video_id_of(files['anamorphic']))
    assert (anamorphic.width, anamorphic.height, anamorphic.crop) == (64, 48, '0,0,0,0')
    query = index.representation(index.video_id_of(files['reencode']))
    # Squeezed (its ratio ignored), the anamorphic copy scores about 0.55; with its bars,
    # the letterboxed one 0.55 too (benchmarks/real_files.py, before these were read).
    for kind, least in (('letterbox', 0.9), ('anamorphic', 0.75)):
        copy = index.representation(index.video_id_of(files[kind]))
        assert core.fine_similarity(models.fine_student, query.fine, copy.fine) > least, kind


def test_folders_are_indexed_by_what_ffmpeg_reads_as_video(source, tmp_path):
    """Every file under a folder in which FFmpeg reads a video is taken (an animated GIF,
    a video without a suffix); the rest are counted as skipped, with why."""
    from PIL import Image
    from support.video_files import make_audio
    folder = tmp_path / 'mixed'
    folder.mkdir()
    make_variant('gif', folder, source[:8], FPS, name='animated')
    make_video(folder / 'clip.mts', source[:8], fps=FPS)
    make_video(folder / 'plain.mp4', source[:8], fps=FPS).rename(folder / 'no-suffix')
    Image.fromarray(source[0]).save(folder / 'still.gif')
    make_audio(folder / 'song.m4a')
    make_audio(folder / 'voice.m4a')
    (folder / 'notes.txt').write_text('not a video')
    scan = retrieval.ingestion.ingest.scan_paths([str(folder)])
    assert [p.rsplit('/', 1)[1] for p in scan.videos] == ['animated_gif.gif', 'clip.mts', 'no-suffix']
    assert scan.skipped_summary() == ('4 skipped: not a video (.gif: a still image; 2 .m4a: audio only; '
                                      '.txt: not a media file)')
    assert list(retrieval.find_videos([str(folder)])) == scan.videos
    assert retrieval.ingestion.ingest.FolderScan().skipped_summary() == ''


def test_videos_indexed_before_are_named_and_read_again_when_asked(field_index, files):
    """A video indexed by an earlier version (no sample times recorded) that is read
    differently now is named when met; `--reread` (index.reread) extracts it again."""
    index, models = field_index
    ts_id, plain_id = index.video_id_of(files['ts_start']), index.video_id_of(files['reencode'])
    with index.catalog.transaction() as db:
        db.execute('UPDATE videos SET times = NULL, crop = NULL WHERE id IN (?, ?)', (ts_id, plain_id))
    result = retrieval.add_file(index, files['ts_start'], models)
    assert result.status == 'skipped' and result.changes == ('starts at 1.48 s',)
    assert retrieval.add_file(index, files['reencode'], models).changes == ()  # read as before
    tally = retrieval.ingestion.tally.IndexTally(1, progress=False)
    tally.done(str(files['ts_start']), result)
    assert '1 videos indexed by an earlier version would now be read differently' in tally.summary(5, 'att')
    index.reread = True
    try:
        again = retrieval.add_file(index, files['ts_start'], models)
    finally:
        index.reread = False
    assert again.status == 'indexed' and index.catalog.times(ts_id).tolist() == list(range(SECONDS))
    assert len(index) == 5 and index.catalog.video(ts_id).crop == '0,0,0,0'
    assert retrieval.add_file(index, files['ts_start'], models).changes == ()


def test_a_clip_vote_s_part_is_found_on_sample_times():
    """Clip votes are in seconds: the copied part of a target with a hole (samples at
    0-9 s, then 20-39 s) at offset 25 s starts at its sample of 25 s, not at sample 25."""
    search = importlib.import_module(f'{PACKAGE}.retrieval.searching.search')
    voting = importlib.import_module(f'{PACKAGE}.retrieval.searching.clips.voting')
    vote = voting.ClipVote('v', 3.0, offset=25.0, windows=5, query_first=0.0, query_last=4.0)
    target_times = np.concatenate([np.arange(10.0), np.arange(20.0, 40.0)])
    q, t = search.copied_part(vote, 10, 30, 3, 1.0, 2.0, np.arange(10.0), target_times)
    assert (q.start, q.stop, t.start, t.stop) == (0, 7, 12, 25)
    assert search.copied_part(vote, 10, 30, 3, 1.0, 2.0)[1] == slice(22, 30)  # no times: i x step
    assert search.copied_part(vote, 10, 0, 3, 1.0, 2.0, np.arange(10.0), target_times[:0]) is None


def test_clip_windows_vote_on_sample_times(field_index, files):
    """Clip windows start at their samples' timestamps, the query's and the indexed
    video's (not window index x time step, which puts the part of a variable frame rate
    copy after its 3 s hole 3 s off); the copy's windows vote at one offset on both
    sides of the hole."""
    index, models = field_index
    query = retrieval.ingestion.ingest.query_representation(index, files['mp4_offset'], models)
    vfr_id = index.video_id_of(files['vfr_hole'])
    clips = clip_index.ClipIndex(index)
    starts, _ = clips.query_windows(query.fine, np.arange(SECONDS) * 2.0)
    assert starts.tolist() == [2.0 * k for k in range(SECONDS - 2)]
    seconds_of = clips.seconds_of()
    assert [seconds_of(vfr_id, k) for k in (0, 2, 3, 6)] == [0.0, 2.0, 6.0, 9.0]
    vote = next(v for v in clips.candidates(query.fine, times=query.times) if v.video_id == vfr_id)
    assert abs(vote.offset) < 1 and vote.windows >= 6 and vote.query_last >= HOLE[1], vote


def test_a_thin_dark_edge_is_no_border():
    """One or two dark columns at a real picture's edge (a camera's, a capture card's)
    are kept: under 2 % of the side, they are no bars, and cutting them in some encodes
    and not in others would shift the picture between copies."""
    picture = np.full((100, 200), 120.0)
    picture[:, :3] = 0   # 1.5 % of the width
    assert not video_decode.borders_of([picture] * 4)
    picture[:, :5] = 0   # 2.5 %: bars
    assert tuple(video_decode.borders_of([picture] * 4)) == (0, 0, 5, 0)
