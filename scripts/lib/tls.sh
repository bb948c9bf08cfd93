# shellcheck shell=bash
# shellcheck disable=SC2034,SC2153 # variables used by the scripts that source this file, set by common.sh
# TLS on every hop (README "TLS"): sourced by lib/common.sh. With SAGITTARIUS_TLS=1 (scripts/up --tls):
#   - scripts/tls-certs makes a local CA and certificates under $SAG_TLS_DIR (.data/tls);
#   - RabbitMQ gets a TLS listener on AMQPS_PORT (default 5671; node I of a cluster: +I-1),
#     MariaDB gets ssl_cert/ssl_key/ssl_ca;
#   - the services' environment gets amqps:// URLs and AMQP_CA_FILE, a DSN with tls=true and
#     MYSQL_CA_FILE, SSL_CERT_FILE (Go's roots: the local CA); the gateway TLS_CERT_FILE and
#     TLS_KEY_FILE, and PUBLIC_BASE_URL becomes https://.
# The plain AMQP listener stays on 127.0.0.1 for the administrators and the tests (test.env).

SAGITTARIUS_TLS=${SAGITTARIUS_TLS:-0}
SAG_TLS_DIR=$SAGITTARIUS_DATA/tls
AMQPS_PORT=${AMQPS_PORT:-5671}
SAG_TLS_AMQP_BASE=$AMQP_PORT # node I's plain port is AMQP_PORT+I-1, its TLS port AMQPS_PORT+I-1
SAG_MARIADB_TLS_ARGS=()
SAG_CURL_TLS=() # curl arguments that trust the local CA

tls_on() { [[ $SAGITTARIUS_TLS == 1 ]]; }

if tls_on; then
	if [[ $PUBLIC_BASE_URL == "http://$SAG_HOST:$GATEWAY_PORT" ]]; then
		PUBLIC_BASE_URL=https://$SAG_HOST:$GATEWAY_PORT
	fi
	SAG_CURL_TLS=(--cacert "$SAG_TLS_DIR/ca.pem")
	SAG_MARIADB_TLS_ARGS=(--ssl-ca="$SAG_TLS_DIR/ca.pem" --ssl-cert="$SAG_TLS_DIR/server.pem" --ssl-key="$SAG_TLS_DIR/server-key.pem")
	# Every RabbitMQ node also gets a TLS listener: wrap rabbit_node_args (defined above in common.sh).
	if declare -F rabbit_node_args >/dev/null; then
		eval "_sag_plain_$(declare -f rabbit_node_args)"
		rabbit_node_args() {
			_sag_plain_rabbit_node_args "$@"
			printf '%s\n' --tls-port $((AMQPS_PORT + ${1:-1} - 1)) --tls-dir "$SAG_TLS_DIR"
		}
	fi
fi

# tls_ensure_certs: generate the CA and certificates once (scripts/tls-certs).
tls_ensure_certs() {
	tls_on || return 0
	[[ -s $SAG_TLS_DIR/ca.pem && -s $SAG_TLS_DIR/server.pem ]] && return 0
	"$SAG_SCRIPTS/tls-certs" "$SAG_TLS_DIR"
}

# tls_rabbit_config NODE_DIR PORT TLS_DIR: copy the node's certificate where user rabbitmq reads it and
# print the rabbitmq.conf lines of its TLS listener (scripts/rabbit-node --tls-port --tls-dir).
tls_rabbit_config() {
	local dir=$1 port=$2 src=$3 f
	for f in ca.pem server.pem server-key.pem; do
		[[ -r $src/$f ]] || die "TLS: $src/$f is missing (scripts/tls-certs $src)"
	done
	as_root mkdir -p "$dir/tls"
	as_root cp "$src/ca.pem" "$src/server.pem" "$src/server-key.pem" "$dir/tls/"
	as_root chown -R rabbitmq:rabbitmq "$dir/tls"
	as_root chmod 700 "$dir/tls"
	as_root chmod 600 "$dir/tls/server-key.pem"
	printf 'listeners.ssl.default = %s:%s\n' "$SAG_HOST" "$port"
	printf 'ssl_options.cacertfile = %s\n' "$dir/tls/ca.pem"
	printf 'ssl_options.certfile = %s\n' "$dir/tls/server.pem"
	printf 'ssl_options.keyfile = %s\n' "$dir/tls/server-key.pem"
	printf 'ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n'
	printf 'ssl_options.versions.1 = tlsv1.3\nssl_options.versions.2 = tlsv1.2\n'
}

# tls_write_env: after infra-up wrote env/<dir>.env, switch every service to TLS and check that
# the servers really offer it (a server started before without TLS must be restarted).
tls_write_env() {
	if ! tls_on; then
		tls_require NONE # a platform started before with --tls: its users may connect without TLS again
		return 0
	fi
	local have
	have=$(mysql_root -N -e "SHOW GLOBAL VARIABLES LIKE 'have_ssl'" 2>/dev/null | awk '{print $2}')
	[[ $have == YES ]] || die "TLS: MariaDB runs without TLS (have_ssl=${have:-?}): it was started without --tls; scripts/down, then scripts/up --tls"
	port_in_use "$AMQPS_PORT" || die "TLS: RabbitMQ has no TLS listener on $SAG_HOST:$AMQPS_PORT: it was started without --tls; scripts/down, then scripts/up --tls"
	# The services' MySQL users may then connect only over TLS: the server enforces every hop.
	tls_require SSL
	local f dir
	for f in "$SAG_ENV_DIR"/*.env; do
		dir=$(basename "$f" .env)
		[[ $dir == test ]] && continue
		local tmp
		tmp=$(mktemp)
		# amqp://user:pw@host:PORT/vhost -> amqps://user:pw@host:AMQPS_PORT+(PORT-AMQP_PORT)/vhost
		while IFS= read -r line; do
			case $line in
			AMQP_URL=*) line=$(tls_amqps_line "$line") ;;
			MYSQL_DSN=*) line=${line%\'}"&tls=true'" ;;
			esac
			printf '%s\n' "$line"
		done <"$f" >"$tmp"
		{
			cat "$tmp"
			printf "# TLS (scripts/up --tls)\nSSL_CERT_FILE='%s'\n" "$SAG_TLS_DIR/ca.pem"
			if grep -q '^AMQP_URL=' "$tmp"; then
				printf "AMQP_CA_FILE='%s'\nMYSQL_CA_FILE='%s'\n" "$SAG_TLS_DIR/ca.pem" "$SAG_TLS_DIR/ca.pem"
			else
				printf "TLS_CERT_FILE='%s'\nTLS_KEY_FILE='%s'\n" "$SAG_TLS_DIR/server.pem" "$SAG_TLS_DIR/server-key.pem"
			fi
		} | write_private "$f"
		rm -f "$tmp"
	done
	note "TLS: services use amqps://$SAG_HOST:$AMQPS_PORT and MySQL with TLS (their users REQUIRE SSL); the gateway serves $PUBLIC_BASE_URL (CA: $SAG_TLS_DIR/ca.pem)"
}

# tls_require SSL|NONE: ALTER USER ... REQUIRE for the services' MySQL users.
tls_require() {
	local name host
	for name in "${SVC_NAMES[@]}"; do
		[[ $name == - ]] && continue
		for host in 127.0.0.1 localhost; do
			printf "ALTER USER '%s'@'%s' REQUIRE %s;\n" "$(db_name "$name")" "$host" "$1"
		done
	done | mysql_root || die "ALTER USER ... REQUIRE $1 failed"
}

# tls_amqps_line "AMQP_URL='u1,u2'": the same URLs with amqps:// and the TLS ports.
tls_amqps_line() {
	local v=${1#AMQP_URL=} out="" u rest hostport host port
	v=${v#\'}
	v=${v%\'}
	IFS=, read -r -a urls <<<"$v"
	for u in "${urls[@]}"; do
		rest=${u#amqp://}
		hostport=${rest#*@}
		hostport=${hostport%%/*}
		host=${hostport%:*}
		port=${hostport##*:}
		u="amqps://${rest%%@*}@$host:$((AMQPS_PORT + port - SAG_TLS_AMQP_BASE))/${rest#*/}"
		out+=${out:+,}$u
	done
	printf "AMQP_URL='%s'" "$out"
}

# tls_service_url DIR PORT: the base URL of service DIR (the gateway: https with TLS).
# tls_curl_args: the extra curl arguments that trust the local CA.
tls_service_url() {
	local dir=$1 port=$2
	if tls_on && [[ $dir == gateway ]]; then printf 'https://%s:%s' "$SAG_HOST" "$port"; else printf 'http://%s:%s' "$SAG_HOST" "$port"; fi
}
tls_curl_args() { if tls_on; then printf '%s\n' --cacert "$SAG_TLS_DIR/ca.pem"; fi; }
