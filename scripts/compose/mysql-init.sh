#!/bin/bash
# Run once by the mysql image of docker-compose.yml (/docker-entrypoint-initdb.d) on an empty data
# volume: creates one database and one user per service of services.conf, with privileges on that
# database only, and the admin sagittarius_admin (as scripts/infra-up does with MariaDB).
# With MYSQL_EXPORTER_PASSWORD set, it also creates 'exporter', the read-only user of
# prometheus-mysqld-exporter (PROCESS, REPLICATION CLIENT, SELECT; at most 3 connections).
# Environment: MYSQL_ROOT_PASSWORD, SERVICES_CONF, MYSQL_ADMIN_PASSWORD, <NAME>_PASSWORD per service,
# MYSQL_EXPORTER_PASSWORD (optional).
set -euo pipefail

sql() { mysql --protocol=socket -uroot -p"$MYSQL_ROOT_PASSWORD"; }

{
	printf "CREATE USER IF NOT EXISTS 'sagittarius_admin'@'%%' IDENTIFIED BY '%s';\n" "$MYSQL_ADMIN_PASSWORD"
	printf "GRANT ALL PRIVILEGES ON *.* TO 'sagittarius_admin'@'%%' WITH GRANT OPTION;\n"
	if [[ -n ${MYSQL_EXPORTER_PASSWORD:-} ]]; then
		printf "CREATE USER IF NOT EXISTS 'exporter'@'%%' IDENTIFIED BY '%s' WITH MAX_USER_CONNECTIONS 3;\n" "$MYSQL_EXPORTER_PASSWORD"
		printf "GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO 'exporter'@'%%';\n"
		echo "user exporter (prometheus-mysqld-exporter)" >&2
	fi
	while read -r dir name _; do
		case $dir in '' | '#'*) continue ;; esac
		[[ $name == - ]] && continue
		db=${name//[.-]/_}
		var=$(printf '%s' "$name" | tr 'a-z.-' 'A-Z__')_PASSWORD
		pw=${!var:?$var is not set}
		# shellcheck disable=SC2016 # backquotes quote SQL identifiers
		printf 'CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n' "$db"
		printf "CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s';\n" "$db" "$pw"
		# In GRANT, _ is a wildcard: escaped, the grant names exactly one database.
		# shellcheck disable=SC2016
		printf 'GRANT ALL PRIVILEGES ON `%s`.* TO '"'%s'@'%%'"';\n' "${db//_/\\_}" "$db"
		echo "database and user $db" >&2
	done <"$SERVICES_CONF"
} | sql
