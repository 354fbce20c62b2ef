"""The README's Python blocks pass `mypy --strict`, with condlock's types read
from the installed package (py.typed, the .pyi of the extension)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


def mypy_strict(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           *map(str, paths)], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("readme", ["README.md", "bindings-python/README.md"])
def test_readme_python_blocks_pass_mypy_strict(readme, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (REPO / readme).read_text(), re.S)
    assert blocks, f"no python block in {readme}"
    paths = []
    for i, block in enumerate(blocks):
        path = tmp_path / f"block_{i}.py"
        path.write_text(block)
        paths.append(path)
    out = mypy_strict(paths)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_reads_condlock_types(tmp_path):
    # Worth something only if mypy sees condlock's real types: a wrong call
    # must be reported (an untyped or missing package would let it pass).
    bad = tmp_path / "bad.py"
    bad.write_text("import condlock\ncondlock.S3Lock(bucket=1, key='k')\n")
    out = mypy_strict([bad])
    assert out.returncode == 1 and 'Argument "bucket"' in out.stdout, out.stdout + out.stderr
