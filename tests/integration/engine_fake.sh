#!/bin/sh
# The engine against a scripted destination (tests/tools/fakeimap.py) for what Dovecot will not do
# on demand: no UIDPLUS and no LITERAL+ (synchronising literals, no APPENDUID) still copies every
# message exactly once, also on a second pass; a NO [TOOBIG] on one APPEND fails that message only:
# the rest of the folder goes on and the failure is reported with the message's UID. A MULTIAPPEND
# server that refuses a whole window (one message in it too big) gets that window again message by
# message: only the big message fails.
# Source: lab src user12 (read only).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_db_test fake
plan 15
printf 'fake-dst-pw\n' >"$work/pw"

start_fake() { fake_imap "$@" --user dest --password fake-dst-pw --seed 0; } # SCENARIO NAME [args]: sets $port
to_fake() { # PORT [options]
	_p=$1; shift
	"$IMAPFLEET" sync --host1 localhost --port1 "$LAB_SRC_IMAPS" --user1 user12 --passfile1 "$LAB_SECRETS/src/user12" \
		--cafile1 "$LAB_CA" --host2 localhost --port2 "$_p" --user2 dest --passfile2 "$work/pw" --cafile2 "$LAB_CA" \
		--state "$STATE_URL" "$@"
}
cmp_fake() { # PORT [mailcmp options]
	_p=$1; shift
	$MAILCMP --cafile "$LAB_CA" --src-host localhost --src-port "$LAB_SRC_IMAPS" --src-user user12 \
		--src-passfile "$LAB_SECRETS/src/user12" --dst-host localhost --dst-port "$_p" --dst-user dest \
		--dst-passfile "$work/pw" "$@"
}

start_fake no-uidplus nu
to_fake "$port" >"$work/a.out" 2>&1 && ok "sync into a server without UIDPLUS and LITERAL+ exits 0" ||
	{ not_ok "sync into a server without UIDPLUS and LITERAL+ exits 0"; tail -n 20 "$work/a.out" | sed 's/^/# /'; }
check "without UIDPLUS the destination equals the source message by message" cmp_fake "$port" --no-flags
if grep -q "APPEND.*{[0-9]*+}" "$work/nu.log"; then not_ok "only synchronising literals were sent"; else ok "only synchronising literals were sent"; fi
to_fake "$port" >"$work/b.out" 2>&1
grep -q ", 0 copied" "$work/b.out" && ok "a second pass without UIDPLUS copies nothing" || { not_ok "a second pass without UIDPLUS copies nothing"; tail -n 8 "$work/b.out" | sed 's/^/# /'; }
check "and leaves the destination exact" cmp_fake "$port" --no-flags

start_fake append-no an --reject-append 3
to_fake "$port" >"$work/c.out" 2>&1
rc=$?
[ $rc -eq 1 ] && ok "one refused APPEND makes sync exit 1 (finished with failures)" || { not_ok "exit 1 (got $rc)"; tail -n 20 "$work/c.out" | sed 's/^/# /'; }
grep -q "failed:   folder '.*' uid [0-9]*: .*TOOBIG\|failed:   folder '.*' uid [0-9]*:" "$work/c.out" &&
	ok "the refused message is reported with its folder and UID" || { not_ok "the refused message is reported"; tail -n 12 "$work/c.out" | sed 's/^/# /'; }
missing=$(cmp_fake "$port" --no-flags 2>&1 | sed -n 's/^mailcmp: FAIL \([0-9]*\) missing, 0 extra.*/\1/p')
[ "$missing" = 1 ] && ok "exactly that one message is missing; the rest of the folder went on" ||
	not_ok "exactly one message missing (got '${missing}')"

# ---- MULTIAPPEND refused as a whole: the window again, one message at a time -----------------------
# The limit is just under the biggest message of a folder that holds several: that folder's window
# is refused whole; every message at or over that size fails, the rest must be copied.
sizes=$(python3 - "$LAB_SRC_IMAPS" "$LAB_SECRETS/src/user12" "$LAB_CA" <<'PY'
import os, re, sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "tools"))
import mailcmp
a = mailcmp.Account("src", "localhost", int(sys.argv[1]), "user12", sys.argv[2], "ssl", None, sys.argv[3], 60)
sizes, big = [], 0
for name, f in a.folders(True).items():
    if int(a.ok(a.conn.select(mailcmp.quote(f.wire), readonly=True), "EXAMINE")[0] or 0) == 0:
        continue
    here = []
    for item in a.ok(a.conn.uid("FETCH", "1:*", "(RFC822.SIZE)"), "FETCH"):
        m = re.search(rb"RFC822.SIZE (\d+)", item if isinstance(item, bytes) else b"")
        if m:
            here.append(int(m.group(1)))
    sizes += here
    if len(here) > 1:  # a window of several messages holds the biggest one
        big = max(big, max(here))
print(big - 1, sum(1 for s in sizes if s >= big))
PY
)
limit=${sizes% *} nbig=${sizes#* }
start_fake multiappend ma --reject-over "$limit"
to_fake "$port" >"$work/d.out" 2>&1
rc=$?
[ $rc -eq 1 ] && ok "MULTIAPPEND: a refused window makes sync exit 1 (finished with failures)" ||
	{ not_ok "MULTIAPPEND: exit 1 (got $rc)"; tail -n 20 "$work/d.out" | sed 's/^/# /'; }
if grep -Eq "APPEND .*\{[0-9]+ bytes\}.*\{[0-9]+ bytes\}" "$work/ma.log"; then ok "several messages were sent in one APPEND"
else not_ok "several messages were sent in one APPEND (no MULTIAPPEND in the fake's log)"; fi
grep -q "MULTIAPPEND of [0-9]* messages refused" "$work/d.out" && ok "the refusal was logged and the window copied one by one" ||
	{ not_ok "the refusal was logged and the window copied one by one"; grep -i "append" "$work/d.out" | tail -n 5 | sed 's/^/# /'; }
missing=$(cmp_fake "$port" --no-flags 2>&1 | sed -n 's/^mailcmp: FAIL \([0-9]*\) missing, 0 extra.*/\1/p')
[ "$missing" = "$nbig" ] && ok "only the $nbig message(s) over $limit bytes are missing; nothing twice" ||
	not_ok "only the $nbig message(s) over $limit bytes are missing (got '${missing}')"

# ---- a folder the destination refuses to create ------------------------------------------------------
junk=$(python3 - "$LAB_SRC_IMAPS" "$LAB_SECRETS/src/user12" "$LAB_CA" <<'PY'
import os, sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "tools"))
import mailcmp
a = mailcmp.Account("src", "localhost", int(sys.argv[1]), "user12", sys.argv[2], "ssl", None, sys.argv[3], 60)
print(int(a.ok(a.conn.select("Junk", readonly=True), "EXAMINE")[0] or 0))
PY
)
start_fake normal rc --refuse-create Junk
to_fake "$port" >"$work/e.out" 2>&1
rc=$?
[ $rc -eq 1 ] && ok "a refused CREATE makes sync exit 1 (finished with failures)" ||
	{ not_ok "a refused CREATE: exit 1 (got $rc)"; tail -n 20 "$work/e.out" | sed 's/^/# /'; }
grep -q "cannot create folder 'Junk' (from 'Junk') on the destination.*CANNOT" "$work/e.out" &&
	ok "the refused folder is reported with the server's reason" ||
	{ not_ok "the refused folder is reported with the server's reason"; grep -i "junk" "$work/e.out" | tail -n 5 | sed 's/^/# /'; }
missing=$(cmp_fake "$port" --no-flags 2>&1 | sed -n 's/^mailcmp: FAIL \([0-9]*\) missing, 0 extra.*/\1/p')
[ -n "$junk" ] && [ "$junk" -gt 0 ] && [ "$missing" = "$junk" ] &&
	ok "only the $junk messages of that folder are missing; every other folder was copied" ||
	not_ok "only the messages of the refused folder are missing (Junk holds '${junk}', missing '${missing}')"
