#!/usr/bin/env bash
# Fuzzes the resource API with schemathesis against its own OpenAPI document.
#
# Starts `tessera serve` on a fresh SQLite database and a random port, signs a user in and lets a
# partner app through the real authorization-code flow (login, consent, code exchange with PKCE),
# then runs `schemathesis run` against /openapi.json with the access token. A 5xx, or a response
# that does not match the documented status codes, content types or schemas, fails the run.
#
# Usage: scripts/schemathesis.sh [path/to/tessera]   (default: target/debug/tessera, built if missing)
# Bounds: SCHEMATHESIS_MAX_EXAMPLES (default 25 per operation) and SCHEMATHESIS_TIMEOUT (default
# 240 seconds for the whole run, a hard stop). Reports land in target/schemathesis/.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-target/debug/tessera}
if [ ! -x "$BIN" ]; then
  cargo build --bin tessera
fi
BIN=$(realpath "$BIN")
command -v schemathesis >/dev/null || { echo "schemathesis is not installed: pip install schemathesis" >&2; exit 1; }

WORK=$(mktemp -d)
REPORT_DIR=$(pwd)/target/schemathesis
mkdir -p "$REPORT_DIR"
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
export TESSERA_DATABASE_URL="sqlite://$WORK/tessera.db"
export TESSERA_ISSUER_URL="$BASE"
export TESSERA_LOG=warn
unset TESSERA_LISTEN || true

EMAIL=fuzz@example.com
PASSWORD='correct horse battery'
REDIRECT=https://partner.example/callback
SCOPES="caches:read caches:write cacheRules:read cacheRules:write databases:read databases:write"

"$BIN" migrate >/dev/null
"$BIN" admin create-user --email "$EMAIL" --password "$PASSWORD" --name "Fuzz User" >/dev/null
scope_args=()
for s in $SCOPES; do scope_args+=(--scope "$s"); done
APP=$("$BIN" admin create-app --owner-user "$EMAIL" --name "Fuzz Partner" --redirect-uri "$REDIRECT" "${scope_args[@]}")
CLIENT_ID=$(jq -r .client_id <<<"$APP")
CLIENT_SECRET=$(jq -r .client_secret <<<"$APP")

"$BIN" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fs "$BASE/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; echo "tessera serve exited" >&2; exit 1; }
  sleep 0.1
done
curl -fs "$BASE/readyz" >/dev/null

# The user's browser: a cookie jar, no redirects followed.
JAR="$WORK/cookies"
hidden() { sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" | head -n1 | sed 's/&amp;/\&/g'; }
location() { tr -d '\r' | sed -n 's/^[Ll]ocation: //p' | head -n1; }
uri() { jq -rn --arg v "$1" '$v|@uri'; }

CSRF=$(curl -fs -c "$JAR" -b "$JAR" "$BASE/login" | hidden csrf_token)
curl -fs -o /dev/null -c "$JAR" -b "$JAR" "$BASE/login" \
  --data-urlencode "csrf_token=$CSRF" --data-urlencode "email=$EMAIL" --data-urlencode "password=$PASSWORD" -d next=/

VERIFIER=$(openssl rand -base64 48 | tr -d '=+/\n' | cut -c1-64)
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '=')
AUTH="$BASE/oauth2/auth?response_type=code&client_id=$CLIENT_ID&redirect_uri=$(uri "$REDIRECT")&scope=$(uri "$SCOPES")&state=fuzz&code_challenge=$CHALLENGE&code_challenge_method=S256"
CONSENT=$(curl -fs -D - -o /dev/null -c "$JAR" -b "$JAR" "$AUTH" | location)
PAGE=$(curl -fs -c "$JAR" -b "$JAR" "$BASE$CONSENT")
CSRF=$(hidden csrf_token <<<"$PAGE")
CONSENT_CHALLENGE=$(hidden consent_challenge <<<"$PAGE")
WORKSPACE=$(sed -n 's/.*<option value="\([^"]*\)".*/\1/p' <<<"$PAGE" | head -n1)
CALLBACK=$(curl -fs -D - -o /dev/null -c "$JAR" -b "$JAR" "$BASE/oauth2/consent" \
  --data-urlencode "csrf_token=$CSRF" --data-urlencode "consent_challenge=$CONSENT_CHALLENGE" \
  --data-urlencode "workspace_id=$WORKSPACE" -d decision=allow | location)
CODE=$(sed -n 's/.*[?&]code=\([^&]*\).*/\1/p' <<<"$CALLBACK")
[ -n "$CODE" ] || { echo "no code in the callback: $CALLBACK" >&2; exit 1; }
TOKENS=$(curl -fs -u "$CLIENT_ID:$CLIENT_SECRET" "$BASE/oauth2/token" -d grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$REDIRECT" -d "code_verifier=$VERIFIER")
ACCESS_TOKEN=$(jq -r .access_token <<<"$TOKENS")
curl -fs -o /dev/null -H "Authorization: Bearer $ACCESS_TOKEN" "$BASE/v1/workspace"
echo "signed in through the authorization-code flow; fuzzing $BASE/openapi.json"

status=0
timeout "${SCHEMATHESIS_TIMEOUT:-240}" schemathesis run "$BASE/openapi.json" \
  --header "Authorization: Bearer $ACCESS_TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
  --seed "${SCHEMATHESIS_SEED:-$RANDOM}" \
  --workers 2 \
  --report junit --report-dir "$REPORT_DIR" || status=$?

if grep -E '(panicked|ERROR)' "$WORK/server.log" >&2; then
  echo "the server logged errors during the run (above)" >&2
  status=1
fi
exit "$status"
