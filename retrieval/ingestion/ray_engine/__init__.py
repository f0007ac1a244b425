"""Indexing on a Ray cluster (`dns index --ray`). Ray is an optional dependency: it is
imported when the pipeline runs, never by importing this package."""
from .driver import index_on_ray

__all__ = ['index_on_ray']
