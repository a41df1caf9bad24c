"""Experiments run with segkit: grids of runs (``sweep``), their tables and curves (``report``),
and the paired ablation against a plain PyTorch loop (``ablation``, ``plain_loop``)."""
