"""Experiments: each runs the library end to end and returns a result object (``to_dict``, ``to_pandas``).

- ``brw.studies.compare``: real optimal trees against every model of the verifier (``brw compare``);
- ``brw.studies.bench``: the kernels' speed beside the pure-Python reference and the floor (``brw bench``);
- ``brw.studies.theory_check``: slope and offset of accepted(P) against every bound, for many laws;
- ``brw.studies.sweep_bench``: what the sweep layer costs beside the kernels alone (``brw.sweep``);
- ``brw.studies.sweep_slopes``: the slope of accepted(P) against log P per law, from a sweep's table.

Their tables are in ``brw.tables`` and their figures in ``brw.figures``; ``sims/`` holds thin scripts that run
them and record what they measured under ``figures/``.
"""
