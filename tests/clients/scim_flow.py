"""A SCIM client written by others (python scim2-client) against the server:
discover the schemas, create a user, query it with a filter, patch it,
delete it. One line per step; exits non-zero on any failure."""

import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import PatchOp, PatchOperation, SearchRequest

url, token = sys.argv[1:3]
client = httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
scim = SyncSCIMClient(client)
scim.discover()
User = scim.get_resource_model("User")
Group = scim.get_resource_model("Group")
print("discovered", User.__name__, Group.__name__)

user = User(user_name="bjensen", name={"given_name": "Barbara", "family_name": "Jensen"},
            emails=[{"value": "bjensen@creteil.example.fr", "primary": True}])
created = scim.create(user)
print("created", created.user_name, created.id)

found = scim.query(User, query_parameters=SearchRequest(filter='userName eq "bjensen"'))
print("found", found.total_results)

patch = PatchOp[User](operations=[PatchOperation(op=PatchOperation.Op.replace_, path="displayName", value="Barbara J.")])
scim.modify(User, created.id, patch)
again = scim.query(User, created.id)
print("displayName", again.display_name)

scim.delete(User, created.id)
print("deleted")
