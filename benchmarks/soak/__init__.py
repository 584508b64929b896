"""The soak harness: every store under load, with real faults injected mid-run.

Run by ``./scripts/soak``; see ``benchmarks/SOAK.md`` for what it checks and the results.
"""
