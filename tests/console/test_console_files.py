"""The console's shipped files, without a browser: the served list matches the folder, the
package data ships them, and no file uses a construct the CSP or the text-only rule forbids."""

from __future__ import annotations

import re
import tomllib

from mwhost.admin.console import UI_FILES, UI_FOLDER
from tests.conftest import ROOT


def test_the_served_list_is_exactly_the_files_in_the_ui_folder():
    """A file added to host/admin/ui/ without serving it (or served but missing) fails here."""
    assert set(UI_FILES) == {path.name for path in UI_FOLDER.iterdir() if path.is_file()}


def test_the_package_data_globs_cover_every_console_file():
    """pyproject.toml ships every console file in the wheel (mwhost.admin package data)."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["mwhost.admin"]
    for name in UI_FILES:
        assert any((UI_FOLDER / name).match(pattern.split("/")[-1]) for pattern in globs), name


def test_no_markup_from_strings_no_eval_no_inline_styles_no_other_origin():
    """Values reach the page as text only (no innerHTML, insertAdjacentHTML, document.write,
    eval); no inline style attribute the CSP would block; nothing is loaded from elsewhere."""
    forbidden = re.compile(r"innerHTML|outerHTML\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function|"
                           r"setAttribute\(\s*['\"]style|https?://(?!www\.w3\.org/2000/svg)")
    for name in UI_FILES:
        text = re.sub(r"^\s*//.*$", "", (UI_FOLDER / name).read_text(), flags=re.MULTILINE)  # comments may say it
        assert not forbidden.search(text), f"{name}: {forbidden.search(text).group(0)}"
    index = (UI_FOLDER / "index.html").read_text()
    assert "style=" not in index and not re.search(r"<script(?![^>]*\bsrc=)", index)
