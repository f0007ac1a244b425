"""The review page: plain files under service/page/, public (they hold no data)."""
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

PAGE = Path(__file__).parent.parent / 'page'

router = APIRouter()


@router.get('/', include_in_schema=False)
def page():
    return FileResponse(PAGE / 'index.html')


def mount_files(app: FastAPI) -> None:
    """The page's scripts and styles under /page/ (a mount: routers cannot carry one)."""
    app.mount('/page', StaticFiles(directory=PAGE), name='page')
