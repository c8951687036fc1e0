"""Avro records written by an independent implementation (fastavro), for paritygate's tests.

stdin: {"schemas": {"<id>": <schema>}, "records": [{"schema": <id>, "value": {...}},
        {"raw": "<base64>"}]}
stdout: one line per record, base64 of the record in the Confluent wire format (0, big-endian
schema id, Avro binary). Values are given as JSON; fields of logical types are converted
first: decimals from strings, timestamps and dates from ISO text, uuids from text.
"""
import base64
import datetime
import decimal
import io
import json
import struct
import sys

import fastavro


NAMED = {}


def register(schema):
    """Every named type of `schema`, so a reference converts wherever it appears first."""
    if isinstance(schema, list):
        for s in schema:
            register(s)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
            NAMED[schema["name"]] = schema
        for f in schema.get("fields", []):
            register(f["type"])
        for k in ("items", "values", "type"):
            if isinstance(schema.get(k), (dict, list)):
                register(schema[k])


def convert(schema, value):
    if value is None:
        return None
    if isinstance(schema, str) and schema in NAMED:
        schema = NAMED[schema]
    if isinstance(schema, list):
        branch = next(s for s in schema if s != "null")
        return convert(branch, value)
    if isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
            NAMED[schema["name"]] = schema
        logical = schema.get("logicalType")
        if logical == "decimal":
            return decimal.Decimal(value)
        if logical in ("timestamp-millis", "timestamp-micros"):
            return datetime.datetime.fromisoformat(value)
        if logical == "date":
            return datetime.date.fromisoformat(value)
        if schema.get("type") == "record":
            return {f["name"]: convert(f["type"], value.get(f["name"])) for f in schema["fields"]}
        if schema.get("type") == "array":
            return [convert(schema["items"], v) for v in value]
    return value


def main():
    spec = json.load(sys.stdin)
    parsed = {int(k): fastavro.parse_schema(v) for k, v in spec["schemas"].items()}
    raw = {int(k): v for k, v in spec["schemas"].items()}
    for record in spec["records"]:
        if "raw" in record:
            print(record["raw"])
            continue
        sid = record["schema"]
        NAMED.clear()
        register(raw[sid])
        out = io.BytesIO()
        out.write(b"\x00" + struct.pack(">I", sid))
        fastavro.schemaless_writer(out, parsed[sid], convert(raw[sid], record["value"]))
        print(base64.b64encode(out.getvalue()).decode())


main()
