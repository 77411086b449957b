"""The layer rules of STYLE.md hold: import-linter contracts, and the runtime loads without torch or Qt."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules_after(import_line: str) -> set[str]:
    code = f"import sys; {import_line}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_runtime_imports_neither_torch_nor_qt() -> None:
    mods = _modules_after("import aigc_studio.runtime.text_generator, aigc_studio.runtime.registry")
    assert not {m for m in mods if m == "torch" or m.startswith("torch.")}
    assert not {m for m in mods if m.startswith("PySide6")}


def test_core_is_pure() -> None:
    mods = _modules_after("import aigc_studio.core.sampling, aigc_studio.core.beam, aigc_studio.core.text")
    assert not {m for m in mods if m.split(".")[0] in ("torch", "PySide6", "onnxruntime")}


def test_cli_completion_path_never_loads_torch() -> None:
    mods = _modules_after("import aigc_studio.cli")
    assert "torch" not in mods and not any(m.startswith("PySide6") for m in mods)


def test_import_linter_contracts() -> None:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    out = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _imported_modules(package: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names |= {f"{node.module}.{a.name}" for a in node.names}
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("layer", ["services", "viewmodels"])
def test_services_and_viewmodels_use_qtcore_only(layer: str) -> None:
    for path, names in _imported_modules(ROOT / "aigc_studio" / layer).items():
        qt = {n for n in names if n.startswith("PySide6.") and n.count(".") == 1}
        assert qt <= {"PySide6.QtCore"}, f"{path} imports {sorted(qt - {'PySide6.QtCore'})}"
