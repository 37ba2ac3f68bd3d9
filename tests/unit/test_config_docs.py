"""docs/configuration.md and the settings in ``config.py`` name the same variables and flags."""

from __future__ import annotations

import re
from pathlib import Path

from hookline.config import ENV_PREFIX, setting_names

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
_ROW = re.compile(r"^\| `(HOOKLINE_[A-Z_]+)` \| `(--[a-z-]+)` \|", re.MULTILINE)


def documented() -> dict[str, str]:
    """Each variable in the settings table, with the flag its row names."""
    return dict(_ROW.findall(DOC.read_text(encoding="utf-8")))


def test_every_setting_is_documented_with_its_variable_and_flag() -> None:
    """A setting added to ``Settings`` without a row in the table fails here."""
    rows = documented()
    for name in setting_names():
        variable = ENV_PREFIX + name.upper()
        assert variable in rows, f"{variable} is missing from docs/configuration.md"
        assert rows[variable] == "--" + name.replace("_", "-")


def test_the_table_documents_no_setting_that_does_not_exist() -> None:
    """A row left behind after a setting was removed or renamed fails here."""
    known = {ENV_PREFIX + name.upper() for name in setting_names()}
    assert set(documented()) <= known
