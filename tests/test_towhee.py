"""The operator as Towhee users get it: the checkout placed where Towhee's hub download
puts it, loaded by Towhee's own loader, in a pipe with the PyAV decoder, no network."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support.video_files import make_video, moving_scene

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
import towhee_hub  # noqa: E402

PIPE_SCRIPT = """
import json, sys
import numpy as np
from towhee import ops, pipe
import importlib.util
spec = importlib.util.spec_from_file_location('dns_decode', sys.argv[2] + '/video_decode.py')
decode = importlib.util.module_from_spec(spec); spec.loader.exec_module(decode)
p = (pipe.input('path')
     .map('path', 'frames', decode.VideoDecoder(time_step=1))
     .map('frames', 'vec', ops.video_copy_detection.distill_and_select(model_name=sys.argv[3], device='cpu'))
     .output('vec'))
vec = p(sys.argv[1]).get()[0]
np.save(sys.argv[4], vec)
loaded = [m for m in sys.modules if m.startswith('towhee.operator.video_copy_detection')]
print(json.dumps({'modules': loaded}))
"""


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp('videos') / 'scene.mp4'
    return make_video(path, moving_scene(30, 144, 176, seed=1), fps=5)


@pytest.mark.parametrize('model_name', ['cg_student', 'fg_bin_student'])
def test_towhee_hub_loader_pipe(hub_dir, operators, video, tmp_path, model_name):
    home = tmp_path / 'towhee-home'
    operator_dir = towhee_hub.install(home, copy=True)
    assert operator_dir == home / 'operators/video-copy-detection/distill-and-select/versions/main'
    out = tmp_path / 'vec.npy'
    env = dict(os.environ, TOWHEE_HOME=str(home), TORCH_HOME=str(hub_dir.parent),
               # no network: any download attempt fails fast instead of hanging
               HTTP_PROXY='http://127.0.0.1:9', HTTPS_PROXY='http://127.0.0.1:9', HF_HUB_OFFLINE='1')
    env.pop('PYTHONPATH', None)
    result = subprocess.run([sys.executable, '-c', PIPE_SCRIPT, str(video), str(operator_dir), model_name, str(out)],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    modules = json.loads(result.stdout.strip().splitlines()[-1])['modules']
    assert modules, 'the operator was not loaded through Towhee'
    vec = np.load(out)

    # The same video through the operator directly: decode 1 frame per second (6 s at 5 fps).
    import importlib
    from conftest import PACKAGE
    decode = importlib.import_module(f'{PACKAGE}.video_decode')
    frames = list(decode.VideoDecoder(time_step=1)(str(video)))
    assert len(frames) == 6
    expected = operators(model_name)(frames)
    assert vec.shape == expected.shape == ((1024,) if model_name == 'cg_student' else (6, 9, 512))
    np.testing.assert_allclose(vec, expected, atol=1e-5)
