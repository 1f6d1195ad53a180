"""A provisioning run shaped like Okta's, from Okta's "SCIM 2.0 protocol
reference" (user and group push) and the steps of its SCIM 2.0 spec test:
lookups by userName with startIndex/count, create, PUT of the whole user
as read, deactivation by path-less PATCH, group push with a rename that
repeats the group's id. One line per step; an assertion error (exit 1)
names the step that went wrong.

    okta_provisioning.py <base URL of /scim/v2> <token>
"""

import sys
import uuid

import httpx2

base, token = sys.argv[1:3]
http = httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {token}", "User-Agent": "Okta SCIM Client 1.0.0"})
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def step(name):
    print(name, flush=True)


def patch(path, *ops):
    r = http.patch(path, json={"schemas": [PATCH_OP], "Operations": list(ops)})
    assert r.status_code in (200, 204), f"PATCH {path} {ops}: {r.status_code} {r.text}"
    return r


tag = uuid.uuid4().hex[:8]
login = f"test.user.{tag}@okta.local"

step("the spec test's first page: numbers, and at least one user")
r = http.get("/Users", params={"count": 1, "startIndex": 1})
assert r.status_code == 200, r.text
page = r.json()
assert all(isinstance(page[k], int) for k in ("totalResults", "startIndex", "itemsPerPage")), page
assert page["totalResults"] >= 1 and len(page["Resources"]) == 1, page

step("a bad token is 401 with a SCIM error body")
r = httpx2.get(f"{base}/Users", headers={"Authorization": "Bearer wrong"})
assert r.status_code == 401 and r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], r.text

step("does the user exist?")
r = http.get("/Users", params={"filter": f'userName eq "{login}"', "startIndex": 1, "count": 100})
assert r.status_code == 200 and r.json()["totalResults"] == 0, r.text

step("create user")
body = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": login,
    "name": {"givenName": "Test", "familyName": "User"},
    "emails": [{"primary": True, "value": login, "type": "work"}],
    "displayName": "Test User",
    "locale": "fr-FR",
    "externalId": f"00u{tag}",
    "groups": [],
    "password": "Un-mot-de-passe-solide-1",
    "active": True,
}
r = http.post("/Users", json=body)
assert r.status_code == 201, r.text
user = r.json()
uid = user["id"]
assert user["locale"] == "fr-FR" and user["externalId"] == f"00u{tag}" and "password" not in user, user

step("a second create of the same user is 409")
r = http.post("/Users", json=body)
assert r.status_code == 409 and r.json().get("scimType") == "uniqueness", r.text
dup = dict(body, userName=f"other.{tag}@okta.local")
r = http.post("/Users", json=dup)
assert r.status_code == 409, f"the same externalId in the organisation: {r.status_code} {r.text}"

step("retrieve the user, by id and by userName whatever its case")
assert http.get(f"/Users/{uid}").status_code == 200
r = http.get("/Users", params={"filter": f'userName eq "{login.upper()}"', "startIndex": 1, "count": 100})
assert r.json()["totalResults"] == 1, r.text

step("update by PUT of the user as read, id, groups and meta included")
read = http.get(f"/Users/{uid}").json()
read["name"]["familyName"] = "Utilisatrice"
r = http.put(f"/Users/{uid}", json=read)
assert r.status_code == 200, r.text
after = r.json()
assert after["name"]["familyName"] == "Utilisatrice", after
for k in ("userName", "emails", "displayName", "locale", "externalId", "active"):
    assert after[k] == read[k], (k, after[k], read[k])

step("the PUT of what a GET returned changes nothing")
again = http.get(f"/Users/{uid}").json()
r = http.put(f"/Users/{uid}", json=again)
assert r.status_code == 200, r.text
same = r.json()
for k in again:
    if k != "meta":
        assert same[k] == again[k], (k, same[k], again[k])

step("deactivate by path-less PATCH; the user is still there")
patch(f"/Users/{uid}", {"op": "replace", "value": {"active": False}})
r = http.get(f"/Users/{uid}")
assert r.status_code == 200 and r.json()["active"] is False, r.text

step("reactivate")
patch(f"/Users/{uid}", {"op": "replace", "value": {"active": True}})
assert http.get(f"/Users/{uid}").json()["active"] is True

step("push a group")
second = http.post("/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"second.{tag}@okta.local"}).json()["id"]
r = http.post("/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": f"Okta {tag}", "members": []})
assert r.status_code == 201, r.text
gid = r.json()["id"]
patch(f"/Groups/{gid}", {"op": "add", "path": "members", "value": [{"value": uid, "display": login}]})
assert [m["value"] for m in http.get(f"/Groups/{gid}").json()["members"]] == [uid]

step("rename the group, its id repeated in the value")
patch(f"/Groups/{gid}", {"op": "replace", "value": {"id": gid, "displayName": f"Okta renamed {tag}"}})
assert http.get(f"/Groups/{gid}").json()["displayName"] == f"Okta renamed {tag}"

step("another id in the value is refused")
r = http.patch(f"/Groups/{gid}", json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"id": str(uuid.uuid4())}}]})
assert r.status_code == 400 and r.json().get("scimType") == "mutability", r.text

step("one member out, another in, in one request")
patch(
    f"/Groups/{gid}",
    {"op": "remove", "path": f'members[value eq "{uid}"]'},
    {"op": "add", "path": "members", "value": [{"value": second, "display": "second"}]},
)
assert [m["value"] for m in http.get(f"/Groups/{gid}").json()["members"]] == [second]

step("delete the group")
r = http.delete(f"/Groups/{gid}")
assert r.status_code == 204, r.text
assert http.get(f"/Groups/{gid}").status_code == 404
step("done")
