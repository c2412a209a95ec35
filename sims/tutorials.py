"""Run the tutorials of docs/tutorials/ as a reader would: every code block of a page in order, in a fresh folder.

    python sims/tutorials.py                          # all three (the two with a real model: minutes each)
    python sims/tutorials.py simulate                 # one page, by its file name
    python sims/tutorials.py own-model --keep out/tut # keep the folder (the recorded trace, the real trees)

A ```python block runs in one namespace per page; a ```bash block runs in bash, where `brw` is this checkout's
command line; a ```text block right after either is what it prints on stdout ("..." stands for any text within a
line). On the pages listed in CHECKED the printed text must equal it (their numbers are a function of the seed);
on the others (a real model recording and timing on your hardware) the blocks must run, and what they print is
the page's example of it. Prints each block's time; exits 1 when a block fails or prints something else.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "docs" / "tutorials"
#: Pages whose shown output is checked; the others record or time a real model on the reader's hardware.
CHECKED = ("simulate",)
FENCE = re.compile(r"^(```|~~~)\s*([\w+-]*)")


@dataclass
class Block:
    lang: str
    code: str
    line: int
    expected: str | None = None


def blocks(path: Path) -> list[Block]:
    """The python and bash blocks of a Markdown page, each with the text block that follows it (if any)."""
    out, lines, i = [], Path(path).read_text().split("\n"), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, j = i, i + 1
        while j < len(lines) and not lines[j].startswith(m.group(1)):
            j += 1
        lang, body = m.group(2), "\n".join(lines[i + 1:j])
        if lang in ("python", "bash"):
            out.append(Block(lang, body, start + 1))
        elif lang == "text" and out and out[-1].expected is None and _only_blank(lines, out[-1], start):
            out[-1].expected = body
        i = j + 1
    return out


def _only_blank(lines, block, start) -> bool:
    after = block.line + block.code.count("\n") + 2  # the line after the block's closing fence
    return all(not s.strip() for s in lines[after:start])


def matches(expected: str, got: str) -> bool:
    """``got`` equals ``expected`` line for line (trailing spaces aside); "..." in a line matches any text."""
    want, have = expected.rstrip().split("\n"), got.rstrip().split("\n")
    if len(want) != len(have):
        return False
    for w, h in zip(want, have):
        pattern = ".*".join(re.escape(part) for part in w.rstrip().split("..."))
        if not re.fullmatch(pattern, h.rstrip()):
            return False
    return True


def bash_prelude() -> str:
    """`brw` as this checkout's command line, whatever is installed."""
    return (f'brw() {{ PYTHONPATH="{ROOT}${{PYTHONPATH:+:$PYTHONPATH}}" "{sys.executable}" -m brw.cli "$@"; }}\n'
            "set -euo pipefail\n")


def run_block(block: Block, namespace: dict, workdir: Path, inprocess: bool = False) -> tuple[bool, str]:
    """Run one block in ``workdir``; (succeeded, what it printed on stdout or the error). With ``inprocess``, a
    bash block whose every line is a ``brw`` command runs through ``brw.cli.main`` in this process (no start-up
    per command: what the tests use)."""
    lines = [line for line in block.code.split("\n") if line.strip()]
    if block.lang == "bash" and not (inprocess and all(line.startswith("brw ") for line in lines)):
        proc = subprocess.run(["bash", "-c", bash_prelude() + block.code], cwd=workdir, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL)
        if proc.returncode:
            return False, f"exit status {proc.returncode}\n{proc.stderr[-3000:]}"
        return True, proc.stdout
    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    try:
        os.chdir(workdir)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if block.lang == "python":
                exec(compile(block.code, f"<{block.line}>", "exec"), namespace)
            else:
                from brw.cli import main as brw_main

                for line in lines:
                    if brw_main(shlex.split(line)[1:]):
                        return False, f"{line}: exit status not 0\n{err.getvalue()[-3000:]}"
    except Exception:
        return False, traceback.format_exc(limit=4)
    finally:
        os.chdir(here)
    return True, out.getvalue()


def run_file(page: Path, workdir: Path, check: bool, log=print, show: bool = False,
             inprocess: bool = False) -> list[dict]:
    """Run every python and bash block of a Markdown file in order in ``workdir``; one record per block, with
    ``same`` False where ``check`` is set and the block printed something else than the page shows."""
    namespace = {"__name__": "__tutorial__"}
    records = []
    for block in blocks(page):
        t0 = time.perf_counter()
        ok, text = run_block(block, namespace, workdir, inprocess)
        seconds = time.perf_counter() - t0
        same = not (ok and check and block.expected is not None) or matches(block.expected, text)
        records.append({"page": page.name, "line": block.line, "lang": block.lang, "seconds": seconds, "ok": ok,
                        "same": same, "text": text, "expected": block.expected})
        first = block.code.strip().split("\n")[0][:70]
        log(f"{page.name}:{block.line:<4} {block.lang:<6} {seconds:7.1f} s  {'ok' if ok and same else 'FAILED'}  "
            f"{first}")
        if not ok:
            log(text)
            break
        if show:
            log(text)
        if not same:
            log(f"printed:\n{text}\nthe page shows:\n{block.expected}")
    return records


def run_page(name: str, workdir: Path, log=print, show: bool = False) -> list[dict]:
    """Run docs/tutorials/NAME.md (``run_file``), its output checked when NAME is in ``CHECKED``."""
    return run_file(PAGES / f"{name}.md", workdir, name in CHECKED, log=log, show=show)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="*", default=None,
                    help="tutorial file names without .md (default: every page in docs/tutorials/)")
    ap.add_argument("--show", action="store_true", help="print what each block printed")
    ap.add_argument("--keep", type=Path, default=None, help="run in this folder and keep it (default: a temporary one)")
    args = ap.parse_args(argv)
    names = args.pages or sorted(p.stem for p in PAGES.glob("*.md"))
    failed, total = False, time.perf_counter()
    for name in names:
        if not (PAGES / f"{name}.md").is_file():
            ap.error(f"no tutorial docs/tutorials/{name}.md")
        folder = (args.keep / name) if args.keep else Path(tempfile.mkdtemp(prefix=f"brw-{name}-"))
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        records = run_page(name, folder, log=lambda s: print(s, flush=True), show=args.show)
        failed |= not all(r["ok"] and r["same"] for r in records)
        print(f"{name}.md: {time.perf_counter() - t0:.1f} s in all", flush=True)
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"{len(names)} page(s) in {time.perf_counter() - total:.1f} s{': FAILED' if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
