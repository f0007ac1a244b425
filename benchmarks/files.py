"""Indexing real HD files: 720p and 1080p H.264 at 25 and 30 frames/s, made with x264's
defaults (preset medium: 3 B-frames, B-pyramid, a key frame every 250 frames), sampled
at one frame per second as `dns index` samples them. In one run:

- decoding alone with the project's decoder, up to the 256x256 crops the extractor
  takes: before (every frame decoded, kept frames converted to full-size RGB and resized
  by torch: ``exact=True``), after (what `dns index` does by default: skipping
  non-reference frames, the same kept frames resized by torch), and with FFmpeg's
  scaling opted in (kept frames scaled to the short side 256 while converting); and
  FFmpeg's thread types;
- decoding alone with the ``ffmpeg`` command line (``-benchmark``, ``-threads 0`` as the
  decoder's automatic count): every frame, and the same job as the decoder (skip
  non-reference frames, one frame per second, scaled to 455x256 RGB), the anchor;
- extraction alone on the same crops: eager and compiled, fp32 and bf16 (compiled at
  one batch size);
- `dns index` (the plain engine, in this process, models built and compiled before) on
  each file: hours of video per hour and sampled frames/s.

The files are made once into .bench-files/ (a segment encoded by the ``ffmpeg`` command
line from its ``testsrc2`` source, repeated by stream copy to the length asked: the same
GOP structure as a file encoded whole). Writes its tables into docs/benchmarks.md
(block ``files``).

    .venv/bin/python benchmarks/files.py [--seconds 128] [--configs eager-fp32,...]
"""
import importlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from common import ROOT, benchmark_parser, machine, markdown_table, package, timed, update_benchmarks, use_timing_weights

FORMATS = [(1280, 720, 25), (1280, 720, 30), (1920, 1080, 25), (1920, 1080, 30)]
SEGMENT_SECONDS = 20
CONFIGS = ['eager-fp32', 'eager-bf16', 'compiled-fp32', 'compiled-bf16']
FILES = ROOT / '.bench-files'
BATCH = 32


def make_file(width: int, height: int, fps: int, seconds: int) -> Path:
    """A ``seconds`` long H.264 file (x264 defaults, crf 23), made once."""
    path = FILES / f'{height}p{fps}-{seconds}s.mp4'
    if path.is_file():
        return path
    FILES.mkdir(exist_ok=True)
    segment = FILES / f'{height}p{fps}-segment.mp4'
    if not segment.is_file():
        subprocess.run(['ffmpeg', '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i',
                        f'testsrc2=size={width}x{height}:rate={fps}', '-t', str(SEGMENT_SECONDS), '-c:v', 'libx264',
                        '-crf', '23', '-pix_fmt', 'yuv420p', str(segment) + '.part.mp4'], check=True)
        os.replace(str(segment) + '.part.mp4', segment)
    loops = -(-seconds // SEGMENT_SECONDS) - 1
    subprocess.run(['ffmpeg', '-hide_banner', '-loglevel', 'error', '-y', '-stream_loop', str(loops), '-i',
                    str(segment), '-frames:v', str(seconds * fps), '-c', 'copy', str(path) + '.part.mp4'], check=True)
    os.replace(str(path) + '.part.mp4', path)
    return path


def decode_to_crops(decode, preprocess, path: Path, **options) -> int:
    """The decoder's kept frames of ``path``, through to the extractor's uint8 crops; how many."""
    frames = decode.VideoDecoder(time_step=1, **options)(str(path))
    cpu = torch.device('cpu')
    return sum(len(preprocess.resize_center_crop(batch, cpu)) for batch in preprocess.frame_batches(
        preprocess.iter_rgb_frames(frames), BATCH))


def ffmpeg_seconds(path: Path, same_job: bool) -> float:
    """Wall-clock seconds ``ffmpeg -benchmark`` reports (rtime) decoding ``path``: every
    frame to nothing, or the decoder's job (skip non-reference frames, 1 frame/s, 455x256
    RGB)."""
    command = ['ffmpeg', '-hide_banner', '-nostdin', '-benchmark', '-threads', '0']
    if same_job:
        command += ['-skip_frame', 'noref', '-i', str(path), '-vf', 'fps=1,scale=-2:256:flags=bicubic,format=rgb24']
    else:
        command += ['-i', str(path)]
    out = subprocess.run(command + ['-f', 'null', '-'], capture_output=True, text=True, check=True)
    return float(re.search(r'rtime=([0-9.]+)s', out.stderr).group(1))


def models(dns, config: str):
    """The DnS networks of ``config`` ('eager-fp32', 'compiled-bf16', ...) on the CPU."""
    mode, precision = config.split('-')
    return dns.DnS('att', device='cpu', precision=precision, batch_size=BATCH, compile=mode == 'compiled')


def extraction(encoder, crops: torch.Tensor):
    """(frames/s on full batches, seconds to compile or warm up) of the feature extractor."""
    _, warm_s = timed(lambda: encoder.encode_crops(crops[:BATCH]))
    batches = len(crops) // BATCH
    _, seconds = timed(lambda: [encoder.encode_crops(crops[i * BATCH:(i + 1) * BATCH]) for i in range(batches)])
    return batches * BATCH / seconds, warm_s


def main():
    parser = benchmark_parser(device=False)
    parser.add_argument('--seconds', type=int, default=128, help='length of each file (a multiple of 32: compiled, one '
                        'batch shape)')
    parser.add_argument('--configs', default=','.join(CONFIGS), help='extractor configurations to time')
    parser.add_argument('--formats', default=','.join(f'{h}p{fps}' for _, h, fps in FORMATS),
                        help='the files to make and time')
    parser.add_argument('--thread-types', default='AUTO,FRAME,SLICE,off', help="FFmpeg's thread types to time")
    args = parser.parse_args()
    configs = args.configs.split(',')
    if shutil.which('ffmpeg') is None:
        parser.error('the ffmpeg command line is the decode anchor: install it (apt-get install ffmpeg)')
    use_timing_weights()
    dns = package()
    decode = importlib.import_module(dns.__name__ + '.video_decode')
    preprocess = importlib.import_module(dns.__name__ + '.preprocess')
    retrieval = importlib.import_module(dns.__name__ + '.retrieval')
    ingest = importlib.import_module(dns.__name__ + '.retrieval.ingestion.ingest')
    tally_module = importlib.import_module(dns.__name__ + '.retrieval.ingestion.tally')
    files = {f'{h}p{fps}': make_file(w, h, fps, args.seconds) for w, h, fps in FORMATS
             if f'{h}p{fps}' in args.formats.split(',')}

    decode_rows, decoded, kept_frames = [], {}, {}
    for name, path in files.items():
        kept, before_s = timed(lambda: decode_to_crops(decode, preprocess, path, exact=True))
        kept_after, after_s = timed(lambda: decode_to_crops(decode, preprocess, path))
        kept_scaled, scaled_s = timed(lambda: decode_to_crops(decode, preprocess, path, short_side=256))
        assert kept == kept_after == kept_scaled, (kept, kept_after, kept_scaled)
        every_s, same_s = ffmpeg_seconds(path, False), ffmpeg_seconds(path, True)
        decoded[name], kept_frames[name] = after_s, kept
        decode_rows.append([name, f'{kept / before_s:.1f}', f'{kept / after_s:.1f}', f'{before_s / after_s:.2f}x',
                            f'{kept / scaled_s:.1f}', f'{kept / every_s:.1f}', f'{kept / same_s:.1f}',
                            f'{same_s / scaled_s:.2f}'])
        print('decode', decode_rows[-1])

    thread_rows = []
    heaviest = list(files)[-1]
    for kind in args.thread_types.split(','):
        threads = {'AUTO': True, 'off': False}.get(kind, kind)
        kept, took = timed(lambda: decode_to_crops(decode, preprocess, files[heaviest], threads=threads))
        thread_rows.append([{True: 'AUTO', False: 'off (1 thread)'}.get(threads, threads), f'{kept / took:.1f}'])
        print('threads', thread_rows[-1])

    # The extractor's input does not depend on the file's size: crops of one file serve all.
    cpu = torch.device('cpu')
    crop_list = [preprocess.resize_center_crop(batch, cpu) for batch in preprocess.frame_batches(
        preprocess.iter_rgb_frames(decode.VideoDecoder(time_step=1)(str(files[heaviest]))), BATCH)]
    crops = torch.cat(crop_list)
    extract_rows, index_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for number, config in enumerate(configs):
            dns_models = models(dns, config)
            rate, warm_s = extraction(dns_models.encoder, crops)  # compiled before `dns index`'s clock starts
            extract_rows.append([config, f'{rate:.2f}', f'{warm_s:.0f}'])
            print('extract', extract_rows[-1])
            for tail in sorted({count % BATCH for count in kept_frames.values()} - {0}):
                dns_models.encoder.encode_crops(crops[:tail])  # a last batch's shape, compiled before the clock too
            for exact in (False, True) if number == 0 else (False,):
                with retrieval.VideoIndex(Path(tmp) / f'{config}-{exact}', create=True) as index:
                    for name, path in files.items():
                        tally = tally_module.IndexTally(1, progress=False)
                        _, took = timed(lambda: ingest.index_files(index, [str(path)], dns_models, tally, exact=exact))
                        assert tally.counts['indexed'] == 1, tally.counts
                        alone = (decoded[name], kept_frames[name] / rate)  # seconds, each stage on every core
                        index_rows.append([name, config + (' (exact decode: before)' if exact else ''),
                                           f'{kept_frames[name] / took:.2f}',
                                           '' if exact else f'{max(alone) / took:.2f}',
                                           '' if exact else f'{sum(alone) / took:.2f}'])
                        print('index', index_rows[-1])

    text = '\n\n'.join([
        '**Decoding alone**, kept frames/s (= video seconds/s at 1 frame/s) up to the 256x256 crops; '
        'the `ffmpeg` command line with `-threads 0` (automatic, as the decoder):\n\n' + markdown_table(
            ['file', 'decoder before (exact)', 'decoder after (default)', 'after / before',
             'decoder, FFmpeg scaling (opt-in)', 'ffmpeg, every frame', 'ffmpeg, same job',
             'decoder with scaling / ffmpeg same job'], decode_rows),
        f'**FFmpeg threads** (decoder after, default, {heaviest}): kept frames/s\n\n' + markdown_table(
            ['thread_type', 'kept frames/s'], thread_rows),
        f'**Extraction alone** on the same crops, batches of {BATCH}, CPU:\n\n' + markdown_table(
            ['extractor', 'frames/s', 'warm-up or compile, s'], extract_rows),
        '**`dns index`** (plain engine; models built and compiled before): hours of video per hour '
        '(video seconds/s), at 1 frame/s also the sampled frames/s. Goal: 0.9 or more of the slower of '
        'decoding alone and extraction alone. On a CPU both stages share the same cores, so the time of '
        'both stages alone, one after the other, is the bound overlap works against: above 1.00, '
        'overlapping them beat running them in turn.\n\n' + markdown_table(
            ['file', 'extractor', 'hours of video per hour = sampled frames/s', 'of the slower stage alone',
             'of both stages in turn'], index_rows),
        f'Files of {args.seconds} s, H.264 (x264 defaults, crf 23, `testsrc2`), sampled at 1 frame/s: {machine()}.'])
    if not args.print_only:
        update_benchmarks('files', text)


if __name__ == '__main__':
    main()
