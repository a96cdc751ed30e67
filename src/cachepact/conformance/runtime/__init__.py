"""Stage 0, the runtime a check runs adapters on: the controlled scheduler and its primitives (locks,
events, timed waits), the virtual clock, the app instances' threads, work handed to helper threads,
and the kit's internal control-flow signals."""
