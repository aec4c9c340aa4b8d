#!/bin/sh
# Render the server block from the environment into /tmp (the root file system may be read-only).
#
# The read credential: API_READ_TOKENS, the same comma-separated list the API services accept (Kubernetes
# maps it from the Secret news-secrets; docker compose from .env). The first entry is the one sent, so put the
# newest first when rotating. Only a read token belongs here: this server adds it to every /api/ request any
# browser makes. Unset = no header (an API started without tokens, local only).
set -eu
mkdir -p /tmp/nginx
token=$(printf '%s' "${API_READ_TOKENS:-}" | cut -d, -f1 | tr -d ' \t')
case "$token" in
  *[!A-Za-z0-9._~+/=-]*)
    # RFC 6750's token characters only: anything else could break out of the quoted nginx directive
    echo "40-news-config.sh: the first API_READ_TOKENS entry has characters a bearer token cannot have" >&2
    exit 1 ;;
esac
if [ -n "$token" ]; then NEWS_API_AUTHORIZATION="Bearer $token"; else NEWS_API_AUTHORIZATION=""; fi
export NEWS_API_AUTHORIZATION
envsubst '${CONSUMER_URL} ${NEWS_API_AUTHORIZATION}' < /etc/nginx/news/default.conf.template > /tmp/nginx/default.conf
chmod 600 /tmp/nginx/default.conf
