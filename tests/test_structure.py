"""The app's shape, guarded: no import circle, SQL only in the storage layer, bounds in one place, settings checked."""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from assetsearch.conf import app_settings

PACKAGE = Path(__file__).resolve().parent.parent / "assetsearch"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The assetsearch modules ``name`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # "from . import pipeline" names a module; "from .models import Asset" a name in one.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for other in sorted(graph[node]):
            if state.get(other) == "open":
                return [*stack[stack.index(other) :], other]
            if other not in state and (circle := visit(other)):
                return circle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (circle := visit(node)):
            return circle
    return None


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported_modules(name, path, set(found)) for name, path in found.items()}


def test_the_graph_sees_imports_inside_functions(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from .tasks import send\n    from . import pipeline\n    import assetsearch.search\n")
    known = {"assetsearch.tasks", "assetsearch.pipeline", "assetsearch.search", "assetsearch.probe"}
    assert imported_modules("assetsearch.probe", path, known) == {"assetsearch.tasks", "assetsearch.pipeline", "assetsearch.search"}


def test_a_circle_is_found() -> None:
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_among_the_app_s_modules() -> None:
    graph = import_graph()
    assert "assetsearch.tasks" in graph["assetsearch.signals"]  # the graph is read at all
    assert find_circle(graph) is None, " -> ".join(find_circle(graph) or [])


def test_pipeline_and_moderation_know_nothing_of_celery() -> None:
    graph = import_graph()
    for name in ("assetsearch.pipeline", "assetsearch.moderation"):
        assert "assetsearch.tasks" not in graph[name]
        assert "celery" not in (PACKAGE / f"{name.rpartition('.')[2]}.py").read_text()


# The storage layer runs the app's SQL; system checks and migrations may too.
# The storage layer (queries; the HNSW index's maintenance) and the system checks.
SQL_ALLOWED = {"assetsearch/querysets.py", "assetsearch/index.py", "assetsearch/checks.py"}


def test_raw_sql_only_in_the_storage_layer() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = str(path.relative_to(PACKAGE.parent))
        if "migrations" in path.parts or relative in SQL_ALLOWED:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.search(r"cursor\.execute|\.raw\(", line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []


# Input bounds written as literals: they belong in constants.py or conf.py.
BOUND_LITERALS = re.compile(r"max_length=(64|200)\b|\b10_?000\b|(weight|initial)\s*=\s*0\.5\b|default=0\.5\b")


def test_input_bounds_live_in_constants() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if {"migrations", "demo_model"} & set(path.parts) or path.name in ("constants.py", "conf.py"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if BOUND_LITERALS.search(line):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert offenders == []


def test_public_names_keep_working() -> None:
    from assetsearch import models, search
    from assetsearch.constants import EmbeddingStatus
    from assetsearch.exceptions import SearchError

    assert search.SearchError is SearchError and models.EmbeddingStatus is EmbeddingStatus
    for name in ("Query", "Filters", "search", "similar_assets", "near_duplicates"):
        assert callable(getattr(search, name))


# Settings -----------------------------------------------------------------


def test_unknown_settings_keys_are_a_warning() -> None:
    with override_settings(ASSETSEARCH={"PAGE_SIZ": 10, "DIMENSIONS": 512, "PAGE_SIZE": 10}):
        messages = [m for m in run_checks() if m.id == "assetsearch.W002"]
    assert sorted(m.msg for m in messages) == [
        "ASSETSEARCH['DIMENSIONS'] is not an assetsearch setting; it is ignored.",
        "ASSETSEARCH['PAGE_SIZ'] is not an assetsearch setting; it is ignored.",
    ]


def test_known_settings_raise_no_warning() -> None:
    with override_settings(ASSETSEARCH={"PAGE_SIZE": 10, "ENCODERS": {"default": {"DEVICE": "cpu"}}}):
        assert [m for m in run_checks() if m.id == "assetsearch.W002"] == []


def test_encoders_are_configured_like_caches() -> None:
    encoders = {"default": {"MODEL": "ViT-B-32", "PRETRAINED": None}, "large": {"MODEL": "ViT-L-14"}}
    with override_settings(ASSETSEARCH={"ENCODERS": encoders}):
        default, large = app_settings.encoder_config(), app_settings.encoder_config("large")
    assert default == {"BACKEND": "assetsearch.encoders.OpenCLIPEncoder", "MODEL": "ViT-B-32", "PRETRAINED": None, "DEVICE": "auto", "BATCH_SIZE": 32, "FIT": "auto", "LABELS": "auto"}
    assert large == {**default, "MODEL": "ViT-L-14"}  # another alias starts from the default's options


def test_the_old_top_level_encoder_keys_still_work_with_a_deprecation_warning() -> None:
    with override_settings(ASSETSEARCH={"MODEL": "ViT-B-32", "BATCH_SIZE": 8, "ENCODER_BACKEND": "x.Encoder"}):
        with pytest.warns(DeprecationWarning, match=r"ASSETSEARCH\[ENCODER_BACKEND, MODEL, BATCH_SIZE\] are deprecated"):
            config = app_settings.encoder_config()
        assert [m for m in run_checks() if m.id == "assetsearch.W002"] == []
    assert (config["MODEL"], config["BATCH_SIZE"], config["BACKEND"]) == ("ViT-B-32", 8, "x.Encoder")


def test_the_project_settings_use_the_new_shape() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert app_settings.encoder_config()["MODEL"]
