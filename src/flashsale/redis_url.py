"""Redis URLs as the three Redis engines take them (stock, coupons, draws): flashsale's own options in
the query (`prefix=`, the stock ledger's `buckets=` and `groups=`), the rest for redis-py."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from redis import BlockingConnectionPool, Redis

DEFAULT_CONNECTIONS = 64  # threads beyond this wait for a connection instead of opening more


def take_options(
    url: str, ours: Mapping[str, str], *, ignored: frozenset[str] = frozenset()
) -> tuple[dict[str, str], SplitResult]:
    """Split our options (`ours`: name -> default) out of the URL's query; drop the `ignored` ones.

    Returns our options, defaults filled in, and the URL as redis-py is to see it.
    """
    parts = urlsplit(url)
    options = dict(ours)
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in options:
            options[key] = value
        elif key not in ignored:
            rest.append((key, value))
    return options, parts._replace(query=urlencode(rest))


def node_client(parts: SplitResult) -> Redis:
    """A client of one Redis node with a blocking pool of DEFAULT_CONNECTIONS, decoding replies."""
    pool = BlockingConnectionPool.from_url(
        urlunsplit(parts), decode_responses=True, max_connections=DEFAULT_CONNECTIONS
    )
    return Redis(connection_pool=pool)
