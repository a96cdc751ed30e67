"""Adapters the kit ships: reference ones for each pattern (``reference``), correct adapters written
the way teams write caches (``idioms``), a toy read-through library (``library``), and the catalogue
of deliberately broken ones it must catch (``broken``).

Each is a factory ``make(env) -> cachepact.Adapter``, written only against the public contract, so
``cachepact check cachepact.adapters.reference:cache_aside_leased --pattern cache-aside`` works.
"""
