"""Stage 2, judging: the refinement mapping from recorded calls to the model's steps, the checker
that steps the pattern's model observation by observation, and the findings it yields."""
