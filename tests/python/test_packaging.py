"""What pip installs: the package is imported from site-packages (never the
source tree), takes and releases a lock on moto, and carries its license and
metadata. With CONDLOCK_DIST_DIR (set by scripts/test-packaging.sh and by
scripts/test-python.sh for a release wheel), the built artefacts themselves:
the wheel's manylinux2014 tag, LICENSE in the wheel and the sdist, metadata
without placeholders."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest

import condlock
from conftest import REPO

LICENSE_TEXT = (REPO / "LICENSE").read_text()


def test_the_installed_package_takes_and_releases_a_lock(make_lock):
    where = Path(condlock.__file__).resolve()
    assert "site-packages" in where.parts, f"imported from {where}, not an installed package"
    lock = make_lock(info="packaging smoke test")
    with lock as held:
        holder = lock.holder()
        assert holder is not None and holder.id == held.lock_id
    assert lock.holder() is None


def test_the_extension_unwinds_with_the_system_unwinder():
    # At interpreter exit CPython ends a foreign thread asking for the GIL with
    # pthread_exit; the forced unwind runs the system's libgcc_s through our
    # frames. A build with its own static unwinder (zig's libunwind) crashed
    # there now and then (SIGSEGV): the extension must load libgcc_s.so.1.
    so = next(Path(condlock.__file__).parent.glob("_condlock*.so"))
    assert b"libgcc_s.so.1\x00" in so.read_bytes(), f"{so} does not link libgcc_s.so.1"


def _check_metadata(text: str) -> None:
    # No placeholder URL anywhere (the project has no public home yet).
    assert "example.invalid" not in text
    meta = HeaderParser().parsestr(text)
    assert meta["Name"] == "condlock"
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Summary"]
    assert meta["Keywords"]
    classifiers = meta.get_all("Classifier") or []
    for expected in (
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3.10",
        "Typing :: Typed",
    ):
        assert expected in classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert any(c.startswith("Topic ::") for c in classifiers)
    assert "LICENSE" in (meta.get_all("License-File") or [])


def test_the_console_script_is_installed():
    # pip writes the `condlock` command next to the interpreter.
    script = Path(sys.executable).with_name("condlock")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "force-unlock" in out.stdout


def test_the_installed_metadata_and_license():
    dist = importlib.metadata.distribution("condlock")
    _check_metadata(dist.read_text("METADATA") or "")
    licenses = [f for f in dist.files or [] if f.name == "LICENSE"]
    assert licenses, "no LICENSE among the installed files"
    assert licenses[0].read_text() == LICENSE_TEXT


def _dist_dir() -> Path:
    where = os.environ.get("CONDLOCK_DIST_DIR")
    if not where:
        pytest.skip("CONDLOCK_DIST_DIR not set: no built artefacts to check (a dev wheel)")
    return Path(where)


def test_the_wheel_is_manylinux2014_with_license_and_metadata():
    wheels = list(_dist_dir().glob("condlock-*.whl"))
    assert len(wheels) == 1, wheels
    wheel = wheels[0]
    # pip on glibc 2.17 (Amazon Linux 2, RHEL 7) accepts either tag.
    assert "manylinux2014_" in wheel.name and "manylinux_2_17_" in wheel.name, wheel.name
    assert "-cp310-abi3-" in wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        license_name = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert z.read(license_name).decode() == LICENSE_TEXT
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        _check_metadata(z.read(meta_name).decode())
        assert "condlock/py.typed" in names


def test_the_sdist_has_license_and_metadata():
    sdists = list(_dist_dir().glob("condlock-*.tar.gz"))
    assert len(sdists) == 1, sdists
    with tarfile.open(sdists[0]) as t:
        top = t.getnames()[0].split("/")[0]
        license_file = t.extractfile(f"{top}/LICENSE")
        assert license_file is not None
        assert license_file.read().decode() == LICENSE_TEXT
        pkg_info = t.extractfile(f"{top}/PKG-INFO")
        assert pkg_info is not None
        _check_metadata(pkg_info.read().decode())
