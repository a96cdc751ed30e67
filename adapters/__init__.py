"""Reference adapters, backends and the catalogue of broken adapters the kit must catch."""

__all__: list[str] = []
