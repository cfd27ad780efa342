/* state/manifest.h: the signed manifest, the proof an auditor keeps (issue 12).
 *
 * A manifest lists, per account of a run, every message of the ledger: source folder, source
 * UIDVALIDITY and UID, destination folder, UIDVALIDITY and UID, size, INTERNALDATE, the SHA-256 of
 * the bytes copied and the ledger state, with the account's latest `verify` verdict. It is text
 * (UTF-8, one record a line, fields separated by tabs; a tab, newline, carriage return or backslash
 * inside a field is written \t \n \r \\), and ends with one line
 *
 *     signature <TAB> ed25519 <TAB> SHA-256 of every byte above, hex <TAB> signature, base64
 *     <TAB> public key, base64
 *
 * where the Ed25519 signature (OpenSSL EVP) is over the 32 bytes of that SHA-256, so that any size
 * of manifest is written and checked in bounded memory. The format is in docs/reports.md.
 *
 * The signing key is made on first use beside the credentials key (manifest.key, PKCS#8 PEM, mode
 * 0600, its directory 0700) with its public key (manifest.pub, PEM). Checking needs only the
 * public key: it works offline, without the state store.
 */
#ifndef IMAPFLEET_STATE_MANIFEST_H
#define IMAPFLEET_STATE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "state/state.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* the signing key could not be read or made */
#define STATE_ERR_MANIFEST_KEY "MANIFEST_KEY"
/* signing or checking failed in the library */
#define STATE_ERR_MANIFEST_SIGN "MANIFEST_SIGN"
/* a manifest that is malformed, altered or not signed by the key */
#define STATE_ERR_MANIFEST_BAD "MANIFEST_BAD"
/* the manifest file could not be read */
#define STATE_ERR_MANIFEST_READ "MANIFEST_READ"
/* the manifest file could not be written */
#define STATE_ERR_MANIFEST_WRITE "MANIFEST_WRITE"

#define STATE_MANIFEST_KEY_FILE "manifest.key"
#define STATE_MANIFEST_PUB_FILE "manifest.pub"
/* One line of a manifest, written or read: a message's record is its folder names (escaped) and a
 * few numbers, an account's its hosts and users; a line that would pass it is an error (writing:
 * nothing cut is ever signed; reading: not a manifest this program wrote). */
#define STATE_MANIFEST_LINE_MAX (1 << 20)
/* The signing key's public half as text: base64 of its 32 bytes is 44 characters and the NUL. */
#define STATE_MANIFEST_PUBKEY_B64_MAX 64

/* What a written or checked manifest holds. */
struct state_manifest_info {
	long accounts;
	long messages;
	char pubkey_b64[STATE_MANIFEST_PUBKEY_B64_MAX]; /* the signing key's public half, base64 of its 32 bytes */
};

/* Writes the manifest of the jobs (in that order) of run_id to path (through path.tmp, renamed at
 * the end; mode 0644), signed with the key in key_dir (created when missing). */
int state_manifest_write(struct state_conn *sc, int64_t run_id, const int64_t *jobs, size_t n, const char *key_dir,
			 const char *path, struct state_manifest_info *info, struct fleet_err *err);

/* Checks the manifest at path against pubkey: a PEM public key file, or the base64 of the 32-byte
 * key as state_manifest_write reports it. Returns 0 when the signature is valid and covers every
 * byte before it, -1 with err otherwise (FLEET_ERR_PERMANENT, code "MANIFEST_BAD" for a manifest
 * that does not verify, "MANIFEST_KEY" for a key that cannot be read). */
int state_manifest_verify(const char *path, const char *pubkey, struct state_manifest_info *info,
			  struct fleet_err *err);

#endif
