"""Fixtures of the site loader tests: a minimal valid site folder that each test breaks in one precise way."""

from __future__ import annotations

from pathlib import Path

import pytest
from sitecases import BASE_LAMPS, BASE_SENSORS, BASE_YAML, MakeSite


@pytest.fixture
def make_site(tmp_path: Path) -> MakeSite:
    """Write a site folder named 'site': the base files, with replacements and extra files."""

    def make(
        yaml: str = BASE_YAML,
        lamps: str | None = BASE_LAMPS,
        sensors: str | None = BASE_SENSORS,
        **files: str,
    ) -> Path:
        folder = tmp_path / "site"
        folder.mkdir(exist_ok=True)
        (folder / "site.yaml").write_text(yaml, encoding="utf-8")
        if lamps is not None:
            (folder / "lamps.csv").write_text(lamps, encoding="utf-8")
        if sensors is not None:
            (folder / "sensors.csv").write_text(sensors, encoding="utf-8")
        for name, text in files.items():
            (folder / name.replace("__", ".")).write_text(text, encoding="utf-8")
        return folder

    return make
