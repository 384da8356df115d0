"""Backends that run a recorded job somewhere other than a local supervisor (see slurm.py)."""
