"""Bulk product upload: CSV, XLSX and JSON files, every bad row reported, all or nothing, idempotent."""

import csv
import io
import json

import pytest
from openpyxl import Workbook

from tests.factories import seller
from transactional.db import PLATFORM, session_scope
from transactional.services import bulk_upload
from transactional.services.catalog import ensure_categories

HEADER = [
    "product_ref",
    "sku_code",
    "title",
    "category",
    "status",
    "price",
    "currency",
    "sku_attributes",
    "images",
]
ROWS = [
    [
        "kettle",
        "K-RED",
        "Kettle",
        "home/kitchen",
        "active",
        "30.00",
        "EUR",
        '{"color": "red"}',
        '["https://img.example.com/k.jpg"]',
    ],
    [
        "kettle",
        "K-BLUE",
        "Kettle",
        "home/kitchen",
        "active",
        "27.5",
        "EUR",
        '{"color": "blue"}',
        '["https://img.example.com/k.jpg"]',
    ],
    ["mug", "M-1", "Mug", "", "draft", "4", "EUR", "", ""],
]


def _csv(header, rows) -> bytes:
    lines = io.StringIO()
    writer = csv.writer(lines)
    writer.writerow(header)
    writer.writerows(rows)
    return lines.getvalue().encode()


def _number_or_text(cell: str):
    """Cells as a spreadsheet user would type them: numbers become numeric cells."""
    try:
        return float(cell)
    except ValueError:
        return cell or None


def _xlsx(header, rows) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append([_number_or_text(cell) for cell in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _json(header, rows) -> bytes:
    objects = []
    for row in rows:
        values = {name: cell for name, cell in zip(header, row, strict=True) if cell != ""}
        for name in ("sku_attributes", "images"):
            if name in values:
                values[name] = json.loads(values[name])
        objects.append(values)
    return json.dumps(objects).encode()


ENCODERS = {"csv": _csv, "xlsx": _xlsx, "json": _json}


def _upload(client, headers, name, content):
    return client.post("/v1/tenant/products/bulk", files={"file": (name, content)}, headers=headers)


@pytest.fixture
def categories(db):
    with session_scope(PLATFORM) as session:
        return ensure_categories(session, ["home/kitchen"])


@pytest.mark.parametrize("file_format", ENCODERS)
def test_upload_creates_products_and_reuploading_changes_nothing(client, categories, file_format):
    _, headers = seller(client)
    content = ENCODERS[file_format](HEADER, ROWS)
    first = _upload(client, headers, f"products.{file_format}", content)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "rows": 3,
        "products_created": 2,
        "products_updated": 0,
        "products_unchanged": 0,
        "skus_created": 3,
        "skus_updated": 0,
        "skus_unchanged": 0,
    }
    again = _upload(client, headers, f"products.{file_format}", content).json()
    assert (again["products_unchanged"], again["skus_unchanged"], again["products_created"]) == (2, 3, 0)

    products = {
        p["external_ref"]: p for p in client.get("/v1/tenant/products", headers=headers).json()["items"]
    }
    kettle = products["kettle"]
    assert (kettle["version"], kettle["min_price"], kettle["category_id"]) == (
        1,
        "27.50",
        str(categories["home/kitchen"]),
    )
    assert {sku["sku_code"]: sku["attributes"] for sku in kettle["skus"]} == {
        "K-BLUE": {"color": "blue"},
        "K-RED": {"color": "red"},
    }
    assert kettle["images"] == [{"url": "https://img.example.com/k.jpg", "alt": None}]
    assert products["mug"]["status"] == "draft"


def test_a_changed_row_updates_its_product_as_a_new_version(client, categories):
    _, headers = seller(client)
    _upload(client, headers, "p.csv", _csv(HEADER, ROWS))
    changed = [row[:5] + (["19.99"] if row[1] == "K-BLUE" else [row[5]]) + row[6:] for row in ROWS]
    result = _upload(client, headers, "p.csv", _csv(HEADER, changed)).json()
    assert (result["products_updated"], result["skus_updated"], result["products_unchanged"]) == (1, 1, 1)
    kettle = next(
        p
        for p in client.get("/v1/tenant/products", headers=headers).json()["items"]
        if p["external_ref"] == "kettle"
    )
    assert (kettle["version"], kettle["min_price"]) == (2, "19.99")
    versions = client.get(f"/v1/tenant/products/{kettle['id']}/versions", headers=headers).json()
    assert [v["change_reason"] for v in versions] == ["import", "import"]


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_every_bad_row_is_reported_by_its_file_row_and_nothing_is_written(client, categories, file_format):
    _, headers = seller(client)
    bad = [
        ROWS[0],
        [
            "kettle",
            "K-BLUE",
            "Kettle",
            "home/kitchen",
            "active",
            "abc",
            "EUR",
            "",
            '["https://img.example.com/k.jpg"]',
        ],
        ["", "", "", "", "", "", "", "", ""],  # blank: skipped, still counted
        ["mug", "M-1", "Mug", "no/such", "draft", "4", "EURO", "{not json", ""],
        ["mug", "K-RED", "Mug", "no/such", "draft", "4", "EUR", "", ""],
    ]
    response = _upload(client, headers, f"bad.{file_format}", ENCODERS[file_format](HEADER, bad))
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    errors = [(e["row"], e["field"]) for e in response.json()["errors"]]
    assert errors == [(2, "price"), (4, "currency"), (4, "sku_attributes")]
    assert all(e["reason"] for e in response.json()["errors"])
    assert client.get("/v1/tenant/products", headers=headers).json()["items"] == []

    # Once every row is well-formed, the checks against the other rows and the store run.
    consistent = [
        ROWS[0],
        ROWS[1],
        ["mug", "M-1", "Mug", "", "draft", "4", "EUR", "", ""],
        ["mug", "M-2", "Cup", "", "draft", "4", "EUR", "", ""],
        ["mug", "K-RED", "Mug", "", "draft", "4", "EUR", "", ""],
        ["pan", "P-1", "Pan", "no/such", "draft", "4", "EUR", "", ""],
    ]
    response = _upload(client, headers, f"bad.{file_format}", ENCODERS[file_format](HEADER, consistent))
    assert response.status_code == 422
    assert [(e["row"], e["field"]) for e in response.json()["errors"]] == [
        (4, "title"),
        (5, "sku_code"),
        (6, "category"),
    ]
    assert response.json()["errors"][0]["reason"] == "differs from row 3, the first row of product mug"
    assert client.get("/v1/tenant/products", headers=headers).json()["items"] == []


def test_header_problems_are_reported_as_row_zero(client):
    _, headers = seller(client)
    response = _upload(client, headers, "p.csv", _csv(["product_ref", "title", "colour"], [["a", "b", "c"]]))
    assert response.status_code == 422
    problems = {(e["row"], e["field"], e["reason"]) for e in response.json()["errors"]}
    assert (0, "colour", "unknown column") in problems
    assert {(0, name, "required column is missing") for name in ("sku_code", "price", "currency")} <= problems


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("p.txt", b"whatever", "upload a .csv, .xlsx or .json file"),
        ("p.xlsx", b"not a zip", "the file is not a readable XLSX workbook"),
        ("p.json", b"{", "the file is not valid JSON"),
        ("p.json", b'{"rows": []}', "a JSON upload is an array of row objects"),
        ("p.csv", b"\xff\xfe\x00", "the CSV file is not UTF-8 text"),
        ("p.csv", ",".join(bulk_upload.REQUIRED_COLUMNS).encode(), "the file holds no rows"),
    ],
)
def test_unreadable_files_are_422_naming_the_file(client, name, content, reason):
    _, headers = seller(client)
    response = _upload(client, headers, name, content)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "file", "reason": reason}]


def test_json_rows_that_are_not_objects_are_reported(client):
    _, headers = seller(client)
    response = _upload(client, headers, "p.json", json.dumps([42, {"product_ref": "a"}]).encode())
    fields = {(e["row"], e["field"]) for e in response.json()["errors"]}
    assert (1, "row") in fields and (2, "sku_code") in fields


def test_oversized_uploads_are_413(client, monkeypatch):
    monkeypatch.setattr(bulk_upload, "MAX_UPLOAD_BYTES", 100)
    _, headers = seller(client)
    response = _upload(client, headers, "p.csv", _csv(HEADER, ROWS))
    assert response.status_code == 413 and response.json()["errors"][0]["field"] == "file"


def test_the_column_format_is_documented_in_openapi(client):
    operation = client.get("/openapi.json").json()["paths"]["/v1/tenant/products/bulk"]["post"]
    for column in bulk_upload.COLUMNS:
        assert f"`{column}`" in operation["description"]


def test_uploading_what_the_api_created_changes_nothing(client, categories):
    """API edits and uploads compare products in one canonical form."""
    _, headers = seller(client)
    created = client.post(
        "/v1/tenant/products",
        headers=headers,
        json={
            "external_ref": "kettle",
            "title": "Kettle",
            "category_id": str(categories["home/kitchen"]),
            "status": "active",
            "images": ["https://img.example.com/k.jpg"],
            "skus": [
                {"sku_code": "K-RED", "price": "30", "currency": "eur", "attributes": {"color": "red"}},
                {"sku_code": "K-BLUE", "price": "27.5", "currency": "EUR", "attributes": {"color": "blue"}},
            ],
        },
    )
    assert created.status_code == 201, created.text
    result = _upload(client, headers, "p.csv", _csv(HEADER, ROWS[:2])).json()
    assert (result["products_unchanged"], result["skus_unchanged"]) == (1, 2), result
