"""Authentication and token management through the real server: every way a
client presents a token, permissions and database scopes, the token lifecycle
over both path families, the bootstrap token, and the offline `arc token` CLI."""

from __future__ import annotations

import base64
import re
import time

import pytest
import requests

from arc_server import ArcServer, run_arc, slow

AUTH_REQUIRED = {"success": False, "error": "Authentication required"}
INVALID = {"success": False, "error": "Invalid or expired token"}
ADMIN_REQUIRED = {"success": False, "error": "Permission denied: admin required"}
FAMILIES = ["/api/v1/auth", "/auth"]


def err(r):
    return r.status_code, r.json()


# ---------------------------------------------------- how a token is presented

def _verify(srv, headers=None, params=None):
    return requests.get(srv.url("/api/v1/auth/verify"), headers=headers or {}, params=params,
                        timeout=slow(10))


def test_verify_returns_the_principal(shared):
    r = _verify(shared, {"Authorization": "Bearer " + shared.token})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["success"] is True
    assert j["valid"] is True
    assert j["token_info"]["name"] == "admin"
    assert "admin" in j["token_info"]["permissions"]
    assert shared.token not in r.text  # the secret is never echoed


@pytest.mark.parametrize("how", ["bearer", "token", "bearer-lower", "x-api-key", "basic",
                                 "basic-empty-user", "query-u-p", "query-p"])
def test_token_presentations(shared, how):
    t = shared.token
    headers, params = {}, None
    if how == "bearer":
        headers["Authorization"] = "Bearer " + t
    elif how == "bearer-lower":
        headers["Authorization"] = "bearer " + t
    elif how == "token":
        headers["Authorization"] = "Token " + t
    elif how == "x-api-key":
        headers["x-api-key"] = t
    elif how == "basic":
        headers["Authorization"] = "Basic " + base64.b64encode(b"telegraf:" + t.encode()).decode()
    elif how == "basic-empty-user":
        headers["Authorization"] = "Basic " + base64.b64encode(b":" + t.encode()).decode()
    elif how == "query-u-p":
        params = {"u": "x", "p": t}
    elif how == "query-p":
        params = {"p": t}
    r = _verify(shared, headers, params)
    assert r.status_code == 200, (how, r.text)
    assert r.json()["token_info"]["name"] == "admin"


@pytest.mark.parametrize("how", ["bearer", "token", "x-api-key", "basic", "query-u-p"])
def test_wrong_token_presentations(shared, how):
    bad = shared.token + "x"
    headers, params = {}, None
    if how == "bearer":
        headers["Authorization"] = "Bearer " + bad
    elif how == "token":
        headers["Authorization"] = "Token " + bad
    elif how == "x-api-key":
        headers["x-api-key"] = bad
    elif how == "basic":
        headers["Authorization"] = "Basic " + base64.b64encode(b"u:" + bad.encode()).decode()
    elif how == "query-u-p":
        params = {"u": "x", "p": bad}
    assert err(_verify(shared, headers, params)) == (401, INVALID)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "}, {"Authorization": "Bearer"},
                                     {"Authorization": "Digest abc"}, {"x-api-key": ""}])
def test_missing_token(shared, headers):
    assert err(_verify(shared, headers)) == (401, AUTH_REQUIRED)


def test_overlong_token_is_401_not_crash(shared):
    r = _verify(shared, {"Authorization": "Bearer " + "A" * 8000})
    assert err(r) == (401, INVALID)
    r = _verify(shared, {"Authorization": "Basic " + base64.b64encode(b"u:" + b"B" * 8000).decode()})
    assert r.status_code == 401


def test_bad_basic_encoding(shared):
    for v in ("Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(), "Basic "):
        r = _verify(shared, {"Authorization": v})
        assert r.status_code == 401, (v, r.text)
        assert r.json()["success"] is False


# ------------------------------------------------------------ permissions, scope

def test_read_only_token_cannot_administer(arc):
    ro = arc.create_token("reader", permissions=["read"])["token"]
    for fam in FAMILIES:
        assert err(arc.get(fam + "/tokens", token=ro)) == (403, ADMIN_REQUIRED)
        assert err(arc.post(fam + "/tokens", token=ro, json={"name": "sneaky"})) == \
            (403, ADMIN_REQUIRED)
        assert err(arc.get(fam + "/tokens/1", token=ro)) == (403, ADMIN_REQUIRED)
        assert err(arc.request("PATCH", fam + "/tokens/1", token=ro,
                               json={"permissions": ["read"]})) == (403, ADMIN_REQUIRED)
        assert err(arc.request("DELETE", fam + "/tokens/1", token=ro)) == (403, ADMIN_REQUIRED)
        assert err(arc.post(fam + "/tokens/1/rotate", token=ro)) == (403, ADMIN_REQUIRED)
        # verify needs no permission: any valid token may ask who it is
        r = arc.get(fam + "/verify", token=ro)
        assert r.status_code == 200 and r.json()["token_info"]["permissions"] == ["read"]
    # the admin token still works and nothing was created
    names = [t["name"] for t in arc.get("/api/v1/auth/tokens").json()["tokens"]]
    assert "sneaky" not in names


def test_admin_routes_sweep_for_non_admin(arc):
    """Every auth-management route (as listed by GET /) answers 403 to a
    read+write+delete token."""
    tok = arc.create_token("rwd", permissions=["read", "write", "delete"])["token"]
    eps = requests.get(arc.url("/"), timeout=10).json()["endpoints"]
    seen = 0
    for e in eps:
        method, _, pattern = e.partition(" ")
        if "/auth/tokens" not in pattern:
            continue
        path = re.sub(r"\{[^}/]*\}", "1", pattern)
        r = arc.request(method, path, token=tok, json={})
        assert err(r) == (403, ADMIN_REQUIRED), (method, path, r.text)
        seen += 1
    assert seen >= 12  # 6 routes x 2 families


# Routes that act on the request's database (not HTTP_ROUTE_NO_DB). The
# foundation's own routes (/, health, auth, metrics) are all database-free, so
# the scope check is exercised through whichever of these the server lists.
DB_SCOPED_ROUTES = [
    ("POST", "/api/v1/write/line-protocol", "text/plain", b"cpu value=1"),
    ("POST", "/api/v1/write", "text/plain", b"cpu value=1"),
    ("POST", "/write", "text/plain", b"cpu value=1"),
    ("POST", "/api/v1/query", "application/json", b'{"sql":"SELECT 1"}'),
    ("POST", "/query", "application/json", b'{"sql":"SELECT 1"}'),
    ("GET", "/api/v1/measurements", None, None),
    ("GET", "/measurements", None, None),
]


def test_database_scope_is_reported_by_verify(arc):
    j = arc.create_token("scoped", permissions=["read", "write"], databases=["a", "b"])
    r = arc.get("/api/v1/auth/verify", token=j["token"])
    assert r.status_code == 200, r.text  # verify is not database-scoped
    assert r.json()["token_info"]["databases"] == ["a", "b"]
    r = arc.get("/api/v1/auth/tokens/%d" % j["id"])
    assert r.json()["token"]["databases"] == ["a", "b"]


def test_database_scoped_token(arc):
    """A token limited to databases a,b may not touch database c, whichever way the
    database is named (header, db, bucket or database parameter)."""
    eps = set(requests.get(arc.url("/"), timeout=10).json()["endpoints"])
    routes = [rt for rt in DB_SCOPED_ROUTES if "%s %s" % (rt[0], rt[1]) in eps]
    if not routes:
        pytest.skip("no database-scoped route registered yet (write/query modules pending)")
    tok = arc.create_token("scoped", permissions=["read", "write"],
                           databases=["a", "b"])["token"]

    def deny(db):
        return (403, {"success": False,
                      "error": "Permission denied: token may not access database '%s'" % db})

    for method, path, ctype, body in routes:
        def call(headers=None, params=None):
            h = dict(headers or {})
            if ctype:
                h["Content-Type"] = ctype
            return arc.request(method, path, token=tok, headers=h, params=params, data=body)

        assert err(call({"x-arc-database": "c"})) == deny("c"), path
        for param in ("db", "bucket", "database"):
            assert err(call(params={param: "c"})) == deny("c"), (path, param)
            assert call(params={param: "b"}).status_code != 403, (path, param)
        # the header wins over the query parameter
        assert call({"x-arc-database": "a"}, {"db": "c"}).status_code != 403, path
        assert err(call({"x-arc-database": "c"}, {"db": "a"})) == deny("c"), path
        if "/write" in path:
            # a write with no database named goes to "default", which is not allowed
            assert err(call()) == deny("default"), path
        else:
            # a read that names no database is checked on what it touches: SELECT 1 and
            # listing (filtered to allowed databases) touch nothing forbidden
            assert call().status_code == 200, path
        # an unscoped token may use any database
        r = arc.request(method, path, headers={"x-arc-database": "c",
                                               **({"Content-Type": ctype} if ctype else {})},
                        data=body)
        assert r.status_code != 403, (path, r.text)


# ------------------------------------------------------------------ lifecycle

@pytest.mark.parametrize("fam", FAMILIES)
def test_token_lifecycle(arc, fam):
    # create
    r = arc.post(fam + "/tokens", json={"name": "ci", "description": "ci runner",
                                         "permissions": ["read", "write"],
                                         "databases": ["metrics"]})
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["success"] is True
    assert isinstance(j["id"], int) and j["id"] > 0
    tid, secret = j["id"], j["token"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret), secret
    hdr = {"x-arc-database": "metrics"}
    assert arc.get(fam + "/verify", token=secret, headers=hdr).status_code == 200

    # list: metadata only, never secrets
    r = arc.get(fam + "/tokens")
    assert r.status_code == 200, r.text
    toks = {t["name"]: t for t in r.json()["tokens"]}
    assert set(toks) == {"admin", "ci"}
    assert toks["ci"]["id"] == tid
    assert toks["ci"]["description"] == "ci runner"
    assert toks["ci"]["permissions"] == ["read", "write"]
    assert toks["ci"]["databases"] == ["metrics"]
    assert toks["ci"]["enabled"] is True
    assert toks["ci"]["expires_at"] is None
    assert secret not in r.text and arc.token not in r.text

    # get by id and by name
    for ref in (str(tid), "ci"):
        r = arc.get(fam + "/tokens/" + ref)
        assert r.status_code == 200, r.text
        t = r.json()["token"]
        assert (t["id"], t["name"], t["permissions"]) == (tid, "ci", ["read", "write"])
        assert secret not in r.text

    # patch: permissions, description, databases
    r = arc.request("PATCH", fam + "/tokens/%d" % tid,
                    json={"permissions": ["read"], "description": "read only now",
                          "databases": None})
    assert r.status_code == 200, r.text
    t = arc.get(fam + "/tokens/%d" % tid).json()["token"]
    assert t["permissions"] == ["read"]
    assert t["description"] == "read only now"
    assert t["databases"] is None
    # the change applies at once: other databases allowed now
    assert arc.get(fam + "/verify", token=secret,
                   headers={"x-arc-database": "other"}).status_code == 200

    # disable / enable
    r = arc.request("PATCH", fam + "/tokens/%d" % tid, json={"enabled": False})
    assert r.status_code == 200, r.text
    assert err(arc.get(fam + "/verify", token=secret)) == \
        (401, {"success": False, "error": "Token 'ci' is disabled"})
    assert arc.request("PATCH", fam + "/tokens/%d" % tid, json={"enabled": True}).status_code == 200
    assert arc.get(fam + "/verify", token=secret).status_code == 200

    # rotate: old secret dies, new one works
    r = arc.post(fam + "/tokens/%d/rotate" % tid)
    assert r.status_code == 200, r.text
    new = r.json()["token"]
    assert new != secret and re.fullmatch(r"[A-Za-z0-9_-]{43}", new)
    assert err(arc.get(fam + "/verify", token=secret)) == (401, INVALID)
    assert arc.get(fam + "/verify", token=new).status_code == 200

    # delete: the token stops working, get answers 404
    r = arc.request("DELETE", fam + "/tokens/%d" % tid)
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True
    assert err(arc.get(fam + "/verify", token=new)) == (401, INVALID)
    r = arc.get(fam + "/tokens/%d" % tid)
    assert r.status_code == 404
    assert r.json()["success"] is False
    assert [t["name"] for t in arc.get(fam + "/tokens").json()["tokens"]] == ["admin"]
    r = arc.request("DELETE", fam + "/tokens/%d" % tid)
    assert r.status_code == 404


def test_tokens_survive_restart(arc):
    j = arc.create_token("durable", permissions=["read"])
    arc.restart()
    r = arc.get("/api/v1/auth/verify", token=j["token"])
    assert r.status_code == 200 and r.json()["token_info"]["name"] == "durable"
    assert arc.get("/api/v1/auth/verify").status_code == 200  # admin token too


@pytest.mark.parametrize("body,status,msg", [
    ({}, 400, "name: required"),
    ({"name": ""}, 400, "name: required"),
    ({"name": "x", "permissions": ["root"]}, 400,
     "unknown permission 'root' (expected read, write, delete or admin)"),
    ({"name": "x", "permissions": []}, 400, "permissions: empty list"),
    ({"name": "x", "databases": []}, 400, "databases: empty list (use null or omit it to allow all databases)"),
    ({"name": "x", "databases": ["bad name!"]}, 400, None),
    ({"name": "x", "expires_in": "soon"}, 400, None),
    ({"name": "n" * 129}, 400, "name: longer than 128 bytes"),
])
def test_create_token_validation(arc, body, status, msg):
    r = arc.post("/api/v1/auth/tokens", json=body)
    assert r.status_code == status, r.text
    j = r.json()
    assert j["success"] is False
    if msg is not None:
        assert msg in j["error"], j["error"]
    else:
        assert j["error"], j
    # nothing was created
    assert [t["name"] for t in arc.get("/api/v1/auth/tokens").json()["tokens"]] == ["admin"]


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b'{"name": 5}', b'{"name":"x"'])
def test_create_token_bad_json(arc, raw):
    r = arc.post("/api/v1/auth/tokens", data=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["success"] is False


def test_duplicate_token_name_is_409(arc):
    arc.create_token("twin")
    r = arc.post("/api/v1/auth/tokens", json={"name": "twin"})
    assert r.status_code == 409, r.text
    assert r.json()["success"] is False


def test_token_expiry(arc):
    j = arc.create_token("shortlived", expires_in="2s")
    info = arc.get("/api/v1/auth/tokens/%d" % j["id"]).json()["token"]
    assert info["expires_at"] is not None
    assert arc.get("/api/v1/auth/verify", token=j["token"]).status_code == 200
    time.sleep(3)
    assert err(arc.get("/api/v1/auth/verify", token=j["token"])) == \
        (401, {"success": False, "error": "Token 'shortlived' has expired"})


def test_unknown_token_ref_is_404(arc):
    for method, path in (("GET", "/api/v1/auth/tokens/9999"),
                         ("GET", "/api/v1/auth/tokens/nosuch"),
                         ("PATCH", "/api/v1/auth/tokens/9999"),
                         ("DELETE", "/api/v1/auth/tokens/9999"),
                         ("POST", "/api/v1/auth/tokens/9999/rotate")):
        r = arc.request(method, path, json={"description": "x"})
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["success"] is False


# ------------------------------------------------------------------ bootstrap

def test_generated_admin_token_printed_once(tmp_path):
    srv = ArcServer(tmp_path / "data", bootstrap=False, log_dir=tmp_path)
    try:
        srv.start()
        m = re.search(r"^\s+([A-Za-z0-9_-]{43})\s*$", srv.log, re.M)
        assert m, srv.log
        tok = m.group(1)
        r = srv.get("/api/v1/auth/verify", token=tok)
        assert r.status_code == 200 and "admin" in r.json()["token_info"]["permissions"]
        assert srv.stop() == 0
        srv.start()
        assert tok not in srv.log  # shown only at first start
        assert srv.get("/api/v1/auth/verify", token=tok).status_code == 200
    finally:
        code = srv.stop()
    assert code == 0


def test_bootstrap_token_added_to_existing_db(tmp_path):
    """ARC_AUTH_BOOTSTRAP_TOKEN on a data dir that already has tokens makes that
    secret a valid admin token (recovery path)."""
    srv = ArcServer(tmp_path / "data", log_dir=tmp_path)
    try:
        srv.start()
        assert srv.stop() == 0
        srv.token = "recovery-" + "z" * 30
        srv.start()
        r = srv.get("/api/v1/auth/verify")
        assert r.status_code == 200 and "admin" in r.json()["token_info"]["permissions"]
    finally:
        assert srv.stop() == 0


def test_auth_disabled(arc_factory):
    srv = arc_factory("--set", "auth.enabled=false")
    assert "authentication is DISABLED" in srv.log
    r = requests.get(srv.url("/api/v1/auth/tokens"), timeout=10)
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------ offline CLI

def test_cli_token_used_by_running_server(arc_factory):
    srv = arc_factory("--set", "auth.cache_ttl_seconds=1")
    p = run_arc(["token", "create", "offline", "--permissions", "read,write",
                 "--databases", "a,b", "--data-dir", str(srv.data_dir)])
    assert p.returncode == 0, p.stderr
    tok = p.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", tok), p.stdout
    deadline = time.monotonic() + slow(5)
    while True:
        r = srv.get("/api/v1/auth/verify", token=tok, headers={"x-arc-database": "a"})
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 200, r.text
    t = r.json()["token_info"]
    assert (t["name"], t["permissions"], t["databases"]) == ("offline", ["read", "write"],
                                                            ["a", "b"])

    # offline delete takes effect within the cache TTL too
    p = run_arc(["token", "delete", "offline", "--data-dir", str(srv.data_dir)])
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + slow(5)
    while True:
        r = srv.get("/api/v1/auth/verify", token=tok)
        if r.status_code == 401 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert err(r) == (401, INVALID)


def test_cli_token_list_and_errors(tmp_path):
    d = str(tmp_path / "data")
    p = run_arc(["token", "create", "one", "--data-dir", d])
    assert p.returncode == 0, p.stderr
    p = run_arc(["token", "create", "one", "--data-dir", d])
    assert p.returncode != 0 and p.stdout == ""
    assert "arc token create:" in p.stderr
    p = run_arc(["token", "create", "two", "--permissions", "root", "--data-dir", d])
    assert p.returncode != 0
    assert "unknown permission 'root'" in p.stderr
    p = run_arc(["token", "list", "--data-dir", d])
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "NAME", "PERMISSIONS"]
    assert [ln.split()[1] for ln in lines[1:]] == ["one"]
    p = run_arc(["token", "rotate", "one", "--data-dir", d])
    assert p.returncode == 0 and re.fullmatch(r"[A-Za-z0-9_-]{43}\n", p.stdout)
    p = run_arc(["token", "delete", "nosuch", "--data-dir", d])
    assert p.returncode != 0
    assert "not found" in p.stderr
