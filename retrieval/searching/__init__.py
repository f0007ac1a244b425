"""Finding copies in an index: videos by the selector and re-ranking (``search.py``), clips
by window votes (``clips/``), where each copy is (``segments.py``), near-duplicate groups
(``dedup.py``), and the answers as JSON and CSV or drawn (``results.py``, ``show.py``)."""
