"""The package as a user installs it: a clean virtual environment, `pip install <checkout>`
(the operator), then `pip install <checkout>[retrieval]` (the `dns` command), from the
package index pip is configured with. After the first, the operator loads through
Towhee's own loader and computes what the checkout computes; after the second, `dns
--help` and `dns index` work on a real video."""
import json
import os
import re
import shutil
import subprocess
import sys
import venv

import numpy as np
import pytest

from support.checkout import PACKAGE, ROOT
from support.video_files import make_video, moving_scene

sys.path.insert(0, str(ROOT / 'tools'))
import towhee_hub  # noqa: E402

# Minutes: pip puts torch with its CUDA libraries (~5 GB installed; the package index holds
# no CPU build of torchvision to go with a CPU build of torch) into a new environment.
pytestmark = pytest.mark.slow

PIP_TIMEOUT = 1800  # a hang guard only
# What the clean environment must not see of this one.
HOST_ONLY = ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV', 'PIP_REQUIRE_VIRTUALENV', 'DNS_COMPILE')
# Build outputs and local state a user's checkout does not ship.
NOT_SHIPPED = ('.venv', '.git', '__pycache__', '.pytest_cache', 'build', '*.egg-info', 'dns-index',
               '.bench-hub', '.bench-copy-hub', '.whl')

OPERATOR_SCRIPT = """
import json, sys
import numpy as np
from towhee import ops
from distill_and_select.video_decode import VideoDecoder
frames = list(VideoDecoder(time_step=1)(sys.argv[1]))
op = ops.video_copy_detection.distill_and_select(model_name=sys.argv[2], device='cpu')
np.save(sys.argv[3], op(frames))
loaded = [m for m in sys.modules if m.startswith('towhee.operator.video_copy_detection')]
print(json.dumps({'frames': len(frames), 'modules': loaded}))
"""


def run(args, env, cwd, timeout=PIP_TIMEOUT):
    result = subprocess.run([str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f'{args[:4]} exited {result.returncode}\n{result.stdout[-3000:]}\n' \
                                   f'{result.stderr[-5000:]}'
    return result


@pytest.fixture(scope='module')
def clean_env(hub_dir, tmp_path_factory):
    """A new virtual environment (no system site-packages) and the environment variables
    that run its programs, with the test weights' TORCH_HOME; the checkout is copied
    without build outputs, as a user's clone has it. Removed after the module's tests."""
    root = tmp_path_factory.mktemp('install')
    checkout = root / 'checkout'
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    venv.EnvBuilder(with_pip=True, clear=True).create(root / 'venv')
    bin_dir = root / 'venv' / 'bin'
    env = {k: v for k, v in os.environ.items() if k not in HOST_ONLY}
    env.update(PATH=f'{bin_dir}{os.pathsep}{env.get("PATH", "")}', VIRTUAL_ENV=str(root / 'venv'),
               TORCH_HOME=str(hub_dir.parent), HF_HUB_OFFLINE='1', DNS_COMPILE='0')
    yield root, checkout, bin_dir, env
    # pytest keeps the last runs' temporary folders; 5 GB each would fill a small disk.
    shutil.rmtree(root, ignore_errors=True)


def pip_install(clean_env, target: str):
    root, checkout, bin_dir, env = clean_env
    # No --no-cache-dir: what pip fetched over HTTP once comes from its cache.
    # --no-compile: byte-compiling the ~15,000 modules of the new environment proves nothing here.
    return run([bin_dir / 'python', '-m', 'pip', 'install', '--disable-pip-version-check', '--no-compile', target],
               env, root)


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp('videos') / 'scene.mp4', moving_scene(30, 144, 176, seed=3), fps=5)


@pytest.fixture(scope='module')
def installed(clean_env):
    """`pip install <checkout>`: the operator and its own requirements only."""
    pip_install(clean_env, str(clean_env[1]))
    return clean_env


@pytest.fixture(scope='module')
def installed_retrieval(installed):
    """Then `pip install <checkout>[retrieval]`."""
    pip_install(installed, f'{installed[1]}[retrieval]')
    return installed


def test_operator_loads_through_towhee(installed, operators, video, tmp_path):
    root, checkout, bin_dir, env = installed
    # The packages of this environment are not visible there.
    probe = run([bin_dir / 'python', '-c', 'import importlib.util, json; '
                 'print(json.dumps([importlib.util.find_spec(m) is None for m in ("pytest", "pymilvus")]))'],
                env, tmp_path)
    assert json.loads(probe.stdout) == [True, True]
    home = tmp_path / 'towhee-home'
    target = home / towhee_hub.OPERATOR_PATH
    shutil.copytree(checkout, target)
    out = tmp_path / 'vec.npy'
    # No network: a download attempt fails fast instead of hanging.
    env = dict(env, TOWHEE_HOME=str(home), HTTP_PROXY='http://127.0.0.1:9', HTTPS_PROXY='http://127.0.0.1:9')
    result = run([bin_dir / 'python', '-c', OPERATOR_SCRIPT, video, 'cg_student', out], env, tmp_path, timeout=600)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report['modules'], 'the operator was not loaded through Towhee'
    assert report['frames'] == 6  # 6 s at 1 frame per second

    import importlib
    decode = importlib.import_module(f'{PACKAGE}.video_decode')
    expected = operators('cg_student')(list(decode.VideoDecoder(time_step=1)(str(video))))
    vec = np.load(out)
    assert vec.shape == expected.shape == (1024,)
    # The new environment may hold another torch build: float rounding differs.
    np.testing.assert_allclose(vec, expected, atol=1e-4)


def test_dns_help_and_index(installed_retrieval, video, tmp_path):
    root, checkout, bin_dir, env = installed_retrieval
    dns = bin_dir / 'dns'
    assert dns.exists(), 'pip did not install the dns command'
    help_text = run([dns, '--help'], env, tmp_path, timeout=300).stdout
    for command in ('index', 'search'):
        assert command in help_text
    (tmp_path / 'videos').mkdir()
    shutil.copy(video, tmp_path / 'videos' / 'scene.mp4')
    result = run([dns, 'index', '--no-progress', 'videos'], env, tmp_path, timeout=900)
    assert re.search(r'indexed 1 videos?\b', result.stdout), result.stdout
    again = run([dns, 'index', '--no-progress', 'videos'], env, tmp_path, timeout=900)
    assert '1 already indexed' in again.stdout, again.stdout
