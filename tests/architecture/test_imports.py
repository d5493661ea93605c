"""The layers hold and no module imports itself back, at module or function level.

    tradecert (server, CLI, composition root) → schema → resolvers → persistence
    tradecert → pages (the HTML pages) → resolvers          resolvers → rules

``rules`` and ``persistence`` import nothing of ours above them; ``pages`` is an edge beside
``schema``, imported by ``tradecert`` alone; the schema maps plain
results and never touches the ORM; ``resolvers.core`` imports no domain package. grimp
reads every import statement, those inside functions and under TYPE_CHECKING included.
"""

from __future__ import annotations

import graphlib

import grimp
import pytest

PACKAGES = ("tradecert", "pages", "schema", "resolvers", "rules", "persistence")

# importer → the packages of ours it may import (besides itself)
MAY_IMPORT = {
    "tradecert": {"pages", "schema", "resolvers", "rules", "persistence"},
    "pages": {"resolvers", "rules", "persistence"},  # an edge beside schema/: neither imports the other
    "schema": {"resolvers", "rules"},
    "resolvers": {"rules", "persistence"},
    "rules": set(),
    "persistence": set(),
}
DOMAIN_PACKAGES = ("identity", "fees", "coupons", "payments", "applications", "naccs", "adapters", "webhooks")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=False)


def _top(module: str) -> str:
    return module.split(".")[0]


def test_no_import_cycles(graph):
    sorter = graphlib.TopologicalSorter({m: graph.find_modules_directly_imported_by(m) for m in graph.modules})
    try:
        sorter.prepare()
    except graphlib.CycleError as cycle:
        pytest.fail("import cycle: " + " → ".join(cycle.args[1]))


def test_every_import_follows_the_layers(graph):
    wrong = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            a, b = _top(importer), _top(imported)
            if a != b and b not in MAY_IMPORT[a]:
                details = graph.get_import_details(importer=importer, imported=imported)
                lines = ", ".join(str(d["line_number"]) for d in details)
                wrong.append(f"{importer} (line {lines}) imports {imported}: {a} may not import {b}")
    assert not wrong, "\n".join(wrong)


def test_the_pages_are_imported_by_tradecert_alone(graph):
    """pages/ is an edge of its own: app.py mounts it, the CLI prints its fee page; schema and
    the use cases never reach into it."""
    importers = {_top(importer) for page in graph.find_descendants("pages") | {"pages"}
                 for importer in graph.find_modules_that_directly_import(page)}
    assert importers <= {"tradecert", "pages"}, importers
    assert "tradecert" in importers  # it is wired, not left beside the app


def test_the_core_imports_no_domain_package(graph):
    wrong = [f"{importer} imports {imported}"
             for importer in sorted(graph.find_children("resolvers.core")) if importer.startswith("resolvers.core")
             for imported in sorted(graph.find_modules_directly_imported_by(importer))
             if imported.startswith(tuple(f"resolvers.{p}" for p in DOMAIN_PACKAGES))]
    assert not wrong, "\n".join(wrong)


def test_nothing_registers_itself_or_is_looked_up_by_name():
    """Wiring is explicit (tradecert/composition.py): no importlib, no registries filled on import."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    offenders = [str(p.relative_to(root)) for package in PACKAGES for p in (root / package).rglob("*.py")
                 if "importlib.import_module" in p.read_text(encoding="utf-8")]
    assert not offenders, offenders


def test_the_node_lookup_is_wired_in_one_place():
    """The Node types of each domain are listed by their module (``NODES``) and wired into
    ``NODE_TYPES`` once, by schema/__init__.py: no module fills the table on import."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    filling = re.compile(r"NODE_TYPES\s*\[[^\]]+\]\s*=|NODE_TYPES\.(update|setdefault)\(")
    offenders = [str(p.relative_to(root)) for p in (root / "schema").rglob("*.py")
                 if filling.search(p.read_text(encoding="utf-8")) and p.name != "__init__.py"]
    assert not offenders, offenders
    import schema  # noqa: F401  (the wiring runs with the schema package)
    from schema.identity import NODE_TYPES

    assert {"Application", "CouponPurchase", "NaccsApplication", "ApiKey", "WebhookEndpoint", "WebhookDelivery"} <= set(NODE_TYPES)


def test_the_adapters_import_no_domain_package(graph):
    """Adapters take plain data (a PDF drawer gets boxes and text, not an application): the domains
    decide what a document says and who may have it, resolvers/adapters/ only draws and sends."""
    domains = tuple(f"resolvers.{p}" for p in DOMAIN_PACKAGES if p != "adapters")
    wrong = [f"{importer} imports {imported}"
             for importer in sorted(graph.find_descendants("resolvers.adapters") | {"resolvers.adapters"})
             for imported in sorted(graph.find_modules_directly_imported_by(importer))
             if imported in domains or imported.startswith(tuple(f"{d}." for d in domains))]
    assert not wrong, "\n".join(wrong)
