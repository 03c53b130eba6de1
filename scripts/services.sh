#!/usr/bin/env bash
# services.sh makes PostgreSQL and Redis reachable for ebb and prints the
# environment that points at them. Callers run:
#
#   eval "$(scripts/services.sh)"
#
# STDOUT carries only `export NAME='value'` lines, so the eval above is safe;
# every message goes to STDERR.
#
# Order of attempts, per service, stopping at the first that answers:
#   1. DATABASE_URL / REDIS_URL when set (never replaced: an explicit URL that
#      does not answer is an error, not a reason to start something else).
#   2. The defaults on 127.0.0.1:5432 / 127.0.0.1:6379.
#   3. Throwaway servers this script started earlier, if still alive.
#   4. The machine's own services (pg_ctlcluster, the redis-server daemon).
#   5. deploy/compose.yaml, when a Docker engine answers.
#   6. Throwaway servers from the installed binaries, on free loopback ports,
#      with their data and env kept in ${TMPDIR:-/tmp}/ebb-services.
#   7. Redis only: no redis-server anywhere -> EBB_EMBEDDED_REDIS=1 and a free
#      loopback port on which `bin/demo` hosts an in-process miniredis.
#
# Knobs:
#   EBB_SERVICES_FORCE_LOCAL=1  ignore URLs, defaults, steps 4 and 5: go
#                               straight to throwaway servers (tests this path).
#   EBB_SERVICES_STATE_DIR      where throwaway servers live.
#   EBB_SERVICES_WAIT           readiness deadline in seconds (default 30).
#
# `scripts/services.sh stop` stops the throwaway servers and removes the state
# dir. It never touches the machine's own services or compose.
set -euo pipefail

readonly DEFAULT_DATABASE_URL='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
readonly DEFAULT_REDIS_URL='redis://127.0.0.1:6379/0'
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
STATE_DIR="${EBB_SERVICES_STATE_DIR:-${TMPDIR:-/tmp}/ebb-services}"
WAIT_SECONDS="${EBB_SERVICES_WAIT:-30}"

log() { printf 'services: %s\n' "$*" >&2; }

die() {
	log "error: $*"
	exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

# quote prints $1 as one POSIX single-quoted word, so the export lines are
# safe to eval in dash (make's /bin/sh) as well as bash.
quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# host_port URL_OR_DSN prints "host port" for a postgres:// or redis:// URL or
# a libpq key=value string. It is only used for the /dev/tcp fallback, so it
# handles the common shapes, not every libpq corner.
host_port() {
	local s="$1" def_port="$2" host="" port=""
	if [[ "$s" == *://* ]]; then
		s="${s#*://}"
		s="${s%%[/?]*}"
		s="${s##*@}"
		if [[ "$s" == \[*\]* ]]; then
			host="${s%%]*}"
			host="${host#[}"
			s="${s#*]}"
			[[ "$s" == :* ]] && port="${s#:}"
		else
			host="${s%%:*}"
			[[ "$s" == *:* ]] && port="${s##*:}"
		fi
	else
		[[ " $s " =~ [[:space:]]host=([^[:space:]]+) ]] && host="${BASH_REMATCH[1]}"
		[[ " $s " =~ [[:space:]]port=([0-9]+) ]] && port="${BASH_REMATCH[1]}"
	fi
	# A socket directory or an empty host means the local machine.
	[[ -z "$host" || "$host" == /* ]] && host=127.0.0.1
	printf '%s %s\n' "$host" "${port:-$def_port}"
}

tcp_open() {
	local host="$1" port="$2"
	if have timeout; then
		timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
	else
		(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
	fi
}

pg_up() {
	local url="$1"
	if have pg_isready; then
		pg_isready -q -t 2 -d "$url" >/dev/null 2>&1
	else
		local hp
		read -r -a hp <<<"$(host_port "$url" 5432)"
		tcp_open "${hp[0]}" "${hp[1]}"
	fi
}

redis_up() {
	local url="$1"
	if have redis-cli; then
		local out
		if have timeout; then
			out="$(timeout 3 redis-cli -u "$url" ping 2>/dev/null)" || return 1
		else
			out="$(redis-cli -u "$url" ping 2>/dev/null)" || return 1
		fi
		[[ "$out" == PONG ]]
	else
		local hp
		read -r -a hp <<<"$(host_port "$url" 6379)"
		tcp_open "${hp[0]}" "${hp[1]}"
	fi
}

# wait_up KIND URL polls until the service answers or the deadline passes.
wait_up() {
	local kind="$1" url="$2" deadline=$((SECONDS + WAIT_SECONDS))
	until "${kind}_up" "$url"; do
		if ((SECONDS >= deadline)); then
			return 1
		fi
		sleep 0.2
	done
}

# run_logged LOGFILE CMD... runs a command that may start a daemon. stdin,
# stdout and stderr go to LOGFILE and never to our own streams: a daemon that
# inherited our stdout would hold the pipe of `$(services.sh)` open and hang
# the caller's eval forever. The log is shown only on failure.
run_logged() {
	local logfile="$1"
	shift
	# 9>&-: the daemon must not inherit the lock of with_lock either.
	if "$@" </dev/null >"$logfile" 2>&1 9>&-; then
		return 0
	fi
	log "command failed: $*"
	sed 's/^/    /' "$logfile" | tail -n 20 >&2 || true
	return 1
}

free_port() {
	local p tries=0
	while ((tries < 200)); do
		p=$((20000 + RANDOM % 20000))
		if ! tcp_open 127.0.0.1 "$p"; then
			printf '%s\n' "$p"
			return 0
		fi
		tries=$((tries + 1))
	done
	return 1
}

# ---------------------------------------------------------------- system ---

start_system_pg() {
	have pg_ctlcluster || return 1
	[[ -d /etc/postgresql ]] || return 1
	local conf v started=1 tmp
	tmp="$(mktemp)"
	for conf in /etc/postgresql/*/main; do
		[[ -d "$conf" ]] || continue
		v="${conf#/etc/postgresql/}"
		v="${v%/main}"
		log "starting PostgreSQL cluster $v/main with pg_ctlcluster"
		if run_logged "$tmp" pg_ctlcluster --skip-systemctl-redirect "$v" main start; then
			started=0
		fi
	done
	rm -f "$tmp"
	return "$started"
}

start_system_redis() {
	have redis-server || return 1
	[[ -d /var/lib/redis ]] || return 1
	local logfile=/var/log/redis/ci.log tmp rc=0
	# Without its log directory redis refuses to start; keep its log with ours.
	[[ -d /var/log/redis && -w /var/log/redis ]] || logfile=""
	tmp="$(mktemp)"
	log "starting the redis-server daemon on 127.0.0.1:6379"
	run_logged "$tmp" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
		--save "" --appendonly no --dir /var/lib/redis --logfile "$logfile" || rc=1
	rm -f "$tmp"
	return "$rc"
}

docker_works() {
	have docker || return 1
	if have timeout; then
		timeout 5 docker info >/dev/null 2>&1
	else
		docker info >/dev/null 2>&1
	fi
}

start_compose() {
	local tmp rc=0
	tmp="$(mktemp)"
	log "starting $* from deploy/compose.yaml"
	run_logged "$tmp" docker compose -f "$ROOT/deploy/compose.yaml" up -d "$@" || rc=1
	rm -f "$tmp"
	return "$rc"
}

# ------------------------------------------------------------- throwaway ---

pg_bindir() {
	local d
	# Newest major version first.
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -V -r); do
		if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
			printf '%s\n' "$d"
			return 0
		fi
	done
	if have initdb && have pg_ctl && have postgres; then
		dirname "$(readlink -f "$(command -v pg_ctl)")"
		return 0
	fi
	return 1
}

redis_server_bin() {
	local c
	for c in "$(command -v redis-server 2>/dev/null || true)" /usr/bin/redis-server \
		/usr/local/bin/redis-server /usr/sbin/redis-server; do
		if [[ -n "$c" && -x "$c" ]]; then
			printf '%s\n' "$c"
			return 0
		fi
	done
	return 1
}

# as_pg_user runs a PostgreSQL binary: initdb and postgres refuse to run as
# root, so root drops to the postgres user (or nobody) for them.
as_pg_user() {
	if [[ "$(id -u)" != 0 ]]; then
		"$@"
		return
	fi
	local user=postgres
	id -u "$user" >/dev/null 2>&1 || user=nobody
	if have runuser; then
		runuser -u "$user" -- "$@"
	elif have setpriv; then
		setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@"
	else
		su -s /bin/sh "$user" -c "$(printf '%q ' "$@")"
	fi
}

pg_owner() {
	if [[ "$(id -u)" != 0 ]]; then
		id -un
	elif id -u postgres >/dev/null 2>&1; then
		printf 'postgres\n'
	else
		printf 'nobody\n'
	fi
}

# reuse_local KIND prints the URL of a throwaway server from an earlier call
# if it still answers.
reuse_local() {
	local kind="$1" f url
	f="$STATE_DIR/$kind.url"
	[[ -s "$f" ]] || return 1
	url="$(<"$f")"
	"${kind}_up" "$url" || return 1
	printf '%s\n' "$url"
}

start_local_pg() {
	local bindir dir port url tries=0 owner
	bindir="$(pg_bindir)" || return 1
	dir="$STATE_DIR/pg"
	owner="$(pg_owner)"
	mkdir -p "$STATE_DIR"
	# The server user must reach its data dir, even inside root's TMPDIR.
	chmod 0755 "$STATE_DIR"
	if [[ ! -s "$dir/data/PG_VERSION" ]]; then
		log "initdb a throwaway PostgreSQL in $dir (binaries: $bindir)"
		rm -rf "$dir"
		mkdir -p "$dir"
		[[ "$(id -u)" == 0 ]] && chown "$owner" "$dir"
		run_logged "$STATE_DIR/initdb.log" as_pg_user "$bindir/initdb" -D "$dir/data" \
			-U postgres -A trust -E UTF8 --locale=C --no-sync || return 1
	fi
	# A stale server of ours (postmaster.pid alive but not answering) goes first.
	as_pg_user "$bindir/pg_ctl" -D "$dir/data" -m immediate stop </dev/null >/dev/null 2>&1 || true
	while ((tries < 5)); do
		tries=$((tries + 1))
		port="$(free_port)" || return 1
		log "starting throwaway PostgreSQL on 127.0.0.1:$port"
		# fsync off: this cluster is disposable and only serves tests and demos.
		if run_logged "$STATE_DIR/pg_ctl.log" as_pg_user "$bindir/pg_ctl" -D "$dir/data" \
			-l "$dir/postgres.log" -w -t "$WAIT_SECONDS" \
			-o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=off -c full_page_writes=off -c max_connections=200" \
			start; then
			url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
			if wait_up pg "$url"; then
				printf '%s\n' "$url" >"$STATE_DIR/pg.url"
				printf '%s\n' "$bindir" >"$STATE_DIR/pg.bindir"
				printf '%s\n' "$url"
				return 0
			fi
		fi
		# Most likely someone took the port between our probe and the bind.
		as_pg_user "$bindir/pg_ctl" -D "$dir/data" -m immediate stop </dev/null >/dev/null 2>&1 || true
	done
	return 1
}

start_local_redis() {
	local bin dir port url tries=0
	bin="$(redis_server_bin)" || return 1
	dir="$STATE_DIR/redis"
	mkdir -p "$dir"
	while ((tries < 5)); do
		tries=$((tries + 1))
		port="$(free_port)" || return 1
		log "starting throwaway Redis on 127.0.0.1:$port"
		# noeviction: asynq loses leases under eviction (asynq #799, #1144).
		if run_logged "$STATE_DIR/redis-start.log" "$bin" --daemonize yes --bind 127.0.0.1 \
			--port "$port" --save "" --appendonly no --maxmemory-policy noeviction \
			--dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"; then
			url="redis://127.0.0.1:$port/0"
			if wait_up redis "$url"; then
				printf '%s\n' "$url" >"$STATE_DIR/redis.url"
				printf '%s\n' "$url"
				return 0
			fi
		fi
	done
	return 1
}

stop_local() {
	local bindir
	if [[ -s "$STATE_DIR/pg.bindir" && -d "$STATE_DIR/pg/data" ]]; then
		bindir="$(<"$STATE_DIR/pg.bindir")"
		log "stopping throwaway PostgreSQL in $STATE_DIR/pg"
		as_pg_user "$bindir/pg_ctl" -D "$STATE_DIR/pg/data" -m fast -w stop </dev/null >&2 2>&1 || true
	fi
	if [[ -s "$STATE_DIR/redis/redis.pid" ]]; then
		local pid deadline=$((SECONDS + 10))
		pid="$(<"$STATE_DIR/redis/redis.pid")"
		log "stopping throwaway Redis (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	if [[ -d "$STATE_DIR" ]]; then
		log "removing $STATE_DIR"
		rm -rf "$STATE_DIR"
	fi
	rm -f "$STATE_DIR.lock"
}

# lock_state serialises concurrent calls (say, two CI steps) around the
# throwaway servers, so they do not both initdb one directory. The lock lives
# beside the state dir, which `stop` removes. Without flock we go unlocked.
lock_state() {
	have flock || return 0
	mkdir -p "$(dirname "$STATE_DIR")"
	exec 9>"$STATE_DIR.lock"
	flock -w "$((WAIT_SECONDS * 2))" 9 || die "another services.sh holds $STATE_DIR.lock"
}

# ------------------------------------------------------------------ main ---

install_hint='install them: apt-get install postgresql redis-server (or start deploy/compose.yaml with a Docker engine)'

main() {
	if [[ "${1:-}" == stop ]]; then
		stop_local
		return 0
	fi
	if [[ $# -gt 0 ]]; then
		die "unknown argument $1 (usage: services.sh [stop])"
	fi

	local db_url="" redis_url="" embedded=0 force="${EBB_SERVICES_FORCE_LOCAL:-}"
	local need_pg=1 need_redis=1

	if [[ "$force" == 1 ]]; then
		log "EBB_SERVICES_FORCE_LOCAL=1: using throwaway servers in $STATE_DIR"
	else
		if [[ -n "${DATABASE_URL:-}" ]]; then
			pg_up "$DATABASE_URL" || die "DATABASE_URL is set but PostgreSQL there does not answer; fix or unset it"
			db_url="$DATABASE_URL"
			need_pg=0
		elif pg_up "$DEFAULT_DATABASE_URL"; then
			db_url="$DEFAULT_DATABASE_URL"
			need_pg=0
		fi
		# A REDIS_URL that an earlier eval exported for the embedded demo Redis
		# is ours, not the user's: it answers only while bin/demo runs.
		if [[ -n "${REDIS_URL:-}" && "${EBB_EMBEDDED_REDIS:-}" != 1 ]]; then
			redis_up "$REDIS_URL" || die "REDIS_URL is set but Redis there does not answer PING; fix or unset it"
			redis_url="$REDIS_URL"
			need_redis=0
		elif redis_up "$DEFAULT_REDIS_URL"; then
			redis_url="$DEFAULT_REDIS_URL"
			need_redis=0
		fi
	fi

	if ((need_pg || need_redis)); then
		lock_state
	fi
	# Throwaway servers from an earlier call are cheap to reuse and were only
	# started because nothing better answered then.
	if ((need_pg)) && db_url="$(reuse_local pg)"; then
		log "reusing throwaway PostgreSQL at $db_url"
		need_pg=0
	fi
	if ((need_redis)) && redis_url="$(reuse_local redis)"; then
		log "reusing throwaway Redis at $redis_url"
		need_redis=0
	fi

	if [[ "$force" != 1 ]]; then
		if ((need_pg)) && start_system_pg && wait_up pg "$DEFAULT_DATABASE_URL"; then
			db_url="$DEFAULT_DATABASE_URL"
			need_pg=0
		fi
		if ((need_redis)) && start_system_redis && wait_up redis "$DEFAULT_REDIS_URL"; then
			redis_url="$DEFAULT_REDIS_URL"
			need_redis=0
		fi
		if ((need_pg || need_redis)) && docker_works; then
			local svcs=()
			((need_pg)) && svcs+=(postgres)
			((need_redis)) && svcs+=(redis)
			if start_compose "${svcs[@]}"; then
				if ((need_pg)) && wait_up pg "$DEFAULT_DATABASE_URL"; then
					db_url="$DEFAULT_DATABASE_URL"
					need_pg=0
				fi
				if ((need_redis)) && wait_up redis "$DEFAULT_REDIS_URL"; then
					redis_url="$DEFAULT_REDIS_URL"
					need_redis=0
				fi
			fi
		fi
	fi

	if ((need_pg)); then
		db_url="$(start_local_pg)" ||
			die "no PostgreSQL answers and none could be started; $install_hint"
		need_pg=0
	fi
	if ((need_redis)); then
		if redis_server_bin >/dev/null; then
			redis_url="$(start_local_redis)" ||
				die "no Redis answers and redis-server could not be started (see $STATE_DIR); $install_hint"
		else
			local port
			port="$(free_port)" || die "no free loopback port for the embedded Redis"
			redis_url="redis://127.0.0.1:$port/0"
			embedded=1
			log "no redis-server binary found: EBB_EMBEDDED_REDIS=1, bin/demo will host an in-process"
			log "miniredis on $redis_url. That is only for a one-machine demo, never for a fleet"
			log "or for tests; for those, $install_hint"
		fi
	fi

	if have psql && ! psql -X -q -d "$db_url" -c 'select 1' >/dev/null 2>&1; then
		log "warning: PostgreSQL answers but refuses a login with the URL in DATABASE_URL"
	fi

	local out
	out="export DATABASE_URL=$(quote "$db_url")
export REDIS_URL=$(quote "$redis_url")
export EBB_TEST_DATABASE_URL=$(quote "$db_url")
export EBB_TEST_REDIS_URL=$(quote "$redis_url")"
	if ((embedded)); then
		out+="
export EBB_EMBEDDED_REDIS=1"
	elif [[ -n "${EBB_EMBEDDED_REDIS:-}" ]]; then
		# Left over from an earlier eval in this shell; a real Redis answers now.
		out+="
unset EBB_EMBEDDED_REDIS"
	fi
	if [[ -d "$STATE_DIR" ]]; then
		printf '%s\n' "$out" >"$STATE_DIR/env"
	fi
	printf '%s\n' "$out"
}

main "$@"
