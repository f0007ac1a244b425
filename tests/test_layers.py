"""Layers point down (docs/architecture.md): the networks and the core import nothing
above them, retrieval neither the command nor the service, the service not the command;
and the core and retrieval load without Towhee, Ray, FastAPI or Milvus's client."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# For each layer, the package-relative module prefixes it must never import.
FORBIDDEN = {
    'model': ('core', 'distill_and_select', 'retrieval', 'service', 'cli', 'localization'),
    'localization': ('core', 'distill_and_select', 'retrieval', 'service', 'cli', 'model'),
    'core.py': ('distill_and_select', 'retrieval', 'service', 'cli'),
    'defaults.py': ('core', 'model', 'localization', 'retrieval', 'service', 'cli'),
    'video_decode.py': ('core', 'retrieval', 'service', 'cli'),
    'preprocess.py': ('core', 'retrieval', 'service', 'cli'),
    'retrieval': ('service', 'cli', 'distill_and_select'),
    'service': ('cli', 'distill_and_select'),
}


def package_imports(path: Path):
    """(module, line) of every import of this package made by the file at ``path``,
    as a dotted path from the package root."""
    depth = len(path.relative_to(ROOT).parts) - 1
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = path.relative_to(ROOT).parts[:depth - (node.level - 1)]
            module = '.'.join([*base, *(node.module.split('.') if node.module else [])])
            names = [module] if node.module else [f'{".".join(base)}.{a.name}'.lstrip('.') for a in node.names]
            for name in names:
                yield name, node.lineno


@pytest.mark.parametrize('layer', sorted(FORBIDDEN))
def test_no_layer_imports_one_above_it(layer):
    files = [ROOT / layer] if layer.endswith('.py') else sorted((ROOT / layer).rglob('*.py'))
    wrong = [f'{f.relative_to(ROOT)}:{line} imports {module}'
             for f in files for module, line in package_imports(f)
             if any(module == bad or module.startswith(bad + '.') for bad in FORBIDDEN[layer])]
    assert not wrong, '\n'.join(wrong)


CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from support.checkout import import_checkout
import_checkout()
import importlib
for name in sys.argv[2:]:
    importlib.import_module('distill_and_select.' + name)
print(json.dumps(sorted(m for m in ('towhee', 'ray', 'fastapi', 'uvicorn', 'pymilvus') if m in sys.modules)))
"""


@pytest.mark.parametrize('modules', [['core'], ['retrieval', 'retrieval.ingestion.ingest', 'retrieval.searching.search', 'cli']])
def test_the_core_and_retrieval_load_without_the_heavy_frameworks(modules):
    out = subprocess.run([sys.executable, '-c', CHILD, str(ROOT / 'tests'), *modules], capture_output=True,
                         text=True, cwd='/', timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
