"""The conformance kit: runs a user's adapter and judges every step against the model.

Internal: the public API is ``cachepact`` itself (``check``, ``Adapter``, ``conformance_test``,
``Result``, ``Finding``). The folders are the stages of one check, in the order data flows:

* ``runtime/``: what adapters run on (the controlled scheduler and its primitives, the virtual
  clock, the app instances' threads, helper threads, internal signals);
* ``record/``: the recording ``env`` and the stores behind it, redis-py commands by their effect,
  attribution (App or Cache, by dynamic extent), payload decoding;
* ``judge/``: the refinement mapping and the checker that steps the pattern's model (``judge``,
  ``refinement``), and ``Finding``;
* ``drive/``: one run (``world`` one op at a time, ``interleaved`` several in flight) and the
  strategies that choose runs (``sequences``, ``exhaustive``, ``schedules``, ``replay``);
* ``report/``: ``Result``, progress, and the text, JSON and JUnit renderings.

At this folder's root: the contract (``_contract``: ``Adapter``), the entry calls (``_check``,
``_prove``) and the users' test-suite hook (``_testcase``).
"""
