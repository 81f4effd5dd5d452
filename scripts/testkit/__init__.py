"""What the test tooling shares: the stand-ins for AWS (scripts/moto_server.py, the local runner
in scripts/runner/), the bench and the tests import these instead of keeping copies.

Standard library only. Imported with scripts/ on sys.path: moto_server.py has it there as a
script in that folder, scripts/runner/runner.py and bench/bench.py put it there, pytest gets it
from pyproject.toml's `pythonpath`.

worker/worker.py keeps its own copies of what it needs (`others_can_traverse`, `kill_group`): it
is embedded into lew and copied into the image whole, so it stays one self-contained file.
"""
