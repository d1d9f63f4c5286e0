"""The project's shape: our `validators` is the one imported, imports run one way, the pure
layers stay pure, and the schemas tables are consistent."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

import validators
from schemas import RECORD_LENGTH, record_layouts

ROOT = Path(__file__).resolve().parent.parent
# Each layer may import the layers after it in this chain, never one before it.
CHAIN = ["dags", "cnss_edi", "validators", "transforms", "schemas"]
PURE = {"transforms", "validators"}
FORBIDDEN_IN_PURE = {"airflow", "psycopg2", "paramiko", "requests", "socket", "subprocess"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_our_validators_package_is_the_one_imported():
    assert Path(validators.__file__).resolve().parent == ROOT / "validators"
    assert validators.PROJECT_PACKAGE is True


@pytest.mark.parametrize("layer", CHAIN)
def test_imports_run_one_way(layer):
    earlier = set(CHAIN[: CHAIN.index(layer)])
    for path in (ROOT / layer).rglob("*.py"):
        wrong = imports_of(path) & earlier
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


@pytest.mark.parametrize("layer", sorted(PURE))
def test_pure_layers_touch_no_network_database_or_airflow(layer):
    for path in (ROOT / layer).rglob("*.py"):
        wrong = imports_of(path) & FORBIDDEN_IN_PURE
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_every_record_layout_covers_260_characters_without_gaps():
    layouts = record_layouts()
    assert sorted(layouts) == [f"A0{i}" for i in range(4)] + [f"B0{i}" for i in range(7)]
    for record, fields in layouts.items():
        assert fields[0].start == 0, record
        assert fields[-1].stop == RECORD_LENGTH, record
        assert all(a.stop == b.start for a, b in itertools.pairwise(fields)), record


def test_no_build_or_cache_folder_is_tracked():
    ignored = (ROOT / ".gitignore").read_text()
    for folder in (".venv/", "__pycache__/", ".cnss-edi/", ".hypothesis/"):
        assert folder in ignored
