"""The job engine: submit, supervise, stop and finish jobs (one module per verb)."""
