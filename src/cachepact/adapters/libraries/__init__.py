"""Recipes: the caching libraries Python teams use, wired the way their documentation shows, over
the run's ``env``, one module per library. Each module needs its library (``pip install
'cachepact[<library>]'``); without it, importing the module is a one-line ``MissingDependency``."""
