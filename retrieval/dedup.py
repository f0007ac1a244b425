"""Near-duplicate groups of an index: every video searched against the others, pairs
above a threshold joined into groups."""
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Tuple

from .index import VideoIndex
from .representation import DnSModels
from .search import search

DEFAULT_THRESHOLD = 0.75
DEFAULT_NEIGHBOURS = 100


@dataclass
class DuplicateGroup:
    videos: List[str]                                   # paths as given at index time
    pairs: List[Tuple[str, str, float]] = field(default_factory=list)  # (path, path, score)

    def as_dict(self) -> Dict:
        return {'videos': self.videos,
                'pairs': [{'a': a, 'b': b, 'score': score} for a, b, score in self.pairs]}


def find_duplicates(index: VideoIndex, models: DnSModels, threshold: float = DEFAULT_THRESHOLD,
                    rerank: float = 1.0, neighbours: int = DEFAULT_NEIGHBOURS) -> List[DuplicateGroup]:
    """Groups of videos linked by search scores >= ``threshold`` (transitively), each
    video's ``neighbours`` nearest by cg similarity considered. With ``rerank=1`` (the
    default) every considered pair is scored by the fg student, s/2 + 0.5; files with
    the same content are duplicates with score 1."""
    links = UnionFind()
    pairs: Dict[Tuple[str, str], float] = {}
    for video_id in index.catalog.video_ids():
        own_paths = [given for given, _ in index.catalog.paths([video_id]).get(video_id, [])]
        for other in own_paths[1:]:
            pairs[_key(own_paths[0], other)] = 1.0
            links.join(own_paths[0], other)
        if not own_paths:
            continue
        query = index.representation(video_id)
        for match in search(index, models, query, k=None, rerank=rerank, candidates=neighbours):
            if match.video_id == video_id or match.score < threshold:
                continue
            key = _key(own_paths[0], match.path)
            pairs[key] = max(pairs.get(key, match.score), match.score)
            links.join(*key)
    groups: Dict[str, DuplicateGroup] = {}
    for members in links.groups():
        group = DuplicateGroup(sorted(members))
        for member in members:
            groups[member] = group
    for (a, b), score in sorted(pairs.items()):
        groups[a].pairs.append((a, b, round(score, 6)))
    return sorted({id(g): g for g in groups.values()}.values(), key=lambda g: g.videos)


def _key(a: str, b: str) -> Tuple[str, str]:
    return (a, b) if a <= b else (b, a)


class UnionFind:
    def __init__(self):
        self.parent: Dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)

    def groups(self) -> Iterator[List[str]]:
        members: Dict[str, List[str]] = {}
        for item in self.parent:
            members.setdefault(self.find(item), []).append(item)
        return iter(members.values())
