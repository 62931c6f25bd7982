"""Where the coupon and draw ledgers live: never under the stock ledger's prefix, one node on a Cluster."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from pydantic import ValidationError

from flashsale.config import Settings


def prefix_of(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query))["prefix"]


def test_coupons_and_draws_get_prefixes_of_their_own_beside_the_stock_ledgers() -> None:
    settings = Settings(_env_file=None, backend="redis", redis_url="redis://h:1/0?prefix=shop&buckets=4")
    # A stock ledger's rebuild deletes every key under `shop:`; theirs are not.
    assert prefix_of(settings.coupon_ledger_url()) == "shop-coupons"
    assert prefix_of(settings.draw_ledger_url()) == "shop-draws"
    assert "buckets" not in settings.draw_ledger_url()
    memory = Settings(_env_file=None)
    assert (memory.coupon_ledger_url(), memory.draw_ledger_url()) == ("memory://", "memory://")


def test_a_cluster_stock_ledger_needs_one_node_for_coupons_and_draws() -> None:
    cluster = {"backend": "redis", "redis_url": "redis+cluster://h:7001?prefix=shop&groups=16"}
    with pytest.raises(ValidationError, match="FLASHSALE_PROMOTIONS_REDIS_URL"):
        Settings(_env_file=None, **cluster)
    settings = Settings(_env_file=None, promotions_redis_url="redis://p:6379/2", **cluster)
    assert urlsplit(settings.coupon_ledger_url()).netloc == "p:6379"
    draws = settings.draw_ledger_url()
    assert prefix_of(draws) == "shop-draws" and "groups" not in draws
    with pytest.raises(ValidationError, match="one Redis node"):
        Settings(_env_file=None, promotions_redis_url="redis+cluster://p:7001", **cluster)
