#!/usr/bin/env bash
# A development CA and a server certificate signed by it, written here
# (certs/ca.pem, certs/ca.key, certs/server.pem, certs/server.key). For
# development and tests only: production certificates come from your PKI.
# Nothing this writes is committed (.gitignore excludes *.pem and *.key).
#
#   certs/make-dev-certs.sh [HOSTNAME ...]     # default: localhost
set -euo pipefail
cd "$(dirname "$0")"
names=("${@:-localhost}")
san="IP:127.0.0.1,IP:::1"
for n in "${names[@]}"; do san="$san,DNS:$n"; done

if [ ! -f ca.key ]; then
    openssl req -x509 -newkey rsa:3072 -sha256 -days 825 -nodes \
        -keyout ca.key -out ca.pem -subj "/O=Convergences dev/CN=Convergences development CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
openssl req -newkey rsa:3072 -sha256 -nodes -keyout server.key -out server.csr \
    -subj "/O=Convergences dev/CN=${names[0]}" 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 397 \
    -out server.pem -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' "$san") 2>/dev/null
rm -f server.csr ca.srl
chmod 600 ca.key server.key
# The server presents its chain: its certificate, then the CA's.
cat ca.pem >> server.pem
openssl verify -CAfile ca.pem server.pem >/dev/null
echo "certs/server.pem and certs/server.key for ${names[*]} (SAN $san), signed by certs/ca.pem"
echo "clients: LDAPTLS_CACERT=$(pwd)/ca.pem ldapsearch -H ldaps://${names[0]}:636 …"
