"""Import this checkout as the package ``distill_and_select``, whatever its folder is
called (a clone may be named ``distill-and-select``; Towhee's cache calls it ``main``),
the way Towhee's loader imports it: from the folder's ``__init__.py``."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = 'distill_and_select'


def import_checkout():
    if PACKAGE in sys.modules and Path(sys.modules[PACKAGE].__file__).resolve() == ROOT / '__init__.py':
        return sys.modules[PACKAGE]
    spec = importlib.util.spec_from_file_location(PACKAGE, ROOT / '__init__.py', submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module
