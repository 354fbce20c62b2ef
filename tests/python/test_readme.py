"""The Python quick starts in README.md and bindings-python/README.md run verbatim."""

from __future__ import annotations

import os
import re
import subprocess
import urllib.request

import pytest

from conftest import ACCESS_KEY, PYTHON, REPO, SECRET_KEY


@pytest.mark.parametrize("readme_path", ["README.md", "bindings-python/README.md"])
def test_quick_start_runs_verbatim(endpoint, tmp_path, readme_path):
    readme = REPO / readme_path
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    assert blocks, "no python block in the README"
    code = blocks[0]
    # The quick start names bucket "tfstate": create it on the test server.
    req = urllib.request.Request(f"{endpoint}/tfstate", method="PUT", data=b"")
    urllib.request.urlopen(req, timeout=10).close()
    env = dict(os.environ)
    env.update(
        AWS_ENDPOINT_URL_S3=endpoint,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    )
    script = tmp_path / "quickstart.py"
    script.write_text(code)
    out = subprocess.run([PYTHON, str(script)], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "holding" in out.stdout and "holding from asyncio" in out.stdout
    assert out.stdout.strip().endswith("free")
