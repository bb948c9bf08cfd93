# shellcheck shell=bash
# Prometheus and prometheus-mysqld-exporter for the platform of this data folder (scripts/up starts
# them, scripts/down stops them, scripts/test checks the generated configuration). Source it after
# common.sh and load_services.
#
# Prometheus listens on 127.0.0.1:$PROMETHEUS_PORT (9090), keeps its data in <data>/prometheus/data,
# evaluates deploy/prometheus/alerts.yml and scrapes (job label = what is scraped):
#   - every service of scripts/services.conf at http://127.0.0.1:<port>/metrics, every instance
#     (job = the service's dir, "gateway" for the gateway);
#   - every RabbitMQ node's rabbitmq_prometheus endpoint: /metrics (job "rabbitmq", aggregated)
#     and /metrics/detailed for the sagittarius vhost's queues (job "rabbitmq-queues": depth and
#     consumers per queue);
#   - MariaDB through prometheus-mysqld-exporter on 127.0.0.1:$MYSQLD_EXPORTER_PORT (9104) as the
#     least-privilege user sagittarius_exporter (job "mysqld");
#   - itself (job "prometheus").

SAG_PROM_DIR=$SAGITTARIUS_DATA/prometheus
SAG_PROM_CONFIG=$SAG_PROM_DIR/prometheus.yml
SAG_PROM_PID=$SAG_PROM_DIR/prometheus.pid
SAG_EXPORTER_PID=$SAG_PROM_DIR/mysqld-exporter.pid
SAG_EXPORTER_CNF=$SAG_SECRETS/mysqld-exporter.cnf
SAG_ALERT_RULES=$SAG_ROOT/deploy/prometheus/alerts.yml
SAG_PROM_SCRAPE_INTERVAL=${SAG_PROM_SCRAPE_INTERVAL:-10s}

# prometheus_config: print prometheus.yml for this data folder (from services.conf and the ports).
prometheus_config() {
	local i k t
	printf '# Written by scripts/up at every run from scripts/services.conf and the ports: edits are lost.\n'
	printf 'global:\n  scrape_interval: %s\n  evaluation_interval: %s\n' "$SAG_PROM_SCRAPE_INTERVAL" "$SAG_PROM_SCRAPE_INTERVAL"
	printf 'rule_files:\n  - %s\n' "$(json_string "$SAG_ALERT_RULES")"
	printf 'scrape_configs:\n'
	printf '  - job_name: prometheus\n    static_configs:\n      - targets: ["%s:%s"]\n' "$SAG_HOST" "$PROMETHEUS_PORT"
	for i in "${!SVC_DIRS[@]}"; do
		t=""
		for ((k = 1; k <= SVC_INSTANCES[i]; k++)); do t+=${t:+, }\"$SAG_HOST:$(instance_port "$i" "$k")\"; done
		printf '  - job_name: %s\n    metrics_path: /metrics\n    static_configs:\n      - targets: [%s]\n' "${SVC_DIRS[i]}" "$t"
		if [[ ${SVC_NAMES[i]} != - ]]; then printf '        labels:\n          service: %s\n' "${SVC_NAMES[i]}"; fi
	done
	t=""
	for ((k = 1; k <= RABBITMQ_NODES; k++)); do t+=${t:+, }\"$SAG_HOST:$(rabbit_port "$RABBITMQ_PROMETHEUS_PORT" "$k")\"; done
	printf '  - job_name: rabbitmq\n    metrics_path: /metrics\n    static_configs:\n      - targets: [%s]\n' "$t"
	# Per queue of the platform's vhost: messages ready/unacked and consumers (rabbitmq_detailed_*).
	printf '  - job_name: rabbitmq-queues\n    metrics_path: /metrics/detailed\n'
	printf '    params:\n      vhost: [%s]\n      family: [queue_coarse_metrics, queue_consumer_count]\n' "$SAG_VHOST"
	printf '    static_configs:\n      - targets: [%s]\n' "$t"
	printf '  - job_name: mysqld\n    static_configs:\n      - targets: ["%s:%s"]\n' "$SAG_HOST" "$MYSQLD_EXPORTER_PORT"
}

# monitoring_pid FILE BINARY: the pid in FILE if that process runs BINARY.
monitoring_pid() {
	local pid exe
	pid=$(read_pid "$1")
	pid_alive "$pid" || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
	[[ $exe == "$2" ]] || return 1
	printf '%s' "$pid"
}

# start_mysqld_exporter: start prometheus-mysqld-exporter unless it runs.
start_mysqld_exporter() {
	local bin=/usr/bin/prometheus-mysqld-exporter log=$SAG_LOGS/mysqld-exporter.log pid i
	mkdir -p "$SAG_PROM_DIR"
	printf '[client]\nuser=%s\npassword=%s\nhost=%s\nport=%s\n' "$SAG_MYSQL_EXPORTER" \
		"$(secret mysql-exporter.password)" "$SAG_HOST" "$MYSQL_PORT" | write_private "$SAG_EXPORTER_CNF"
	if pid=$(monitoring_pid "$SAG_EXPORTER_PID" "$bin"); then
		note "mysqld exporter: already running (pid $pid)"
		return 0
	fi
	require_free_port "$MYSQLD_EXPORTER_PORT" MYSQLD_EXPORTER_PORT "prometheus-mysqld-exporter"
	# No replication here: SHOW SLAVE STATUS would need one more privilege (SLAVE MONITOR on MariaDB).
	setsid "$bin" --config.my-cnf="$SAG_EXPORTER_CNF" --web.listen-address="$SAG_HOST:$MYSQLD_EXPORTER_PORT" \
		--no-collect.slave_status \
		</dev/null >>"$log" 2>&1 9>&- &
	pid=$!
	printf '%s\n' "$pid" >"$SAG_EXPORTER_PID"
	for ((i = 0; i < 100; i++)); do
		curl -fs -o /dev/null --max-time 2 "http://$SAG_HOST:$MYSQLD_EXPORTER_PORT/metrics" && break
		pid_alive "$pid" || die "prometheus-mysqld-exporter exited during start-up" "$log"
		sleep 0.1
	done
	note "mysqld exporter: http://$SAG_HOST:$MYSQLD_EXPORTER_PORT/metrics (pid $pid, log: $log)"
}

# start_prometheus: write the configuration, then start Prometheus, or make the running one reload it.
start_prometheus() {
	local bin=/usr/bin/prometheus log=$SAG_LOGS/prometheus.log pid i
	mkdir -p "$SAG_PROM_DIR/data"
	prometheus_config >"$SAG_PROM_CONFIG.tmp"
	if command -v promtool >/dev/null 2>&1; then
		promtool check config "$SAG_PROM_CONFIG.tmp" >"$SAG_LOGS/promtool.log" 2>&1 ||
			die "the generated Prometheus configuration does not pass promtool check config" "$SAG_LOGS/promtool.log"
	fi
	mv -f "$SAG_PROM_CONFIG.tmp" "$SAG_PROM_CONFIG"
	if pid=$(monitoring_pid "$SAG_PROM_PID" "$bin"); then
		kill -HUP "$pid"
		note "Prometheus: already running (pid $pid), configuration reloaded"
		return 0
	fi
	require_free_port "$PROMETHEUS_PORT" PROMETHEUS_PORT "Prometheus"
	setsid "$bin" --config.file="$SAG_PROM_CONFIG" --storage.tsdb.path="$SAG_PROM_DIR/data" \
		--web.listen-address="$SAG_HOST:$PROMETHEUS_PORT" --storage.tsdb.retention.time=15d \
		</dev/null >>"$log" 2>&1 9>&- &
	pid=$!
	printf '%s\n' "$pid" >"$SAG_PROM_PID"
	for ((i = 0; i < 300; i++)); do
		curl -fs -o /dev/null --max-time 2 "http://$SAG_HOST:$PROMETHEUS_PORT/-/ready" && break
		pid_alive "$pid" || die "Prometheus exited during start-up" "$log"
		sleep 0.1
	done
	curl -fs -o /dev/null --max-time 2 "http://$SAG_HOST:$PROMETHEUS_PORT/-/ready" || die "Prometheus was not ready within 30s" "$log"
	note "Prometheus: http://$SAG_HOST:$PROMETHEUS_PORT/ (pid $pid, data: $SAG_PROM_DIR/data, log: $log)"
}

# start_monitoring: install (apt) and start the exporter and Prometheus.
start_monitoring() {
	say "Monitoring: Prometheus on $SAG_HOST:$PROMETHEUS_PORT, MySQL exporter on $SAG_HOST:$MYSQLD_EXPORTER_PORT"
	ensure_packages prometheus prometheus-mysqld-exporter
	start_mysqld_exporter
	start_prometheus
}

# stop_monitoring: stop Prometheus and the exporter if they run.
stop_monitoring() {
	local pid
	if pid=$(monitoring_pid "$SAG_PROM_PID" /usr/bin/prometheus); then
		stop_pid "$pid" Prometheus 30
		note "Prometheus stopped (pid $pid)"
	fi
	if pid=$(monitoring_pid "$SAG_EXPORTER_PID" /usr/bin/prometheus-mysqld-exporter); then
		stop_pid "$pid" "mysqld exporter" 10
		note "mysqld exporter stopped (pid $pid)"
	fi
	rm -f "$SAG_PROM_PID" "$SAG_EXPORTER_PID"
}
