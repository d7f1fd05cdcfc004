# SPDX-License-Identifier: GPL-2.0
#
# Sphinx configuration for xdpguard's Documentation/ (make htmldocs).
# Debian 12's python3-sphinx (5.3) and graphviz render it; make test runs
# it with -W, so a warning fails the build.

project = "xdpguard"
copyright = "xdpguard contributors"
author = "xdpguard contributors"

extensions = [
    # Architecture and packet-path diagrams from images/*.dot, as SVG.
    "sphinx.ext.graphviz",
    # :ref:`doc:Section title` for every section, named by its document.
    "sphinx.ext.autosectionlabel",
]
autosectionlabel_prefix_document = True
graphviz_output_format = "svg"

root_doc = "index"
exclude_patterns = []
# Keep the rendering free of network fetches and dates: reproducible.
html_theme = "alabaster"
html_last_updated_fmt = None
html_show_sphinx = False
