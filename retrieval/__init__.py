"""DnS retrieval on top of the core (``distill_and_select.DnS``): index a collection of
videos (coarse vectors in Milvus, fine-grained features on disk), search it with the
selector and re-ranking, find its near-duplicates and where the copies are, evaluate it and calibrate its
thresholds. The `dns` command and the service call this API."""
from ..core import VideoRepresentation
from .storage.catalog import Decision
from .searching.dedup import DuplicateGroup, find_duplicates
from .evaluate import (CurvePoint, DecisionReport, GroundTruth, ThresholdPoint, average_precision, evaluate,
                       evaluate_copies, evaluate_segments, load_ground_truth, plot_curve, plot_precision_recall,
                       represent_queries)
from .storage.fine_store import CorruptFeaturesError
from .storage.index import (AddResult, IndexedFile, IndexSettings, IndexSettingsError, Removal, StaleThresholdWarning,
                    Thresholds, VideoIndex)
from .ingestion.ingest import add_file, find_videos, index_files, query_representation, represent_file
from .searching.results import decisions_json, dedup_json, search_json, write_decisions_csv
from .searching.search import Match, search
from .searching.segments import locate_copies
from .searching.show import PairView, draw_pair, pair_view
from .storage.thumbnails import ThumbnailKeeper
from .storage.vector_store import VectorStoreError

__all__ = ['AddResult', 'CorruptFeaturesError', 'CurvePoint', 'Decision', 'DecisionReport', 'DuplicateGroup',
           'GroundTruth', 'IndexedFile', 'IndexSettings', 'IndexSettingsError', 'Match', 'PairView', 'Removal',
           'StaleThresholdWarning', 'ThresholdPoint', 'Thresholds', 'ThumbnailKeeper', 'VectorStoreError', 'VideoIndex',
           'VideoRepresentation',
           'add_file', 'average_precision', 'decisions_json', 'dedup_json', 'draw_pair',
           'evaluate', 'evaluate_copies', 'evaluate_segments', 'find_duplicates', 'find_videos', 'index_files',
           'load_ground_truth', 'locate_copies', 'pair_view', 'plot_curve', 'plot_precision_recall', 'query_representation',
           'represent_file', 'represent_queries', 'search', 'search_json', 'write_decisions_csv']
