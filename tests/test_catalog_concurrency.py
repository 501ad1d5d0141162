"""Concurrent catalog writes over real HTTP: versions stay gapless, uploads stay idempotent."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.factories import seller

CSV = "product_ref,sku_code,title,price,currency,status\n" + "".join(
    f"p{i},p{i}-a,Product {i},{i + 1}.00,EUR,active\n" for i in range(50)
)


@pytest.mark.slow
def test_racing_edits_of_one_product_get_consecutive_versions(live_server, client):
    _, headers = seller(client, plan="enterprise")
    product = client.post(
        "/v1/tenant/products",
        headers=headers,
        json={"title": "Lamp", "skus": [{"sku_code": "L-1", "price": "10.00", "currency": "EUR"}]},
    ).json()

    def rename(n):
        return httpx.patch(
            f"{live_server}/v1/tenant/products/{product['id']}",
            headers=headers,
            json={"title": f"Lamp {n}"},
            timeout=60,
        )

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(rename, range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert sorted(r.json()["version"] for r in responses) == list(range(2, 10))
    history = client.get(f"/v1/tenant/products/{product['id']}/versions", headers=headers).json()
    assert [v["version"] for v in history] == list(range(9, 0, -1))


@pytest.mark.slow
def test_racing_uploads_of_one_file_create_each_product_once(live_server, client):
    _, headers = seller(client, plan="enterprise")

    def upload(_):
        return httpx.post(
            f"{live_server}/v1/tenant/products/bulk",
            headers=headers,
            files={"file": ("p.csv", CSV)},
            timeout=120,
        )

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(upload, range(4)))
    assert [r.status_code for r in responses] == [200] * 4
    assert sorted(r.json()["products_created"] for r in responses) == [0, 0, 0, 50]
    listed = client.get("/v1/tenant/products", params={"limit": 100}, headers=headers).json()["items"]
    assert len(listed) == 50 and {p["version"] for p in listed} == {1}
