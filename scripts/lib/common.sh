# shellcheck shell=bash
# shellcheck disable=SC2034 # variables used by the scripts that source this file
# Shared by every script in scripts/: configuration, output, privileges, packages, secrets,
# the service list. Source it with:  . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Every setting below can be overridden from the environment.

set -euo pipefail

SAG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
SAG_SCRIPTS=$SAG_ROOT/scripts
SAG_HOST=127.0.0.1

# Debian puts the server tools in /usr/sbin, which is not on every user's PATH.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then PATH=/usr/local/go/bin:$PATH; fi
export PATH

SAGITTARIUS_DATA=${SAGITTARIUS_DATA:-$SAG_ROOT/.data}
case $SAGITTARIUS_DATA in /*) ;; *) SAGITTARIUS_DATA=$PWD/$SAGITTARIUS_DATA ;; esac
AMQP_PORT=${AMQP_PORT:-5672}
RABBITMQ_MANAGEMENT_PORT=${RABBITMQ_MANAGEMENT_PORT:-15672}
RABBITMQ_DIST_PORT=${RABBITMQ_DIST_PORT:-25672}
RABBITMQ_PROMETHEUS_PORT=${RABBITMQ_PROMETHEUS_PORT:-15692}
RABBITMQ_NODENAME=${RABBITMQ_NODENAME:-sagittarius@localhost}
MYSQL_PORT=${MYSQL_PORT:-3306}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
# RABBITMQ_NODES=3: a cluster of three nodes on this machine (node i uses each RabbitMQ port + i-1,
# folder rabbitmq-<i>, name <name>-<i>@host); it implies QUEUE_TYPE=quorum.
RABBITMQ_NODES=${RABBITMQ_NODES:-1}
[[ $RABBITMQ_NODES =~ ^[1-9]$ ]] || { printf 'error: RABBITMQ_NODES must be 1 to 9, not "%s"\n' "$RABBITMQ_NODES" >&2 && exit 1; }
if ((RABBITMQ_NODES > 1)); then
	[[ ${QUEUE_TYPE:-quorum} == quorum ]] || { printf 'error: RABBITMQ_NODES=%s needs QUEUE_TYPE=quorum (classic queues live on one node)\n' "$RABBITMQ_NODES" >&2 && exit 1; }
	QUEUE_TYPE=quorum
fi
QUEUE_TYPE=${QUEUE_TYPE:-classic}
# Instances of every domain service (SERVICE_INSTANCES, or <DIR>_INSTANCES for one): instance k
# (1-based) listens on the service's port + 100*(k-1).
SERVICE_INSTANCES=${SERVICE_INSTANCES:-1}
SAG_INSTANCE_PORT_STEP=100
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
MYSQLD_EXPORTER_PORT=${MYSQLD_EXPORTER_PORT:-9104}
PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://$SAG_HOST:$GATEWAY_PORT}
SERVICE_START_TIMEOUT=${SERVICE_START_TIMEOUT:-60}

SAG_VHOST=sagittarius
SAG_EXCHANGE=sagittarius-a
SAG_RABBIT_ADMIN=sagittarius-admin
SAG_MYSQL_ADMIN=sagittarius_admin
SAG_MYSQL_EXPORTER=sagittarius_exporter

SAG_RABBIT_DIR=$SAGITTARIUS_DATA/rabbitmq
SAG_MARIADB_DIR=$SAGITTARIUS_DATA/mariadb
SAG_SECRETS=$SAGITTARIUS_DATA/secrets
SAG_ENV_DIR=$SAGITTARIUS_DATA/env
SAG_LOGS=$SAGITTARIUS_DATA/logs
SAG_RUN=$SAGITTARIUS_DATA/run
SAG_BIN=$SAGITTARIUS_DATA/bin
# Marks a folder as ours: scripts/down --purge deletes nothing without it.
SAG_MARKER=$SAGITTARIUS_DATA/.sagittarius-data

# Service and subscriber names: lowercase English words with dashes, exactly one dot.
SAG_NAME_RE='^[a-z]+(-[a-z]+)*\.[a-z]+(-[a-z]+)*$'

# ---------------------------------------------------------------------------------------------
# Output. Progress goes to stdout; warnings and errors to stderr.

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }

# die MESSAGE [LOGFILE...]: print the error, the tail of each log that exists, and exit 1.
die() {
	local msg=$1 log
	shift
	printf 'error: %s\n' "$msg" >&2
	for log in "$@"; do
		if [[ -s $log ]]; then
			printf -- '--- last lines of %s:\n' "$log" >&2
			tail -n 25 "$log" >&2 || true
			printf -- '--- (full log: %s)\n' "$log" >&2
		fi
	done
	exit 1
}

# ---------------------------------------------------------------------------------------------
# Privileges. RabbitMQ's Debian wrapper only runs as root or rabbitmq; apt needs root.

as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "this step needs root and sudo is not installed: run as root (needed: $*)"
	fi
}

# SAG_SUDO: prefix for a root command started in the background, where a function (as_root)
# would leave a forked copy of the calling script waiting for it.
SAG_SUDO=()
[[ $EUID -eq 0 ]] || SAG_SUDO=(sudo)

# as_user USER CMD...: run CMD as USER (used to check that rabbitmq can write its folders).
as_user() {
	local user=$1
	shift
	if [[ $EUID -eq 0 ]]; then
		runuser -u "$user" -- "$@"
	else
		sudo -u "$user" -- "$@"
	fi
}

# ---------------------------------------------------------------------------------------------
# Packages.

package_installed() {
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

# ensure_packages PKG...: install the missing ones with apt (apt-get update first). Services are
# not started by the packages: a policy-rc.d that refuses is put in place for the install when
# none exists, because we run the servers ourselves on our own ports.
ensure_packages() {
	local missing=() p log=$SAG_LOGS/apt.log created_policy=""
	for p in "$@"; do
		package_installed "$p" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	command -v apt-get >/dev/null 2>&1 || die "missing packages: ${missing[*]}; no apt-get here, install them yourself"
	mkdir -p "$SAG_LOGS"
	say "Installing ${missing[*]} with apt (log: $log)"
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		as_root sh -c 'printf "#!/bin/sh\n# sagittarius: do not start services during apt-get install\nexit 101\n" >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
		created_policy=1
	fi
	local rc=0
	{
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update &&
			as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
	} >>"$log" 2>&1 </dev/null || rc=$?
	if [[ -n $created_policy ]]; then as_root rm -f /usr/sbin/policy-rc.d; fi
	((rc == 0)) || die "apt-get could not install ${missing[*]}" "$log"
	note "installed ${missing[*]}"
}

# ---------------------------------------------------------------------------------------------
# Folders and secrets.

ensure_data_dirs() {
	mkdir -p "$SAGITTARIUS_DATA" "$SAG_LOGS" "$SAG_RUN" "$SAG_BIN" "$SAG_ENV_DIR" "$SAG_SECRETS"
	chmod 700 "$SAG_SECRETS" "$SAG_ENV_DIR"
	[[ -e $SAG_MARKER ]] || printf 'Runtime data of Sagittarius (scripts/up). Delete with scripts/down --purge.\n' >"$SAG_MARKER"
}

# lock_data_dir: serialise scripts that start or stop things in this data folder (several people
# or test runs may share it). Inherited by the scripts it calls, which then do not lock again.
lock_data_dir() {
	[[ ${SAG_DATA_LOCKED-} == "$SAGITTARIUS_DATA" ]] && return 0
	mkdir -p "$SAGITTARIUS_DATA"
	exec 9>>"$SAGITTARIUS_DATA/.lock"
	if ! flock -n 9; then
		say "Waiting for another script using $SAGITTARIUS_DATA (up to 10 minutes)"
		flock -w 600 9 || die "another script holds $SAGITTARIUS_DATA/.lock for more than 10 minutes"
	fi
	export SAG_DATA_LOCKED=$SAGITTARIUS_DATA
}

# random_secret: 32 hex characters (URL- and shell-safe).
random_secret() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }

# secret NAME: print the secret stored in secrets/NAME, generating it (mode 600) the first time.
secret() {
	local f=$SAG_SECRETS/$1
	if [[ ! -s $f ]]; then
		(
			umask 077
			mkdir -p "$(dirname "$f")"
			random_secret >"$f.tmp"
			mv "$f.tmp" "$f"
		)
	fi
	cat "$f"
}

# write_private FILE: write stdin to FILE with mode 600 (atomically).
write_private() {
	(
		umask 077
		cat >"$1.tmp"
		mv "$1.tmp" "$1"
	)
}

# ---------------------------------------------------------------------------------------------
# Services (scripts/services.conf).

SVC_DIRS=()
SVC_NAMES=()
SVC_PORTS=()
SVC_INSTANCES=()

load_services() {
	local dir name port extra line=0 var n
	SVC_DIRS=() SVC_NAMES=() SVC_PORTS=() SVC_INSTANCES=()
	while read -r dir name port extra || [[ -n ${dir-} ]]; do
		line=$((line + 1))
		[[ -z ${dir-} || $dir == \#* ]] && continue
		[[ -z ${extra-} && -n ${port-} ]] || die "scripts/services.conf line $line: want 'dir name port'"
		[[ $dir =~ ^[a-z][a-z0-9-]*$ ]] || die "scripts/services.conf line $line: bad dir '$dir'"
		[[ $name == - || $name =~ $SAG_NAME_RE ]] || die "scripts/services.conf line $line: bad service name '$name'"
		var=$(env_key "$dir")_PORT
		port=${!var:-$port}
		[[ $port =~ ^[0-9]+$ ]] || die "port of $dir is not a number: '$port' (from $var or scripts/services.conf)"
		# The gateway (no name) runs once; a domain service SERVICE_INSTANCES or <DIR>_INSTANCES times.
		var=$(env_key "$dir")_INSTANCES
		n=${!var:-$SERVICE_INSTANCES}
		[[ $name == - ]] && n=1
		[[ $n =~ ^[1-9]$ ]] || die "instances of $dir must be 1 to 9, not '$n' (from $var or SERVICE_INSTANCES)"
		SVC_DIRS+=("$dir")
		SVC_NAMES+=("$name")
		SVC_PORTS+=("$port")
		SVC_INSTANCES+=("$n")
	done <"$SAG_SCRIPTS/services.conf"
}

# instance_port I K: the port of instance K (1-based) of service I (index into SVC_*).
instance_port() { printf '%s' $((SVC_PORTS[$1] + SAG_INSTANCE_PORT_STEP * ($2 - 1))); }

# instance_id I K: the name of instance K of service I in pid and log files: <dir> for the first,
# <dir>.<k> for the others (dirs hold no dot).
instance_id() {
	if (($2 == 1)); then printf '%s' "${SVC_DIRS[$1]}"; else printf '%s.%s' "${SVC_DIRS[$1]}" "$2"; fi
}

# service_urls I: the base URLs of every instance of service I, comma-separated.
service_urls() {
	local k out=""
	for ((k = 1; k <= SVC_INSTANCES[$1]; k++)); do
		out+=${out:+,}http://$SAG_HOST:$(instance_port "$1" "$k")
	done
	printf '%s' "$out"
}

# env_key DIR: the upper-case form used in variable names (orders -> ORDERS, a-b -> A_B).
env_key() {
	local k=${1^^}
	printf '%s' "${k//-/_}"
}

# db_name SERVICE: the MySQL database and user of a service (sales.orders -> sales_orders).
db_name() {
	local n=${1//./_}
	printf '%s' "${n//-/_}"
}

# rx_quote NAME: NAME with regex metacharacters escaped (names only hold [a-z.-]).
rx_quote() { printf '%s' "${1//./\\.}"; }

# json_string S: S as a JSON string literal.
json_string() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

# url_path_escape S: percent-encode a path segment (vhost names).
url_path_escape() {
	local s=$1 out="" c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[a-zA-Z0-9._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

# ---------------------------------------------------------------------------------------------
# Processes and ports.

# pid_alive PID: the process exists (works for processes of other users too).
pid_alive() { [[ ${1-} =~ ^[0-9]+$ && -d /proc/$1 ]]; }

# read_pid FILE: the pid in FILE, or nothing.
read_pid() {
	local pid=""
	if [[ -r $1 ]]; then read -r pid <"$1" 2>/dev/null || true; fi
	if [[ $pid =~ ^[0-9]+$ ]]; then printf '%s' "$pid"; fi
}

# port_in_use PORT: something accepts connections on 127.0.0.1:PORT.
port_in_use() { timeout 2 bash -c ": </dev/tcp/$SAG_HOST/$1" 2>/dev/null; }

# port_owner PORT: a short description of who listens on PORT (best effort).
port_owner() {
	if command -v ss >/dev/null 2>&1; then
		ss -Hltnp "sport = :$1" 2>/dev/null | sed -n '1s/.*users:((\("[^"]*",pid=[0-9]*\).*/\1/p' || true
	fi
}

# require_free_port PORT VARIABLE WHAT: die with advice when PORT is taken.
require_free_port() {
	if port_in_use "$1"; then
		local who
		who=$(port_owner "$1")
		die "port $1 ($3) is already in use${who:+ by $who}; stop that process or choose another port with $2=..."
	fi
}

# stop_pid PID WHAT [SECONDS]: SIGTERM, wait, then SIGKILL.
stop_pid() {
	local pid=$1 what=$2 wait=${3:-20} i
	pid_alive "$pid" || return 0
	# Our own process, or (as root, or with sudo) another user's.
	kill -TERM "$pid" 2>/dev/null || (as_root kill -TERM "$pid") 2>/dev/null || true
	for ((i = 0; i < wait * 10; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	warn "$what (pid $pid) did not stop within ${wait}s: sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || (as_root kill -KILL "$pid") 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	die "$what (pid $pid) is still running after SIGKILL"
}

# ---------------------------------------------------------------------------------------------
# The RabbitMQ node(s) and MariaDB server of this data folder. Node 1 is $RABBITMQ_NODENAME in
# $SAG_RABBIT_DIR on the configured ports; node i of a cluster (RABBITMQ_NODES) is
# <name>-<i>@<host> in $SAG_RABBIT_DIR-<i>, each port + i-1.

# rabbit_node_name I / rabbit_node_dir I / rabbit_port PORT I: node I's name, folder, port.
rabbit_node_name() {
	if (($1 == 1)); then printf '%s' "$RABBITMQ_NODENAME"; else printf '%s-%s@%s' "${RABBITMQ_NODENAME%@*}" "$1" "${RABBITMQ_NODENAME#*@}"; fi
}
rabbit_node_dir() {
	if (($1 == 1)); then printf '%s' "$SAG_RABBIT_DIR"; else printf '%s-%s' "$SAG_RABBIT_DIR" "$1"; fi
}
rabbit_port() { printf '%s' $(($1 + $2 - 1)); }

rabbit_node_args() {
	local i=${1:-1}
	printf '%s\n' --dir "$(rabbit_node_dir "$i")" --node "$(rabbit_node_name "$i")" \
		--port "$(rabbit_port "$AMQP_PORT" "$i")" --dist-port "$(rabbit_port "$RABBITMQ_DIST_PORT" "$i")" \
		--management-port "$(rabbit_port "$RABBITMQ_MANAGEMENT_PORT" "$i")" \
		--prometheus-port "$(rabbit_port "$RABBITMQ_PROMETHEUS_PORT" "$i")"
	if ((RABBITMQ_NODES > 1)); then printf '%s\n' --partition-handling pause_minority; fi
}

# rabbit_node COMMAND [I] [-- CTL ARGS]: scripts/rabbit-node for node I (default 1), with the
# cookie of this data folder (shared by the nodes of a cluster).
rabbit_node() {
	local cmd=$1 i=1 args
	shift
	if [[ ${1-} =~ ^[0-9]+$ ]]; then
		i=$1
		shift
	fi
	mapfile -t args < <(rabbit_node_args "$i")
	RABBIT_NODE_COOKIE=$(secret rabbitmq-erlang-cookie) "$SAG_SCRIPTS/rabbit-node" "$cmd" "${args[@]}" "$@"
}

# rabbitmqctl_main ARGS...: rabbitmqctl against node 1 (as the user that runs the node).
rabbitmqctl_main() { rabbit_node ctl 1 -- "$@"; }

SAG_RABBIT_CURL=$SAG_SECRETS/rabbitmq-admin.curl

# rabbit_api METHOD PATH [JSON]: call the management API as the admin; prints the response body.
# 2xx succeeds; 404 on DELETE counts as done; anything else dies with the answer.
rabbit_api() {
	local method=$1 path=$2 body=${3-} out code
	out=$(mktemp)
	local args=(-sS -K "$SAG_RABBIT_CURL" -X "$method" -o "$out" -w '%{http_code}'
		-H 'content-type: application/json' "http://$SAG_HOST:$RABBITMQ_MANAGEMENT_PORT$path")
	if [[ -n $body ]]; then
		code=$(printf '%s' "$body" | curl "${args[@]}" --data-binary @-) || code=000
	else
		code=$(curl "${args[@]}") || code=000
	fi
	if [[ $code == 2?? || ($method == DELETE && $code == 404) ]]; then
		cat "$out"
		rm -f "$out"
		return 0
	fi
	local answer
	answer=$(head -c 500 "$out")
	rm -f "$out"
	die "RabbitMQ management API: $method $path answered HTTP $code: $answer" "$SAG_RABBIT_DIR/log/$RABBITMQ_NODENAME.log"
}

SAG_MYSQL_ROOT_CNF=$SAG_SECRETS/mariadb-root.cnf
SAG_MARIADB_SOCK=$SAG_MARIADB_DIR/mariadb.sock

# mysql_root ARGS...: the mariadb client as root over the socket (SQL on stdin).
mysql_root() { mariadb --defaults-file="$SAG_MYSQL_ROOT_CNF" "$@"; }

# ---------------------------------------------------------------------------------------------
# URLs (passwords come from the secrets folder).

rabbit_admin_password() { secret rabbitmq-admin.password; }
mysql_admin_password() { secret mysql-admin.password; }
service_password() { secret "services/$1.password"; }

amqp_url() { printf 'amqp://%s:%s@%s:%s/%s' "$1" "$2" "$SAG_HOST" "$AMQP_PORT" "${3-}"; }

# amqp_urls USER PASSWORD [VHOST]: one URL per RabbitMQ node, comma-separated (AMQP_URL of a cluster).
amqp_urls() {
	local i out=""
	for ((i = 1; i <= RABBITMQ_NODES; i++)); do
		out+=${out:+,}$(AMQP_PORT=$(rabbit_port "$AMQP_PORT" "$i") amqp_url "$@")
	done
	printf '%s' "$out"
}
mysql_dsn() { printf '%s:%s@tcp(%s:%s)/%s?parseTime=true&loc=UTC' "$1" "$2" "$SAG_HOST" "$MYSQL_PORT" "${3-}"; }
# shellcheck source=/dev/null # scripts/lib/tls.sh, checked on its own
. "$SAG_SCRIPTS/lib/tls.sh" # TLS on every hop (scripts/up --tls): may wrap functions above
