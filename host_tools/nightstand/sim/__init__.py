"""Simulation: night scenarios, the signal generator, and the runner for the virtual board."""
