"""beamish benchmarks: ``python -m bench <suite> [--json FILE] [--quick]``.

Each suite is a module ``bench/<suite>.py`` with a ``run(quick: bool) -> Report`` function.
Every figure is compared against a baseline measured in the same run, because these machines
are noisy: suites report ratios and medians, never a lone absolute time.
"""
