"""The catalog endpoints: protocol shape, prebuilt snapshot with ETag, additive metadata."""

from __future__ import annotations

import gzip

import httpx

from connector_proxy.catalog import LARGE_BODY, CatalogSnapshot, EntryBytes
from proxytest.protocol import validate

HTTP_COMMANDS = {f"http/{m}RequestV2" for m in ("Get", "Head", "Post", "Put", "Patch", "Delete")}


def test_commands_match_the_protocol_and_list_the_bundled_connector(client: httpx.Client) -> None:
    response = client.get("/v1/commands")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    catalog = response.json()
    validate("CommandCatalog", catalog)
    assert {c["id"] for c in catalog} >= HTTP_COMMANDS
    assert [c["id"] for c in catalog] == sorted(c["id"] for c in catalog)


def test_auths_match_the_protocol(client: httpx.Client) -> None:
    response = client.get("/v1/auths")
    assert response.status_code == 200
    validate("CommandCatalog", response.json())


def test_etag_revalidation(client: httpx.Client) -> None:
    first = client.get("/v1/commands")
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = client.get("/v1/commands", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    weak = client.get("/v1/commands", headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    stale = client.get("/v1/commands", headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200
    assert stale.content == first.content


def test_snapshot_is_deterministic_and_sorted() -> None:
    entries = [{"id": "b/B", "parameters": []}, {"id": "a/A", "parameters": []}]
    one = CatalogSnapshot.build(entries)
    two = CatalogSnapshot.build(list(reversed(entries)))
    assert one == two
    assert one.body.startswith(b'[{"id":"a/A"')
    assert CatalogSnapshot.build(entries[:1]).etag != one.etag


def test_http_commands_carry_additive_metadata(client: httpx.Client) -> None:
    catalog = {c["id"]: c for c in client.get("/v1/commands").json()}
    get = catalog["http/GetRequestV2"]
    assert get["description"]
    params = {p["id"]: p for p in get["parameters"]}
    assert (params["url"]["type"], params["url"]["required"]) == ("str", True)
    assert params["basic_auth_password"]["schema"]["writeOnly"] is True
    assert all("schema" in p for p in get["parameters"])


def test_gzip_is_served_to_clients_that_accept_it(client: httpx.Client) -> None:
    plain = client.get("/v1/commands", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    zipped = client.get("/v1/commands", headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "accept-encoding"
    assert int(zipped.headers["content-length"]) < int(plain.headers["content-length"])
    assert zipped.content == plain.content  # httpx decodes it
    refused = client.get("/v1/commands", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_the_live_openapi_document_declares_metrics_as_prometheus_text(proxy_url: str) -> None:
    document = httpx.get(f"{proxy_url}/openapi.json", timeout=10).json()
    [media_type] = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert media_type.startswith("text/plain; version=")
    assert httpx.get(f"{proxy_url}/metrics", timeout=10).headers["content-type"].startswith("text/plain")


def test_kept_entry_json_builds_the_same_snapshot_and_follows_new_entries() -> None:
    entries = [{"id": f"c/Cmd{i:04d}", "parameters": [], "description": "x" * 300, 1: "int key"} for i in range(5000)]
    kept = EntryBytes()
    first = CatalogSnapshot.build(reversed(entries), kept)
    plain = CatalogSnapshot.build(entries)
    assert (first.body, first.etag) == (plain.body, plain.etag)  # exactly orjson.dumps of the sorted list
    assert len(first.body) > LARGE_BODY and gzip.decompress(first.gzip_body) == first.body
    changed = [*entries[:-1], {"id": "c/Cmd4999", "parameters": [], "description": "new"}]
    second = CatalogSnapshot.build(changed, kept)
    assert second.body == CatalogSnapshot.build(changed).body and b'"description":"new"' in second.body
