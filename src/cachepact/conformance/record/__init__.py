"""Stage 1, recording: the ``env`` an adapter is handed, the stores behind it (world after world),
every redis-py command recorded by its effect, who made each call (App or Cache, by dynamic extent),
and how payloads decode into the values they stand for."""
