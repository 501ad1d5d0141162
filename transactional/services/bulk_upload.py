"""Bulk product uploads: parse a CSV, XLSX or JSON file into `ProductRow`s and import them.

Every data row is validated and every problem is reported at once ({row, field, reason}); the
import is all or nothing. Row numbers are the file's: row N is the Nth data row after the
header (blank rows are skipped but still counted; row 0 is the header), or the Nth element of
a JSON array. In a spreadsheet, data row N is on line N + 1.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException
from pydantic import ValidationError
from sqlalchemy.orm import Session

from transactional.errors import Unprocessable
from transactional.services.catalog import ImportResult, ProductRow, import_products, row_problem

MAX_UPLOAD_BYTES = 64 * 2**20
MAX_UPLOAD_ROWS = 200_000
COLUMNS = list(ProductRow.model_fields)
REQUIRED_COLUMNS = [name for name, spec in ProductRow.model_fields.items() if spec.is_required()]
FORMATS = ("csv", "xlsx", "json")


def _column_doc(name: str) -> str:
    spec = ProductRow.model_fields[name]
    necessity = (
        "required"
        if spec.is_required()
        else f"optional, default `{json.dumps(spec.get_default(call_default_factory=True), default=str)}`"
    )
    return f"- `{name}` ({necessity}){': ' + spec.description if spec.description else ''}"


UPLOAD_DESCRIPTION = "\n".join(
    [
        "Create or update the store's products from one file: CSV (UTF-8, comma separated, header line),"
        " XLSX (first sheet, header row) or JSON (an array of row objects). One row per SKU; rows with the"
        " same `product_ref` form one product and must agree on its columns (title, description, category,"
        " brand, attributes, images, status).",
        "",
        "Columns (header names are case-insensitive; empty cells take the default):",
        *(_column_doc(name) for name in COLUMNS),
        "",
        "`price` is an exact decimal with at most 2 places; `currency` an ISO 4217 code shared by all"
        " SKUs of a product; `status` draft, active or inactive (an active product needs an active SKU);"
        " `attributes`, `sku_attributes` and `images` are JSON text in CSV/XLSX cells.",
        "",
        "Importing is an upsert keyed by `product_ref` (the product's `external_ref`) and `sku_code`:"
        " uploading the same file again changes nothing, a changed row updates its product (a new"
        " version). SKUs the file does not mention are kept. A deleted product named again is restored.",
        "",
        "All rows are validated before anything is written; if any is bad, nothing is imported and the"
        " 422 problem lists `errors: [{row, field, reason}]` (the first 1000, `error_count` gives the"
        " total). `row` is the 1-based data row (in a spreadsheet, data row N is on line N + 1; row 0 is"
        " the header) or the 1-based position in the JSON array.",
        f"At most {MAX_UPLOAD_ROWS} rows and {MAX_UPLOAD_BYTES // 2**20} MiB per file.",
    ]
)


def _upload_format(filename: str | None, content_type: str | None) -> str:
    extension = (filename or "").rsplit(".", 1)[-1].lower()
    if extension in FORMATS:
        return extension
    by_type = {
        "text/csv": "csv",
        "application/json": "json",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    }
    if content_type in by_type:
        return by_type[content_type]
    raise Unprocessable("upload a .csv, .xlsx or .json file", field="file")


def _cell_text(value: Any) -> str | None:
    """Spreadsheet cells as the text a CSV would hold, so both formats validate alike."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _csv_records(content: bytes) -> Iterator[list[str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unprocessable("the CSV file is not UTF-8 text", field="file") from exc
    try:
        yield from csv.reader(io.StringIO(text, newline=""))
    except csv.Error as exc:
        raise Unprocessable(f"the CSV file is malformed: {exc}", field="file") from exc


def _xlsx_records(content: bytes) -> Iterator[list[str | None]]:
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise Unprocessable("the file is not a readable XLSX workbook", field="file") from exc
    try:
        for cells in workbook.worksheets[0].iter_rows(values_only=True):
            yield [_cell_text(value) for value in cells]
    finally:
        workbook.close()


def _tabular_rows(
    records: Iterable[list[str | None]], problems: list[dict[str, Any]]
) -> Iterator[tuple[int, dict]]:
    """(data row number, {column: cell}) for the non-blank rows under the header."""
    records = iter(records)
    header = [(name or "").strip().lower() for name in next(records, [])]
    unknown = [name for name in header if name and name not in COLUMNS]
    problems.extend({"row": 0, "field": name, "reason": "unknown column"} for name in unknown)
    problems.extend(
        {"row": 0, "field": name, "reason": "required column is missing"}
        for name in REQUIRED_COLUMNS
        if name not in header
    )
    if unknown or any(name not in header for name in REQUIRED_COLUMNS):
        return
    for number, cells in enumerate(records, start=1):
        values = {
            name: cell.strip()
            for name, cell in zip(header, cells, strict=False)
            if name and cell is not None and cell.strip()
        }
        if values:
            yield number, values


def _json_rows(content: bytes, problems: list[dict[str, Any]]) -> Iterator[tuple[int, Any]]:
    try:
        document = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Unprocessable("the file is not valid JSON", field="file") from exc
    if not isinstance(document, list):
        raise Unprocessable("a JSON upload is an array of row objects", field="file")
    yield from enumerate(document, start=1)


def parse_upload(
    filename: str | None, content_type: str | None, content: bytes
) -> tuple[list[int], list[ProductRow]]:
    """The validated rows and their file row numbers; Unprocessable listing every bad row."""
    upload_format = _upload_format(filename, content_type)
    problems: list[dict[str, Any]] = []
    if upload_format == "json":
        numbered = _json_rows(content, problems)
    else:
        records = _csv_records(content) if upload_format == "csv" else _xlsx_records(content)
        numbered = _tabular_rows(records, problems)
    numbers, rows = [], []
    for number, values in numbered:
        if len(numbers) == MAX_UPLOAD_ROWS:
            raise Unprocessable(f"an upload holds at most {MAX_UPLOAD_ROWS} rows", field="file")
        try:
            rows.append(ProductRow.model_validate(values))
            numbers.append(number)
        except ValidationError as exc:
            problems.extend(
                {
                    "row": number,
                    "field": ".".join(str(part) for part in error["loc"]) or "row",
                    "reason": error["msg"],
                }
                for error in exc.errors()
            )
    if problems:
        raise row_problem(problems)
    if not rows:
        raise Unprocessable("the file holds no rows", field="file")
    return numbers, rows


def import_upload(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    actor_user_id: uuid.UUID | None,
    filename: str | None,
    content_type: str | None,
    content: bytes,
) -> ImportResult:
    """Parse and import one uploaded file, reporting problems by the file's row numbers."""
    numbers, rows = parse_upload(filename, content_type, content)
    return import_products(
        session, tenant_id=tenant_id, actor_user_id=actor_user_id, rows=rows, row_numbers=numbers
    )
