#!/bin/sh
# The lab that integration tests use is up: both Dovecots answer over verified TLS, PostgreSQL answers.
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
plan 3
for side in SRC DST; do
	eval port=\$LAB_${side}_IMAPS
	if printf 'a LOGOUT\r\n' | timeout 10 openssl s_client -quiet -verify_return_error -CAfile "$LAB_CA" \
		-verify_hostname localhost -connect "127.0.0.1:$port" 2>/dev/null | grep -q '^\* OK'; then
		ok "$side Dovecot greets over TLS verified against the lab CA"
	else
		not_ok "$side Dovecot greets over TLS verified against the lab CA"
	fi
done
if psql "$LAB_PG_URL" -Atc 'select 1' 2>/dev/null | grep -qx 1; then ok "PostgreSQL answers"; else not_ok "PostgreSQL answers"; fi
