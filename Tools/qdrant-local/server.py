#!/usr/bin/env python3
"""A small Qdrant-compatible REST server for development and tests.

It speaks the wire format of Qdrant's REST API (the endpoints the KT SDK uses, with the same
`{"result", "status", "time"}` envelope and `{"status": {"error": ...}}` errors) on top of the
official `qdrant-client` package's *local mode*, which stores points in a folder and searches
by brute force. It is NOT a production server: production uses a real Qdrant.

    python server.py --host 127.0.0.1 --port 6333 --path ./data [--api-key KEY] [--openapi FILE]

With --openapi, every request body is validated against the schema the OpenAPI document
gives for that operation, and a mismatch is answered with 400, so a client that passes the
tests sends only bodies a real Qdrant accepts.
"""
import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

warnings.filterwarnings("ignore")

from pydantic import ValidationError  # noqa: E402
from qdrant_client import QdrantClient, models  # noqa: E402


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Store:
    """The local-mode client plus what local mode does not keep (quantization, payload indexes)."""

    def __init__(self, path):
        os.makedirs(path, exist_ok=True)
        self.client = QdrantClient(path=path)
        self.meta_path = os.path.join(path, "kt-meta.json")
        self.meta = {}
        if os.path.exists(self.meta_path):
            with open(self.meta_path) as f:
                self.meta = json.load(f)
        self.lock = threading.Lock()

    def save_meta(self):
        tmp = self.meta_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.meta, f)
        os.replace(tmp, self.meta_path)

    def require(self, name):
        if not self.client.collection_exists(name):
            raise ApiError(404, f"Not found: Collection `{name}` doesn't exist!")


def dump(value):
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [dump(v) for v in value]
    if isinstance(value, tuple):
        return [dump(v) for v in value]
    return value


def update_result():
    return {"operation_id": 0, "status": "completed"}


# --- handlers: (store, name, body, query) -> result -------------------------------------------

def list_collections(store, name, body, query):
    return {"collections": [{"name": c.name} for c in store.client.get_collections().collections]}


def collection_exists(store, name, body, query):
    return {"exists": store.client.collection_exists(name)}


def get_collection(store, name, body, query):
    store.require(name)
    info = dump(store.client.get_collection(name))
    meta = store.meta.get(name, {})
    info.setdefault("config", {})["quantization_config"] = meta.get("quantization_config")
    info["payload_schema"] = meta.get("payload_schema", {})
    info["status"] = "green"
    return info


def create_collection(store, name, body, query):
    if store.client.collection_exists(name):
        raise ApiError(409, f"Wrong input: Collection `{name}` already exists!")
    request = models.CreateCollection.model_validate(body)
    store.client.create_collection(name, vectors_config=request.vectors, sparse_vectors_config=request.sparse_vectors)
    store.meta[name] = {"quantization_config": body.get("quantization_config"), "payload_schema": {}}
    store.save_meta()
    return True


def update_collection(store, name, body, query):
    store.require(name)
    models.UpdateCollection.model_validate(body)
    if "quantization_config" in body:
        quantization = body["quantization_config"]
        store.meta.setdefault(name, {})["quantization_config"] = None if quantization == "Disabled" else quantization
        store.save_meta()
    return True


def delete_collection(store, name, body, query):
    existed = store.client.collection_exists(name)
    if existed:
        store.client.delete_collection(name)
    store.meta.pop(name, None)
    store.save_meta()
    return existed


def create_index(store, name, body, query):
    store.require(name)
    request = models.CreateFieldIndex.model_validate(body)
    schema = body.get("field_schema")
    data_type = schema if isinstance(schema, str) else (schema or {}).get("type", "keyword")
    store.meta.setdefault(name, {}).setdefault("payload_schema", {})[request.field_name] = {
        "data_type": data_type, "params": schema if isinstance(schema, dict) else None, "points": 0}
    store.save_meta()
    return update_result()


def upsert_points(store, name, body, query):
    store.require(name)
    if "batch" in body:
        request = models.PointsBatch.model_validate(body)
        store.client.upsert(name, points=request.batch)
    else:
        request = models.PointsList.model_validate(body)
        store.client.upsert(name, points=request.points)
    return update_result()


def query_points(store, name, body, query):
    store.require(name)
    request = models.QueryRequest.model_validate(body)
    response = store.client.query_points(
        name,
        query=request.query,
        using=request.using,
        prefetch=request.prefetch,
        query_filter=request.filter,
        search_params=request.params,
        limit=request.limit if request.limit is not None else 10,
        offset=request.offset,
        with_payload=request.with_payload if request.with_payload is not None else False,
        with_vectors=request.with_vector if request.with_vector is not None else False,
        score_threshold=request.score_threshold,
    )
    return dump(response)


def get_points(store, name, body, query):
    store.require(name)
    request = models.PointRequest.model_validate(body)
    records = store.client.retrieve(
        name, ids=request.ids,
        with_payload=request.with_payload if request.with_payload is not None else True,
        with_vectors=request.with_vector if request.with_vector is not None else False)
    return dump(records)


def delete_points(store, name, body, query):
    store.require(name)
    if "filter" in body:
        selector = models.FilterSelector.model_validate(body)
    else:
        selector = models.PointIdsList.model_validate(body)
    store.client.delete(name, points_selector=selector)
    return update_result()


def set_payload(store, name, body, query):
    store.require(name)
    request = models.SetPayload.model_validate(body)
    if request.points is not None:
        target = request.points
    elif request.filter is not None:
        target = request.filter
    else:
        raise ApiError(400, "Bad request: either `points` or `filter` is required")
    store.client.set_payload(name, payload=request.payload, points=target, key=request.key)
    return update_result()


def count_points(store, name, body, query):
    store.require(name)
    request = models.CountRequest.model_validate(body or {})
    result = store.client.count(name, count_filter=request.filter, exact=request.exact if request.exact is not None else True)
    return dump(result)


def scroll_points(store, name, body, query):
    store.require(name)
    request = models.ScrollRequest.model_validate(body or {})
    points, next_offset = store.client.scroll(
        name, scroll_filter=request.filter, limit=request.limit or 10, offset=request.offset,
        with_payload=request.with_payload if request.with_payload is not None else True,
        with_vectors=request.with_vector if request.with_vector is not None else False)
    return {"points": dump(points), "next_page_offset": dump(next_offset)}


C = r"/collections/(?P<name>[^/]+)"
ROUTES = [
    ("GET", r"/collections", list_collections, None),
    ("GET", C + r"/exists", collection_exists, None),
    ("GET", C, get_collection, None),
    ("PUT", C, create_collection, "CreateCollection"),
    ("PATCH", C, update_collection, "UpdateCollection"),
    ("DELETE", C, delete_collection, None),
    ("PUT", C + r"/index", create_index, "CreateFieldIndex"),
    ("PUT", C + r"/points", upsert_points, "PointInsertOperations"),
    ("POST", C + r"/points", get_points, "PointRequest"),
    ("POST", C + r"/points/query", query_points, "QueryRequest"),
    ("POST", C + r"/points/delete", delete_points, "PointsSelector"),
    ("POST", C + r"/points/payload", set_payload, "SetPayload"),
    ("POST", C + r"/points/count", count_points, "CountRequest"),
    ("POST", C + r"/points/scroll", scroll_points, "ScrollRequest"),
]
ROUTES = [(m, re.compile("^" + p + "$"), h, s) for m, p, h, s in ROUTES]


class OpenAPIBodies:
    """Validates request bodies against the component schemas of Qdrant's OpenAPI document."""

    def __init__(self, path):
        from openapi_schema_validator import OAS30Validator
        with open(path) as f:
            document = json.load(f)
        self.validators = {}
        for _, _, _, schema in ROUTES:
            if schema and schema not in self.validators:
                self.validators[schema] = OAS30Validator(
                    {"$ref": f"#/components/schemas/{schema}", "components": document["components"]})

    def check(self, schema, body):
        errors = sorted(self.validators[schema].iter_errors(body), key=lambda e: list(e.path))
        if errors:
            error = errors[0]
            where = "/".join(str(p) for p in error.absolute_path) or "<body>"
            raise ApiError(400, f"Format error in JSON body: {schema} at {where}: {error.message[:300]}")


def make_handler(store, api_key, bodies):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle and delayed ACKs
        # add ~40 ms to every kept-alive request.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def reply(self, status, payload):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self, method):
            started = time.perf_counter()
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                if api_key is not None:
                    given = self.headers.get("api-key")
                    bearer = self.headers.get("Authorization", "")
                    if given is None and bearer.startswith("Bearer "):
                        given = bearer[7:]
                    if given != api_key:
                        raise ApiError(401, "Must provide a valid API key or an Authorization bearer token")
                for route_method, pattern, handler, schema in ROUTES:
                    match = pattern.match(url.path)
                    if match and route_method == method:
                        break
                else:
                    raise ApiError(404, f"Not found: {method} {url.path}")
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    raise ApiError(400, "Format error in JSON body: not valid JSON")
                if schema and bodies is not None:
                    bodies.check(schema, body)
                with store.lock:
                    result = handler(store, match.groupdict().get("name"), body, parse_qs(url.query))
                self.reply(200, {"result": result, "status": "ok", "time": time.perf_counter() - started})
            except ApiError as error:
                self.reply(error.status, {"status": {"error": error.message}, "time": time.perf_counter() - started})
            except ValidationError as error:
                self.reply(400, {"status": {"error": f"Format error in JSON body: {error.errors()[0]['msg'] if error.errors() else error}"},
                                 "time": time.perf_counter() - started})
            except ValueError as error:
                status = 404 if "not found" in str(error).lower() else 400
                self.reply(status, {"status": {"error": f"Bad request: {error}"}, "time": time.perf_counter() - started})
            except Exception as error:  # noqa: BLE001
                self.reply(500, {"status": {"error": f"Service internal error: {error}"}, "time": time.perf_counter() - started})

        def do_GET(self): self.handle_any("GET")
        def do_PUT(self): self.handle_any("PUT")
        def do_POST(self): self.handle_any("POST")
        def do_PATCH(self): self.handle_any("PATCH")
        def do_DELETE(self): self.handle_any("DELETE")

    return Handler


def main():
    parser = argparse.ArgumentParser(description="Qdrant-compatible REST server for development and tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6333)
    parser.add_argument("--path", required=True, help="folder for persistence")
    parser.add_argument("--api-key", default=os.environ.get("QDRANT_LOCAL_API_KEY"))
    parser.add_argument("--openapi", help="validate request bodies against this OpenAPI document")
    args = parser.parse_args()
    # A parent may start us with signals blocked (Swift's Foundation.Process does): unblock the
    # ones that stop a server, so SIGTERM and SIGINT work.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    store = Store(args.path)
    bodies = OpenAPIBodies(args.openapi) if args.openapi else None
    server = ThreadingHTTPServer((args.host, args.port), make_handler(store, args.api_key, bodies))
    server.daemon_threads = True
    print(f"qdrant-local listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
