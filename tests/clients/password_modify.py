"""RFC 3062 Password Modify with python's ldap3, as an application changing
an agent's password: bound as the agent, old and new given; then bound as
an administrator, no new password (the server generates one). Prints one
line per step; ldap3 raises on a response it cannot decode."""

import sys

from ldap3 import Connection, Server

url, user_dn, old, new, admin_dn, admin_pw = sys.argv[1:7]
server = Server(url)

me = Connection(server, user=user_dn, password=old)
if not me.bind():
    sys.exit(f"agent bind failed: {me.result}")
changed = me.extend.standard.modify_password(user_dn, old, new)
print(f"own change: {changed} {me.result['description']}")

admin = Connection(server, user=admin_dn, password=admin_pw)
if not admin.bind():
    sys.exit(f"admin bind failed: {admin.result}")
generated = admin.extend.standard.modify_password(user_dn)
kind = "generated" if isinstance(generated, str) and len(generated) >= 8 else f"unexpected {generated!r}"
print(f"reset: {kind} {admin.result['description']}")

again = Connection(server, user=user_dn, password=generated if isinstance(generated, str) else "")
print("generated password binds" if again.bind() else f"generated password refused: {again.result}")
