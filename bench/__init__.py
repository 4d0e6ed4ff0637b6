"""The benchmark suite: each module measures a figure beside a baseline from the same run.

Run from the repository root, `python -m bench.run_all` for everything (or
`python bench/run_all.py`), `python -m bench.bench_daemon` and the like for one
benchmark; bench/README.md describes each. The goals live in `bench.goals`.
"""
