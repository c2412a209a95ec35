"""The README is one screen, its examples print what it shows, its links resolve, and every number in its prose
is either checked here against the generated file it comes from or is a parameter of the code it describes."""

import importlib.util
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

from brw import parse_law

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TEXT = README.read_text()


def _tutorials():
    """sims/tutorials.py: the runner of the documentation's code blocks."""
    spec = importlib.util.spec_from_file_location("brw_tutorials", ROOT / "sims" / "tutorials.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _prose(text: str) -> str:
    """The README without fenced or indented code, code spans and link targets, on one line."""
    text = re.sub(r"^(```|~~~).*?^\1\s*$", " ", text, flags=re.M | re.S)
    text = re.sub(r"^    .*$", " ", text, flags=re.M)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.sub(r"\s+", " ", text)


def _step(name: str) -> dict:
    steps = json.loads((ROOT / "figures" / "results.json").read_text())["steps"]
    return next(s for s in steps if s["name"] == name)["numbers"]


def _claims() -> list[str]:
    """Every finding the README states, written from figures/results.json (the default `brw reproduce`)."""
    models = _step("real")["models"]
    s, g = models["smollm2-p1024"], models["gemma3"]
    slopes, speed = _step("slopes"), _step("speedup")
    assert speed["cpu_P_low"] == speed["cpu_P_high"] and speed["roof_P_low"] == speed["roof_P_high"]
    runs = {m: json.loads((ROOT / "figures" / f"compare-{m}.json").read_text()) for m in ("p1024", "gemma3")}
    compared = {m: d["genres"]["all"]["models"] for m, d in runs.items()}
    fit = {m: (c["prefix"]["adjusted"], c["empirical"]["adjusted"]) for m, c in compared.items()}
    trees = {d["replicates"] for d in runs.values()}
    assert len(trees) == 1  # both comparisons at the same size, which the README states once
    by_genre = {m: d["genres"] for m, d in runs.items()}
    genre_worst = {m: max(g["models"]["prefix"]["adjusted"]["max_abs_relative_error"]
                          for n, g in gs.items() if n != "all") for m, gs in by_genre.items()}
    # the README says every genre's error at the largest P is an underprediction whose interval excludes zero
    assert all(g["models"]["prefix"]["adjusted"]["relative_error_high"][-1] < 0 for gs in by_genre.values()
               for g in gs.values())
    moved = json.loads((ROOT / "figures" / "transfer.json").read_text())
    own = max(t["worst"]["own:prefix_text"]["max_abs_error"] for t in moved["targets"].values())
    own_end = max(t["worst"]["own:prefix_text"]["max_abs_interval_end"] for t in moved["targets"].values())
    off = moved["targets"]["chat"]["worst"]["prefix:code"]["max_abs_error"]
    from brw.studies.transfer import TARGET_P as top_p
    temp, samp = _step("temperature"), _step("sampled")
    good = [int(p) for p, t in temp["asymptotic_off_below"].items() if t is None]
    assert temp["law"] == "prefix" and good == sorted(good) and good[-1] == temp["P_top"]  # every P from the first
    genres = ("code", "math", "chat")
    return [
        f"with {trees.pop():,} simulated trees per law and fold",
        f"is within {fit['p1024'][0]['max_abs_relative_error']:.1%} of SmolLM2's real trees at every P, pooled over "
        f"genres (95% intervals within +-{fit['p1024'][0]['max_abs_interval_end']:.1%}), and within "
        f"{fit['gemma3'][0]['max_abs_relative_error']:.1%} on Gemma (+-{fit['gemma3'][0]['max_abs_interval_end']:.1%}), "
        f"against the root-adjusted real mean; the independent-steps law misses by "
        f"{fit['p1024'][1]['max_abs_relative_error']:.1%} and {fit['gemma3'][1]['max_abs_relative_error']:.1%}",
        f"Genre by genre it is within {genre_worst['p1024']:.1%} on SmolLM2 and {genre_worst['gemma3']:.1%} on Gemma",
        f"off by {off:.0%} on SmolLM2's chat trees",
        f"is within {own:.1%} at every P <= {top_p} on every bundled genre of both models (95% intervals within "
        f"+-{own_end:.1%})",
        f"Tempering SmolLM2's traces from T = {temp['T_high']:g} to {temp['T_low']:g} raises the recorded-prefix law's "
        f"optimum at P = {temp['P_top']} from " + ", ".join(
            f"{a:.2f} to {b:.2f} ({g})" for a, b, g in zip(temp["at_high"][:2], temp["at_low"][:2], genres[:2]))
        + f" and {temp['at_high'][2]:.2f} to {temp['at_low'][2]:.2f} (chat)",
        f"stays within {temp['tolerance']:.0%} of its simulation at every P >= {good[0]} down to T = {temp['T_min']:g}",
        f"below {min(samp['crossing_tv']):.2f} to {max(samp['crossing_tv']):.2f} (P = {min(samp['crossing_P'])} to "
        f"{max(samp['crossing_P'])}), and block verification of a sampled chain of {samp['gamma']} accepts "
        f"{min(samp['block_gain']):.1%} to {max(samp['block_gain']):.1%} more",
        f"Over {s['contexts']} answer positions of {s['model']} (three genres, weighted equally) the real optimal "
        f"tree accepts "
        f"{s['real_top']:.2f} +- {1.96 * s['real_top_stderr']:.2f} draft tokens per step at P = {s['P_top']} "
        f"(95% interval)",
        f"is {s['renewal_short']:.0%} below it",
        f"({g['contexts']} positions, P = {g['P_top']}) the real trees accept {g['real_top']:.2f} +- "
        f"{1.96 * g['real_top_stderr']:.2f} and the bound is {g['renewal_short']:.0%} below",
        f"its slope is {slopes['paper_ratio_low']:.1f} to {slopes['paper_ratio_high']:.1f} times the measured one "
        f"over {slopes['laws']} laws",
        f"the speed of light is P = {speed['cpu_P_low']} and {speed['cpu_speedup_low']:.2f} to "
        f"{speed['cpu_speedup_high']:.2f} times plain decoding",
        f"it is P = {speed['roof_P_low']} and {speed['roof_speedup_low']:.2f} to {speed['roof_speedup_high']:.2f} "
        f"times",
    ]


def _parameters() -> list[str]:
    """The prose's numbers that describe the README's own code and install lines, read from them."""
    code = TEXT.split("```python", 1)[1].split("```", 1)[0]
    pmax, k, replicates = (re.search(pattern, code).group(1) for pattern in
                           (r"pmax=(\d+)", r"k=(\d+)\"", r"replicates=(\d+)"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch = next(d for d in project["optional-dependencies"]["model"] if d.startswith("torch=="))
    python = re.fullmatch(r">=(\d+\.\d+)", project["requires-python"]).group(1)
    return [f"every P up to {pmax}", f"over {k} tokens, in {replicates} independent replicate trees",
            f"Python {python}", f"pinned to {torch.removeprefix('torch==')}", "with a 95% interval"]


#: Names and formulas, whose digits are not findings.
NAMES = ["SmolLM2-135M-Instruct", "SmolLM2-135M", "SmolLM2", "Gemma 3 270M", "EACL 2026", "arXiv 2512.11718",
         "EAGLE-2", "vLLM", "SGLang", "llama.cpp", "T = 1", "T = 0.7", "P = 4 to 256", "chain of 8", "(mu + mu2) log(P)/mu^2", "log(mu (P + 1))/mu + mu2/(2 mu^2) - 1", "-log(path probability)"]


def test_readme_is_one_screen():
    assert len(TEXT.splitlines()) <= 150


def test_every_finding_is_the_generated_number():
    prose = _prose(TEXT)
    missing = [c for c in _claims() if c not in prose]
    assert not missing, f"the README no longer states these as figures/results.json has them: {missing}"


def test_every_number_in_the_prose_is_checked():
    prose = _prose(TEXT)
    checked = _claims() + _parameters()
    for phrase in sorted(checked + NAMES, key=len, reverse=True):
        assert phrase in prose or phrase in NAMES, phrase
        prose = prose.replace(phrase, " ")
    left = re.findall(r"(?<![\w.^])\d+(?:\.\d+)*%?", prose)
    assert not left, f"numbers in the README's prose that no test checks: {left}"


def test_links_resolve():
    for target in re.findall(r"\]\(([^)\s]+)\)", TEXT):
        if not re.match(r"^[a-z]+:", target):
            assert (ROOT / target.partition("#")[0]).exists(), target


def test_law_specs_parse():
    specs = [s for s in re.findall(r"`([a-z]+:[^`\s]+)`", TEXT) if not s.startswith(("trace:mine", "out/"))]
    assert len(specs) >= 4
    for spec in specs:
        parse_law(spec)


@pytest.mark.slow
def test_examples_print_what_the_readme_shows(tmp_path):
    records = _tutorials().run_file(README, tmp_path, check=True, log=lambda s: None, inprocess=True)
    assert [r["lang"] for r in records] == ["python", "bash"]
    for r in records:
        assert r["ok"], r["text"]
        assert r["same"], f"README line {r['line']} printed:\n{r['text']}\nthe README shows:\n{r['expected']}"
