"""Every relative link in README.md and docs/*.md points at a file that exists, and every anchor
into a Markdown page at one of its headings. No network: web links are not followed.

The Sphinx build (`just docs`) checks the links between pages of the site; this also covers the
README, which GitHub shows and the site does not, and links to files outside docs/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs_examples import PAGES, REPO

_LINK = re.compile(r"\]\(([^)\s]+)\)")
_INCLUDE = re.compile(r"^```\{include\}\s+(\S+)", re.M)
_HEADING = re.compile(r"^#{1,3} +(.+?)\s*$", re.M)
_FENCED = re.compile(r"^(\s*)(`{3,}).*?^\1\2\s*$", re.M | re.S)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub and MyST make it: lower case, punctuation dropped, spaces → -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _FENCED.sub("", page.read_text())  # a `# comment` inside a code block is no heading
    return {slug(h) for h in _HEADING.findall(text)}


def problems(page: Path) -> list[str]:
    text = _FENCED.sub("", page.read_text())
    targets = _LINK.findall(text) + _INCLUDE.findall(page.read_text())
    found = []
    for target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, … : not followed here
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            found.append(f"{page.name}: {target}: no such file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            found.append(f"{page.name}: {target}: no heading #{anchor} in {file.name}")
    return found


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    assert problems(page) == []


def test_a_broken_link_and_a_missing_anchor_are_named(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Real heading\n\n```bash\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#real-heading) [web](https://example.com/x) [gone](missing.md) "
        "[anchor](other.md#no-such-heading) [code](other.md#not-a-heading)\n"
    )
    assert problems(page) == [
        f"page.md: missing.md: no such file {tmp_path / 'missing.md'}",
        "page.md: other.md#no-such-heading: no heading #no-such-heading in other.md",
        "page.md: other.md#not-a-heading: no heading #not-a-heading in other.md",
    ]


def test_slugs_match_the_anchors_the_site_links_to() -> None:
    assert slug("Why is a variant not faster? `--profile`") == "why-is-a-variant-not-faster---profile"
    assert slug("Exit codes") == "exit-codes"
