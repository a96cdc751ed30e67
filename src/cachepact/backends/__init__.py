"""The stores behind ``env``: in memory (the embedded default), Redis (fakeredis in process, or a
real server) and SQL databases (SQLite, PostgreSQL). A layer below ``conformance``: they know
nothing of runs or judges; the kit reads them directly to judge what a run left behind."""

IN_PROCESS = "the in-process fakeredis server"  # how messages name it: it has no URL of the user's


class HashField:
    """One field of a Redis hash, as the kit names a cache entry: a cache that keeps many keys'
    entries in one hash (``HSET products k1 ...``) has one entry per field, not one per hash."""

    __slots__ = ("field", "key")

    def __init__(self, key: bytes, field: bytes) -> None:
        self.key, self.field = key, field

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HashField) and (self.key, self.field) == (other.key, other.field)

    def __hash__(self) -> int:
        return hash((HashField, self.key, self.field))

    def __lt__(self, other: object) -> bool:  # the kit sorts the keys it reads
        return (self.key, self.field) < (other.key, other.field) if isinstance(other, HashField) else False

    def __repr__(self) -> str:
        return f"{_text(self.key)}[{_text(self.field)}]"


def _text(b: bytes) -> str:
    try:
        return b.decode()
    except UnicodeDecodeError:
        return repr(b)
