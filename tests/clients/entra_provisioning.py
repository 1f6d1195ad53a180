"""A provisioning run shaped like Microsoft Entra ID's, from the request
examples of Microsoft Learn's "Tutorial: Develop and plan provisioning for a
SCIM endpoint in Microsoft Entra ID" (User and Group operations) and the
PATCH forms its aadOptscim062020 flag changes. One line per step; an
assertion error (exit 1) names the step that went wrong.

    entra_provisioning.py <base URL of /scim/v2> <token>
"""

import sys
import uuid

import httpx2

base, token = sys.argv[1:3]
http = httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def step(name):
    print(name, flush=True)


def patch(path, *ops):
    r = http.patch(path, json={"schemas": [PATCH_OP], "Operations": list(ops)})
    assert r.status_code in (200, 204), f"PATCH {path} {ops}: {r.status_code} {r.text}"
    return r


def one(filter_):
    r = http.get("/Users", params={"filter": filter_})
    assert r.status_code == 200, f"{filter_}: {r.status_code} {r.text}"
    body = r.json()
    return body["totalResults"], body["Resources"]


tag = uuid.uuid4().hex[:8]
user_name = f"Test_User_{tag}"

step("test connection: a filter that matches nobody is an empty list")
r = http.get("/Users", params={"filter": f'userName eq "{uuid.uuid4()}"'})
assert r.status_code == 200 and r.json()["totalResults"] == 0 and r.json()["Resources"] == [], r.text

step("create user")
body = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
    "externalId": f"{tag}-ext",
    "userName": user_name,
    "active": True,
    "displayName": "Test User",
    "emails": [{"primary": True, "type": "work", "value": f"{tag}@contoso.example"}],
    "meta": {"resourceType": "User"},
    "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
    "roles": [],
    ENTERPRISE: {"department": "Ressources humaines", "employeeNumber": "42"},
}
r = http.post("/Users", json=body)
assert r.status_code == 201, r.text
user = r.json()
uid = user["id"]
assert r.headers["location"].endswith(f"/Users/{uid}"), r.headers
assert user["externalId"] == f"{tag}-ext" and user["emails"][0]["value"] == f"{tag}@contoso.example", user

step("get user")
r = http.get(f"/Users/{uid}")
assert r.status_code == 200 and r.json()["userName"] == user_name, r.text

step("get user by query: userName, externalId, work email")
assert one(f'userName eq "{user_name}"')[0] == 1
assert one(f'externalId eq "{tag}-ext"')[0] == 1
assert one(f'emails[type eq "work"].value eq "{tag}@contoso.example"')[0] == 1
assert one(f'emails[type eq "home"].value eq "{tag}@contoso.example"')[0] == 0

step("update user, multi-valued properties")
patch(
    f"/Users/{uid}",
    {"op": "Replace", "path": 'emails[type eq "work"].value', "value": f"updated-{tag}@contoso.example"},
    {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
)
u = http.get(f"/Users/{uid}").json()
assert u["emails"] == [{"primary": True, "type": "work", "value": f"updated-{tag}@contoso.example"}], u
assert u["name"]["familyName"] == "updatedFamilyName", u

step("update user, single-valued properties")
new_name = f"{tag}@contoso.example"
patch(f"/Users/{uid}", {"op": "Replace", "path": "userName", "value": new_name})
assert http.get(f"/Users/{uid}").json()["userName"] == new_name

step("add a work phone number and a mobile one, as Entra ID maps them")
patch(
    f"/Users/{uid}",
    {"op": "Add", "path": 'phoneNumbers[type eq "work"].value', "value": "+33 1 02 03 04 05"},
    {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+33 6 07 08 09 10"},
    {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Créteil"},
)
u = http.get(f"/Users/{uid}").json()
assert {"type": "work", "value": "+33 1 02 03 04 05"} in u["phoneNumbers"], u
assert {"type": "mobile", "value": "+33 6 07 08 09 10"} in u["phoneNumbers"], u
assert u["addresses"] == [{"type": "work", "locality": "Créteil"}], u

step("aadOptscim062020: several attributes in one path-less replace")
patch(
    f"/Users/{uid}",
    {"op": "replace", "value": {"name.givenName": "Barbara", f"{ENTERPRISE}:department": "Paie", "displayName": "Barbara J."}},
)
u = http.get(f"/Users/{uid}").json()
assert u["name"]["givenName"] == "Barbara" and u[ENTERPRISE]["department"] == "Paie", u
assert u["displayName"] == "Barbara J.", u

step("set the manager with its id alone")
r = http.post("/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"manager_{tag}",
                              "displayName": "La Cheffe", "active": True})
assert r.status_code == 201, r.text
manager = r.json()["id"]
patch(f"/Users/{uid}", {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": manager})
u = http.get(f"/Users/{uid}").json()
assert u[ENTERPRISE]["manager"]["value"] == manager, u
assert u[ENTERPRISE]["manager"]["displayName"] == "La Cheffe", u

step("disable user, the Boolean as a string and as a Boolean")
patch(f"/Users/{uid}", {"op": "Replace", "path": "active", "value": "False"})
assert http.get(f"/Users/{uid}").json()["active"] is False
patch(f"/Users/{uid}", {"op": "replace", "path": "active", "value": True})
assert http.get(f"/Users/{uid}").json()["active"] is True
patch(f"/Users/{uid}", {"op": "replace", "path": "active", "value": False})
assert http.get(f"/Users/{uid}").json()["active"] is False

step("null update clears an attribute")
patch(f"/Users/{uid}", {"op": "Replace", "path": "displayName", "value": ""})
assert "displayName" not in http.get(f"/Users/{uid}").json()

step("create group")
other = http.post("/Users", json={"userName": f"second_{tag}", "active": True}).json()["id"]
r = http.post(
    "/Groups",
    json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": f"{tag}-group",
        "displayName": f"Group {tag}",
        "meta": {"resourceType": "Group"},
    },
)
assert r.status_code == 201, r.text
gid = r.json()["id"]

step("get group, and by displayName, without its members")
r = http.get(f"/Groups/{gid}", params={"excludedAttributes": "members"})
assert r.status_code == 200 and "members" not in r.json(), r.text
r = http.get("/Groups", params={"excludedAttributes": "members", "filter": f'displayName eq "Group {tag}"'})
assert r.status_code == 200 and r.json()["totalResults"] == 1, r.text

step("update group, non-member attributes")
patch(f"/Groups/{gid}", {"op": "Replace", "path": "displayName", "value": f"Renamed {tag}"})
assert http.get(f"/Groups/{gid}").json()["displayName"] == f"Renamed {tag}"

step("update group, add members")
patch(f"/Groups/{gid}", {"op": "Add", "path": "members", "value": [{"$ref": None, "value": uid}, {"$ref": None, "value": other}]})
members = {m["value"] for m in http.get(f"/Groups/{gid}").json()["members"]}
assert members == {uid, other}, members
groups = http.get(f"/Users/{uid}").json()["groups"]
assert [g["value"] for g in groups] == [gid], groups

step("update group, remove one member (Entra ID's default form): only that one goes")
patch(f"/Groups/{gid}", {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": uid}]})
members = [m["value"] for m in http.get(f"/Groups/{gid}").json()["members"]]
assert members == [other], members

step("update group, remove a member (aadOptscim062020 form)")
patch(f"/Groups/{gid}", {"op": "remove", "path": f'members[value eq "{other}"]'})
assert "members" not in http.get(f"/Groups/{gid}").json()

step("delete group and users")
for path in (f"/Groups/{gid}", f"/Users/{uid}", f"/Users/{other}", f"/Users/{manager}"):
    r = http.delete(path)
    assert r.status_code == 204, f"{path}: {r.status_code} {r.text}"
r = http.get(f"/Users/{uid}")
assert r.status_code == 404 and r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], r.text
step("done")
