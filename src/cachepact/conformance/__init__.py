"""The conformance kit: runs a user's adapter and judges every step against the model.

Internal: the public API is ``cachepact`` itself (``check``, ``Adapter``, ``conformance_test``,
``Result``, ``Finding``). Modules, by job:

* the contract and what the kit hands an adapter: ``_contract`` (``Adapter``), ``_env`` (the
  recording ``env``), ``_servers`` (where its DB, cache and Redis live, world after world; the
  stores themselves are ``cachepact.backends``), ``_redis_hook`` and ``_redis_commands`` (every
  redis-py command recorded and judged by its effect), ``_attribution`` (App or Cache, by dynamic
  extent);
* judging: ``_findings`` (invariant names, ``Finding``), ``_judge`` (refinement and invariants);
* one run: ``_world`` (a run of operations one at a time), ``_interleaved`` (several in flight),
  ``_scheduler`` and ``_primitives`` (the controlled scheduler), ``_replay`` (keys, replay strings),
  ``_run`` (the shape every run ends in);
* drivers: ``_sequences`` (Hypothesis over sequences), ``_exhaustive`` (every schedule of small
  scenarios), ``_schedules`` (Hypothesis over scenarios and schedules), ``_hypothesis`` (settings);
* the entry call and its outcome: ``_check``, ``_progress``, ``_result``, ``_report``;
* for users' test suites: ``_testcase`` (``conformance_test``).
"""
