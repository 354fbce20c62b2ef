"""The package surface: stubs in step with the extension, docstrings everywhere."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import condlock
from condlock import _condlock


def _stub_tree() -> ast.Module:
    # The installed stub (what type checkers see); the source copy must match it.
    installed = Path(_condlock.__file__).with_name("_condlock.pyi")
    tree = ast.parse(installed.read_text())
    src = os.environ.get("CONDLOCK_PY_STUBS")
    if src:
        assert Path(src).read_text() == installed.read_text()
    return tree


def _public(names):
    return {n for n in names if not n.startswith("_")}


def test_stubs_match_the_extension_module():
    tree = _stub_tree()
    stub_classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    runtime_classes = {n for n in _public(dir(_condlock)) if inspect.isclass(getattr(_condlock, n))}
    assert set(stub_classes) == runtime_classes
    for name, node in stub_classes.items():
        stub_members = _public(
            {f.name for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
        )
        cls = getattr(_condlock, name)
        runtime_members = _public(n for n in vars(cls))
        assert stub_members == runtime_members, (name, stub_members ^ runtime_members)
    # Constructor keywords of S3LockCore match the stub.
    init = next(f for f in stub_classes["S3LockCore"].body
                if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    stub_kw = {a.arg for a in init.args.kwonlyargs}
    sig = inspect.signature(_condlock.S3LockCore)
    runtime_kw = {p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}
    assert stub_kw == runtime_kw, stub_kw ^ runtime_kw


def test_every_public_name_has_a_docstring():
    missing = []
    for name in condlock.__all__:
        obj = getattr(condlock, name)
        if name.startswith("__") or not (inspect.isclass(obj) or callable(obj)):
            continue
        if name in ("SyncTransport", "AsyncTransport"):
            continue  # type aliases
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                dunders = ("__enter__", "__exit__", "__aenter__", "__aexit__")
                if attr.startswith("_") and attr not in dunders:
                    continue
                if callable(member) or inspect.isdatadescriptor(member):
                    if not inspect.getdoc(member):
                        missing.append(f"{name}.{attr}")
    assert not missing, missing


def test_exception_hierarchy():
    assert issubclass(condlock.LockTimeout, TimeoutError)
    assert issubclass(condlock.TransportError, OSError)
    assert issubclass(condlock.InvalidConfiguration, ValueError)
    assert issubclass(condlock.AccessDenied, PermissionError)
    for name in ("LockHeld", "LockTimeout", "LockLost", "NotOwned", "ConditionalWritesUnsupported",
                 "TransportError", "InvalidConfiguration", "ServerError", "AccessDenied"):
        assert issubclass(getattr(condlock, name), condlock.LockError)
    e = condlock.LockLost("lost it", reason="stolen")
    assert e.reason == "stolen" and str(e) == "lost it"


def test_import_and_a_first_lock_object_import_no_heavy_modules():
    # logging, asyncio and inspect are most of a cold start: condlock imports
    # them only when they are used (a record logged, an asyncio call, a user
    # transport checked).
    code = (
        "import sys, condlock\n"
        "condlock.S3Lock(bucket='bench', key='k', endpoint='http://127.0.0.1:9',\n"
        "                region='us-east-1', access_key_id='a', secret_access_key='b')\n"
        "print(sorted(m for m in ('logging', 'asyncio', 'inspect') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd="/")
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
