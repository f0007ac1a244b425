"""Where an index lives: the catalog (SQLite: videos, files, decisions, settings), the fine
features on disk, the thumbnails, the vector collections in Milvus, and ``VideoIndex``,
which holds them together. Nothing here decodes a video or runs a network."""
