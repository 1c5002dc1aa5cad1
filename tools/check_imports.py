"""Import boundaries import-linter cannot express: no asyncua server code in drivers/ or hmi/.

import-linter forbids whole external packages only; drivers and the console may use asyncua's client, never
its server. Exits 1 and names every offending import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = {"drivers": ("asyncua.server",), "hmi": ("asyncua.server",)}


def offending_imports(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    """The imports of one file that fall under a forbidden module prefix."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {name}")
    return found


def main() -> int:
    """Check every package against its rules; print the offences."""
    problems: list[str] = []
    for package, forbidden in RULES.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            problems.extend(offending_imports(path, forbidden))
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
