"""kvd fault harness (Jepsen-style): cluster runner, nemeses, workloads, checkers.

Run as `/usr/bin/python3 -m tools.jepsen ...` from the repository root; see README.md.
"""
