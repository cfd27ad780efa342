#!/bin/sh
# verify --manifest writes the signed manifest an auditor keeps: after a run of user44, every
# message of the destination (read back over IMAP, body by body) is a line of the manifest with its
# destination folder, UID, size and the SHA-256 of its bytes; the Ed25519 key is made on first use
# beside the credentials key (0600) and its public key printed; verify-manifest checks it offline
# with manifest.pub or the printed key, and fails when one byte is changed, when the signature line
# is cut off, and with another key.
# Accounts: lab src/dst user44 (only this test uses them).
. "${top_srcdir:-.}/tests/integration/tap.sh"
command -v openssl >/dev/null 2>&1 || skip_all "openssl not installed"
lab_db_test manifest 44
plan 11
wipe_dst user44 || diag "could not wipe the destination account"
csv="$work/accounts.csv"
lab_csv user44 >"$csv"
mkdir -m 700 "$work/keys"
lab_run run --key-file "$work/keys/key"
check_rc 0 $? "the run exits 0" "$work/run.err"
check "the destination equals the source message by message" same_mail "$LAB_SRC_IMAPS" user44 user44

"$IMAPFLEET" verify "$csv" --state "$STATE_URL" --key-file "$work/keys/key" --cafile1 "$LAB_CA" --cafile2 "$LAB_CA" \
	--manifest "$work/m.txt" >"$work/verify.out" 2>"$work/verify.err"
rc=$?
total=$(q "select count(*) from message where state = 'copied'")
[ $rc -eq 0 ] && grep -q "^manifest $work/m.txt: 1 accounts, $total messages, signed with Ed25519 public key " "$work/verify.out" &&
	ok "verify --manifest writes the manifest of 1 account and its $total messages (exit 0)" ||
	{ not_ok "verify --manifest writes the manifest (exit $rc)"; cat "$work/verify.out" "$work/verify.err" | tail -n 6 | sed 's/^/# /'; }
[ "$(stat -c %a "$work/keys/manifest.key" 2>/dev/null)" = 600 ] && [ -s "$work/keys/manifest.pub" ] &&
	ok "the signing key was made beside the credentials key (0600) with its public key" ||
	not_ok "the signing key was made beside the credentials key (0600): $(ls -l "$work/keys" | tr '\n' ' ')"
pub=$(sed -n 's/.*signed with Ed25519 public key \([^ ]*\) .*/\1/p' "$work/verify.out")

python3 - "$work/m.txt" "$LAB_DST_IMAPS" "$LAB_SECRETS/dst/user44" "$LAB_CA" <<'PY' >"$work/cmp.out" 2>&1 &&
import os, sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "tools"))
import mailcmp
path, port, pw, ca = sys.argv[1:5]
lines = open(path, encoding="utf-8").read().split("\n")
assert lines[0] == "imapfleet-manifest\tv1" and lines[-2].startswith("signature\ted25519\t"), lines[:2]
man = {}
for l in lines:
    f = l.split("\t")
    if f[0] == "message":
        assert f[11] == "copied", f
        man[(f[5], int(f[7]))] = (int(f[8]), f[10])
acct = mailcmp.Account("dst", "localhost", int(port), "user44", pw, "ssl", None, ca, 60)
seen = 0
for folder in acct.folders(False).values():
    for m in acct.messages(folder, False):
        want = man.get((mailcmp.mutf7_decode(folder.wire), m.uid))
        assert want is not None, "%s UID %d is not in the manifest" % (folder.wire, m.uid)
        assert want == (m.size, m.sha), "%s UID %d: manifest %r, server %r" % (folder.wire, m.uid, want, (m.size, m.sha))
        seen += 1
assert seen == len(man), "%d messages on the destination, %d in the manifest" % (seen, len(man))
print("compared", seen)
PY
	ok "every destination message is in the manifest with its folder, UID, size and SHA-256 ($(tail -n 1 "$work/cmp.out"))" ||
	{ not_ok "every destination message is in the manifest with its size and SHA-256"; tail -n 5 "$work/cmp.out" | sed 's/^/# /'; }

"$IMAPFLEET" verify-manifest "$work/m.txt" --pubkey "$work/keys/manifest.pub" >"$work/vm1.out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "^OK $work/m.txt: 1 accounts, $total messages, signature valid" "$work/vm1.out" &&
	ok "verify-manifest with manifest.pub: OK (exit 0)" || { not_ok "verify-manifest with manifest.pub (exit $rc)"; sed 's/^/# /' "$work/vm1.out"; }
"$IMAPFLEET" verify-manifest "$work/m.txt" --pubkey "$pub" >"$work/vm2.out" 2>&1
[ $? -eq 0 ] && ok "verify-manifest with the printed base64 key: OK" || { not_ok "verify-manifest with the printed key"; sed 's/^/# /' "$work/vm2.out"; }
# Offline: the state store is gone and it still verifies.
drop_db
"$IMAPFLEET" verify-manifest "$work/m.txt" --pubkey "$work/keys/manifest.pub" >/dev/null 2>&1 &&
	ok "it verifies offline (the state store dropped)" || not_ok "it verifies offline"

# One byte changed: a digit of the third message line's size.
python3 - "$work/m.txt" "$work/m1.txt" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
lines = data.split(b"\n")
n = [i for i, l in enumerate(lines) if l.startswith(b"message\t")][2]
# the size is the 9th field: its first digit
fields = lines[n].split(b"\t")
off = sum(len(l) + 1 for l in lines[:n]) + sum(len(f) + 1 for f in fields[:8])
data[off] = ord("1") if data[off] != ord("1") else ord("2")
open(sys.argv[2], "wb").write(data)
PY
[ "$(cmp -l "$work/m.txt" "$work/m1.txt" | wc -l)" = 1 ] || diag "the altered copy differs in $(cmp -l "$work/m.txt" "$work/m1.txt" | wc -l) bytes"
"$IMAPFLEET" verify-manifest "$work/m1.txt" --pubkey "$work/keys/manifest.pub" >"$work/vm3.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "^FAIL .*altered" "$work/vm3.out" && ok "one byte changed: verification fails (exit 1)" ||
	{ not_ok "one byte changed: verification fails (exit $rc)"; sed 's/^/# /' "$work/vm3.out"; }
head -n -1 "$work/m.txt" >"$work/m2.txt"
"$IMAPFLEET" verify-manifest "$work/m2.txt" --pubkey "$work/keys/manifest.pub" >"$work/vm4.out" 2>&1
[ $? -eq 1 ] && ok "without its signature line: verification fails" || { not_ok "without its signature line: fails"; sed 's/^/# /' "$work/vm4.out"; }
openssl genpkey -algorithm ed25519 -out "$work/other.key" 2>/dev/null && openssl pkey -in "$work/other.key" -pubout -out "$work/other.pub" 2>/dev/null
"$IMAPFLEET" verify-manifest "$work/m.txt" --pubkey "$work/other.pub" >"$work/vm5.out" 2>&1
[ $? -eq 1 ] && grep -q "does not verify" "$work/vm5.out" && ok "with another key: verification fails" ||
	{ not_ok "with another key: verification fails"; sed 's/^/# /' "$work/vm5.out"; }
