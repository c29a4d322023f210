"""Benchmarks. Run all with ``python -m benchmarks`` (``make bench``) or one module with
``python -m benchmarks.bench_<name>``. Each ``bench_*.py`` module exposes ``run() -> list[Row]``;
every row reports its own baseline measured in the same run (raw fbclient, or a bare app)."""
