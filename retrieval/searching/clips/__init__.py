"""Clip search: vectors of short windows of every indexed video, so that a few seconds
copied into a long video make that video a candidate (docs/clip-search.md)."""
