"""A signed-in shopper's history as recommendations first read it from PostgreSQL: their latest
tracked events, newest first, and everything they bought, by purchase event or by paid order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from serving.recommend.history import read_history
from tests import recommendation_world as worlds
from tests.factories import buyer, seller
from tests.factories_commerce import add_to_cart, checkout, stocked_sku, user_id


def test_latest_events_newest_first_and_purchases_by_event_or_paid_order(client):
    store, _ = seller(client)
    viewed, ordered, bought = (stocked_sku(store) for _ in range(3))
    headers = buyer(client)
    shopper = str(user_id(client, headers))
    add_to_cart(client, headers, ordered.sku_id)
    assert checkout(client, headers).status_code == 201  # a card payment: the order is paid
    start = datetime.now(UTC) - timedelta(hours=1)
    worlds.send_events([
        worlds.event("view", str(viewed.product_id), user_id=shopper, at=start + timedelta(minutes=minute))
        for minute in range(4)
    ] + [worlds.event("purchase", str(bought.product_id), user_id=shopper, at=start + timedelta(minutes=5)),
         worlds.event("impression", str(viewed.product_id), user_id=shopper, at=start + timedelta(minutes=6))])

    history = read_history(shopper, limit=3)

    assert [(event.event_type, event.product_id) for event in history.recent] == [
        ("purchase", str(bought.product_id)), ("view", str(viewed.product_id)), ("view", str(viewed.product_id))]
    assert [event.at for event in history.recent] == sorted((event.at for event in history.recent), reverse=True)
    assert history.purchased == {str(bought.product_id), str(ordered.product_id)}
    assert read_history(str(uuid.uuid4()), limit=3).recent == ()
