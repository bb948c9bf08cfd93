#!/bin/sh
# Provisions RabbitMQ for docker-compose.yml (the rabbitmq-init one-shot container), as
# scripts/infra-up does on a machine: vhost "sagittarius", durable fanout exchange "sagittarius-a",
# one user per service of services.conf with least-privilege permissions (see TEAM rules in
# scripts/infra-up), no guest. Idempotent: it runs at every `docker-compose up`.
# Environment: RABBITMQ_API (http://rabbitmq:15672), RABBITMQ_ADMIN_USER, RABBITMQ_ADMIN_PASSWORD,
# SERVICES_CONF (path of services.conf), <NAME>_PASSWORD per service (sales.orders ->
# SALES_ORDERS_PASSWORD), and RABBITMQ_NODES (default 1): with 3 (the `cluster` profile) it first
# waits, up to RABBITMQ_CLUSTER_TIMEOUT seconds (default 180), until three nodes run in the cluster,
# so that the quorum queues the services declare after it get a replica on each.
set -eu

vhost=sagittarius
exchange=sagittarius-a
out=$(mktemp)

api() { # METHOD PATH [JSON]
	if [ $# -ge 3 ]; then
		code=$(printf '%s' "$3" | curl -s -o "$out" -w '%{http_code}' -u "$RABBITMQ_ADMIN_USER:$RABBITMQ_ADMIN_PASSWORD" \
			-X "$1" -H 'content-type: application/json' --data-binary @- "$RABBITMQ_API$2") || code=000
	else
		code=$(curl -s -o "$out" -w '%{http_code}' -u "$RABBITMQ_ADMIN_USER:$RABBITMQ_ADMIN_PASSWORD" \
			-X "$1" "$RABBITMQ_API$2") || code=000
	fi
	case $code in
	2??) ;;
	404) [ "$1" = DELETE ] || {
		echo "error: $1 $2: HTTP $code: $(cat "$out")" >&2
		exit 1
	} ;;
	*)
		echo "error: $1 $2: HTTP $code: $(cat "$out")" >&2
		exit 1
		;;
	esac
}

# json REGEX: REGEX as a JSON string (backslashes doubled).
json() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g')"; }

want=${RABBITMQ_NODES:-1}
deadline=$(($(date +%s) + ${RABBITMQ_CLUSTER_TIMEOUT:-180}))
while :; do
	running=0
	if curl -sf -o "$out" -u "$RABBITMQ_ADMIN_USER:$RABBITMQ_ADMIN_PASSWORD" "$RABBITMQ_API/api/nodes"; then
		running=$(grep -o '"running": *true' "$out" | wc -l | tr -d ' ')
	fi
	[ "$running" -ge "$want" ] && break
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "error: $running of $want RabbitMQ nodes running after ${RABBITMQ_CLUSTER_TIMEOUT:-180} s" >&2
		exit 1
	fi
	sleep 2
done
echo "RabbitMQ: $running node(s) running"

api PUT "/api/vhosts/$vhost" '{"description":"Sagittarius integration events"}'
api PUT "/api/permissions/$vhost/$RABBITMQ_ADMIN_USER" '{"configure":".*","write":".*","read":".*"}'
api DELETE /api/users/guest
api PUT "/api/exchanges/$vhost/$exchange" '{"type":"fanout","durable":true,"auto_delete":false,"internal":false,"arguments":{}}'
echo "vhost $vhost, exchange $exchange (fanout, durable)"

while read -r dir name port; do
	case $dir in '' | '#'*) continue ;; esac
	[ "$name" = - ] && continue
	var=$(printf '%s' "$name" | tr 'a-z.-' 'A-Z__')_PASSWORD
	eval "pw=\${$var:-}"
	[ -n "$pw" ] || {
		echo "error: $var is not set" >&2
		exit 1
	}
	q=$(printf '%s' "$name" | sed 's/\./\\./g')
	own="$q(\\..+)?"
	api PUT "/api/users/$name" "{\"password\":$(json "$pw"),\"tags\":\"\"}"
	api PUT "/api/permissions/$vhost/$name" \
		"{\"configure\":$(json "^$own\$"),\"write\":$(json "^($exchange|$own)\$"),\"read\":$(json "^($exchange|$own)\$")}"
	echo "user $name ($dir, port $port)"
done <"$SERVICES_CONF"
rm -f "$out"
echo "RabbitMQ provisioned"
