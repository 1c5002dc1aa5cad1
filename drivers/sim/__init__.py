"""The living city: field-device simulators that follow the register maps exactly.

Entry point: drivers.sim.runner.CitySimulator (API and cost figures in its module docstring); the HTTP control
channel is documented in drivers.sim.control, fault names in drivers.sim.faults.FAULTS, the city's profiles and
random-fault rates in drivers.sim.profiles. `python -m drivers.sim --help` runs it standalone.
"""
