"""The project's import graph between its parts, from the source (no import runs).

    .venv/bin/python scripts/import_graph.py [--dot] [--modules] [ROOT]

Prints one line per edge "part -> part (n imports)", or Graphviz DOT with
--dot; --modules lists the module-level edges that cross parts. A part is the
longest prefix in PARTS a module starts with. Lazy imports inside functions
count too: a process that takes that path loads the module all the same.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from pathlib import Path

PACKAGES = (
    "visio_core",
    "caldav_plugin",
    "conference_backend",
    "visio_rooms",
    "ldap_sync",
    "visio_cli",
)
# Longest prefix wins: the front is conference_backend minus what is named below.
PARTS = {
    "visio_core": "core",
    "caldav_plugin": "caldav",
    "ldap_sync": "ldap",
    "visio_cli": "cli",
    "conference_backend": "front",
    "conference_backend.portal": "portal",
    "conference_backend.phone": "phone",
    "conference_backend.recorder": "recorder",
    "visio_rooms": "worker",
    "visio_rooms.sfu": "sfu",
    "visio_rooms.recorder": "recorder",
    # The modules that lived in conference_backend before the split (issue 15).
    "conference_backend.sfu": "sfu",
    "conference_backend.rooms": "worker",
    "conference_backend.participant": "worker",
    "conference_backend.signaling": "worker",
    "conference_backend.inside": "worker",
    "conference_backend.lobby": "worker",
    "conference_backend.subscriptions": "worker",
    "conference_backend.rtc": "worker",
}


def part_of(module: str) -> str | None:
    best = max(
        (p for p in PARTS if module == p or module.startswith(p + ".")), key=len, default=None
    )
    return PARTS[best] if best else None


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def edges(root: Path) -> Counter[tuple[str, str, str, str]]:
    seen: Counter[tuple[str, str, str, str]] = Counter()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")) if (root / package).exists() else []:
            module = module_name(root, path)
            source = part_of(module)
            known = {module_name(root, p) for p in [path]}
            for target in imports_of(path, module) - known:
                if (
                    not (root / Path(*target.split("."))).exists()
                    and not (root / Path(*target.split("."))).with_suffix(".py").exists()
                ):
                    continue  # a name imported from a module, counted by its module
                dest = part_of(target)
                if source and dest and source != dest:
                    seen[(source, dest, module, target)] += 1
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--dot", action="store_true")
    parser.add_argument("--modules", action="store_true")
    args = parser.parse_args()
    found = edges(Path(args.root))
    by_part = Counter((s, d) for s, d, _, _ in found)
    if args.dot:
        print("digraph imports {")
        for (s, d), n in sorted(by_part.items()):
            print(f'  "{s}" -> "{d}" [label="{n}"];')
        print("}")
    else:
        for (s, d), n in sorted(by_part.items()):
            print(f"{s} -> {d} ({n})")
    if args.modules:
        for s, d, m, t in sorted(found):
            print(f"  {s}:{m} -> {d}:{t}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
