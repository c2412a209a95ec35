"""MkDocs hooks of brw's documentation site: everything in the site that is generated at build time.

- The command-line reference: ``cli.md`` holds the marker ``<!-- brw:cli -->``, which becomes a section per
  subcommand of ``brw.cli.build_parser()`` (its description, usage and options), so the page can never drift from
  the parser.
- The Python API reference: one page per layer of the table in ``layout.md`` (``api/LAYER.md``), each module of
  the layer rendered by mkdocstrings from its numpy-style docstrings, and an index (``api/index.md``) with the
  package face (``brw.__all__``). A module added to the table is documented without touching the site.
- Files of the repository outside ``docs/``: ``figures/`` is copied into the site (its Markdown files become
  pages, the report of ``brw reproduce`` among them), and a line ``<!-- brw:include --> [text](PATH)`` is
  replaced by the file that the link names (the home page is the README; the findings pages embed the tables
  of ``figures/``). A line ``<!-- brw:report NAME --> [text](../../figures/REPORT.md)`` is replaced by the
  report's section for the step NAME of ``figures/results.json``. On GitHub the markers are invisible and the
  links work as they are.
- Relative links are written as they work on GitHub (``../figures/x.png`` from ``docs/``, ``docs/x.md`` from
  the README) and rewritten here to the site's copies. A link to a file the site does not hold is an error.

The hooks fail the build (an error, or a warning that ``mkdocs build --strict`` turns into one) rather than
leave a marker or a link unresolved.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import posixpath
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

import brw
from brw.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
FIGURES = "figures"
#: The nav entry of mkdocs.yml that becomes the API reference's pages.
API_INDEX = "api/index.md"

MARKER = re.compile(r"^<!-- brw:(include|report)(?: ([\w-]+))? -->(.*)$")
LINK = re.compile(r"(!?\[[^\]]*\])\(([^()\s]+)((?:\s+\"[^\"]*\")?)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})(\s)")
#: A Sphinx role of a docstring as mkdocstrings renders it (``:func:`name``` becomes ``:func:<code>name</code>``).
ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):<code>(~?)([\w.][\w.\s]*)</code>")
HEADING_ID = re.compile(r"<h[1-6][^>]*\bid=\"(brw[\w.]*)\"")


# --------------------------------------------------------------------------------------------------------
# The layer table of docs/layout.md


def layers() -> list[dict]:
    """The rows of the layer table of ``docs/layout.md``: name, modules (dotted, ``brw.`` prefixed) and what the
    layer owns, top layer first (``tests/test_layout.py`` reads the same table)."""
    text = (ROOT / "docs" / "layout.md").read_text()
    rows = []
    for row in text.split("<!-- layers:", 1)[1].splitlines()[1:]:
        if rows and not row.startswith("|"):
            break
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if not row.startswith("|") or len(cells) < 3 or cells[0] == "layer" or set(cells[0]) <= {"-", " "}:
            continue
        modules = ["brw" if m == "brw" else f"brw.{m}" for m in re.findall(r"`([\w.]+)`", cells[1])]
        rows.append({"name": cells[0], "modules": modules, "owns": cells[2]})
    if not rows:
        raise PluginError("docs/layout.md: no layer table after '<!-- layers:'")
    return rows


def public(module: str) -> bool:
    """A module of the API reference: no part of its dotted name is private (``_kernels``, ``__main__``)."""
    return not any(part.startswith("_") for part in module.split("."))


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# --------------------------------------------------------------------------------------------------------
# The API reference


def api_pages() -> dict[str, str]:
    """src_uri -> Markdown of every page of the API reference."""
    pages, index_rows = {}, []
    for layer in layers():
        modules = [m for m in layer["modules"] if public(m) and m != "brw"]
        if not modules:
            continue
        uri = f"api/{slug(layer['name'])}.md"
        blocks = "\n\n".join(f"::: {m}" for m in modules)
        pages[uri] = (f"# {layer['name'].capitalize()}\n\n{_cap(layer['owns'])}.\n\nThis layer of the "
                      f"[layer table](../layout.md) may import only the layers above it.\n\n{blocks}\n")
        links = ", ".join(f"[`{m}`]({posixpath.basename(uri)}#{m})" for m in modules)
        index_rows.append(f"| [{layer['name']}]({posixpath.basename(uri)}) | {links} | {layer['owns']} |")
    pages[API_INDEX] = _api_index(index_rows)
    return pages


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def package_face() -> dict[str, str]:
    """``brw.NAME`` -> the module that defines it, for the names of ``brw.__all__`` (loading them imports the
    simulator, not torch)."""
    out = {}
    for name in brw.__all__:
        module = getattr(getattr(brw, name), "__module__", None)
        if module is not None:  # __version__ is a string
            out[f"brw.{name}"] = module
    return out


def _api_index(rows: list[str]) -> str:
    face = [f"| [`{name}`][{module}.{name[4:]}] | `{module}` |" for name, module in package_face().items()]
    return "\n".join([
        "# Python API",
        "",
        "Generated at build time from the numpy-style docstrings of every public module (mkdocstrings), one page",
        "per layer of the [layer table](../layout.md): a module imports only the layers above its own. Modules",
        "and names with a leading underscore are private and left out.",
        "",
        "## The package face",
        "",
        "`import brw` loads neither Numba nor SciPy; the names below are loaded on first use.",
        f"`brw.__version__` is the version ({brw.__version__} in this build).",
        "",
        "| name | defined in |",
        "|---|---|",
        *face,
        "",
        "## The layers",
        "",
        "| layer | modules | owns |",
        "|---|---|---|",
        *rows,
        "",
    ])


def _expand_nav(nav, api_uris: list[str]):
    """Replace the nav entry of ``api/index.md`` by a section holding the index and every layer's page."""
    out = []
    for item in nav:
        if isinstance(item, dict):
            (title, value), = item.items()
            if value == API_INDEX:
                item = {title: [API_INDEX] + [{_layer_title(u): u} for u in api_uris if u != API_INDEX]}
            elif isinstance(value, list):
                item = {title: _expand_nav(value, api_uris)}
        out.append(item)
    return out


def _layer_title(uri: str) -> str:
    return _cap(posixpath.splitext(posixpath.basename(uri))[0].replace("-", " "))


# --------------------------------------------------------------------------------------------------------
# The command-line reference


def cli_reference() -> str:
    """Markdown of every subcommand of ``brw.cli.build_parser()``: help, description, usage and options."""
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps usage lines to the terminal; the page must not depend on it
    try:
        parser = build_parser()
        # argparse has no public way to list subcommands; _actions is what every argparse documenter reads.
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        short = {a.dest: a.help for a in sub._choices_actions}
        lines = ["| command | what it does |", "|---|---|"]
        lines += [f"| [`brw {name}`](#{name}) | {_cell(short.get(name) or '')} |" for name in sub.choices]
        lines += ["", f"```text\n{parser.format_usage().strip()}\n```", ""]
        for name, p in sub.choices.items():
            lines += [f"## brw {name} {{ #{name} }}", "", _text(short.get(name) or "") + ".", ""]
            if p.description:
                lines += [_text(p.description), ""]
            lines += [f"```text\n{p.format_usage().strip()}\n```", "", *_options(p), ""]
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "\n".join(lines)


def _options(p: argparse.ArgumentParser) -> list[str]:
    rows = ["| argument | value | required | meaning |", "|---|---|---|---|"]  # -h, --help left out
    for a in p._actions:
        if a.help == argparse.SUPPRESS or isinstance(a, argparse._HelpAction):  # every command has --help
            continue
        flags = ", ".join(f"`{s}`" for s in a.option_strings) or f"`{a.metavar or a.dest}`"
        takes = a.nargs != 0 and bool(a.option_strings)
        value = ""
        if takes:
            value = f"`{a.metavar or a.dest.upper()}`" + (" ..." if a.nargs in ("+", "*") else "")
            if a.choices:
                value = " \\| ".join(f"`{c}`" for c in a.choices)
        help_text = (a.help or "") % {**vars(a), "prog": p.prog} if a.help else ""
        required = "yes" if a.required or not a.option_strings else ""
        rows.append(f"| {flags} | {value} | {required} | {_cell(help_text)} |")
    return rows


def _text(s: str) -> str:
    """Plain text from the parser, safe in Markdown (no emphasis, links or HTML made by accident)."""
    s = html.escape(s, quote=False)
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", s)


def _cell(s: str) -> str:
    return _text(s).replace("\n", " ")


# --------------------------------------------------------------------------------------------------------
# Links, includes and the report


def _site_uri(repo_path: str) -> str | None:
    """Where a repository file lives in the site (its src_uri), or None when the site does not hold it."""
    if repo_path.startswith("docs/"):
        return repo_path[len("docs/"):]
    if repo_path.startswith(f"{FIGURES}/") and (ROOT / repo_path).is_file():
        return repo_path
    if repo_path == "README.md":
        return "index.md"
    return None


def rewrite_links(markdown: str, source: str, page_uri: str) -> str:
    """Relative links of ``markdown``, written from the repository file ``source``, made relative to the site
    page ``page_uri``. Fenced code is left alone."""
    return _outside_fences(markdown, _link_fixer(source, page_uri))


def _link_fixer(source: str, page_uri: str):
    """A function that rewrites the links of one line (see ``rewrite_links``)."""
    page_dir = posixpath.dirname(page_uri)

    def fix(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")):
            return m.group(0)
        path, _, anchor = target.partition("#")
        repo_path = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
        uri = _site_uri(repo_path)
        if uri is None:
            raise PluginError(f"{source}: the link {target!r} names {repo_path}, which the site does not hold "
                              f"(link to docs/ or figures/, or name the file in code)")
        new = posixpath.relpath(uri, page_dir or ".") + (f"#{anchor}" if anchor else "")
        return f"{m.group(1)}({new}{m.group(3)})"

    return lambda line: LINK.sub(fix, line)


def _outside_fences(markdown: str, fn) -> str:
    out, fenced = [], False
    for line in markdown.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            out.append(line)
        else:
            out.append(line if fenced else fn(line))
    return "\n".join(out)


def _shift_headings(markdown: str, below: int) -> str:
    """Headings moved so that the text's top heading sits at level ``below`` + 1."""
    levels = [len(m.group(1)) for line in _unfenced(markdown) if (m := HEADING.match(line))]
    if not levels:
        return markdown
    shift = below + 1 - min(levels)

    def move(line: str) -> str:
        m = HEADING.match(line)
        return "#" * min(6, len(m.group(1)) + shift) + line[len(m.group(1)):] if m else line

    return _outside_fences(markdown, move)


def _unfenced(markdown: str):
    fenced = False
    for line in markdown.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            yield line


def _linked_path(rest: str, source: str) -> str:
    m = LINK.search(rest)
    if not m:
        raise PluginError(f"{source}: a brw marker must be followed by a link to the file it stands for")
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), m.group(2).partition("#")[0]))


def report_section(name: str) -> tuple[str, str]:
    """(Markdown, repo path) of the section of figures/REPORT.md written by the step ``name`` of
    ``brw reproduce`` (figures/results.json names the steps)."""
    steps = json.loads((ROOT / FIGURES / "results.json").read_text())["steps"]
    step = next((s for s in steps if s["name"] == name), None)
    if step is None:
        raise PluginError(f"figures/results.json has no step {name!r} (steps: {', '.join(s['name'] for s in steps)})")
    text = (ROOT / FIGURES / "REPORT.md").read_text()
    head = f"## {step['number']}. {step['title']}\n"
    if head not in text:
        raise PluginError(f"figures/REPORT.md has no section {head.strip()!r}")
    body = text.split(head, 1)[1]
    body = re.split(r"^## ", body, maxsplit=1, flags=re.M)[0]
    return body.strip() + "\n", f"{FIGURES}/REPORT.md"


def expand_markers(markdown: str, source: str, page_uri: str) -> str:
    """The page's marker lines replaced by what they stand for and its links rewritten (``rewrite_links``)."""
    fix = _link_fixer(source, page_uri)
    out, level, fenced = [], 0, False
    for line in markdown.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        m = None if fenced else MARKER.match(line)
        if not fenced and (h := HEADING.match(line)):
            level = len(h.group(1))
        if m is None:
            out.append(line if fenced or FENCE.match(line) else fix(line))
            continue
        kind, name, rest = m.groups()
        if kind == "report":
            text, origin = report_section(name or "")
        else:
            origin = _linked_path(rest, source)
            if not (ROOT / origin).is_file():
                raise PluginError(f"{source}: brw:include names {origin}, which does not exist")
            text = (ROOT / origin).read_text()
            if not origin.endswith(".md"):  # a data file is shown as it is
                text = f"```{posixpath.splitext(origin)[1][1:] or 'text'}\n{text.rstrip()}\n```\n"
        text = rewrite_links(text, origin, page_uri)
        out.append(_shift_headings(text, level) if level else text)
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------------
# MkDocs events


def on_config(config):
    pages = api_pages()
    config["nav"] = _expand_nav(config["nav"], list(pages))
    config["brw_api_pages"] = pages
    return config


def on_files(files, config):
    for uri, content in config["brw_api_pages"].items():
        files.append(File.generated(config, uri, content=content))
    for path in sorted((ROOT / FIGURES).iterdir()):
        if path.is_file() and not path.name.startswith("."):
            files.append(File.generated(config, f"{FIGURES}/{path.name}", abs_src_path=str(path)))
    return files


def sphinx_roles(html_text: str) -> str:
    """The Sphinx roles of the docstrings (``:func:`name```), which mkdocstrings leaves as text, made into
    cross-references: a dotted name as it is, a bare name resolved in the scope of the object it is documented
    in (the nearest heading above it, then that heading's parents). autorefs links what exists and leaves the
    rest as code, without a warning (``optional``)."""
    ids = set(HEADING_ID.findall(html_text))
    heads = [(m.start(), m.group(1)) for m in HEADING_ID.finditer(html_text)]
    modules = {m for layer in layers() for m in layer["modules"]}
    face = package_face()

    def link(m: re.Match) -> str:
        short, name = m.group(1), re.sub(r"\s+", "", m.group(2))  # a name may wrap in the docstring
        identifier = name
        if name in face:  # brw.frontier is brw.solver.frontier
            identifier = f"{face[name]}.{name[4:]}"
        elif not name.startswith("brw."):
            scope = next((h for pos, h in reversed(heads) if pos < m.start()), "brw")
            parts = scope.split(".")
            candidates = [".".join(parts[:i] + [name]) for i in range(len(parts), 0, -1)]
            in_module = [c for c in candidates if c.rsplit(".", 1)[0] in modules]  # the scope's module first
            identifier = next((c for c in candidates if c in ids), in_module[0] if in_module else name)
        title = name.rsplit(".", 1)[-1] if short else name
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    return ROLE.sub(link, html_text)


def on_page_content(html_text, page, config, files):
    return sphinx_roles(html_text) if page.file.src_uri.startswith("api/") else html_text


def on_page_markdown(markdown, page, config, files):
    uri = page.file.src_uri
    source = uri if uri.startswith(f"{FIGURES}/") else f"docs/{uri}"
    if "<!-- brw:cli -->" in markdown:
        markdown = markdown.replace("<!-- brw:cli -->", cli_reference())
    return expand_markers(markdown, source, uri)
