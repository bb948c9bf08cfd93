#!/bin/sh
# Provisions RabbitMQ for docker-compose.yml (the rabbitmq-init one-shot container), as
# scripts/infra-up does on a machine: vhost "sagittarius", durable fanout exchange "sagittarius-a",
# one user per service of services.conf with least-privilege permissions (see TEAM rules in
# scripts/infra-up), no guest. Idempotent: it runs at every `docker-compose up`.
# Environment: RABBITMQ_API (http://rabbitmq:15672), RABBITMQ_ADMIN_USER, RABBITMQ_ADMIN_PASSWORD,
# SERVICES_CONF (path of services.conf), and <NAME>_PASSWORD per service (sales.orders ->
# SALES_ORDERS_PASSWORD).
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
