"""The `dns` command, on top of the retrieval API and the service."""
import logging
import sys
from typing import Optional, Sequence

from ..retrieval.storage.index import IndexSettingsError
from .parser import build_parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format='dns: %(message)s', level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return args.run(args)
    except (IndexSettingsError, ValueError) as error:
        print(f'dns {args.command}: error: {error}', file=sys.stderr)
        return 2
    except Exception as error:  # a clear line, not a traceback, for what users can fix
        from ..video_decode import VideoDecodeError
        from ..weights import WeightsError
        from ..retrieval.storage.fine_store import CorruptFeaturesError
        from ..retrieval.storage.vector_store import VectorStoreError
        if isinstance(error, (VideoDecodeError, WeightsError, CorruptFeaturesError, VectorStoreError)):
            print(f'dns {args.command}: error: {error}', file=sys.stderr)
            return 1
        raise


if __name__ == '__main__':
    sys.exit(main())
