"""The soak run of the whole stack (bench/soak.py, tests/integration/test_soak.py).

Processes: the simulators (`python -m drivers.sim`, free ports), the control server with its probes
(`python -m bench.soaklib.server_proc`), throw-away clients killed abruptly (`python -m bench.soaklib.victim`),
and the orchestrator (bench.soaklib.run: consoles, third-party client, fault schedule, CPU/RSS sampling, checks).
"""
