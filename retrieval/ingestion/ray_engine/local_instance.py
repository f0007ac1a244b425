"""A local Ray instance that listens on loopback only.

Ray's servers (GCS, raylet, object manager, the workers' and the driver's gRPC servers,
the runtime-env agent) bind the node's IP address, or every interface, unless that
address is 127.0.0.1. Ray turns a node address of 127.0.0.1 given to ``ray.init`` into
the machine's network address, except when its switch for single-machine operation,
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, was set when ray was imported. A cluster runs
whatever code it is sent, and a local instance serves this process only: nothing of it
needs to be reachable from the network."""
import os
from types import ModuleType

LOOPBACK = '127.0.0.1'
SINGLE_MACHINE_SWITCH = 'RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'


class NotLoopbackError(RuntimeError):
    """The local Ray instance would listen beyond loopback."""


def prepare() -> None:
    """Set Ray's single-machine switch; before ray is imported, where it is read. Kept
    for the whole process: Ray's workers, started later, inherit it."""
    os.environ[SINGLE_MACHINE_SWITCH] = '0'


def start(ray: ModuleType, **options) -> None:
    """``ray.init`` a local instance on 127.0.0.1 (``options``: more of ray.init's
    arguments). Raises NotLoopbackError, the instance stopped again, when ray was
    imported before ``prepare()`` and so took the network address."""
    ray.init(address='local', include_dashboard=False, _node_ip_address=LOOPBACK, **options)
    node_address = ray.util.get_node_ip_address()
    if node_address != LOOPBACK:
        ray.shutdown()
        raise NotLoopbackError(
            f'the local Ray instance would listen on {node_address}, not only on {LOOPBACK}: ray was imported '
            f'before {SINGLE_MACHINE_SWITCH}=0 was set; set it before importing ray, or give RAY_ADDRESS')
