"""The hostile-input corpus: listed cases (every one the hostile-input report found, and the plain mistakes of
every command and public function) and generated ones (hypothesis over law specs, sizes, file corruptions,
JSON shapes and command lines). Every case is a user mistake: ``brw`` must exit with status 2 and one line, an
API call must raise BrwError (runner.py says exactly what is checked).

Generated cases are drawn by hypothesis under the active profile: the same ones in CI (derandomized), fresh
ones on every other run, so that the corpus keeps looking. Each generator builds inputs that are wrong by
construction (a defect chosen first, the rest valid), never inputs that merely look odd.
"""

from __future__ import annotations

import json
import re
import shlex
import string
import warnings

import numpy as np
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from hostile import files as F
from hostile.runner import Case

CASES: list[Case] = []


def cli(id: str, args, files=None, env=None, stdin: bytes = b"", says=()) -> None:
    argv = tuple(shlex.split(args)) if isinstance(args, str) else tuple(args)
    CASES.append(Case(id, argv=argv, files=files or {}, env=env or {}, stdin=stdin, says=tuple(says)))


def api(id: str, code: str, files=None, env=None, says=()) -> None:
    modules = sorted(set(re.findall(r"\bbrw\.([a-z_]+)\.", code)))  # the package face loads no submodule
    code = "".join(f"import brw.{m}\n" for m in modules) + code
    CASES.append(Case(id, code=code, files=files or {}, env=env or {}, says=tuple(says)))


DIR = None  # a folder, in ``files``
TRACE = "small.npz"
RESULTS = "results.npz"


def trace_file(arrays=None) -> dict:
    return {TRACE: F.npz(F.trace_arrays() if arrays is None else arrays)}


def results_file(arrays=None) -> dict:
    return {RESULTS: F.npz(F.results_arrays() if arrays is None else arrays)}


def logprobs_file(doc, name="lp.json") -> dict:
    return {name: doc if isinstance(doc, bytes) else json.dumps(doc).encode()}


LAW = "dirichlet:alpha=0.5,k=8"
HUGE = 10**12
OUTPUTS = {  # a path that cannot be written, and the files it needs
    "sys": ("/sys/x{suffix}", {}),
    "proc": ("/proc/x{suffix}", {}),
    "folder": ("out{suffix}", {"out{suffix}": DIR}),
    "under-file": ("plain/x{suffix}", {"plain": b"a regular file"}),
    "trailing-slash": ("x{suffix}/", {}),
    "bad-suffix": ("x.jpg", {}),
}


def outputs(suffix: str):
    for name, (path, files) in OUTPUTS.items():
        if name == "bad-suffix" and suffix == ".npz":
            path = "x.txt"
        yield name, path.format(suffix=suffix), {k.format(suffix=suffix): v for k, v in files.items()}


# ------------------------------------------------------------------------------------------------------------
# Listed: every case of the hostile-input report, then each command's plain mistakes.

# Sizes checked too late or not at all.
cli("frontier-replicates-1e12", f"frontier --law {LAW} --P 16 --replicates 1000000000000", says=["replicates="])
cli("frontier-uniform-k-1e12", "frontier --law uniform:k=1000000000000 --P 16", says=["k="])
cli("frontier-zipf-k-1e12", "frontier --law zipf:s=1.1,k=1000000000000 --P 16", says=["k="])
cli("theory-zipf-k-1e12", "theory --law zipf:s=1.1,k=1000000000000 --at 1,64", says=["k="])
cli("frontier-markov-regimes-1e5", "frontier --law markov:trace=chat,regimes=100000 --P 16", says=["regimes"])
cli("theory-markov-regimes-1e5", "theory --law markov:trace=chat,regimes=100000 --at 1,64", says=["regimes"])
cli("compare-regimes-1e5", "compare --regimes 100000", says=["regimes"])
cli("trace-info-bootstrap-1e9", "trace-info chat --bootstrap 1000000000", says=["bootstrap"])
cli("frontier-uniform-k-1e9-names-k", "frontier --law uniform:k=1000000000 --P 64", says=["k="])
api("api-frontier-replicates-1e12", f"brw.frontier('{LAW}', 16, 10**12)", says=["replicates="])
api("api-threshold-replicates-1e12", f"brw.threshold('{LAW}', [1.0], 10**12)", says=["replicates="])
# The threshold API.
api("threshold-fixed-p1", "brw.threshold('fixed:p=1', xs=[1.0])")
api("threshold-gem-x-1e300", "brw.threshold('gem:theta=2', xs=[1e300])", says=["x="])
api("threshold-dirichlet-x-700", f"brw.threshold('{LAW}', xs=[700])", says=["x="])
api("threshold-uniform2-x-30", "brw.threshold('uniform:k=2', xs=[30])", says=["x="])
api("threshold-tree-uniform2-x-40", "brw.threshold_tree('uniform:k=2', 40)")
api("threshold-tree-fixed-p1", "brw.threshold_tree('fixed:p=1', 1.0)")
api("threshold-uniform1", "brw.threshold('uniform:k=1', xs=[0.5])")
api("threshold-dirichlet-k1", "brw.threshold('dirichlet:alpha=0.5,k=1', xs=[0.5])")
# Output paths checked after the work.
cli("frontier-plot-sys-after-work", "frontier --law trace:chat --P 65536 --replicates 50 --bounds --plot /sys/x.png "
                                    "--json")
for name, path, fs in outputs(".png"):
    cli(f"frontier-plot-{name}", f"frontier --law {LAW} --P 4096 --replicates 20 --plot {path} --json", fs)
    cli(f"trace-info-plot-{name}", f"trace-info chat --plot {path}", fs)
    cli(f"compare-plot-{name}", f"compare --plot {path} --replicates 20", fs)
for name, path, fs in outputs(".npz"):
    cli(f"import-logprobs-out-{name}", f"import-logprobs lp.json --vocab-size 100 --out {path}",
        {**fs, **logprobs_file(F.chat_logprobs())})
    cli(f"realtree-out-{name}", f"realtree --trace code --contexts 1 --P 4 --out {path}", fs)
    cli(f"record-out-{name}", f"record --prompts p.txt --tokens 2 --out {path}", {**fs, "p.txt": b"Hello\n"})
cli("import-logprobs-out-exists", "import-logprobs lp.json --vocab-size 100 --out t.npz",
    {**logprobs_file(F.chat_logprobs()), "t.npz": b"keep me"})
cli("record-out-exists", "record --prompts p.txt --out t.npz", {"p.txt": b"Hello\n", "t.npz": b"keep me"})
# Near-degenerate laws.
cli("theory-gem-theta-1e-6", "theory --law gem:theta=1e-6 --at 1,64,1000000", says=["P="])
cli("theory-gem-theta-1e-9", "theory --law gem:theta=1e-9 --at 1,64", says=["theta="])
cli("frontier-gem-theta-1e-9-bounds", "frontier --law gem:theta=1e-9 --P 64 --bounds", says=["theta="])
cli("theory-fixed-near-1", "theory --law fixed:p=0.999999999/0.000000001 --at 1,64")
cli("theory-dirichlet-alpha-1e-9", "theory --law dirichlet:alpha=1e-9,k=8 --at 1,64")
cli("theory-fixed-p1", "theory --law fixed:p=1 --at 1,64")
cli("theory-uniform-k1", "theory --law uniform:k=1 --at 4")
# A small file that forces a huge read: a member that is not part of the format, and a format member that
# declares more than the trace's header implies (each 1.5 GiB of zeros behind a valid .npy header).
_BIG = 3 << 29
_head = F.npy_header(((_BIG - 128) // 8,))
assert len(_head) == 128
cli("trace-info-extra-huge-member", "trace-info small.npz",
    {TRACE: F.sparse_zip(F.members_of(F.npz(F.trace_arrays())), "junk.npy", _BIG, _head)})
cli("frontier-extra-huge-member", "frontier --law trace:small.npz --P 8 --replicates 2",
    {TRACE: F.sparse_zip(F.members_of(F.npz(F.trace_arrays())), "junk.npy", _BIG, _head)})
cli("trace-info-huge-entropy-member", "trace-info small.npz",
    {TRACE: F.sparse_zip([m for m in F.members_of(F.npz(F.trace_arrays())) if m[0] != "entropy.npy"],
                         "entropy.npy", _BIG, _head)})
cli("trace-info-header-claims-1e12-rows", "trace-info small.npz",
    {TRACE: F.zip_members([(n, F.npy_header((10**12, 64), "<f4")) if n == "top_logp.npy" else (n, d)
                           for n, d in F.members_of(F.npz(F.trace_arrays()))])})
# Tracebacks from plain mistakes.
cli("trace-info-seed-negative", "trace-info chat --seed -1", says=["seed"])
_res = F.results_arrays()
for key, value in [("P", "256"), ("P", 1e12), ("P", None), ("P", True), ("P", -3), ("sources", "code"),
                   ("sources", [1, 2]), ("sources", [{"file": "x"}]), ("sources", [{"name": 5}]), ("P", 10**30)]:
    meta = json.loads(str(_res["meta"]))
    meta[key] = value
    bad = F.results_arrays()
    bad["meta"] = np.array(json.dumps(meta))
    cli(f"compare-results-meta-{key}-{type(value).__name__}-{str(value)[:12]}", f"compare --results {RESULTS}",
        results_file(bad))
cli("compare-results-meta-list", f"compare --results {RESULTS}",
    results_file({**F.results_arrays(), "meta": np.array("[1, 2]")}))
cli("compare-results-meta-nested", f"compare --results {RESULTS}",
    results_file({**F.results_arrays(), "meta": np.array("[" * 100000 + "]" * 100000)}))
cli("compare-results-format-number", f"compare --results {RESULTS}",
    results_file({**F.results_arrays(), "format": np.array(3)}))
cli("compare-results-schema-text", f"compare --results {RESULTS}",
    results_file({**F.results_arrays(), "schema_version": np.array("1")}))
cli("compare-results-schema-vector", f"compare --results {RESULTS}",
    results_file({**F.results_arrays(), "schema_version": np.array([1, 1])}))
# Temperature (issue 24): a bad T wherever a law takes one, a law that cannot take it, a temperature that is not
# one, real trees at one temperature beside laws at another, moments at bad temperatures.
for bad in ("0", "-0.7", "nan", "inf", "-inf", "warm", "", "1e999"):
    cli(f"frontier-T-{bad or 'empty'}", ["frontier", "--law", f"{LAW},T={bad}", "--P", "8"], says=["T="])
    cli(f"theory-trace-T-{bad or 'empty'}", ["theory", "--law", f"trace:chat,T={bad}", "--at", "1,8"], says=["T="])
cli("frontier-T-twice", ["frontier", "--law", f"{LAW},T=0.5,T=0.7", "--P", "8"], says=["'T' given twice"])
cli("frontier-gem-T-above-1", "frontier --law gem:theta=2,T=1.5 --P 8", says=["T=1.5"])
cli("frontier-trace-T-above-1", "frontier --law trace:code,T=1.5 --P 8", says=["T=1.5"])
cli("theory-gemmix-T-above-1", "theory --law gemmix:s=0.5,theta=2,w=1,T=2 --at 1,8", says=["T=2"])
cli("policies-drafter-gem-T-above-1", "policies --law dirichlet:alpha=0.5,k=8 --P 8 "
    "--policies specexec:q=(gem:theta=2,T=3)", says=["T=3"])
cli("compare-laws-T-beside-trees-T1", "compare --temperature 0.7 --replicates 4", says=["T=0.7", "T=1"])
for bad in ("0", "-1", "nan", "inf", "warm"):
    cli(f"compare-temperature-{bad}", ["compare", "--temperature", bad, "--replicates", "4"], says=["temperature"]
        if bad == "warm" else ["T"])
    cli(f"realtree-temperature-{bad}", ["realtree", "--trace", "code", "--contexts", "1", "--P", "4", "--out", "r.npz",
                                        "--temperature", bad], says=["temperature"])
    cli(f"record-moments-at-{bad}", ["record", "--prompts", "p.txt", "--tokens", "2", "--out", "t.npz",
                                     "--moments-at", f"0.5,{bad}"], {"p.txt": b"Hello\n"}, says=["moments"])
_meta = json.loads(str(F.results_arrays()["meta"]))
cli("compare-trees-T07-beside-traces-T1", f"compare --results {RESULTS} --replicates 4",
    results_file({**F.results_arrays(), "meta": np.array(json.dumps({**_meta, "temperature": 0.7}))}),
    says=["T=0.7", "T=1"])
cli("compare-trees-T-text", f"compare --results {RESULTS} --replicates 4",
    results_file({**F.results_arrays(), "meta": np.array(json.dumps({**_meta, "temperature": "hot"}))}),
    says=["temperature"])
cli("compare-traces-unknown-genre", "compare --traces poetry=chat --replicates 4", says=["poetry"])
cli("compare-traces-other-prompts", "compare --traces code=math --replicates 4", says=["prompts"])
cli("record-branches-moments-at", "record --branches code --moments-at 0.5 --out t.npz", says=["--moments-at"])
api("api-tempered-0", f"brw.parse_law({LAW!r}).tempered(0)", says=["T"])
api("api-tempered-text", f"brw.parse_law({LAW!r}).tempered('0.5')", says=["T"])
api("api-gem-tempered-2", "brw.parse_law('gem:theta=2').tempered(2)", says=["T=2"])
api("api-bounds-T-nan", "brw.theory.bounds('trace:chat', [8], T=float('nan'))", says=["T"])
api("api-compare-T-0", "from brw.studies import compare\ncompare.compare(T=0)", says=["T"])
api("api-realtrees-temperature-inf", "from brw.real import expansion\nexpansion.realtrees('code', 'r.npz', "
    "contexts=1, pmax=4, temperature=float('inf'))", says=["temperature"])
for name, change in [("negative", lambda a: a["moments_at"].__setitem__(0, -0.5)),
                     ("unsorted", lambda a: a.__setitem__("moments_at", a["moments_at"][::-1].copy())),
                     ("nan-entropy", lambda a: a["entropy_at"].__setitem__((0, 0), np.nan)),
                     ("shape", lambda a: a.__setitem__("entropy_at", a["entropy_at"][:, :1].copy())),
                     ("alone", lambda a: a.pop("log_moment2_at")),
                     ("jensen", lambda a: a["log_moment2_at"].__setitem__((0, 0), 0.0))]:
    _t = F.trace_arrays()
    _n = _t["entropy"].shape[0]
    _t.update(moments_at=np.array([0.5, 0.7]), entropy_at=np.tile(_t["entropy"][:, None] * 0.5, (1, 2)),
              log_moment2_at=np.tile(_t["log_moment2"][:, None], (1, 2)) + 1.0)
    change(_t)
    cli(f"trace-info-moments-{name}", f"trace-info {TRACE}", trace_file(_t),
        says=[{"alone": "set of three", "nan-entropy": "entropy_at", "shape": "entropy_at"}.get(name, "moment")])
cli("import-logprobs-nested-1e5", "import-logprobs lp.json --vocab-size 100 --out t.npz",
    logprobs_file(F.nested_json(100000)))
cli("import-logprobs-nested-object-1e5", "import-logprobs lp.json --vocab-size 100 --out t.npz",
    logprobs_file(b'{"a":' * 100000 + b"1" + b"}" * 100000))
_doc = F.chat_logprobs()
_doc["choices"][0]["logprobs"]["content"][1]["top_logprobs"][2]["logprob"] = -1e308
_doc["choices"][0]["logprobs"]["content"][0]["logprob"] = 3.0
cli("import-logprobs-logprob-1e308-warnings", "import-logprobs lp.json --vocab-size 100 --out t.npz",
    logprobs_file(_doc))
_doc = F.chat_logprobs()
_doc["choices"][0]["logprobs"]["content"][1]["top_logprobs"][2]["logprob"] = -1e308
cli("import-logprobs-logprob-1e308-small-vocab", "import-logprobs lp.json --vocab-size 3 --out t.npz",
    logprobs_file(_doc))
cli("frontier-numba-threads-0", f"frontier --law {LAW} --P 64", env={"NUMBA_NUM_THREADS": "0"})
cli("frontier-numba-threads-text", f"frontier --law {LAW} --P 64", env={"NUMBA_NUM_THREADS": "many"})
cli("frontier-numba-threads-negative", f"frontier --law {LAW} --P 64", env={"NUMBA_NUM_THREADS": "-2"})
cli("frontier-at-letter", f"frontier --law {LAW} --P 64 --at a")
cli("theory-at-letter", f"theory --law {LAW} --at a")
cli("theory-at-1e400", f"theory --law {LAW} --at 1{'0' * 400}")
# API constructors.
api("dirichlet-k-2.5", "brw.laws.Dirichlet(0.5, 2.5)")
api("zipf-k-2.5", "brw.laws.Zipf(1.1, 2.5)")
api("uniform-k-2.5", "brw.laws.Uniform(2.5)")
api("uniform-k-true", "brw.laws.Uniform(True)")
api("uniform-k-text", "brw.laws.Uniform('8')")
api("dirichlet-alpha-text", "brw.laws.Dirichlet('a', 3)")
api("dirichlet-alpha-none", "brw.laws.Dirichlet(None, 3)")
api("gem-theta-text", "brw.laws.GEM('x')")
api("gem-theta-nan", "brw.laws.GEM(float('nan'))")
api("zipf-s-list", "brw.laws.Zipf([1.1], 5)")
api("fixed-text", "brw.laws.Fixed(('a', 'b'))")
api("fixed-empty", "brw.laws.Fixed(())")
api("fixed-nested", "brw.laws.Fixed(((0.5, 0.5),))")
api("fixed-none", "brw.laws.Fixed(None)")
api("zipf-k-1e12", "brw.laws.Zipf(1.1, 10**12)")
api("frontier-result-at-1.5", "brw.frontier('uniform:k=2', 4).at([1.5])")
api("frontier-result-at-0", "brw.frontier('uniform:k=2', 4).at([0])")
api("frontier-result-at-text", "brw.frontier('uniform:k=2', 4).at(['a'])")
api("frontier-result-at-nan", "brw.frontier('uniform:k=2', 4).at([float('nan')])")
api("frontier-result-to-dict-1.5", "brw.frontier('uniform:k=2', 4).to_dict([1.5])")
# Small ones.
cli("bare-brw", "")
cli("unknown-command", "nosuchcommand")
cli("unknown-global-option", "--nope")

# Every command's plain mistakes.
for args in ["--law nope --P 5", "--law '' --P 5", "--P 5", f"--law {LAW}", f"--law {LAW} --P 0",
             f"--law {LAW} --P -1", f"--law {LAW} --P 2147483646", f"--law {LAW} --P 1e3", f"--law {LAW} --P ''",
             f"--law {LAW} --P 99999999999999999999999999", f"--law {LAW} --P 16 --replicates 0",
             f"--law {LAW} --P 16 --replicates -5", f"--law {LAW} --P 16 --replicates 100000000000000000000000",
             f"--law {LAW} --P 16 --seed -1", f"--law {LAW} --P 16 --threads 0", f"--law {LAW} --P 16 --threads -1",
             f"--law {LAW} --P 16 --at 0", f"--law {LAW} --P 16 --at 17", f"--law {LAW} --P 16 --at ''",
             f"--law {LAW} --P 16 --at 1,,x", f"--law {LAW} --P 16 --at 1.5", f"--law {LAW} --P 16 extra",
             f"--law {LAW} --P 2000000000", f"--law {LAW} --P 16 --replicates 4000000000",
             "--law uniform:k=1000000000 --P 16", "--law dirichlet:alpha=0.5,k=1000000000000 --P 16",
             "--law gem:theta=1e300 --P 16", "--law gem:theta=1e15 --P 16",
             "--law gemmix:s=0.5,theta=1e300,w=1 --P 16", "--law trace:nosuch.npz --P 16", "--law trace: --P 16",
             "--law trace:/dev/null --P 16", "--law trace:/ --P 16", "--law trace:/dev/zero --P 16",
             "--law markov:trace=chat,regimes=0 --P 16", "--law markov:trace=nosuch,regimes=2 --P 16",
             "--law markov:trace=chat,regimes=4000 --P 16", f"--law 'uniform:k={'9' * 5000}' --P 16",
             "--law trace:chat,holdout=4/4 --P 16", "--law trace:chat,holdout=1/99999999999999999999 --P 16",
             "--law ctx:trace=chat,holdout=1 --P 16", "--law ctx:trace=chat,context=99999999999999999999 --P 16",
             "--law ctx:trace=chat,holdout=1/4,context=1 --P 16", "--law path:trace=chat,context=1 --P 16",
             "--law path:trace=nosuch,holdout=1/4 --P 16", "--law edge:trace=chat,regimes=0 --P 16",
             "--law edge:trace=chat,regimes=99999 --P 16", "--law edge:trace=chat,context=2 --P 16",
             "--law run:trace=chat,cap=0 --P 16", "--law run:trace=chat,cap=99999999999999999999 --P 16",
             "--law prefix:trace=chat,greedy=code-greedy --P 16", "--law prefix:trace=code,greedy=chat --P 16",
             f"--law 'fixed:p={'/'.join(['0.0011'] * 1000)}' --P 16", "--law ünïcode:k=3 --P 16"]:
    cli(f"frontier {args}", f"frontier {args}")
for args in ["--law nope --at 1", f"--law {LAW}", f"--law {LAW} --at 0", f"--law {LAW} --at -5",
             f"--law {LAW} --at ''", f"--law {LAW} --at 1,2,0", "--law zipf:s=1.1,k=100000000000 --at 4",
             "--law dirichlet:alpha=0.5,k=1 --at 4", "--law gem:theta=1e-300 --at 4", "--law trace:nosuch --at 4",
             "--law gemmix:s=0.999999999999,theta=1e-9,w=1 --at 4"]:
    cli(f"theory {args}", f"theory {args}")
for args in ["nosuch", "nosuch.npz", ".", "/dev/null", "/dev/zero", "chat --bootstrap 0", "chat --bootstrap -3",
             "chat --bootstrap 100000000000000000000", "chat --seed 1.5", "''"]:
    cli(f"trace-info {args}", f"trace-info {args}")
cli("trace-info-empty-file", f"trace-info {TRACE}", {TRACE: b""})
cli("trace-info-folder-named-npz", f"trace-info {TRACE}", {TRACE: DIR})
cli("trace-info-text-file", f"trace-info {TRACE}", {TRACE: b"not a zip archive at all\n"})
cli("trace-info-empty-zip", f"trace-info {TRACE}", {TRACE: F.zip_members([])})
cli("trace-info-pickled-field", f"trace-info {TRACE}",
    {TRACE: F.zip_members([(n, F.npy(np.array([{"a": 1}], dtype=object)) if n == "meta.npy" else d)
                           for n, d in F.members_of(F.npz(F.trace_arrays()))])})
cli("trace-info-sparse-8GiB", f"trace-info {TRACE}", {TRACE: F.sparse_file(8 << 30)})
for args in ["--vocab-size 100 --out t.npz", "lp.json --out t.npz", "lp.json --vocab-size 100",
             "lp.json --vocab-size 1 --out t.npz", "lp.json --vocab-size -4 --out t.npz",
             "lp.json --vocab-size x --out t.npz", "lp.json --vocab-size 2 --out t.npz",
             "lp.json --vocab-size 100 --tail middle --out t.npz", "nosuch.json --vocab-size 100 --out t.npz",
             "lp.json lp.json --vocab-size 100 --out lp.json"]:
    cli(f"import-logprobs {args}", f"import-logprobs {args}", logprobs_file(F.chat_logprobs()))
for name, content in [("empty", b""), ("not-json", b"{'single': 'quotes'}"), ("bad-utf8", b'{"a": "\xff\xfe"}'),
                      ("scalar", b"3"), ("null", b"null"), ("empty-list", b"[]"), ("empty-object", b"{}"),
                      ("nan-everywhere", b"NaN"), ("huge-int", b"1" * 5000),
                      ("folder", DIR), ("sparse-8GiB", F.sparse_file(8 << 30, b"["))]:
    cli(f"import-logprobs-{name}", "import-logprobs lp.json --vocab-size 100 --out t.npz", {"lp.json": content})
for args in ["--regimes 0", "--regimes -1", "--components 0", "--components 1000000000", "--replicates 0",
             "--replicates 1000000000000", "--at 0", "--at 257", "--at a", "--seed -1", "--results nosuch.npz",
             "--results .", "--results /dev/null"]:
    cli(f"compare {args}", f"compare {args}")
cli("compare-results-text-file", f"compare --results {RESULTS}", {RESULTS: b"plain text"})
cli("compare-results-trace", f"compare --results {TRACE}", trace_file())
for args in ["--P 0", "--replicates 0", "--reference-P 0", "--repeats 0", "--big -1", "--law nope",
             "--P 1000000000000 --no-cold-start --no-startup", "--replicates 1000000000000 --no-cold-start",
             "--big 1000000000000 --no-cold-start --no-startup", "--reference-P 1000000000000 --no-cold-start"]:
    cli(f"bench {args}", f"bench {args}")
for args, says in [("--processes 0", ["processes"]), ("--processes -1", ["processes"]),
                   ("--processes 1.5", ["processes"]), ("--jobs nope", ["nope"]), ("--jobs ,", ["no jobs"]),
                   ("--jobs frontier,nope", ["nope"])]:
    cli(f"compile {args}", f"compile {args}", says=says)
for args in ["--contexts 0", "--contexts -1", "--contexts 1000000000", "--P 0", "--P 40000", "--batch 0",
             "--lookahead -1", "--threads 0", "--trace nosuch", "--trace code,code", "--trace ''",
             "--device tpu", "--dtype float8", "--model /nonexistent/model", "--seed -1"]:
    cli(f"realtree {args}", f"realtree {args} --out r.npz")
for args in ["--tokens 0", "--top-k 0", "--batch 0", "--max-len 0 --text t.txt", "--temperature 0",
             "--temperature nan", "--temperature -1", "--temperature inf", "--threads 0", "--device tpu",
             "--dtype float8", "--model /nonexistent/model", "--prompts nosuch.txt", "--prompts p.json",
             "--text nosuch.txt", "--seed -1"]:
    src = "" if ("--prompts" in args or "--text" in args) else "--prompts p.txt"
    cli(f"record {args}", f"record {src} {args} --out r.npz",
        {"p.txt": b"Hello\n", "t.txt": b"Some text.\n", "p.json": b'{"not": "a list"}'})

for args in ["--law nope --P 8", f"--law {LAW} --P 0", f"--law {LAW} --P 2147483647",
             f"--law {LAW} --P 16 --replicates 0",
             f"--law {LAW} --P 16 --replicates 1000000000000", f"--law {LAW} --P 16 --seed -1",
             f"--law {LAW} --P 16 --threads 0", f"--law {LAW} --P 16 --at 17", f"--law {LAW} --P 16 --policies nosuch",
             f"--law {LAW} --P 16 --policies chains:k=0", f"--law {LAW} --P 16 --policies kary:k=0",
             f"--law {LAW} --P 16 --policies kary:k=2,d=0", f"--law {LAW} --P 16 --policies chains:k=x",
             f"--law {LAW} --P 16 --policies specexec:sigma=-1", f"--law {LAW} --P 16 --policies specexec:sigma=nan",
             f"--law {LAW} --P 16 --policies eagle2:k=1000000000000,d=6,sigma=1",
             f"--law {LAW} --P 16 --policies chain:x=1", f"--law {LAW} --P 16 --policies chain,chain",
             f"--law {LAW} --P 4000000000", "--law edge:trace=chat --P 16", "--law run:trace=chat --P 16",
             "--law prefix:trace=chat --P 16"]:
    cli(f"policies {args}", f"policies {args}")
for args in ["--acceptance 0.5/x --n 8", "--acceptance 1.5/0.2 --n 8", "--acceptance -0.1 --n 8",
             "--acceptance nan --n 8", "--acceptance '' --n 8", "--acceptance / --n 8", "--acceptance nosuch.txt --n 8",
             "--acceptance 0.5/0.3 --n 0", "--acceptance 0.5/0.3 --n -5", "--acceptance 0.5/0.3 --n 1000000000000",
             "--acceptance 0.5/0.3 --n 100000000", "--acceptance 0.5/0.3 --n 8 --depth 0",
             "--acceptance 0.5/0.3 --n 8 --depth -1", "--acceptance 0.5/0.3 --n 100000 --depth 100000",
             "--acceptance 0.6/0.6 --n 8", "--acceptance garbage.txt --n 8", "--acceptance empty.txt --n 8",
             "--acceptance folder --n 8", "--acceptance sparse.txt --n 8",
             f"--acceptance {'/'.join(['0.0001'] * 12000)} --n 8"]:
    cli(f"sequoia {args}", f"sequoia {args}", {"garbage.txt": b"0\nhello\n0.5\n", "empty.txt": b"", "folder": DIR,
                                             "sparse.txt": F.sparse_file(8 << 30, b"0\n0.5\n")})
for args in ["--law nope --cost roofline:t1=0.01,knee=64", f"--law {LAW} --cost roofline:t1=-1,knee=64",
             f"--law {LAW} --cost roofline:t1=0.01,knee=0", f"--law {LAW} --cost roofline:t1=nan,knee=64",
             f"--law {LAW} --cost roofline:", f"--law {LAW} --cost roofline:t1=0.01",
             f"--law {LAW} --cost nosuch.txt",
             f"--law {LAW} --cost garbage.txt", f"--law {LAW} --cost negative.txt", f"--law {LAW} --cost empty.txt",
             f"--law {LAW} --cost folder", f"--law {LAW} --cost sparse.txt",
             f"--law {LAW} --cost roofline:t1=0.01,knee=64 --P 0",
             f"--law {LAW} --cost roofline:t1=0.01,knee=64 --P 1000000000000",
             f"--law {LAW} --cost roofline:t1=0.01,knee=64 --replicates 0",
             f"--law {LAW} --cost roofline:t1=0.01,knee=64 --replicates 1000000000000",
             f"--law {LAW} --cost roofline:t1=0.01,knee=64 --draft-step -1",
             f"--law {LAW} --cost roofline:t1=0.01,knee=64 --draft-step nan",
             f"--law {LAW} --cost roofline:t1=0.01,knee=64 --draft-token inf",
             f"--law {LAW} --cost roofline:t1=0.01,knee=64 --threads 0",
             f"--law {LAW} --cost roofline:t1=0.01,knee=64 --seed -1"]:
    cli(f"speedup {args}", f"speedup {args}", {"garbage.txt": b"tokens seconds\nfour 0.1\n",
                                             "negative.txt": b"1 -0.5\n2 0.1\n", "empty.txt": b"", "folder": DIR,
                                             "sparse.txt": F.sparse_file(8 << 30, b"1 0.01\n")})
_SPEC_LINE = ("INFO SpecDecoding metrics: Mean acceptance length: {m}, Accepted throughput: 1.00 tokens/s, Drafted "
              "throughput: 2.00 tokens/s, Accepted: {a} tokens, Drafted: {d} tokens, Per-position acceptance rate: "
              "{r}, Avg Draft acceptance rate: 50.0%\n")
_DEPLOY = {"good.log": ("INFO Initializing a V1 LLM engine (v0.10.0) with config: model='HuggingFaceTB/SmolLM2-135M-"
                        "Instruct', seed=0\n" + _SPEC_LINE.format(m="2.70", a=170, d=200, r="0.900, 0.800")).encode(),
           "rising.log": _SPEC_LINE.format(m="2.70", a=170, d=200, r="0.800, 0.900").encode(),
           "nan.log": _SPEC_LINE.format(m="nan", a=170, d=200, r="0.900, 0.800").encode(),
           "negative.log": _SPEC_LINE.format(m="2.70", a=-170, d=200, r="0.900, 0.800").encode(),
           "unfit.log": _SPEC_LINE.format(m="2.70", a=170, d=200, r="0.900, 0.600").encode(),
           "mixed.log": (_SPEC_LINE.format(m="2.70", a=170, d=200, r="0.900, 0.800")
                         + _SPEC_LINE.format(m="2.10", a=110, d=300, r="0.600, 0.300, 0.200")).encode(),
           "cut.log": _SPEC_LINE.format(m="2.70", a=170, d=200, r="0.900, 0.800")[:90].encode() + b"\n"
           + _SPEC_LINE.format(m="2.70", a=170, d=200, r="0.900, 0.800").encode(),
           "latin1.log": "SpecDecoding metrics: caf\xe9\n".encode("latin-1"), "empty.log": b"",
           "binary.log": bytes(range(256)) * 4, "folder": DIR, "chatter.log": b"INFO nothing to see\n" * 50,
           "sparse.log": F.sparse_file(8 << 30, b"SpecDecoding metrics: Mean acceptance length: 2.70,"),
           "nan.prom": b'vllm:spec_decode_num_drafts_total{engine="0"} NaN\n',
           "back.json": b'{"acceptance_histogram": [1, -2, 3], "num_spec_tokens": 2}\n',
           "nan.json": b'{"acceptance_histogram": [1, NaN, 3], "num_spec_tokens": 2}\n',
           "deep.json": b"[" * 100000 + b"]" * 100000 + b"\n",
           "lengths.jsonl": b'{"accept_lengths": [1, 5], "k": 4}\n',
           "old-llama.log": b"draft acceptance rate = 0.50000 (  10 accepted /    20 generated)\n",
           "both.txt": _SPEC_LINE.format(m="2.70", a=170, d=200, r="0.900, 0.800").encode()
           + b'vllm:spec_decode_num_drafts_total{engine="0"} 3\n'}
for args in ["nosuch.log", "empty.log", "binary.log", "folder", "chatter.log", "sparse.log", "latin1.log",
             "rising.log", "nan.log", "negative.log", "unfit.log", "mixed.log", "cut.log", "nan.prom", "back.json",
             "nan.json", "deep.json", "lengths.jsonl", "old-llama.log", "both.txt", "good.log --format nope",
             "good.log --format vllm-json", "good.log --k 0", "good.log --k 3", "good.log --law nope",
             "good.log --law trace:gemma3-chat", "good.log --cost nope", "good.log --cost roofline:t1=-1,knee=4",
             "good.log --cost roofline:t1=0.01,knee=4 --max-k 1", "good.log --cost roofline:t1=0.01,knee=4 --max-k 0",
             "good.log --cost roofline:t1=0.01,knee=4 --max-k 1000000000000",
             "good.log --cost roofline:t1=0.01,knee=4 --draft-step -1", "good.log --law uniform:k=2 --replicates 0",
             "good.log --law uniform:k=2 --seed -1", "good.log --law uniform:k=2 --threads 0",
             "good.log --plot f.gif", "good.log --plot /sys/f.png", "good.log --plot folder"]:
    cli(f"deployment {args}", f"deployment {args}", _DEPLOY)
_SWEEPS = {
    "missing-laws": b'P = [8]\n', "missing-P": b'laws = ["uniform:k=2"]\n', "not-toml": b"laws = [\n",
    "unknown-key": b'laws = ["uniform:k=2"]\nP = [8]\nbogus = 1\n', "bad-law": b'laws = ["nope:k=2"]\nP = [8]\n',
    "P-zero": b'laws = ["uniform:k=2"]\nP = [0]\n', "P-huge": b'laws = ["uniform:k=2"]\nP = [4000000000]\n',
    "P-text": b'laws = ["uniform:k=2"]\nP = ["8"]\n', "kind": b'kind = ["nope"]\nlaws = ["uniform:k=2"]\nP = [8]\n',
    "grid-huge": ('laws = ["uniform:k={' + ",".join(str(i) for i in range(2, 3002)) + '}"]\nP = ['
                  + ",".join(str(i) for i in range(1, 3001)) + ']\nseed = [' + ",".join(str(i) for i in range(1000))
                  + ']\n').encode(),
    "braces": b'laws = ["uniform:k={2,{3}}"]\nP = [8]\n', "empty-grid": b'laws = []\nP = [8]\n',
    "deep": b"a = " + b"[" * 100000 + b"]" * 100000 + b"\n", "binary": bytes(range(256)),
    "sparse": F.sparse_file(8 << 30, b'laws = ["uniform:k=2"]\n'),
}
for name, content in _SWEEPS.items():
    cli(f"sweep-{name}", "sweep s.toml --out out", {"s.toml": content})
for args in ["nosuch.toml --out out", "s.toml --out plain", "s.toml --out /sys/out", "s.toml --out out --dask-local 0",
             "s.toml --out out --dask-local -3", "s.toml --out out --dask-local 100000",
             "s.toml --out out --scheduler nonsense"]:
    cli(f"sweep {args}", f"sweep {args}", {"s.toml": b'laws = ["uniform:k=2"]\nP = [8]\n', "plain": b"a file"})
for args in ["--out plain", "--out plain/below", "--out /sys/out", "--out out --bogus", "--quick --out /proc/1/out"]:
    cli(f"reproduce {args}", f"reproduce {args}", {"plain": b"a file"})
for x in ["'0'", "['1.5']", "True", "[1, '2']"]:  # text that numpy would convert to a number is not a level
    api(f"threshold-tree-level-{x}", f"brw.threshold_tree('dirichlet:alpha=0.5,k=8', {x}, max_nodes=1000)")
    api(f"threshold-level-{x}", f"brw.threshold('dirichlet:alpha=0.5,k=8', {x}, replicates=2)")

# Python API: sizes, types and values of every public function.
for call in ["brw.frontier(None, 4)", "brw.frontier(3, 4)", f"brw.frontier('{LAW}', 0)",
             f"brw.frontier('{LAW}', 1.5)", f"brw.frontier('{LAW}', '8')", f"brw.frontier('{LAW}', True)",
             f"brw.frontier('{LAW}', 2**31)", f"brw.frontier('{LAW}', 10**40)", f"brw.frontier('{LAW}', 4, 0)",
             f"brw.frontier('{LAW}', 4, 2.0)", f"brw.frontier('{LAW}', 4, seed=-1)",
             f"brw.frontier('{LAW}', 4, seed=0.5)", f"brw.frontier('{LAW}', 4, threads=0)",
             f"brw.frontier('{LAW}', 4, first_replicate=-1)", f"brw.frontier('{LAW}', 4, first_replicate=0.5)",
             f"brw.frontier_tree('{LAW}', 10**12)", f"brw.frontier_tree('{LAW}', 4, replicate=-1)",
             f"brw.frontier_tree('{LAW}', 0)", f"brw.threshold('{LAW}', [])", f"brw.threshold('{LAW}', [np.nan])",
             f"brw.threshold('{LAW}', [-1.0])", f"brw.threshold('{LAW}', [2.0, 1.0])",
             f"brw.threshold('{LAW}', [[1.0, 2.0]])", f"brw.threshold('{LAW}', 'abc')",
             f"brw.threshold('{LAW}', [1.0], max_nodes=0)", f"brw.threshold('{LAW}', [float('inf')])",
             f"brw.threshold('{LAW}', np.linspace(0.1, 5, 10**6), 10**4)",
             f"brw.threshold_tree('{LAW}', 60)", f"brw.threshold_tree('{LAW}', -1)",
             f"brw.threshold_tree('{LAW}', 2, max_nodes=0)", "brw.threshold('gem:theta=1e300', [2.0])",
             "brw.threshold('fixed:p=0.999999999999/0.000000000001', [1.0])",
             "brw.parse_law('x' * 10**6)", "brw.parse_law(b'uniform:k=2')", "brw.parse_law('uniform:k=2,')"]:
    api(call, call)
for call in ["theory.paper_bound('uniform:k=2', 0)", "theory.paper_bound('uniform:k=2', [])",
             "theory.paper_bound('uniform:k=2', 'a')", "theory.paper_bound('uniform:k=2', [1.5])",
             "theory.renewal('uniform:k=2', 1e9)", f"theory.renewal('{LAW}', 5, points=10**12)",
             f"theory.renewal('{LAW}', 5, points=0)", f"theory.renewal('{LAW}', 5, h=0)",
             f"theory.renewal('{LAW}', 5, h=1e-300)", f"theory.spine_grid('{LAW}', 1e-12, 10**12)",
             f"theory.accepted_count_law('{LAW}', 1e6)", f"theory.accepted_count_law('{LAW}', 5, points=10**10)",
             "theory.biggins_speed('fixed:p=1')", f"theory.lattice_asymptotic('{LAW}', 4)",
             "theory.lattice_asymptotic('uniform:k=2', 4, span=0)",
             f"theory.renewal_estimate('{LAW}', 5, points=10**12)", f"theory.bounds('{LAW}', [10**400])",
             f"theory.renewal_bound('{LAW}', [4], points=10**12)", f"theory.renewal_bound('{LAW}', [-4])",
             "theory.renewal_sequence(np.ones(4))", "theory.predicted_depth('fixed:p=1', 4)"]:
    api(call, f"from brw import theory\n{call}")
for call in ["traces.load_trace('nosuch.npz')", "traces.load_trace('.')", "traces.load_trace(3)",
             "trace_summary.trace_summary(traces.load_trace('code'), bootstrap=10**12)",
             "trace_summary.trace_summary(traces.load_trace('code'), bootstrap=0)",
             "trace_summary.trace_summary(traces.load_trace('code'), seed=-1)",
             "trace_summary.bootstrap_means(np.ones(4), np.arange(4), 10**12)",
             "trace_summary.bootstrap_means(np.ones(4), np.arange(4), 10, seed=-1)",
             "trace_summary.entropy_histogram(np.array([1e300]))",
             "trace_summary.entropy_histogram(np.ones(3), width=0)",
             "trace_summary.entropy_histogram(np.ones(3), width=1e-300)",
             "trace_summary.entropy_histogram(np.array([]))",
             "traces.save_trace(traces.load_trace('code'), '/sys/x.npz')",
             "traces.save_trace(traces.load_trace('code'), 'x.txt')",
             "traces.save_trace(traces.load_trace('code'), 'plain/x.npz')",
             "traces.make_trace(meta={'a': object()})"]:
    api(call, f"from brw import trace_summary, traces\n{call}", {"plain": b"file"})
for call in ["importers.import_logprobs(['lp.json'], vocab_size=True)",
             "importers.import_logprobs(['lp.json'], vocab_size=100, tail='x')",
             "importers.import_logprobs(['lp.json'], vocab_size=100.0)",
             "importers.import_logprobs('lp.json', vocab_size=100)",
             "importers.import_logprobs(['nested.json'], vocab_size=100)",
             "importers.import_logprobs(['lp.json'], '/sys/x.npz', vocab_size=100)",
             "importers.read_logprobs_json([])"]:
    api(call, f"from brw.real import importers\n{call}",
        {**logprobs_file(F.chat_logprobs()), "nested.json": F.nested_json(200000)})
for call in ["fitted.fit_gemmix(T, components=0)", "fitted.fit_gemmix(T, components=10**9)",
             "fitted.fit_gemmix(T, components=2.5)", "fitted.fit_markov(T, 10**6)", "fitted.fit_markov(T, 0)",
             "fitted.MarkovTrace('chat', 10**6)", "fitted.MarkovTrace('chat', 2.5)",
             "fitted.GEMMix(('a',), (2.0,), (1.0,))", "fitted.GEMMix((0.5,), (2.0,), (0.5,))",
             "fitted.GEMMix((0.5,), (1e300,), (1.0,)).kernel_law() and brw.frontier("
             "fitted.GEMMix((0.5,), (1e300,), (1.0,)), 4)",
             "fitted.entropy_autocorrelation(T, lags=(0,))", "fitted.entropy_autocorrelation(T, lags=(-1,))"]:
    api(call, f"from brw import traces\nfrom brw.laws import fitted\nT = traces.load_trace('chat')\n{call}")
for call in ["realtree.load_realtrees('nosuch.npz')", f"realtree.load_realtrees('{TRACE}')",
             "realtree.summarize(realtree.load_realtrees(), at=[0])",
             "realtree.summarize(realtree.load_realtrees(), at=[10**6])",
             "realtree.pick_rows(brw.traces.load_trace('code'), 10**9, 0)",
             "realtree.pick_rows(brw.traces.load_trace('code'), 4, -1)",
             "expansion.realtrees(['code'], 'r.npz', contexts=0)",
             "expansion.realtrees(['code'], '/sys/r.npz', contexts=1)"]:
    api(call, f"import brw.traces\nfrom brw.real import expansion, realtree\n{call}", trace_file())
for call in ["compare.compare(regimes=10**5)", "compare.compare(components=10**9)", "compare.compare(replicates=0)",
             "compare.compare(replicates=10**12)", "compare.compare(at=[0])", "compare.compare(seed=-1)",
             "compare.compare(at=[1.5])"]:
    api(call, f"from brw.studies import compare\n{call}")


# ------------------------------------------------------------------------------------------------------------
# Generated.


def draw(strategy, n: int) -> list:
    """n distinct examples of ``strategy``, drawn by hypothesis under the active profile."""
    found = []

    class Enough(Exception):
        pass

    @settings(settings.default, max_examples=3 * n, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), deadline=None)
    @given(strategy)
    def collect(x):
        if x not in found:
            found.append(x)
        if len(found) >= n:  # >=: hypothesis replays the example that raised, and must see it raise again
            raise Enough

    with warnings.catch_warnings():  # hypothesis warns about the size of the example it stopped on
        warnings.simplefilter("ignore")
        try:
            collect()
        except Enough:
            pass
    return found[:n]


_not_int = st.text(alphabet=string.printable, min_size=1, max_size=8).filter(lambda s: not _is_int(s))
_not_number = st.text(alphabet=string.ascii_letters + "_/:,", min_size=1, max_size=8)


def _is_int(s: str) -> bool:
    try:
        int(s)
        return True
    except ValueError:
        return False


def _positive_float_text():
    return st.floats(min_value=1e-3, max_value=50, allow_nan=False).map(repr)


LAWS = {  # name -> {key: strategy of a valid value}
    "uniform": {"k": st.integers(1, 50).map(str)},
    "dirichlet": {"alpha": _positive_float_text(), "k": st.integers(2, 50).map(str)},
    "zipf": {"s": _positive_float_text(), "k": st.integers(1, 50).map(str)},
    "gem": {"theta": _positive_float_text()},
}
INTEGER_KEYS = {"k"}


@st.composite
def bad_spec(draw_):
    """A law spec with exactly one defect."""
    defect = draw_(st.sampled_from(["name", "missing", "extra", "twice", "value", "empty-value", "no-equals",
                                    "body", "fixed-sum", "fixed-entry", "huge-k"]))
    if defect == "name":
        name = draw_(st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=10).filter(
            lambda s: s not in {"uniform", "fixed", "dirichlet", "zipf", "gem", "trace", "gemmix", "markov"}))
        return defect, f"{name}:k=2"
    if defect in ("fixed-sum", "fixed-entry"):
        vals = draw_(st.lists(st.floats(0.01, 1.0), min_size=1, max_size=6))
        if defect == "fixed-sum":
            total = sum(vals)
            if abs(total - 1) < 1e-6:
                vals.append(0.5)
            text = [repr(v) for v in vals]
        else:
            text = [repr(v) for v in vals]
            text[draw_(st.integers(0, len(text) - 1))] = draw_(st.sampled_from(["nan", "inf", "-0.5", "x", ""]))
        return defect, "fixed:p=" + "/".join(text)
    name = draw_(st.sampled_from(sorted(LAWS)))
    fields = {k: draw_(s) for k, s in LAWS[name].items()}
    if defect == "huge-k":
        name = draw_(st.sampled_from(["uniform", "zipf"]))
        fields = {k: draw_(s) for k, s in LAWS[name].items()}
        fields["k"] = str(draw_(st.integers(10**11, 10**30)))
    key = draw_(st.sampled_from(sorted(fields)))
    if defect == "missing":
        del fields[key]
        if not fields:
            return defect, f"{name}:"
    elif defect == "extra":
        fields[draw_(st.sampled_from(["j", "beta", "kk", "theta2"]))] = "1"
    elif defect == "value":
        bad = [st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e999", "abc", "0x10", "--1"]), _not_number]
        if key in INTEGER_KEYS:
            bad.append(st.floats(1.01, 40, allow_nan=False).filter(lambda v: not v.is_integer()).map(repr))
        value = draw_(st.one_of(*bad))
        if name == "zipf" and key == "s" and value in ("0",):
            value = "-1"
        fields[key] = value
    elif defect == "empty-value":
        fields[key] = ""
    elif defect == "no-equals":
        return defect, f"{name}:" + ",".join([f"{k}{v}" if k == key else f"{k}={v}" for k, v in fields.items()])
    elif defect == "body":
        return defect, f"{name}:" + draw_(st.sampled_from(["", ",", "=", "==", ",,", "k=1=2"]))
    body = ",".join(f"{k}={v}" for k, v in fields.items())
    if defect == "twice":
        body += f",{key}={fields[key]}"
    return defect, f"{name}:{body}"


for i, (defect, spec) in enumerate(draw(bad_spec(), 50)):
    if defect == "huge-k" or i % 2:  # a huge uniform:k is fine for the theory (closed forms), not for a simulation
        cli(f"generated-spec-{defect}-{i}", ["frontier", "--law", spec, "--P", "8", "--replicates", "2"])
    elif i % 4 == 2:
        api(f"generated-spec-{defect}-{i}", f"brw.threshold({spec!r}, [1.0])")
    else:
        cli(f"generated-spec-{defect}-{i}", ["theory", "--law", spec, "--at", "1,8"])

_bad_count = st.one_of(st.integers(max_value=0), st.integers(10**12, 10**40))
SIZES = {  # command -> (fixed arguments, {option: strategy of a bad value})
    "frontier": ([f"--law={LAW}", "--P=16", "--replicates=2"],
                 {"--P": st.one_of(st.integers(max_value=0), st.integers(2**31 - 2, 10**40)),
                  "--replicates": _bad_count, "--seed": st.integers(max_value=-1),
                  "--threads": st.integers(max_value=0),
                  "--at": st.one_of(st.integers(max_value=0), st.integers(17, 10**20))}),
    "theory": ([f"--law={LAW}", "--at=4"], {"--at": st.one_of(st.integers(max_value=0),
                                                               st.integers(10**310, 10**400))}),
    "trace-info": (["chat"], {"--bootstrap": st.one_of(st.integers(max_value=0), st.integers(10**9, 10**30)),
                              "--seed": st.integers(max_value=-1)}),
    "compare": ([], {"--replicates": _bad_count, "--regimes": st.one_of(st.integers(max_value=0),
                                                                        st.integers(10**4, 10**12)),
                     "--components": st.one_of(st.integers(max_value=0), st.integers(10**5, 10**12)),
                     "--at": st.one_of(st.integers(max_value=0), st.integers(257, 10**12)),
                     "--seed": st.integers(max_value=-1)}),
    "bench": (["--no-cold-start", "--no-startup"],
              {"--P": _bad_count, "--replicates": _bad_count, "--big": st.one_of(st.integers(max_value=-1),
                                                                                st.integers(10**12, 10**30)),
               "--reference-P": st.integers(max_value=0), "--repeats": st.integers(max_value=0)}),
    "realtree": (["--trace=code", "--out=r.npz"],
                 {"--contexts": st.one_of(st.integers(max_value=0), st.integers(10**6, 10**20)),
                  "--P": st.one_of(st.integers(max_value=0), st.integers(32768, 10**20)),
                  "--batch": st.integers(max_value=0), "--lookahead": st.integers(max_value=-1),
                  "--threads": st.integers(max_value=0), "--seed": st.integers(max_value=-1)}),
    "record": (["--prompts=p.txt", "--out=r.npz"],
               {"--tokens": st.integers(max_value=0), "--top-k": st.integers(max_value=0),
                "--batch": st.integers(max_value=0), "--threads": st.integers(max_value=0),
                "--temperature": st.one_of(st.floats(max_value=0), st.just(float("nan")), st.just(float("inf")))}),
    "import-logprobs": (["lp.json", "--out=t.npz"], {"--vocab-size": st.integers(max_value=2)}),
}


@st.composite
def bad_size(draw_):
    command = draw_(st.sampled_from(sorted(SIZES)))
    fixed, options = SIZES[command]
    option = draw_(st.sampled_from(sorted(options)))
    value = draw_(options[option])
    return command, tuple(fixed), option, str(value)


for i, (command, fixed, option, value) in enumerate(draw(bad_size(), 60)):
    cli(f"generated-size-{i}", [command, *fixed, f"{option}={value}"],
        {"p.txt": b"Hello\n", **logprobs_file(F.chat_logprobs())})

_bad_api_count = st.one_of(st.integers(max_value=0), st.integers(2**31, 10**30), st.floats(allow_nan=True),
                           st.text(max_size=3), st.none(), st.booleans(), st.lists(st.integers(1, 3), max_size=2))
API_SIZES = {
    "frontier": ("brw.frontier('{law}', {P}, {replicates}, seed={seed})",
                 {"P": "8", "replicates": "2", "seed": "0"}),
    "frontier_tree": ("brw.frontier_tree('{law}', {P}, seed={seed}, replicate={replicate})",
                      {"P": "8", "seed": "0", "replicate": "0"}),
    "threshold": ("brw.threshold('{law}', {xs}, {replicates}, max_nodes={max_nodes})",
                  {"xs": "[1.0]", "replicates": "2", "max_nodes": "1000"}),
    "threshold_tree": ("brw.threshold_tree('{law}', {x}, max_nodes={max_nodes})", {"x": "1.0", "max_nodes": "1000"}),
}
_bad_level = st.one_of(st.floats(max_value=-1e-9), st.just(float("nan")), st.floats(min_value=800),
                       st.text(min_size=1, max_size=3), st.none())


def _literal(value) -> str:
    """Python source for a value (floats that repr cannot spell as source included)."""
    if isinstance(value, float) and not np.isfinite(value):
        return f"float({repr(value)!r})"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


@st.composite
def bad_call(draw_):
    fn = draw_(st.sampled_from(sorted(API_SIZES)))
    template, args = API_SIZES[fn]
    args = dict(args)
    key = draw_(st.sampled_from(sorted(args)))
    if key in ("x",):
        value = draw_(_bad_level)
    elif key == "xs":
        value = draw_(st.one_of(st.lists(_bad_level, min_size=1, max_size=3), st.just([]),
                                st.lists(st.floats(0, 5), min_size=2, max_size=4).filter(
                                    lambda v: any(b <= a for a, b in zip(v, v[1:])))))
    elif key == "seed":
        value = draw_(st.one_of(st.integers(max_value=-1), st.floats(), st.text(max_size=3)))
    elif key in ("replicate",):
        value = draw_(st.one_of(st.integers(max_value=-1), st.floats(), st.text(max_size=3)))
    else:
        value = draw_(_bad_api_count)
        if key == "max_nodes" and isinstance(value, int) and not isinstance(value, bool) and value > 0:
            value = 0
    args[key] = _literal(value)
    law = draw_(st.sampled_from([LAW, "uniform:k=3", "gem:theta=1.5", "fixed:p=0.6/0.4"]))
    return template.format(law=law, **args)


for i, call in enumerate(draw(bad_call(), 40)):
    api(f"generated-call-{i}", call)


def _corrupt_trace(kind: str, row: int, value: float) -> dict:
    a = F.trace_arrays()
    n = a["top_logp"].shape[0]
    r = row % n
    if kind == "drop":
        del a[["top_logp", "entropy", "context_offsets", "meta", "taken"][row % 5]]
    elif kind == "nan":
        field = ["entropy", "log_moment2", "tail_mass", "taken_logp"][row % 4]
        a[field][r] = [np.nan, np.inf, -np.inf][row % 3]
    elif kind == "top-nan":
        a["top_logp"][r, row % 64] = np.nan
    elif kind == "positive-logp":
        a["top_logp"][r, 0] = abs(value) + 0.01
    elif kind == "unsorted":
        a["top_logp"][r, 1] = a["top_logp"][r, 0] + abs(value) + 0.01
        a["top_logp"][r, 1] = min(a["top_logp"][r, 1], 0.0)
        a["top_logp"][r, 0] = a["top_logp"][r, 1] - 0.5
    elif kind == "mass":
        a["tail_mass"][r] += 0.01 + abs(value)
    elif kind == "negative":
        a[["entropy", "log_moment2", "tail_mass"][row % 3]][r] = -0.01 - abs(value)
    elif kind == "entropy-huge":
        a["entropy"][r] = 1e300
    elif kind == "ids":
        a["top_ids"] = a["top_ids"].astype(np.int64)
        a["top_ids"][r, row % 64] = [10**9, -1, 2**40][row % 3]
    elif kind == "context":
        a["context"] = a["context"].astype(np.int64)
        a["context"][r] = [5, -1, 10**12][row % 3]
    elif kind == "offset":
        a["offset"] = a["offset"].astype(np.int64)
        a["offset"][r] = [10**7, -1, 10**15][row % 3]
    elif kind == "context-offsets":
        a["context_offsets"] = a["context_offsets"][::-1].copy()
    elif kind == "schema":
        a["schema_version"] = [np.array(2), np.array(-1), np.array("1"), np.array([1]), np.array(1.0)][row % 5]
    elif kind == "format":
        a["format"] = [np.array("brw-trace2"), np.array(7), np.array(["brw-trace"])][row % 3]
    elif kind == "meta":
        a["meta"] = [np.array("{not json"), np.array("[1]"), np.array("[" * 50000 + "]" * 50000),
                     np.array(json.dumps({"vocab_size": -5})), np.array(json.dumps({"vocab_size": "big"})),
                     np.array(json.dumps({"vocab_size": 3}))][row % 6]
    elif kind == "dtype":
        field = ["top_logp", "entropy", "top_ids", "context"][row % 4]
        a[field] = a[field].astype([np.complex128, np.bool_, "U3", np.float16][row % 4]) if field != "entropy" \
            else a[field].astype(np.int64)
    elif kind == "shape":
        field = ["top_logp", "entropy", "top_ids", "taken"][row % 4]
        a[field] = a[field][:-1] if row % 2 else a[field][..., None]
    elif kind == "empty":
        for f in ("top_logp", "top_ids", "entropy", "log_moment2", "tail_mass", "taken", "taken_logp", "context",
                  "offset"):
            a[f] = a[f][:0]
    return a


TRACE_DEFECTS = ["drop", "nan", "top-nan", "positive-logp", "unsorted", "mass", "negative", "entropy-huge", "ids",
                 "context", "offset", "context-offsets", "schema", "format", "meta", "dtype", "shape", "empty"]
TRACE_USERS = [["trace-info", TRACE], ["frontier", "--law", f"trace:{TRACE}", "--P", "8", "--replicates", "2"],
               ["theory", "--law", f"trace:{TRACE}", "--at", "1,8"],
               ["frontier", "--law", f"markov:trace={TRACE},regimes=2", "--P", "8", "--replicates", "2"]]

for i, (kind, row, value, user) in enumerate(draw(st.tuples(
        st.sampled_from(TRACE_DEFECTS), st.integers(0, 10**6), st.floats(0, 100), st.integers(0, 3)), 45)):
    cli(f"generated-trace-{kind}-{i}", TRACE_USERS[user], trace_file(_corrupt_trace(kind, row, value)))


_ARCHIVE = F.npz(F.trace_arrays())
_MEMBERS = F.members_of(_ARCHIVE)
_RANGES = F.data_ranges(_ARCHIVE)


@st.composite
def broken_archive(draw_):
    data = _ARCHIVE
    how = draw_(st.sampled_from(["truncate", "flip", "rename", "extra", "huge-header", "duplicate"]))
    if how == "truncate":
        return how, data[:draw_(st.integers(0, len(data) - 1))]
    if how == "flip":  # a flipped byte that zipfile itself notices (padding bits of deflate streams it cannot)
        start, end = draw_(st.sampled_from(_RANGES))
        at = draw_(st.integers(start, end - 1))
        data = data[:at] + bytes([data[at] ^ draw_(st.integers(1, 255))]) + data[at + 1:]
        assume(not F.zip_reads(data))
        return how, data
    members = list(_MEMBERS)
    if how == "rename":
        i = draw_(st.integers(0, len(members) - 1))
        members[i] = (draw_(st.sampled_from(["x.npy", "top_logp", "../top_logp.npy", "dir/top_logp.npy"])),
                      members[i][1])
    elif how == "extra":
        members.append((draw_(st.sampled_from(["junk.npy", "notes.txt", "a/b.npy"])),
                        F.npy(np.zeros(draw_(st.integers(1, 1000))))))
    elif how == "huge-header":
        i = draw_(st.integers(0, len(members) - 1))
        shape = tuple(draw_(st.lists(st.integers(10**6, 10**12), min_size=1, max_size=2)))
        members[i] = (members[i][0], F.npy_header(shape))
    elif how == "duplicate":
        members.append(members[draw_(st.integers(0, len(members) - 1))])
    return how, F.zip_members(members, deflate=draw_(st.booleans()))


for i, (how, data) in enumerate(draw(broken_archive(), 25)):
    cli(f"generated-archive-{how}-{i}", TRACE_USERS[i % 3], {TRACE: data})

_json = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
                     lambda children: st.lists(children, max_size=4)
                     | st.dictionaries(st.text(max_size=5).filter(
                         lambda k: k not in ("logprobs", "content", "top_logprobs", "choices")), children, max_size=4),
                     max_leaves=20)


@st.composite
def bad_logprobs(draw_):
    """A logprobs document with one defect (or no logprobs structure at all)."""
    how = draw_(st.sampled_from(["random", "logprob", "top", "content", "item", "token", "bytes", "lengths",
                                 "completion-logprob", "mass", "no-choices"]))
    if how == "random":
        return draw_(_json)
    chat = how not in ("lengths", "completion-logprob")
    doc = F.chat_logprobs(draw_(st.integers(1, 4)), draw_(st.integers(1, 4))) if chat else \
        F.completion_logprobs(draw_(st.integers(1, 4)), draw_(st.integers(1, 4)))
    lp = doc["choices"][0]["logprobs"]
    bad_logprob = st.one_of(st.floats(min_value=1e-3, allow_infinity=False), st.text(max_size=3), st.booleans(),
                            st.lists(st.floats(-1, 0), max_size=2), st.none())
    if how == "logprob":
        item = draw_(st.sampled_from(lp["content"]))
        target = item if draw_(st.booleans()) else draw_(st.sampled_from(item["top_logprobs"]))
        target["logprob"] = draw_(bad_logprob)
    elif how == "top":
        draw_(st.sampled_from(lp["content"]))["top_logprobs"] = draw_(st.sampled_from([[], None, "x", {}, 3]))
    elif how == "content":
        lp["content"] = draw_(st.sampled_from([None, "x", 3, {"a": 1}]))
    elif how == "item":
        lp["content"][0] = draw_(st.sampled_from([None, "x", 3, [1, 2]]))
    elif how == "token":
        draw_(st.sampled_from(lp["content"]))["token"] = draw_(st.sampled_from([None, 3, ["a"], {"t": 1}]))
    elif how == "bytes":
        draw_(st.sampled_from(lp["content"]))["bytes"] = draw_(st.sampled_from([[256], [-1], "ab", [1.5], 7]))
    elif how == "lengths":
        lp["tokens"] = lp["tokens"] + ["extra"]
    elif how == "completion-logprob":
        lp["token_logprobs"][0] = draw_(st.one_of(st.floats(min_value=1e-3, allow_infinity=False),
                                                  st.text(max_size=3)))
    elif how == "mass":  # every position's top two alone carry probability 1.8
        for item in lp["content"]:
            item["top_logprobs"] = [{"token": "a", "logprob": -0.1053605}, {"token": "b", "logprob": -0.1053605}]
    elif how == "no-choices":
        doc = {"choices": draw_(st.sampled_from([None, "x", [], [{}], [{"logprobs": None}]]))}
    return doc


for i, doc in enumerate(draw(bad_logprobs(), 35)):
    cli(f"generated-logprobs-{i}", "import-logprobs lp.json --vocab-size 1000 --out t.npz",
        logprobs_file(json.dumps(doc, allow_nan=True).encode()))

COMMANDS = {
    "frontier": [f"--law={LAW}", "--P=8"], "theory": [f"--law={LAW}", "--at=4"], "trace-info": ["chat"],
    "compare": [], "bench": [], "realtree": ["--out=r.npz"], "record": ["--prompts=p.txt", "--out=r.npz"],
    "import-logprobs": ["lp.json", "--vocab-size=100", "--out=t.npz"],
}
INT_OPTIONS = {"frontier": ["--P", "--replicates", "--seed", "--threads"], "theory": [],
               "trace-info": ["--bootstrap", "--seed"], "compare": ["--replicates", "--regimes", "--components"],
               "bench": ["--P", "--replicates", "--big", "--repeats"],
               "realtree": ["--contexts", "--P", "--batch", "--lookahead"],
               "record": ["--tokens", "--top-k", "--batch"], "import-logprobs": ["--vocab-size"]}


@st.composite
def bad_argv(draw_):
    command = draw_(st.sampled_from(sorted(COMMANDS)))
    argv = [command, *COMMANDS[command]]
    how = draw_(st.sampled_from(["unknown-option", "not-an-int", "missing-value"]))
    if how == "unknown-option" or not INT_OPTIONS[command]:
        argv.append("--" + draw_(st.text(alphabet=string.ascii_lowercase + "-", min_size=2, max_size=10).filter(
            lambda s: not s.startswith("-") and not any(o.startswith("--" + s) for o in
                                                        ["--help", "--json", "--law", "--at", "--plot", "--bounds",
                                                         "--P", "--replicates", "--seed", "--threads", "--out",
                                                         "--bootstrap", "--results", "--regimes", "--components",
                                                         "--big", "--repeats", "--reference-P", "--no-cold-start",
                                                         "--no-startup", "--contexts", "--batch", "--lookahead",
                                                         "--model", "--trace", "--device", "--dtype", "--float32",
                                                         "--tokens", "--temperature", "--top-k", "--max-len",
                                                         "--raw", "--no-cache", "--prompts", "--text",
                                                         "--vocab-size", "--tail", "--version"]))))
    elif how == "not-an-int":
        argv.append(f"{draw_(st.sampled_from(INT_OPTIONS[command]))}={draw_(_not_int)}")
    else:
        argv.append(draw_(st.sampled_from(INT_OPTIONS[command])))
    return tuple(argv)


for i, argv in enumerate(draw(bad_argv(), 25)):
    cli(f"generated-argv-{i}", argv, {"p.txt": b"Hello\n", **logprobs_file(F.chat_logprobs())})


def _corrupt_results(kind: str, row: int) -> dict:
    a = F.results_arrays()
    n = a["source"].shape[0]
    r = row % n
    if kind == "drop":
        del a[["accepted", "source", "meta", "parent", "format"][row % 5]]
    elif kind == "decreasing":
        a["accepted"][r, 5] = a["accepted"][r, 4] - 0.5
    elif kind == "nan":
        a["accepted"][r, row % 256] = np.nan
    elif kind == "source":
        a["source"][r] = [7, -1][row % 2]
    elif kind == "shape":
        f = ["accepted", "parent", "seconds", "row"][row % 4]
        a[f] = a[f][:-1]
    elif kind == "dtype":
        f = ["accepted", "source", "seconds"][row % 3]
        a[f] = a[f].astype([np.complex64, "U2", np.bool_][row % 3])
    elif kind == "pickled":
        a["seconds"] = np.array([None] * n, dtype=object)
    return a


for i, (kind, row) in enumerate(draw(st.tuples(st.sampled_from(
        ["drop", "decreasing", "nan", "source", "shape", "dtype"]), st.integers(0, 10**6)), 15)):
    cli(f"generated-results-{kind}-{i}", ["compare", "--results", RESULTS, "--replicates", "4"],
        {RESULTS: F.npz(_corrupt_results(kind, row))})
cli("compare-results-pickled", ["compare", "--results", RESULTS],
    {RESULTS: F.zip_members([(n, F.npy(np.array([None, 1], dtype=object)) if n == "seconds.npy" else d)
                             for n, d in F.members_of(F.npz(F.results_arrays()))])})

_ids = [c.id for c in CASES]
assert len(set(_ids)) == len(_ids), f"case ids must be unique: {sorted(i for i in _ids if _ids.count(i) > 1)}"
