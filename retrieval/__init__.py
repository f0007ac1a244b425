"""DnS retrieval on top of the operator: index a collection of videos (coarse vectors
in Milvus, fine-grained features on disk), search it with the selector and re-ranking,
find its near-duplicates, evaluate it. The `dns` command line calls this API."""
from .dedup import DuplicateGroup, find_duplicates
from .evaluate import CurvePoint, average_precision, evaluate, load_ground_truth, plot_curve
from .fine_store import CorruptFeaturesError
from .index import DEFAULT_INDEX, AddResult, IndexSettings, IndexSettingsError, VideoIndex
from .representation import DnSModels, VideoRepresentation
from .search import Match, search
from .show import draw_pair
from .vector_store import VectorStoreError

__all__ = ['AddResult', 'CorruptFeaturesError', 'CurvePoint', 'DEFAULT_INDEX', 'DnSModels', 'DuplicateGroup',
           'IndexSettings', 'IndexSettingsError', 'Match', 'VectorStoreError', 'VideoIndex', 'VideoRepresentation',
           'average_precision', 'draw_pair', 'evaluate', 'find_duplicates', 'load_ground_truth', 'plot_curve',
           'search']
