"""Videos into an index: the stages, defined once (``stages.py``), and the two engines that
schedule them, the plain one in this process (``ingest.py``, ``plain_engine.py``) and the Ray
one (``ray_engine/``)."""
