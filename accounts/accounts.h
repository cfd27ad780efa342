/* accounts/accounts.h: the accounts-file importer (CSV with a header row, or imapsync's file.txt).
 *
 * The administrator's list of account pairs comes in one of two forms, told apart automatically
 * (docs/accounts-file.md describes both for operators):
 *
 *   CSV       RFC 4180 (parsed with libcsv, strict quoting) with a header row naming the columns:
 *             host1 port1 user1 password1|passfile1|passcmd1|token1|tokenfile1|tokencmd1 auth1
 *             authuser1 tls1 cafile1 insecure1, the same with 2, and options. Any order,
 *             case-insensitive, surrounding spaces ignored. A side with tenant credentials
 *             (--oauth1/2 in its options or ACCOUNTS_TENANT_AUTH1/2) needs no secret column.
 *   file.txt  host1;user1;password1;host2;user2;password2;[extra options]; with '#' comments.
 *
 * Every bad row is reported with the physical line it starts on (1-based, the header is line 1
 * unless comments precede it) and the field at fault; the good rows are kept. With
 * ACCOUNTS_STRICT any bad row makes the whole import fail.
 *
 * Secrets: each inline password is registered with fleet_log_add_secret() the moment it is
 * parsed, so it cannot reach a log line or an error text. Passfiles are not read at import time:
 * the row keeps the resolved path and the importer checks that it is readable;
 * accounts_row_load_passwords() reads them when a worker needs them. accounts_free() wipes every
 * password it holds.
 *
 * Ownership: everything returned by the accessors is borrowed from the accounts_file and lives
 * until accounts_free(). A loaded accounts_file is read-only, so any number of threads may read
 * it at once.
 */
#ifndef IMAPFLEET_ACCOUNTS_ACCOUNTS_H
#define IMAPFLEET_ACCOUNTS_ACCOUNTS_H

#include <stddef.h>

#include "common/err.h"
#include "common/util.h"
#include "io/cred.h"
#include "io/imap.h"
#include "io/oauth.h"
#include "io/stream.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* --strict and a row with a problem */
#define ACCOUNTS_ERR_STRICT "ACCOUNTS_STRICT"
/* a --passfile that cannot be read */
#define ACCOUNTS_ERR_PASSFILE "PASSFILE"

/* Error code of an accounts file that is unusable as a whole (unreadable, too large, no header,
 * bad column, --strict with a bad row): the operator fixes the file. */
#define ACCOUNTS_ERR_FILE "ACCOUNTS_FILE"

/* Flags for accounts_load() / accounts_parse_buffer(). */
enum accounts_flags {
	ACCOUNTS_STRICT = 1 << 0,	/* any bad row fails the whole import (--strict) */
	ACCOUNTS_NO_FS_CHECKS = 1 << 1, /* do not check that passfiles/cafiles are readable (fuzzing) */
	ACCOUNTS_TENANT_AUTH1 = 1 << 2, /* side 1 has tenant credentials (--oauth1): no secret column needed */
	ACCOUNTS_TENANT_AUTH2 = 1 << 3, /* the same for side 2 */
};

/* The auth1/auth2 column. */
enum accounts_auth {
	ACCOUNTS_AUTH_DEFAULT = 0, /* not given: a password, or a token when a token column is set */
	ACCOUNTS_AUTH_PASSWORD,
	ACCOUNTS_AUTH_XOAUTH2,
	ACCOUNTS_AUTH_OAUTHBEARER,
};

enum accounts_format {
	ACCOUNTS_FORMAT_CSV = 0,
	ACCOUNTS_FORMAT_FILETXT, /* imapsync's host1;user1;password1;host2;user2;password2;... */
};

enum accounts_tls {
	ACCOUNTS_TLS_SSL = 0,  /* implicit TLS (IMAPS), "ssl" */
	ACCOUNTS_TLS_STARTTLS, /* STARTTLS on a cleartext port, "tls" */
	ACCOUNTS_TLS_PLAIN,    /* no TLS at all, only when asked for, "plain" */
};

/* Longest host name and user name the importer accepts (bytes): a DNS name (RFC 1035), an address
 * of 64 + 1 + 255 bytes (RFC 5321). */
#define ACCOUNTS_HOST_MAX 253
#define ACCOUNTS_USER_MAX 320
/* An accounts file: 64 MiB holds some 500,000 rows, more than one run takes. */
#define ACCOUNTS_FILE_MAX (64u << 20)
/* One field: an options column with every folder rule an account may need. */
#define ACCOUNTS_FIELD_MAX 65536
/* Columns in a header: the known ones are 19; the rest are refused by name. */
#define ACCOUNTS_HEADER_MAX 64
/* Unterminated quotes before the importer gives up on the rest of the file. */
#define ACCOUNTS_RESYNC_MAX 1000
/* An account's key, "host:port/user -> host:port/user" with bytes escaped as %XX: the longest host
 * and user names, escaped, fit twice over. */
#define ACCOUNTS_KEY_MAX 8192
/* One problem reported about a row. */
#define ACCOUNTS_MESSAGE_MAX 1024
/* The unknown columns named in one error (each "shown", with its "did you mean"). */
#define ACCOUNTS_UNKNOWN_MAX 8192
/* Largest passfile accounts_row_load_passwords() reads (bytes, after the trailing newline). */
#define ACCOUNTS_PASSFILE_MAX FLEET_PASSFILE_MAX /* common/util.h: the passfile rules */

/* One side of a pair. Strings are NUL-terminated; optional ones are NULL when not given. */
struct account_side {
	char *host;	       /* never NULL */
	unsigned port;	       /* 1..65535, the default resolved from tls when not given */
	enum accounts_tls tls; /* resolved: given, else by port (993 ssl, 143 tls, other ssl) */
	char *user;	       /* never NULL */
	char *password;	       /* inline password, or NULL when passfile is set */
	char *passfile;	       /* passfile path resolved against the accounts file's directory */
	char *authuser;	       /* admin user to authenticate as (AUTHENTICATE PLAIN), or NULL */
	char *cafile;	       /* CA bundle path (resolved like passfile), or NULL: system CAs */
	int insecure;	       /* 1: do not verify the certificate (explicit, warned about) */
	enum accounts_auth auth; /* auth1/auth2 */
	char *token;	       /* inline OAuth token (registered as a secret), or NULL */
	char *tokenfile;       /* resolved path, re-read on every login, or NULL */
	char *tokencmd;	       /* command printing a token (split with accounts_split_args), or NULL */
	char *passcmd;	       /* command printing the password, or NULL */
};

/* One good row: an account pair. side[0] is the source (1), side[1] the destination (2). */
struct account_row {
	unsigned line;		     /* physical line the row starts on, 1-based */
	struct account_side side[2]; /* [0] = host1/user1/..., [1] = host2/user2/... */
	int argc;		     /* per-row options split into words, not interpreted */
	char **argv;		     /* argc words then NULL; never NULL itself */
	char *key;		     /* identity of the pair, see accounts_row_key() */
};

/* One bad row (or one problem of it: a row with two problems gives two errors). */
struct accounts_error {
	unsigned line;	     /* physical line the row starts on (for an unterminated quote: the
			      * line where the quoted field starts) */
	unsigned other_line; /* duplicate pair: line of the earlier row; else 0 */
	const char *field;   /* column at fault ("port2"), or NULL when the row as a whole is */
	const char *message; /* "accounts.csv:14: field port2: \"99999\" is not a port (1-65535); ..." */
};

struct accounts_file;

/* Reads and parses an accounts file. Returns NULL (and fills err) only when the file as a whole
 * is unusable: it cannot be read, it is too large (64 MiB), it has no header or an unknown,
 * duplicated or missing required column, or ACCOUNTS_STRICT is set and some row is bad (then
 * every error is logged with log_error and err names the count and the first one). Otherwise the
 * result holds the good rows and the list of errors (which the caller shows; not logged here).
 * Relative passfile and cafile paths resolve against the directory of path. Logs a warning when
 * the file holds inline passwords and is readable by group or others. */
struct accounts_file *accounts_load(const char *path, unsigned flags, struct fleet_err *err);

/* Same over a buffer (tests, fuzzing). name is used in messages only; base_dir resolves relative
 * paths (NULL: the current directory). The bytes are not modified nor kept. */
struct accounts_file *accounts_parse_buffer(const char *data, size_t len, const char *name,
					    const char *base_dir, unsigned flags, struct fleet_err *err);

/* Wipes the passwords, frees everything and sets *af to NULL. NULL-safe. */
void accounts_free(struct accounts_file **af);

enum accounts_format accounts_format(const struct accounts_file *af);
size_t accounts_count(const struct accounts_file *af);
/* Row i in file order (i < accounts_count), borrowed. */
const struct account_row *accounts_row(const struct accounts_file *af, size_t i);
size_t accounts_error_count(const struct accounts_file *af);
/* Error i in file order (i < accounts_error_count), borrowed. */
const struct accounts_error *accounts_error_at(const struct accounts_file *af, size_t i);

/* The stable identity of a pair for the state layer's upsert:
 * "host1:port1/user1 -> host2:port2/user2" with host names in lower case and any '%', ':', '/',
 * '>', space or control byte in a host or user written as %XX, so distinct pairs never share a
 * key. TLS mode, passwords and options are not part of it. Borrowed. */
const char *accounts_row_key(const struct account_row *row);

const char *accounts_tls_name(enum accounts_tls tls);
const char *accounts_format_name(enum accounts_format format);

/* Passwords of one row, owned by the caller: release with accounts_secrets_release(). */
struct account_secrets {
	char *password[2];
};

/* Fills out with both sides' passwords (NULL for a side whose secret comes from a passcmd, a
 * token column or tenant credentials): the inline one copied, or the passfile read (one
 * trailing newline stripped; empty, missing, unreadable or larger than ACCOUNTS_PASSFILE_MAX is
 * an error naming the side and the path). Registers what it reads with fleet_log_add_secret().
 * Returns 0, or -1 with err set (permanent, account scope) and out left empty. Thread-safe. */
int accounts_row_load_passwords(const struct account_row *row, struct account_secrets *out,
				struct fleet_err *err);
/* Wipes and frees both passwords. NULL-safe. */
void accounts_secrets_release(struct account_secrets *s);

/* Splits an imapsync-style option string into words with shell-like quoting: blanks separate
 * words; '...' is literal; "..." keeps blanks and honours \" \\ (and \$ \` ); a backslash outside
 * quotes escapes the next byte. Nothing is expanded. On success *argv_out is a NULL-terminated
 * heap array (free with accounts_free_args) and 0 is returned; an unterminated quote or a
 * trailing backslash returns -1 with a message in why. */
int accounts_split_args(const char *s, int *argc_out, char ***argv_out, char *why, size_t whylen);
void accounts_free_args(char ***argv);

/* The side settings, one model for every command and the accounts file's options column
 * (common/opt.h tables, per side: --cafile1 / --cafile2, or --cafile for probe's single side).
 * accounts_side_optset holds what says how to reach and log in to a side whatever the command
 * (--ssl1 --tls1 --plain1 --nossl1 --notls1 --cafile1 F --insecure1 --authuser1 A --authmech1 M
 * --oauth1 P --tenant1 --client-id1 --client-secret-file1 --client-cert1 --service-account1
 * --token-url1); accounts_login_optset what only sync and probe take on their command line, the
 * CSV having columns for it (--host1 --port1 --user1 --passfile1 --password1 --passcmd1
 * --tokenfile1 --oauthtokenfile1 --tokencmd1). Strings point into argv. */
struct account_side_settings {
	const char *host;
	unsigned port;		   /* 0: not given */
	const char *user;
	const char *passfile;
	const char *password;	   /* --password1: accepted (registered as a secret), warned about */
	const char *tokenfile;	   /* --tokenfile1 / --oauthtokenfile1 */
	const char *tokencmd;
	const char *passcmd;
	int mode_set;
	enum io_tls_mode mode;
	const char *cafile;
	int insecure;
	const char *authuser;
	enum imap_auth_mech auth;  /* --authmech1 XOAUTH2|OAUTHBEARER|PLAIN|LOGIN, else IMAP_AUTH_AUTO */
	struct oauth_config oauth; /* --oauth1 ms365|google --tenant1 --client-id1 --client-secret-file1
				    * --client-cert1 --service-account1 --token-url1 */
};

struct fleet_optset;
struct fleet_opt_hit;
extern const struct fleet_optset accounts_side_optset;
extern const struct fleet_optset accounts_login_optset;

/* Applies one hit of either table to sd, the side hit->side names (the one parser of side
 * settings). Returns 0,
 * or -1 with why naming the option and the bad value (a port out of range, --oauth1 neither ms365
 * nor google, an unknown --authmech1). */
int accounts_side_set(struct account_side_settings *sd, const struct fleet_opt_hit *hit, char *why, size_t cap);
/* "XOAUTH2" -> IMAP_AUTH_XOAUTH2 (also OAUTHBEARER, PLAIN, LOGIN; any case). -1 when unknown. */
int accounts_parse_authmech(const char *name, enum imap_auth_mech *out);

/* ACCOUNTS_TENANT_AUTH1/2 for the run options that give tenant credentials (--oauth1/2). */
unsigned accounts_tenant_flags(int argc, char **argv);

/* Moves the side settings of argv[0..argc) into side[] (later ones win) and appends the account
 * options (engine_opts_optset) with their values to rest (room for argc entries). Returns 0, or
 * -1 with every problem in err: an unknown option (with "did you mean"), a missing or bad value. */
int accounts_take_side_settings(int argc, char **argv, struct account_side_settings side[2], char **rest,
				int *nrest, struct fleet_err *err);

/* How one side logs in: its secret source (io/cred.h) and mechanism. Tenant credentials
 * (set->oauth: --oauth1/2) win, with tokens from cache (and shared, may be NULL); else sd's token,
 * tokenfile, tokencmd or passcmd column; else no source (a password or passfile: the caller's).
 * sd may be NULL (no row). user is the mailbox a tenant token is for. out borrows sd, set, user,
 * cache and shared; release it with accounts_cred_release. Returns -1 only when a command does not
 * split into words. */
struct accounts_cred {
	struct cred_source src;	   /* kind CRED_NONE: no source */
	char **argv;		   /* tokencmd/passcmd split into words (heap) */
	struct oauth_config oauth; /* the side's tenant credentials, with its cafile */
	struct oauth_cred_ctx octx;
	enum imap_auth_mech auth;
};
int accounts_side_cred(const struct account_side *sd, int k, const struct account_side_settings *set,
		       const char *user, struct oauth_cache *cache, const struct oauth_shared *shared,
		       struct accounts_cred *out);
void accounts_cred_release(struct accounts_cred *c);

#endif
