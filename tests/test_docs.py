"""The README and docs/ stay navigable: every relative link resolves, and the README stays short.

The README is the user's way in; the detail lives in docs/. A moved or renamed page must not leave
a dead link behind, and the README must not grow back into a reference manual.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 300

# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def relative_links(text: str) -> list[str]:
    """Relative link targets of a markdown text, outside code blocks and code spans."""
    text = CODE_SPAN.sub("", FENCE.sub("", text))
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue  # http:, https:, mailto: ... and same-page anchors
        targets.append(target)
    return targets


def test_the_link_finder_sees_relative_links_and_skips_the_rest():
    text = (
        "See [ops](docs/operations.md#backups), ![plot](img/a.svg \"title\"), [web](https://x.org),\n"
        "[here](#top), `[not](a link)` and\n```\n[neither](fenced.md)\n```\n"
    )
    assert relative_links(text) == ["docs/operations.md#backups", "img/a.svg"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path):
    missing = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_the_readme_stays_the_way_in():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_no_page_points_at_material_users_do_not_have():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert "/work/shared" not in text and "../shared" not in text, page.name
