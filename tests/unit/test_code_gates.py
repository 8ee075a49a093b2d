"""Static gates over the application code for the failures of the system this one replaces:
schema made outside migrations, default secrets, disabled TLS verification, unsafe HTML."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from recon.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# Non-package code that ships beside the packages and must obey the same gates.
EXTRA_DIRS = ("migrations", "bench")
SECRET_WORDS = re.compile(r"(?i)(secret|token|password|passwd|api_?key|private_?key|signing_?key)")


def _packages() -> list[str]:
    """The project's real packages, as the wheel declares them (so a new one is gated too)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages: list[str] = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return list(packages)


def _app_dirs() -> list[str]:
    """Every directory the gates scan: the declared packages, `ui` once it lands, and extras."""
    dirs = [*_packages(), *EXTRA_DIRS]
    if (ROOT / "ui").is_dir() and "ui" not in dirs:
        dirs.append("ui")
    return dirs


def _app_files() -> Iterator[Path]:
    for folder in _app_dirs():
        yield from sorted((ROOT / folder).rglob("*.py"))


def _parsed() -> Iterator[tuple[Path, ast.AST]]:
    for path in _app_files():
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _call_name(node: ast.Call) -> str:
    func = node.func
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _const_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def test_the_gates_see_the_application_code() -> None:
    files = list(_app_files())
    assert any(p.name == "secrets.py" for p in files) and len(files) > 10


def test_every_scanned_directory_exists_and_has_code() -> None:
    """A gate over a missing or empty directory passes vacuously, so each one must hold code."""
    dirs = _app_dirs()
    assert {"apps", "recon", "connectors", "tasks", "flows", "expectations"} <= set(dirs)
    _assert_each_holds_code(dirs)


def _assert_each_holds_code(dirs: list[str]) -> None:
    for folder in dirs:
        assert (ROOT / folder).is_dir(), f"gated directory {folder}/ does not exist"
        assert any((ROOT / folder).rglob("*.py")), f"gated directory {folder}/ holds no code"


def test_a_gate_over_a_missing_directory_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declaring a package that is not there fails the existence gate (it is not skipped)."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.hatch.build.targets.wheel]\npackages = ["recon", "ghost"]\n'
    )
    for folder in ("recon", *EXTRA_DIRS):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "m.py").write_text("")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssertionError, match="ghost"):
        _assert_each_holds_code(_app_dirs())
    with pytest.raises(AssertionError, match="empty"):
        _assert_each_holds_code(["empty"])


def test_no_create_all_outside_tests() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in _parsed()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _call_name(node).endswith("create_all")
    ]
    assert offenders == [], "the schema comes only from migrations"


def test_no_secret_is_read_with_a_default() -> None:
    offenders = []
    for path, tree in _parsed():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            if not name.endswith(("getenv", "environ.get", "environ.setdefault")):
                continue
            key = _const_str(node.args[0]) if node.args else None
            has_default = len(node.args) > 1 or any(k.arg == "default" for k in node.keywords)
            if key and SECRET_WORDS.search(key) and has_default:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {key}")
    assert offenders == []


def test_no_secret_shaped_literal_in_the_code() -> None:
    shapes = re.compile(r"^(sk|rk)_(live|test)_\w{8,}$|^whsec_\w{8,}$|^hvs\.\w{8,}$|^CANARY-")
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in _parsed()
        for node in ast.walk(tree)
        if (text := _const_str(node)) is not None and shapes.match(text)
    ]
    assert offenders == []


def test_no_secret_assigned_a_literal() -> None:
    """`api_key = "..."`, `SECRET = "..."`, `def f(token="...")` are all default secrets."""
    offenders = []
    for path, tree in _parsed():
        for node in ast.walk(tree):
            targets: list[tuple[str, ast.AST | None]] = []
            if isinstance(node, ast.Assign):
                targets = [(t.id, node.value) for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                targets = [(node.target.id, node.value)]
            elif isinstance(node, ast.arguments):
                positional = node.posonlyargs + node.args
                defaults = [None] * (len(positional) - len(node.defaults)) + list(node.defaults)
                targets = [(a.arg, d) for a, d in zip(positional, defaults, strict=True)]
                targets += [
                    (a.arg, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True)
                ]
            for name, value in targets:
                literal = _const_str(value)
                # Upper-case constants may name a secret ("STRIPE_SECRET_KEY" as a key name);
                # a long token-like literal is a value, whatever the name's case.
                token_like = (
                    bool(literal) and len(literal or "") >= 8 and " " not in (literal or "")
                )
                if literal and SECRET_WORDS.search(name) and (not name.isupper() or token_like):
                    line = getattr(node, "lineno", 0)
                    offenders.append(f"{path.relative_to(ROOT)}:{line} {name}")
    assert offenders == []


def test_secret_settings_have_no_default() -> None:
    for name, field in Settings.model_fields.items():
        if SECRET_WORDS.search(name):
            assert field.default is None, f"setting {name} must not have a default"


def test_tls_verification_is_never_disabled() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in _parsed()
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword)
        and node.arg == "verify"
        and isinstance(node.value, ast.Constant)
        and node.value.value is False
    ]
    assert offenders == []


def test_no_unsafe_html_in_the_ui() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in _parsed()
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword)
        and node.arg == "unsafe_allow_html"
        and not (isinstance(node.value, ast.Constant) and node.value.value is False)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import os\nk = os.getenv('STRIPE_SECRET_KEY', 'dev')\n",
        "api_key = 'abc'\n",
        "def f(token='letmein'):\n    pass\n",
        "metadata.create_all(engine)\n",
    ],
)
def test_the_gates_catch_what_they_are_for(
    snippet: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each gate fails on a planted offender (so none of them passes vacuously)."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.hatch.build.targets.wheel]\npackages = ["recon"]\n'
    )
    planted = tmp_path / "recon"
    planted.mkdir()
    (planted / "secrets.py").write_text(snippet)
    for i in range(11):
        (planted / f"m{i}.py").write_text("")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    gates = [
        test_no_create_all_outside_tests,
        test_no_secret_is_read_with_a_default,
        test_no_secret_assigned_a_literal,
    ]
    failures = 0
    for gate in gates:
        try:
            gate()
        except AssertionError:
            failures += 1
    assert failures == 1
