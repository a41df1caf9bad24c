"""Experiments about segkit itself: the paired ablation against a plain PyTorch loop."""
