"""`dns index --ray`: the indexing as a Ray Data pipeline. Workers hash the files, then
decode them (CPU tasks) and represent them (actors holding the models); the driver, this
process, is the one writer: it commits each video through the index's own ``add_known``
and ``commit``, so the guarantees are those of the plain path (atomic per video,
content-hash dedup, resumable)."""
import logging
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ....video_decode import VideoDecodeError
from ...storage.index import VideoIndex
from ..stages import commit_content, fail_content
from ..tally import IndexTally
from . import local_instance
from .stages import Representer, VideoResult, decode_crops, hash_file

# Videos per actor call: their frames fill the extractor's batches across videos; only
# the last batch of a call can be short. Bounds an actor's input memory too.
VIDEOS_PER_CALL = 8


@dataclass(frozen=True)
class Placement:
    actors: int        # model-holding actors in the pool
    num_cpus: float    # per actor
    num_gpus: float    # per actor


def connect() -> ModuleType:
    """Join the cluster named by RAY_ADDRESS (as `ray job submit` runs a driver), else
    start a local Ray instance, listening on loopback only. Returns the ray module."""
    address = os.environ.get('RAY_ADDRESS')
    if not address:
        local_instance.prepare()
    import ray
    import ray.data
    if not ray.is_initialized():
        # Ray puts the driver's working directory on its workers' sys.path: in a clone
        # of this project, whose root holds distill_and_select.py, that file would
        # shadow the installed package. Workers get the file system's root instead.
        here = os.getcwd()
        os.chdir(os.path.abspath(os.sep))
        try:
            if address:
                ray.init(address=address, log_to_driver=False, logging_level='WARNING')
            else:
                local_instance.start(ray, log_to_driver=False, logging_level='WARNING')
        finally:
            os.chdir(here)
    logging.getLogger('ray.data').setLevel(logging.ERROR)  # progress chatter; errors still raise here
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # `dns index` shows its own
    context.print_on_execution_start = False
    return ray


def placement(resources: Mapping[str, float], model_options: Mapping[str, Any],
              actors: Optional[int] = None) -> Placement:
    """One actor per GPU of the cluster (unless the models are asked to run on the CPU);
    on CPUs only, half of the cluster's CPUs extract (up to 4 an actor), the other half
    decode."""
    if actors is not None and actors < 1:
        raise ValueError(f'the number of Ray actors must be at least 1, got {actors}')
    gpus = int(resources.get('GPU', 0))
    device = model_options.get('device')
    if gpus and (device is None or str(device).startswith('cuda')):
        return Placement(actors or gpus, 1, 1)
    half = max(1, int(resources.get('CPU', 1)) // 2)
    per_actor = min(4, half)
    return Placement(actors or max(1, half // per_actor), per_actor, 0)


def index_on_ray(index: VideoIndex, files: Sequence[str], model_options: Dict[str, Any], tally: IndexTally, *,
                 actors: Optional[int] = None) -> None:
    """Index ``files`` (paths as given) into ``index`` on Ray. ``model_options``: the
    keyword arguments of ``DnS`` (device, precision, batch size...),
    with which each actor builds its models. Ends by syncing Milvus, as the plain
    engine does."""
    # Ray Data retries what a dead worker was doing, by default: tasks (max_retries) and
    # actors (max_restarts, max_task_retries) without limit. A retried call's results
    # replace the lost ones, and the driver commits a content once whatever it receives.
    ray = connect()
    todo = _new_contents(ray, index, files, tally)
    if todo:
        _represent_on_ray(ray, index, todo, model_options, tally, actors)
    index.sync()


def _represent_on_ray(ray, index: VideoIndex, todo: Dict[str, List[dict]], model_options: Dict[str, Any],
                      tally: IndexTally, actors: Optional[int]) -> None:
    where = placement(ray.cluster_resources(), model_options, actors)
    results = (
        ray.data.from_items([paths[0] for paths in todo.values()])
        # flat_map, whose rows are not tied to its input rows: Ray Data then keeps the
        # decoding in CPU tasks of their own, overlapping the extraction, instead of
        # fusing it into the actors.
        .flat_map(decode_crops, fn_kwargs={'time_step': index.settings.time_step}, num_cpus=1)
        .map_batches(Representer, fn_constructor_kwargs={'fine': index.settings.fine,
                                                         'model_options': dict(model_options)},
                     batch_size=VIDEOS_PER_CALL, compute=ray.data.ActorPoolStrategy(size=where.actors),
                     num_cpus=where.num_cpus, num_gpus=where.num_gpus or None))
    for row in results.iter_rows():
        result: VideoResult = row['result']
        paths = todo.pop(result.video_id, None)
        if paths is not None:  # else already committed: a retried call's second answer
            _commit(index, result, paths, tally)


def _new_contents(ray, index: VideoIndex, files: Sequence[str], tally: IndexTally) -> Dict[str, List[dict]]:
    """Hash the files on the cluster; record the paths of contents already indexed.
    Returns the rest: content hash -> its files (rows for the pipeline), first seen first."""
    todo: Dict[str, List[dict]] = {}
    if not files:
        return todo
    rows = [{'path': path, 'file': os.path.abspath(path)} for path in files]
    for row in ray.data.from_items(rows).map(hash_file).iter_rows():
        if row['reason']:
            tally.failed(VideoDecodeError(row['path'], row['reason']))
            continue
        known = index.add_known(row['path'], row['video_id'])
        if known is not None:
            tally.done(row['path'], known)
        else:
            todo.setdefault(row['video_id'], []).append({k: row[k] for k in ('path', 'file', 'video_id')})
    return todo


def _commit(index: VideoIndex, result: VideoResult, paths: List[dict], tally: IndexTally) -> None:
    """Store a worker's result through the commit stage: the first file of the content
    committed, the others (copies with equal bytes) recorded as more paths of it."""
    files = [row['path'] for row in paths]
    if result.reason:
        fail_content(tally, files, result.reason)
        return
    tally.frame(result.representation.frames)
    commit_content(index, tally, files, result.video_id, result.representation)
