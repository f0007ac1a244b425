"""`dns serve`: the search service (FastAPI) and the review page, over one index.
FastAPI and uvicorn are imported only here, never by the operator or other commands."""
