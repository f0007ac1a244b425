"""Decoding speed of video_decode.VideoDecoder on a 720p H.264 file at a time step of
1 s (threaded and not), next to the network's frames/s: at 1 frame/s, decoding one
second of video must take less time than the network spends on its one frame.
Writes its table into docs/benchmarks.md.

    .venv/bin/python benchmarks/decode.py [--seconds 20] [--fps 30]
"""
import importlib
import tempfile
from pathlib import Path

import av
import numpy as np

from common import benchmark_parser, machine, markdown_table, package, timed, update_benchmarks


def make_720p(path: Path, seconds: int, fps: int) -> Path:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (720, 1280 + seconds * fps * 4, 3), dtype=np.uint8)
    with av.open(str(path), 'w') as out:
        stream = out.add_stream('libx264', rate=fps)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, 'yuv420p'
        stream.options = {'preset': 'veryfast', 'crf': '23'}
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, i * 4:i * 4 + 1280]), format='rgb24')
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def main():
    parser = benchmark_parser(device=False)
    parser.add_argument('--seconds', type=int, default=20)
    parser.add_argument('--fps', type=int, default=30)
    args = parser.parse_args()
    decode = importlib.import_module(package().__name__ + ".video_decode")
    with tempfile.TemporaryDirectory() as tmp:
        path = make_720p(Path(tmp) / 'video_720p.mp4', args.seconds, args.fps)
        rows = []
        for threads in (True, False):
            frames, sampled_s = timed(lambda: list(decode.VideoDecoder(time_step=1, threads=threads)(str(path))))
            assert len(frames) == args.seconds
            all_frames, all_s = timed(lambda: sum(1 for _ in decode.VideoDecoder(threads=threads)(str(path))))
            rows.append(['on' if threads else 'off', f'{args.seconds * args.fps / sampled_s:.0f}',
                         f'{args.seconds / sampled_s:.1f}', f'{all_frames / all_s:.0f}'])
            print(f'threads {rows[-1][0]}: time step 1 s: {rows[-1][1]} decoded frames/s = {rows[-1][2]} kept '
                  f'frames/s (video seconds/s); every frame converted to RGB: {rows[-1][3]} frames/s')
    table = markdown_table(['threads', 'decoded frames/s (time step 1 s)', 'kept frames/s = video seconds/s',
                            'frames/s converting every frame'], rows)
    if not args.print_only:
        update_benchmarks('decode', f'{table}\n\n1280x720 H.264 ({args.fps} frames/s, {args.seconds} s): {machine()}.')


if __name__ == '__main__':
    main()
