"""Atelier's benchmarks: speed and scale measured as ratios against a baseline in the same run.

`python -m bench` (make bench) seeds a database, serves the app and a bare Django baseline
with gunicorn, loads both with wrk, runs the task pipeline through real worker clusters and
writes bench/results.json. `--quick` (make bench-quick) is the short smoke run for CI.
See docs/PERFORMANCE.md for the method.

The orchestrator (bench.run) never imports Django: every phase that needs the app runs in a
subprocess with the app's environment, so each gets exactly the settings it asks for.
"""
