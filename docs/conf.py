"""Sphinx configuration of the documentation site (`just docs`; docs/development.md says why Sphinx)."""

from importlib import metadata

project = "pocketbench"
release = version = metadata.version("pocketbench")
copyright = "the pocketbench authors"  # Sphinx reads this name

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
root_doc = "index"
# Pages are Markdown (MyST), readable as they are on GitHub; headings down to ### get anchors,
# so a link to page.md#a-heading is checked like a link to a page.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
exclude_patterns = ["_build"]

# The API pages show the signatures as written (type hints in the signature, defaults as values).
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_default_options = {"exclude-members": "__init__, __new__"}
# Docstrings are written with Markdown's `code` spans: render single backticks as code, not italics.
default_role = "code"

html_theme = "furo"
html_title = f"pocketbench {release}"
html_static_path: list[str] = []
