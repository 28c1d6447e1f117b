"""tritongrad's perf suite: ``python perf/run.py`` (or ``python -m perf``); see README.md."""
