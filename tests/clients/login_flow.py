"""The login flow of a legacy application, with python's ldap3 library:
bind as the service account, find the agent by uid under the suffix, bind as
the DN found. Prints one line per step; exits non-zero on any failure."""

import sys

from ldap3 import Connection, Server, SUBTREE

url, svc_dn, svc_pw, base, uid, password = sys.argv[1:7]
server = Server(url)

svc = Connection(server, user=svc_dn, password=svc_pw)
if not svc.bind():
    sys.exit(f"service bind failed: {svc.result}")
print("service bind ok")

svc.search(base, f"(uid={uid})", SUBTREE, attributes=["cn", "mail", "memberOf"])
if len(svc.entries) != 1:
    sys.exit(f"expected one entry, got {len(svc.entries)}: {svc.result}")
entry = svc.entries[0]
print(f"found {entry.entry_dn} cn={entry.cn.value}")

agent = Connection(server, user=entry.entry_dn, password=password)
print("agent bind ok" if agent.bind() else f"agent bind refused: {agent.result['result']}")

wrong = Connection(server, user=entry.entry_dn, password=password + "x")
print("wrong password accepted" if wrong.bind() else f"wrong password refused: {wrong.result['result']}")

# A paged search, as directory synchronisers do.
pages = svc.extend.standard.paged_search(base, "(objectClass=inetOrgPerson)", SUBTREE, attributes=["uid"], paged_size=2, generator=False)
print(f"paged entries: {len([e for e in pages if e.get('type') == 'searchResEntry'])}")
