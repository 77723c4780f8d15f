"""Benchmarks: ``python -m bench`` runs every module here that has a ``main()``; ``python -m bench NAME``
runs one. Each prints its figures as ratios against a baseline measured in the same run, because the
machines they run on are shared and noisy."""
