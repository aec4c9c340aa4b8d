#!/bin/sh
# Render the server block from the environment into /tmp (the root file system may be read-only).
set -eu
mkdir -p /tmp/nginx
envsubst '${CONSUMER_URL} ${NEWS_API_TOKEN}' < /etc/nginx/news/default.conf.template > /tmp/nginx/default.conf
