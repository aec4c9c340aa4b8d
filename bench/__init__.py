"""`make bench`: the suite beside its baselines; results in bench/results/latest.json and docs/BENCHMARKS.md."""
