"""DnS retrieval on top of the operator: index a collection of videos (coarse vectors
in Milvus, fine-grained features on disk), search it with the selector and re-ranking,
find its near-duplicates and where the copies are, evaluate it and calibrate its
thresholds. The `dns` command line calls this API."""
from .catalog import Decision
from .dedup import DuplicateGroup, find_duplicates
from .evaluate import (CurvePoint, DecisionReport, GroundTruth, ThresholdPoint, average_precision, evaluate,
                       evaluate_copies, evaluate_segments, load_ground_truth, plot_curve, plot_precision_recall,
                       represent_queries)
from .fine_store import CorruptFeaturesError
from .index import DEFAULT_INDEX, AddResult, IndexSettings, IndexSettingsError, Thresholds, VideoIndex
from .localization import copied_segments
from .representation import DnSModels, VideoRepresentation
from .results import decisions_json, dedup_json, search_json, write_decisions_csv
from .search import Match, search
from .show import PairView, draw_pair, pair_view
from .thumbnails import ThumbnailKeeper
from .vector_store import VectorStoreError

__all__ = ['AddResult', 'CorruptFeaturesError', 'CurvePoint', 'DEFAULT_INDEX', 'Decision', 'DecisionReport',
           'DnSModels', 'DuplicateGroup', 'GroundTruth', 'IndexSettings', 'IndexSettingsError', 'Match', 'PairView',
           'ThresholdPoint', 'Thresholds', 'ThumbnailKeeper', 'VectorStoreError', 'VideoIndex', 'VideoRepresentation',
           'average_precision', 'copied_segments', 'decisions_json', 'dedup_json', 'draw_pair', 'evaluate',
           'evaluate_copies', 'evaluate_segments', 'find_duplicates', 'load_ground_truth', 'pair_view', 'plot_curve',
           'plot_precision_recall', 'represent_queries', 'search', 'search_json', 'write_decisions_csv']
