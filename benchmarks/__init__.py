"""Side-by-side broadcast benchmark: the product against two single-process baselines.

Run `python -m benchmarks.run --quick` (a few minutes) or `python -m benchmarks.run` (the
full run, about 15 minutes on a 2-core machine). See docs/performance.md.
"""
