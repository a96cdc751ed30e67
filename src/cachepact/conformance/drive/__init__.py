"""Stage 3, driving: runs of operations one at a time and several in flight, and the strategies
that choose them (Hypothesis sequences, exhaustive small schedules, Hypothesis schedules, replay)."""
