"""``claimwatch simulate``: a deterministic, fictional multi-state provider group with planted patterns.

world.py     the group, its payers, contracts, SCAs, network directory and planted gaps (from a seed)
generate.py  claims, claim context and 835 remittances week by week; the manifest; write_simulation()
live.py      the steady-rate stream to Kafka (parsed by the project's 835 parser, then published)
cli.py       the ``simulate`` subcommand

docs/simulate.md describes the files, the manifest and every planted pattern.
"""
