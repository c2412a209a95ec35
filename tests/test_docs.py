"""The documentation site builds offline with warnings as errors, holds what it generates (a section per command of
the parser, a page entry per public module, the report's sections), and its first tutorial prints what it shows."""

import argparse
import html
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from brw.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
MISSING = [m for m in ("mkdocs", "material", "mkdocstrings_handlers.python") if importlib.util.find_spec(m) is None]


def _tutorials():
    """sims/tutorials.py: the runner of the documentation's code blocks."""
    spec = importlib.util.spec_from_file_location("brw_tutorials", ROOT / "sims" / "tutorials.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _hooks():
    spec = importlib.util.spec_from_file_location("brw_docs_hooks", ROOT / "docs" / "hooks" / "brw_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built once with `mkdocs build --strict` into a temporary folder."""
    if MISSING:
        pytest.skip(f"the docs extra is not installed (no {', '.join(MISSING)}): pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(out)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return out


def _text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", path.read_text()))


@pytest.mark.slow
def test_the_site_builds_strict_and_renders_offline(site):
    assert (site / "index.html").is_file() and (site / "search" / "search_index.json").is_file()
    # No page loads a font, a style or a script from the network.
    for page in site.rglob("*.html"):
        remote = re.findall(r"<(?:link|script)[^>]+(?:href|src)=\"(https?://[^\"]+)\"", page.read_text())
        assert not remote, (page, remote)
    config = (ROOT / "mkdocs.yml").read_text()
    assert re.search(r"^\s+font: false", config, re.M) and "inventories" not in config and "import:" not in config


@pytest.mark.slow
def test_the_home_page_is_the_readme(site):
    home = _text(site / "index.html")
    assert "the speed of light of speculative decoding" in home
    assert (site / "figures" / "real.png").is_file()


@pytest.mark.slow
def test_the_command_line_reference_has_every_command_and_option(site):
    page = (site / "cli" / "index.html").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        assert f'id="{name}"' in page, name
        for action in p._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"<code>{flag}</code>" in page, (name, flag)


@pytest.mark.slow
def test_the_api_reference_has_every_public_module(site):
    hooks = _hooks()
    modules = [m for layer in hooks.layers() for m in layer["modules"] if hooks.public(m) and m != "brw"]
    assert "brw.solver" in modules and "brw.real.models" in modules and "brw._kernels" not in modules
    pages = " ".join(p.read_text() for p in (site / "api").rglob("*.html"))
    missing = [m for m in modules if f'id="{m}"' not in pages]
    assert not missing, missing
    assert 'id="brw.solver.frontier"' in pages and 'id="brw.theory.bounds"' in pages


@pytest.mark.slow
def test_the_findings_embed_the_report(site):
    steps = json.loads((ROOT / "figures" / "results.json").read_text())["steps"]
    findings = " ".join(_text(p) for p in (site / "findings").rglob("*.html"))
    for step in steps:  # each step of the report is on a findings page, its caption as the report wrote it
        first = re.sub(r"\s+", " ", step["caption"]).split(": ")[0][:60]
        assert first in re.sub(r"\s+", " ", findings), \
            f"step {step['name']!r} of brw reproduce is on no findings page: embed it with <!-- brw:report NAME -->"
    assert (site / "figures" / "REPORT" / "index.html").is_file()


@pytest.mark.slow
def test_the_first_tutorial_prints_what_it_shows(tmp_path):
    records = _tutorials().run_file(ROOT / "docs" / "tutorials" / "simulate.md", tmp_path, check=True,
                                    log=lambda s: None, inprocess=True)
    assert len(records) >= 6 and {r["lang"] for r in records} == {"python", "bash"}
    for r in records:
        assert r["ok"], r["text"]
        assert r["expected"] is not None, f"simulate.md line {r['line']}: a block without its output"
        assert r["same"], f"simulate.md line {r['line']} printed:\n{r['text']}\nthe page shows:\n{r['expected']}"


def test_every_tutorial_command_parses():
    """The slow tutorials run in sims/tutorials.py; here every brw command of every page is parsed, so a renamed
    or removed option fails at once."""
    parser, tutorials = build_parser(), _tutorials()
    commands = 0
    for page in sorted((ROOT / "docs" / "tutorials").glob("*.md")):
        for block in tutorials.blocks(page):
            for line in block.code.split("\n") if block.lang == "bash" else ():
                if line.startswith("brw "):
                    parser.parse_args(shlex.split(line)[1:])
                    commands += 1
    assert commands >= 10
