"""DnS retrieval on top of the operator: index a collection of videos (coarse vectors
in Milvus, fine-grained features on disk), search it with the selector and re-ranking,
find its near-duplicates and where the copies are, evaluate it and calibrate its
thresholds. The `dns` command line calls this API."""
from .dedup import DuplicateGroup, find_duplicates
from .evaluate import (CurvePoint, DecisionReport, GroundTruth, ThresholdPoint, average_precision, evaluate,
                       evaluate_copies, evaluate_segments, load_ground_truth, plot_curve, plot_precision_recall,
                       represent_queries)
from .fine_store import CorruptFeaturesError
from .index import DEFAULT_INDEX, AddResult, IndexSettings, IndexSettingsError, Thresholds, VideoIndex
from .localization import copied_segments
from .representation import DnSModels, VideoRepresentation
from .search import Match, search
from .show import draw_pair
from .vector_store import VectorStoreError

__all__ = ['AddResult', 'CorruptFeaturesError', 'CurvePoint', 'DEFAULT_INDEX', 'DecisionReport', 'DnSModels',
           'DuplicateGroup', 'GroundTruth', 'IndexSettings', 'IndexSettingsError', 'Match', 'ThresholdPoint',
           'Thresholds', 'VectorStoreError', 'VideoIndex', 'VideoRepresentation', 'average_precision',
           'copied_segments', 'draw_pair', 'evaluate', 'evaluate_copies', 'evaluate_segments', 'find_duplicates',
           'load_ground_truth', 'plot_curve', 'plot_precision_recall', 'represent_queries', 'search']
