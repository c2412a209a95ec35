"""The parts of brw that touch a real language model, or what one produced.

- ``models``: loading causal LMs offline (the only module that imports torch at its top), CPU or CUDA;
- ``recording``: recording verifier traces (sampled, teacher-forced, greedy branches);
- ``expansion``: expanding a real model's own optimal draft tree (the oracle drafter) on its KV cache;
- ``realtree``: the real-tree results files and their statistics (torch-free);
- ``realdrafter``: a real self-speculative (early-exit) drafter against the real speed of light;
- ``costcurve``: the measured cost of one tree-masked verifier forward against the number of tokens;
- ``importers``: traces from OpenAI-compatible logprobs (vLLM, llama.cpp, hosted APIs);
- ``specdecode``: a real speculative decoder (chain drafts, speculative sampling) that writes vLLM-format logs.

Nothing below this subpackage imports it (docs/layout.md; ``tests/test_layout.py`` checks the walls).
"""
