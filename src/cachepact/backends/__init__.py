"""The stores behind ``env``: in memory (the embedded default), Redis (fakeredis in process, or a
real server) and SQL databases (SQLite, PostgreSQL). A layer below ``conformance``: they know
nothing of runs or judges; the kit reads them directly to judge what a run left behind."""

IN_PROCESS = "the in-process fakeredis server"  # how messages name it: it has no URL of the user's
