"""Runs scim2-tester (python-scim's conformance checker) against the server
and prints one JSON object per check that did not succeed: tool, resource
type, check, the attribute it was about, and why. Exits non-zero only when
the checker itself cannot run."""

import json
import re
import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

url, token = sys.argv[1:3]
client = httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
scim = SyncSCIMClient(client)
results = check_server(scim)
ok = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE, Status.SKIPPED}
passed = 0
for r in results:
    if r.status in ok:
        passed += 1
        continue
    reason = r.reason or ""
    target = re.search(r"'([^']+)'", reason)
    print(json.dumps({
        "tool": "scim2-tester",
        "resource": getattr(r, "resource_type", None) or "",
        "check": r.title,
        "target": target.group(1) if target else "",
        "status": r.status.name,
        "reason": reason[:600],
    }))
print(json.dumps({"tool": "scim2-tester", "passed": passed, "total": len(results)}))
