"""The service's endpoints, one router per concern, all over the one ``Service``
(``state.ServiceDep``): search, videos (records, files, thumbnails), pairs, review
(duplicates and decisions), health, and the review page."""
from . import health, page, pairs, review, search, videos

ROUTERS = (health.router, search.router, review.router, videos.router, pairs.router, page.router)

__all__ = ['ROUTERS', 'page']
