#!/bin/sh
# `imapfleet verify` says PASS after a clean run and FAIL, naming the folder and the source UIDs,
# for messages deleted on the destination behind imapfleet's back; it changes nothing (the
# destination is compared again afterwards). Delta passes look at the destination too: messages deleted there behind imapfleet's back (a
# restore, a re-provisioned mailbox) are noticed although the source did not change, and copied
# again exactly once; a destination account wiped completely (folders deleted and re-created with
# a new UIDVALIDITY, INBOX emptied) is copied again in full. Every step ends with the destination
# compared to the source message by message.
# Source: lab src user12 (read only); destination: lab dst user45 (only this test writes it).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_db_test delta_dest 46
plan 16
wipe_dst user45 || diag "could not wipe the destination account"
csv="$work/accounts.csv"
lab_csv user12:user45 >"$csv"
runit() { lab_run "$1" --max-attempts 3 --retry-base 100 --retry-cap 500; }
copied() { sed -n 's/.*this host copied \([0-9]*\) messages.*/\1/p' "$work/$1.out"; }

runit run1 && ok "the first pass exits 0" || { not_ok "the first pass exits 0"; tail -n 20 "$work/run1.err" | sed 's/^/# /'; }
total=$(copied run1)
check "after the first pass the destination equals the source" same_mail "$LAB_SRC_IMAPS" user12 user45

verify() { "$IMAPFLEET" verify "$csv" --state "$STATE_URL" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" "$@" >"$work/verify.out" 2>"$work/verify.err"; }
verify --deep
rc=$?
[ $rc -eq 0 ] && grep -q "^PASS  user12@localhost -> user45@localhost: $total on source, $total on destination; 0 missing" "$work/verify.out" &&
	ok "verify --deep after a clean run: PASS, every message on both sides (exit 0)" ||
	{ not_ok "verify --deep after a clean run: PASS (exit $rc)"; cat "$work/verify.out" "$work/verify.err" | tail -n 12 | sed 's/^/# /'; }
[ "$(q "select verify_verdict || ' ' || verify_on_source || ' ' || verify_missing from job")" = "PASS $total 0" ] &&
	ok "the verdict is recorded in the state" || not_ok "the verdict is recorded in the state ($(q "select verify_verdict, verify_on_source, verify_missing from job"))"

# Three messages of INBOX deleted on the destination; the source is unchanged.
dst_delete_first user45 3 >"$work/deleted"
diag "deleted on the destination: INBOX UIDs $(cat "$work/deleted")"
srcuids=$(psql "$STATE_URL" -Atc "select string_agg(m.src_uid::text, ',' order by m.src_uid) from message m join folder f on f.id = m.folder_id where f.src_name = 'INBOX' and m.dst_uid in ($(sed 's/ /,/g' "$work/deleted"))")
verify
rc=$?
[ $rc -eq 1 ] && grep -q "^FAIL  user12@localhost -> user45@localhost: $total on source, $((total - 3)) on destination; 3 missing, 0 extra" "$work/verify.out" &&
	ok "verify after deletions on the destination: FAIL with 3 missing (exit 1)" ||
	{ not_ok "verify after deletions: FAIL with 3 missing (exit $rc)"; cat "$work/verify.out" "$work/verify.err" | tail -n 12 | sed 's/^/# /'; }
grep -q "^      INBOX: 3 missing (source UIDs $srcuids)" "$work/verify.out" && ok "verify names the folder and the source UIDs ($srcuids)" ||
	{ not_ok "verify names the folder and the source UIDs ($srcuids)"; sed 's/^/# /' "$work/verify.out"; }
[ "$(q "select verify_verdict || ' ' || verify_missing from job")" = "FAIL 3" ] && ok "the FAIL is recorded in the state" ||
	not_ok "the FAIL is recorded in the state ($(q "select verify_verdict, verify_missing from job"))"
n=$(same_mail "$LAB_SRC_IMAPS" user12 user45 2>&1 | sed -n 's/^mailcmp: FAIL \([0-9]*\) missing, 0 extra.*/\1/p')
[ "$n" = 3 ] && ok "verify changed nothing: the same 3 are still missing" || not_ok "verify changed nothing (mailcmp missing '$n')"
runit run2
n=$(copied run2)
[ "$n" = 3 ] && ok "the next pass notices and copies exactly the 3 deleted messages again" ||
	{ not_ok "the next pass copies exactly the 3 deleted messages again (copied '$n')"; grep -i "warn\|error" "$work/run2.err" | tail -n 8 | sed 's/^/# /'; }
check "the destination equals the source again, nothing twice" same_mail "$LAB_SRC_IMAPS" user12 user45
runit run3
[ "$(copied run3)" = 0 ] && ok "a pass after that copies nothing" || not_ok "a pass after that copies nothing (copied '$(copied run3)')"

# The whole destination account wiped: every folder is examined again and copied in full.
wipe_dst user45 || diag "could not wipe the destination account"
runit run4
rc=$?
n=$(copied run4)
[ $rc -eq 0 ] && [ "$n" = "$total" ] && ok "after a wipe the next pass copies all $total messages again (exit 0)" ||
	{ not_ok "after a wipe the next pass copies all $total messages again (exit $rc, copied '$n')"; tail -n 12 "$work/run4.err" | sed 's/^/# /'; }
check "after the wipe the destination equals the source message by message" same_mail "$LAB_SRC_IMAPS" user12 user45
nuv=$(grep -c "UIDVALIDITY changed" "$work/run4.err")
grep -Eq "WARN  .*destination UIDVALIDITY changed in [0-9]+ folders \(.*\) since the last pass" "$work/run4.err" && [ "$nuv" = 1 ] &&
	ok "the re-created folders are said in one line for the account, not one per folder" ||
	{ not_ok "the re-created folders are said in one line ($nuv lines)"; grep "UIDVALIDITY" "$work/run4.err" | head -n 5 | sed 's/^/# /'; }
verify --failed
[ $? -eq 0 ] && grep -q "^PASS  user12@localhost" "$work/verify.out" && ok "verify --failed after the recopy: PASS" ||
	{ not_ok "verify --failed after the recopy: PASS"; cat "$work/verify.out" "$work/verify.err" | tail -n 8 | sed 's/^/# /'; }
[ "$(q "select state from job")" = done ] && ok "the account is done" || not_ok "the account is done (got '$(q "select state from job")')"
