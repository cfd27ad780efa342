#!/bin/sh
# imapfleet preflight against the lab: one go/no-go line per account saying exactly why, the CSV,
# exit 7 when any account is not ready, 0 when all are, 2 on a bad file; and nothing written to any
# mailbox on either side (STATUS of every folder before and after).
. "${top_srcdir:-.}/tests/integration/tap.sh"
lab_require
plan 20

tmp=$(mktemp -d "${TMPDIR:-/tmp}/preflight-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
S=$LAB_SECRETS
printf 'Lp-wrong-password-%s' "$$" >"$tmp/wrong"
chmod 600 "$tmp/wrong"
# A CA that is not the lab's: the source certificate cannot verify against it.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/other-ca.key" -out "$tmp/other-ca.pem" -days 2 \
	-subj "/CN=not the imapfleet lab CA" >/dev/null 2>&1
# A port nobody listens on (bound for a moment, then released).
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# STATUS of every folder of the accounts this test touches, on both sides: any write (APPEND,
# flag change, expunge, new folder) changes MESSAGES, UIDNEXT, UNSEEN or HIGHESTMODSEQ.
snapshot() {
	python3 - "$LAB_CA" "$S" "$LAB_SRC_IMAPS" "$LAB_DST_IMAPS" <<'EOF'
import imaplib, re, ssl, sys
ca, secrets, src_port, dst_port = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
for side, port in (("src", src_port), ("dst", dst_port)):
    for user in ("user35", "user36", "user37", "user38", "quotauser"):
        m = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ctx)
        m.login(user, open("%s/%s/%s" % (secrets, side, user)).read())
        typ, lines = m.list('""', '*')
        for raw in sorted(l for l in lines if l):
            name = re.match(rb'\(.*?\) (?:"."|NIL) (.*)$', raw).group(1)
            if b"\\Noselect" in raw or b"\\NonExistent" in raw:
                continue
            typ, st = m.status(name.decode(), "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)")
            print(side, user, st[0].decode())
        m.logout()
EOF
}
# LIST attributes such as \Marked change when a folder is examined: compare in a stable order.
snapshot_sorted() { snapshot | sort; }

cat >"$tmp/accounts.csv" <<EOF
host1,port1,user1,passfile1,cafile1,host2,port2,user2,passfile2,cafile2,options
localhost,$LAB_SRC_IMAPS,user35,$S/src/user35,$LAB_CA,localhost,$LAB_DST_IMAPS,user35,$S/dst/user35,$LAB_CA,--maxsize 100K
localhost,$LAB_SRC_IMAPS,user36,$S/src/user36,$LAB_CA,localhost,$LAB_DST_IMAPS,user36,$S/dst/user36,$LAB_CA,
localhost,$LAB_SRC_IMAPS,user37,$S/src/user37,$LAB_CA,localhost,$LAB_DST_IMAPS,user37,$tmp/wrong,$LAB_CA,
localhost,$LAB_SRC_IMAPS,user38,$S/src/user38,$LAB_CA,127.0.0.1,$closed,user38,$S/dst/user38,$LAB_CA,
localhost,$LAB_SRC_IMAPS,user38,$S/src/user38,$tmp/other-ca.pem,localhost,$LAB_DST_IMAPS,user38,$S/dst/user38,$LAB_CA,
localhost,$LAB_SRC_IMAPS,quotauser,$S/src/quotauser,$LAB_CA,localhost,$LAB_DST_IMAPS,quotauser,$S/dst/quotauser,$LAB_CA,
EOF

# Other tests may restart a Dovecot: wait until both answer.
for _i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	"$IMAPFLEET" probe --host localhost --port "$LAB_SRC_IMAPS" --cafile "$LAB_CA" >/dev/null 2>&1 &&
		"$IMAPFLEET" probe --host localhost --port "$LAB_DST_IMAPS" --cafile "$LAB_CA" >/dev/null 2>&1 && break
	sleep 1
done
if snapshot_sorted >"$tmp/before" 2>"$tmp/snap.err"; then :; else
	skip_all "cannot read the lab mailboxes: $(tail -n 1 "$tmp/snap.err")"
fi

out=$("$IMAPFLEET" preflight "$tmp/accounts.csv" --out "$tmp/result.csv" --workers 4 --verbose 2>"$tmp/stderr")
rc=$?
printf '%s\n' "$out" >"$tmp/stdout"
diag "$out"

# line PATTERN: the account line (not an indented detail line) that matches.
has_line() { grep -Eq -- "$1" "$tmp/stdout"; }
check "exit status 7 (not every account is ready)" test "$rc" = 7
check "user35 (good, --maxsize 100K in its row): GO with an oversize warning naming the limit and the largest" \
	sh -c "grep -A4 -E '^GO +user35@' '$tmp/stdout' | grep -Eq 'warning: [0-9]+ messages? larger than 100\\.0 KB \\(--maxsize\\).*largest'"
check "user36 (good): GO with folders, messages, size and quota, no warning" \
	sh -c "grep -Eq '^GO +user36@localhost:$LAB_SRC_IMAPS -> user36@localhost:$LAB_DST_IMAPS: [0-9]+ folders, [0-9]+ messages, [0-9.]+ [KMG]B; fits \\(quota unlimited\\)\$' '$tmp/stdout' &&
		! grep -A3 -E '^GO +user36@' '$tmp/stdout' | grep -q 'warning:'"
check "user37 (wrong destination password): NO-GO, destination login refused, AUTHENTICATIONFAILED" \
	has_line "^NO-GO user37@.*: destination login refused: .*AUTHENTICATIONFAILED"
check "unreachable destination: NO-GO, could not connect, connection refused" \
	has_line "^NO-GO user38@localhost:$LAB_SRC_IMAPS -> user38@127\\.0\\.0\\.1:$closed: destination: could not connect to 127\\.0\\.0\\.1:$closed: connection refused"
check "source certificate from another CA: NO-GO, certificate verify failed, says to use cafile1" \
	has_line "^NO-GO user38@localhost:$LAB_SRC_IMAPS -> user38@localhost:$LAB_DST_IMAPS: source: certificate verify failed.*cafile1"
check "quotauser (source mail larger than the destination quota): NO-GO, does not fit, with the numbers" \
	has_line '^NO-GO quotauser@.*: does not fit: source [0-9.]+ MB, destination quota 2\.0 MB with .* used \([0-9.]+ [KM]B short\)'
check "verbose lines show each side's TLS result and the capabilities that matter" \
	sh -c "grep -Eq '^ +dst: TLSv1\\.[23] verified; has UIDPLUS .*QUOTA.*APPENDLIMIT=[0-9]+' '$tmp/stdout'"
check "summary line: 6 accounts, 2 GO, 4 NO-GO, and where the CSV is" \
	has_line "^preflight: 6 accounts: 2 GO \\(1 with warnings\\), 4 NO-GO; .*details in $tmp/result.csv\$"

csvcheck() {
	python3 - "$tmp/result.csv" "$closed" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
head = rows[0]
assert head == ["account", "verdict", "reasons", "folders", "messages", "bytes", "dst_quota_kb", "dst_used_kb",
                "oversize", "bad_names", "src_tls", "dst_tls"], head
r = [dict(zip(head, x)) for x in rows[1:]]
assert len(r) == 6, len(r)
want = ["GO", "GO", "NO-GO", "NO-GO", "NO-GO", "NO-GO"]
assert [x["verdict"] for x in r] == want, [x["verdict"] for x in r]
assert r[0]["account"].startswith("user35@") and int(r[0]["oversize"]) > 0 and "--maxsize" in r[0]["reasons"], r[0]
assert int(r[1]["messages"]) > 0 and int(r[1]["bytes"]) > 0 and int(r[1]["folders"]) > 0, r[1]
assert r[1]["oversize"] == "0" and r[1]["bad_names"] == "0" and r[1]["reasons"] == "", r[1]
assert r[1]["src_tls"].endswith(" verified") and r[1]["dst_tls"].endswith(" verified"), r[1]
assert "AUTHENTICATIONFAILED" in r[2]["reasons"], r[2]
assert "connection refused" in r[3]["reasons"] and sys.argv[2] in r[3]["account"], r[3]
assert "certificate verify failed" in r[4]["reasons"] and r[4]["src_tls"].startswith("failed: "), r[4]
assert "does not fit" in r[5]["reasons"] and r[5]["dst_quota_kb"] == "2048", r[5]
assert int(r[5]["bytes"]) > 2048 * 1024, r[5]
EOF
}
check "CSV: header, one row per account with the right verdict, reasons, counts, quota and TLS" csvcheck

snapshot_sorted >"$tmp/after" 2>&1
if cmp -s "$tmp/before" "$tmp/after" && [ -s "$tmp/before" ]; then
	ok "nothing was written: STATUS of every folder on both sides is unchanged ($(wc -l <"$tmp/before") folders)"
else
	not_ok "nothing was written: STATUS of every folder on both sides is unchanged"
	diff "$tmp/before" "$tmp/after" | head -n 20 | sed 's/^/#   /'
fi

leaked=
for f in "$S"/src/user3[5-8] "$S"/dst/user3[5-8] "$S"/src/quotauser "$S"/dst/quotauser "$tmp/wrong"; do
	cat "$tmp/stdout" "$tmp/stderr" "$tmp/result.csv" | grep -qF -- "$(cat "$f")" && leaked="$leaked $f"
done
if [ -z "$leaked" ]; then ok "no password in the output or the CSV"; else not_ok "password leaked:$leaked"; fi

# All GO: exit 0; --maxsize on the command line applies to every row.
head -n 1 "$tmp/accounts.csv" >"$tmp/one.csv"
sed -n 3p "$tmp/accounts.csv" >>"$tmp/one.csv"
out=$(cd "$tmp" && "$IMAPFLEET" preflight one.csv --maxsize 100K 2>&1)
rc=$?
check "every account GO: exit 0" test "$rc" = 0
check "--maxsize on the command line: oversize warning for the row" \
	sh -c "printf '%s\\n' \"\$1\" | grep -Eq 'warning: [0-9]+ messages? larger than 100\\.0 KB \\(--maxsize\\)'" _ "$out"
check "the CSV goes to ./preflight.csv by default" test -s "$tmp/preflight.csv"

# Sizes counted with UID FETCH RFC822.SIZE agree with STATUS=SIZE.
head -n 3 "$tmp/accounts.csv" >"$tmp/two.csv"
"$IMAPFLEET" preflight "$tmp/two.csv" --out "$tmp/status.csv" >/dev/null 2>&1
"$IMAPFLEET" preflight "$tmp/two.csv" --out "$tmp/fetch.csv" --fetch-sizes >/dev/null 2>&1
check "--fetch-sizes counts the same messages, bytes and oversize as STATUS=SIZE" \
	sh -c "test -s '$tmp/status.csv' && test \"\$(cut -d, -f4-9 '$tmp/status.csv')\" = \"\$(cut -d, -f4-9 '$tmp/fetch.csv')\""

# A Courier-style source (legacy: "INBOX." prefix, '.' separator, no SPECIAL-USE) over STARTTLS:
# the names map onto the destination's namespace without problems and the counts match src.
cat >"$tmp/legacy.csv" <<EOF
host1,port1,user1,passfile1,cafile1,tls1,host2,port2,user2,passfile2,cafile2
localhost,$LAB_LEGACY_IMAP,user35,$S/legacy/user35,$LAB_CA,tls,localhost,$LAB_DST_IMAPS,user35,$S/dst/user35,$LAB_CA
EOF
"$IMAPFLEET" preflight "$tmp/legacy.csv" --out "$tmp/legacy-result.csv" >"$tmp/legacy.out" 2>&1
rc=$?
legacy() {
	[ "$rc" = 0 ] || { cat "$tmp/legacy.out"; return 1; }
	# verdict,folders,messages,bytes,quota,used,oversize,bad_names of the legacy row
	l=$(sed -n 2p "$tmp/legacy-result.csv" | tr -d '"' | cut -d, -f2,4-10) # cells are quoted
	s=$(sed -n 2p "$tmp/status.csv" | cut -d, -f4-6) # user35 from src
	echo "legacy: $l; src: $s"
	case "$l" in "GO,$s,unlimited,unlimited,0,0") return 0 ;; *) return 1 ;; esac
}
check "Courier-style source over STARTTLS: GO, no bad names, same folders, messages and bytes as src" legacy

# A bad row is a NO-GO of its own and the good rows are still checked.
cp "$tmp/one.csv" "$tmp/badrow.csv"
echo "localhost,99999,user35,$S/src/user35,$LAB_CA,localhost,$LAB_DST_IMAPS,user35,$S/dst/user35,$LAB_CA," >>"$tmp/badrow.csv"
out=$("$IMAPFLEET" preflight "$tmp/badrow.csv" --out "$tmp/badrow-result.csv" 2>&1)
rc=$?
check "a bad row: exit 7, NO-GO naming its line and field, the good row still GO" \
	sh -c "test $rc = 7 && printf '%s\\n' \"\$1\" | grep -Eq '^NO-GO line 3: bad row: .*port1' &&
		printf '%s\\n' \"\$1\" | grep -Eq '^GO +user36@'" _ "$out"

# An unusable accounts file: exit 2 before any connection.
printf 'host1,user1,colour\nlocalhost,user35,blue\n' >"$tmp/unusable.csv"
"$IMAPFLEET" preflight "$tmp/unusable.csv" --out "$tmp/x.csv" >"$tmp/unusable.out" 2>&1
rc=$?
check "an unusable accounts file: exit 2 with the reason" sh -c "test $rc = 2 && grep -q colour '$tmp/unusable.out'"
"$IMAPFLEET" preflight "$tmp/one.csv" --maxsize lots --out "$tmp/x.csv" >"$tmp/badopt.out" 2>&1
rc=$?
check "a bad option for every row: exit 2 naming it" sh -c "test $rc = 2 && grep -q -- '--maxsize' '$tmp/badopt.out'"
