"""The options of `dns serve` about load and isolation, shared by the command line and
`create_app` (light: no web framework imported)."""
import argparse

from .. import defaults
from .workers import default_workers


def add_serving_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--workers', type=int, default=default_workers(),
                        help=f'processes that decode and represent uploads, each loading the models '
                        f'(default: {defaults.UPLOAD_WORKERS}, at most one a core)')
    parser.add_argument('--worker-timeout', type=float, default=defaults.WORKER_TIMEOUT_S, metavar='SECONDS',
                        help=f'longest one upload may take in its worker before the worker is stopped and the '
                        f'request answered 504 (default: {defaults.WORKER_TIMEOUT_S:g})')
    parser.add_argument('--worker-memory-mb', type=float, default=defaults.WORKER_MEMORY_MB,
                        help=f'memory (address space) one upload may take in its worker beyond the loaded models; '
                        f'0: no cap (default: {defaults.WORKER_MEMORY_MB:g})')
    parser.add_argument('--max-in-flight', type=int, default=defaults.MAX_IN_FLIGHT,
                        help=f'requests answered at once; more are answered 503 with Retry-After '
                        f'(default: {defaults.MAX_IN_FLIGHT})')


def serving_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of create_app from parsed options, checked."""
    for name, value in (('--workers', args.workers), ('--max-in-flight', args.max_in_flight)):
        if value < 1:
            raise ValueError(f'{name} must be at least 1, got {value}')
    if not args.worker_timeout > 0:
        raise ValueError(f'--worker-timeout must be positive, got {args.worker_timeout}')
    if args.worker_memory_mb < 0:
        raise ValueError(f'--worker-memory-mb must be 0 (no cap) or more, got {args.worker_memory_mb}')
    return {'workers': args.workers, 'worker_timeout_s': args.worker_timeout,
            'worker_memory_mb': args.worker_memory_mb or None, 'max_in_flight': args.max_in_flight}
