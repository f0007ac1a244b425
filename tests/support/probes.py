"""Measurements that tests bound and benchmarks report, each in a fresh process so that
its memory figures are its own: the operator's memory over a video's length, and the
fine comparison of long videos."""
import json
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

MEMORY_CHILD = r"""
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from support.measure import AnonymousPeak, package, peak_rss_mb, use_timing_weights
use_timing_weights()
n, mode, batch_size, compile = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5] == 'compile'
op = package().DistillAndSelect('cg_student', device='cpu', batch_size=batch_size, compile=compile)
base = np.random.default_rng(0).integers(0, 256, (360, 640 + n, 3), dtype=np.uint8)

def frames():  # a moving window: every frame differs, one at a time in memory
    for i in range(n):
        yield np.ascontiguousarray(base[:, i:i + 640])

before = peak_rss_mb()
if mode == 'list':
    video = list(frames())
    data_mb = sum(f.nbytes for f in video) / 2**20
else:
    video, data_mb = frames(), 0.0
start = time.perf_counter()
with AnonymousPeak() as anonymous:
    vec = op(video)
elapsed = time.perf_counter() - start
assert vec.shape == (1024,)
print(json.dumps({'frames': n, 'mode': mode, 'peak_rss_mb': peak_rss_mb(), 'model_rss_mb': before,
                  'peak_anon_mb': anonymous.peak_mb, 'data_mb': data_mb, 'seconds': elapsed}))
"""


def operator_memory(n: int, mode: str, batch_size: int, compile: bool = False) -> dict:
    here = str(TESTS)
    out = subprocess.run([sys.executable, '-c', MEMORY_CHILD, here, str(n), mode, str(batch_size),
                          'compile' if compile else 'eager'],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])



LONG_PAIRS_CHILD = r"""
import ctypes, json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import torch
from support.measure import AnonymousPeak, package, peak_rss_mb, status_mb, use_timing_weights
use_timing_weights()
student, tq, tt, n, time_frames = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == '1'
op = package().DistillAndSelect(student, feature_extractor=None, device='cpu')
rng = np.random.default_rng(0)

def features(t):
    x = rng.standard_normal((t, 9, 512), dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)

query = op(features(tq))
base = op(features(tt + n - 1))
targets = [base[i:i + tt] for i in range(n)]  # views: distinct targets, one video's memory
try:  # hand the heap freed while indexing back to the system: it is not the inputs
    ctypes.CDLL('libc.so.6').malloc_trim(0)
except OSError:
    pass

inputs_mb = status_mb('RssAnon')
start, cpu = time.perf_counter(), time.process_time()
with AnonymousPeak() as anonymous:
    sims = op.similarity(query, targets)
seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
rss_mb = peak_rss_mb()
assert sims.shape == (n,) and np.isfinite(sims).all()

# The frame-to-frame part alone, on one pair, after the memory figures (its buffers would
# be counted as inputs); the first call warms the kernels up.
model, q, t = op.model, torch.from_numpy(query), torch.from_numpy(targets[0])
frame_seconds = frame_cpu_seconds = float('nan')
with torch.inference_mode():
    def frames():
        return model.frame_similarity_matrix(q, t)
    if time_frames:
        frames()
        start, cpu = time.perf_counter(), time.process_time()
        frames()
        frame_seconds, frame_cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({'student': student, 'query_frames': tq, 'target_frames': tt, 'targets': n,
                  'seconds': seconds, 'cpu_seconds': cpu_seconds, 'frame_seconds': frame_seconds,
                  'frame_cpu_seconds': frame_cpu_seconds, 'peak_rss_mb': rss_mb,
                  'inputs_anon_mb': inputs_mb, 'peak_anon_mb': anonymous.peak_mb,
                  'threads': torch.get_num_threads()}))
"""


def long_pairs(student: str, query_frames: int, target_frames: int, targets: int, time_frames: bool = True) -> dict:
    """One query against ``targets`` targets with the operator, in a fresh process: its
    figures (time_frames: also time the frame-to-frame part alone, on one pair)."""
    here = str(TESTS)
    out = subprocess.run([sys.executable, '-c', LONG_PAIRS_CHILD, here, student, str(query_frames), str(target_frames),
                          str(targets), '1' if time_frames else '0'], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f'{student} failed (exit {out.returncode}):\n{out.stderr[-3000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])
