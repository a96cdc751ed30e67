"""Stage 4, reporting: a check's progress as it goes, its ``Result``, and the text, JSON and JUnit
renderings that are a tested contract."""
