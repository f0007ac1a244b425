"""The main job: a Towhee pipeline that decodes a video at one frame per second and
turns it into a DnS representation with this operator, loaded by Towhee's own hub
loader from its cache (see tools/towhee_hub.py).

    .venv/bin/python tools/embed_video.py VIDEO [--model cg_student] [--device cpu] [--out vec.npy]
"""
import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import towhee_hub  # noqa: E402


def load_decoder_class(operator_dir: Path):
    spec = importlib.util.spec_from_file_location('dns_video_decode', operator_dir / 'video_decode.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.VideoDecoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('video')
    parser.add_argument('--model', default='cg_student',
                        choices=['feature_extractor', 'fg_att_student', 'fg_bin_student', 'cg_student',
                                 'selector_att', 'selector_bin'])
    parser.add_argument('--device', default=None)
    parser.add_argument('--time-step', type=float, default=1.0)
    parser.add_argument('--out', help='save the output array here (.npy)')
    args = parser.parse_args()

    operator_dir = towhee_hub.install()
    from towhee import ops, pipe  # after install: Towhee resolves the operator from its cache

    decoder = load_decoder_class(operator_dir)(time_step=args.time_step)
    p = (pipe.input('path')
         .map('path', 'frames', decoder)
         .map('frames', 'vec', ops.video_copy_detection.distill_and_select(model_name=args.model, device=args.device))
         .output('vec'))
    vec = p(args.video).get()[0]
    print(f'{args.model}: shape {list(np.shape(vec))}, dtype {vec.dtype}')
    print(np.array2string(np.ravel(vec)[:8], precision=4))
    if args.out:
        np.save(args.out, vec)
        print(f'saved {args.out}')


if __name__ == '__main__':
    main()
