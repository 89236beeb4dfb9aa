"""Network adequacy: gaps in a payer's network that open single-case-agreement / gap-exception opportunities.

Pure core (no Kafka, no Faust): ``rules`` (triggers, dedup), ``reference`` (network reference files),
``geography`` (offline ZIP centroids and counties). ``cli`` is the offline ``claimwatch opportunities``.
"""
