"""Runs scim2-tester (python-scim's conformance checker) against the server
and prints one JSON object per check that did not succeed: tool, resource
type, check, the attribute it was about, and why. Exits non-zero only when
the checker itself cannot run."""

import datetime
import json
import re
import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server, filling

# scim2-tester 0.5.2 fills a writable dateTime attribute with a UUID string,
# which its own models then refuse before anything is sent. It takes values
# from a field's examples first: give dateTime fields one, a window of
# validity around today (the Agent extension's validFrom / validUntil), so
# that the checks run against the server.
_examples = filling.get_random_example_value


def _example(path):
    binding = path.resolve()
    if binding is not None and binding.target_type is datetime.datetime:
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        name = (binding.target_field_name or "").lower()
        return now + datetime.timedelta(days=365) if "until" in name else now - datetime.timedelta(days=1)
    return _examples(path)


filling.get_random_example_value = _example

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
