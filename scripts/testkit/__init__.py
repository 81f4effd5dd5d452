"""What the test tooling shares: the stand-ins for AWS (scripts/moto_server.py, the local runner
in scripts/runner/), the bench and the tests import these instead of keeping copies.

Standard library only. Importable with scripts/ on sys.path: moto_server.py and
scripts/runner/runner.py have it there as scripts run from that folder, pytest through
pyproject.toml's `pythonpath`, bench/bench.py adds it.

worker/worker.py keeps its own copies of what it needs (`others_can_traverse`, `kill_group`): it
is embedded into lew and copied into the image whole, so it stays one self-contained file.
"""
