/* state/cluster.c: state location resolution and the embedded PostgreSQL cluster (see cluster.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "state/cluster.h"

#define CLUSTER_DB	  "imapfleet"
#define CLUSTER_USER	  "imapfleet"
#define CLUSTER_PORT	  "5432"
#define EXIT_CANNOT_REACH 126

/* ---- location --------------------------------------------------------------------------------- */

enum state_location_kind state_location_resolve(const char *state_arg, char **conninfo)
{
	const char *env;

	if (state_arg && *state_arg) {
		*conninfo = xstrdup(state_arg);
		return STATE_LOC_ARG;
	}
	env = getenv("IMAPFLEET_STATE");
	if (env && *env) {
		*conninfo = xstrdup(env);
		return STATE_LOC_ENV;
	}
	if ((getenv("PGHOST") && *getenv("PGHOST")) || (getenv("PGDATABASE") && *getenv("PGDATABASE"))) {
		*conninfo = xstrdup("");
		return STATE_LOC_LIBPQ_ENV;
	}
	*conninfo = NULL;
	return STATE_LOC_EMBEDDED;
}

const char *state_location_name(enum state_location_kind kind)
{
	static const char *const names[] = {
	    [STATE_LOC_ARG] = "--state",
	    [STATE_LOC_ENV] = "IMAPFLEET_STATE",
	    [STATE_LOC_LIBPQ_ENV] = "PGHOST/PGDATABASE",
	    [STATE_LOC_EMBEDDED] = "embedded (.imapfleet/pg)",
	};

	return FLEET_ENUM_NAME(names, kind, "unknown");
}

/* key='value' with \ and ' escaped, as libpq's conninfo syntax wants. */
static void conninfo_add(struct fleet_buf *b, const char *key, const char *val)
{
	if (b->len)
		fleet_buf_add(b, " ", 1);
	fleet_buf_addf(b, "%s='", key);
	for (const char *p = val; *p; p++) {
		if (*p == '\\' || *p == '\'')
			fleet_buf_add(b, "\\", 1);
		fleet_buf_add(b, p, 1);
	}
	fleet_buf_add(b, "'", 1);
}

char *state_conninfo_with_dbname(const char *conninfo, const char *dbname)
{
	struct fleet_buf b = FLEET_BUF_INIT(STATE_CONNINFO_MAX);
	PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", NULL);
	int have_db = 0;

	if (!opts)
		return NULL;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (strcmp(o->keyword, "dbname") == 0) {
			conninfo_add(&b, "dbname", dbname);
			have_db = 1;
		} else if (o->val && *o->val) {
			conninfo_add(&b, o->keyword, o->val);
		}
	}
	if (!have_db)
		conninfo_add(&b, "dbname", dbname);
	PQconninfoFree(opts);
	if (fleet_buf_truncated(&b)) { /* a conninfo cut short would name another server or database */
		fleet_buf_release(&b);
		return NULL;
	}
	return fleet_buf_detach(&b, NULL);
}

/* ---- binaries --------------------------------------------------------------------------------- */

static int is_exec(const char *dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, X_OK) == 0;
}

static int has_server_bins(const char *dir)
{
	return is_exec(dir, "initdb") && is_exec(dir, "pg_ctl") && is_exec(dir, "postgres");
}

char *state_cluster_find_bindir(struct fleet_err *err)
{
	DIR *d = opendir("/usr/lib/postgresql");
	uint64_t best = 0;
	char *found = NULL;
	const char *path;

	if (d) {
		struct dirent *e;

		while ((e = readdir(d)) != NULL) {
			uint64_t v;
			char dir[PATH_MAX];

			if (fleet_parse_u64(e->d_name, 1, 1000, &v) < 0 || v <= best)
				continue;
			snprintf(dir, sizeof(dir), "/usr/lib/postgresql/%s/bin", e->d_name);
			if (has_server_bins(dir)) {
				best = v;
				xfree(&found);
				found = xstrdup(dir);
			}
		}
		closedir(d);
	}
	if (found)
		return found;
	{
		FILE *f = popen("pg_config --bindir 2>/dev/null", "r");
		char line[PATH_MAX];

		if (f) {
			if (fgets(line, sizeof(line), f)) {
				line[strcspn(line, "\r\n")] = '\0';
				if (line[0] && has_server_bins(line))
					found = xstrdup(line);
			}
			pclose(f);
		}
		if (found)
			return found;
	}
	path = getenv("PATH");
	while (path && *path) {
		size_t n = strcspn(path, ":");
		char *dir = xstrndup(path, n);

		if (n && has_server_bins(dir))
			return dir;
		xfree(&dir);
		path += n;
		if (*path == ':')
			path++;
	}
	fleet_err_set(
	    err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_PG_MISSING,
	    "cannot create the embedded state database: PostgreSQL server programs (initdb, pg_ctl) not "
	    "found");
	fleet_err_detail(err,
			 "install the Debian package postgresql, or point --state at an existing server");
	return NULL;
}

/* ---- the cluster ------------------------------------------------------------------------------ */

struct state_cluster {
	char *base;	/* .../.imapfleet */
	char *pgdir;	/* .../.imapfleet/pg: data directory and socket directory */
	char *logpath;	/* .../.imapfleet/pg/server.log: the server's own log (pg_ctl -l) */
	char *toolslog; /* .../.imapfleet/pg-tools.log: initdb and pg_ctl output */
	char *bindir;
	char *conninfo;
	int users_fd; /* shared flock held while we use the cluster */
	int as_other; /* run the server programs as run_uid/run_gid */
	uid_t run_uid;
	gid_t run_gid;
	char run_user[64];
};

static void cluster_free(struct state_cluster *c)
{
	if (!c)
		return;
	if (c->users_fd >= 0)
		close(c->users_fd);
	xfree(&c->base);
	xfree(&c->pgdir);
	xfree(&c->logpath);
	xfree(&c->toolslog);
	xfree(&c->bindir);
	xfree(&c->conninfo);
	free(c);
}

/* Runs bindir/argv[0] (as the unprivileged user when we are root), output to the server log.
 * Returns the exit status, or -1 when it could not run. */
static int run_prog(const struct state_cluster *c, char *const argv[])
{
	char prog[PATH_MAX];
	pid_t pid;
	int status;

	snprintf(prog, sizeof(prog), "%s/%s", c->bindir, argv[0]);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		int logfd = open(c->toolslog, O_WRONLY | O_CREAT | O_APPEND, 0600);
		long maxfd = sysconf(_SC_OPEN_MAX);

		if (devnull >= 0)
			dup2(devnull, 0);
		if (logfd >= 0) {
			dup2(logfd, 1);
			dup2(logfd, 2);
		}
		/* The server must inherit nothing: above all not our pg.users lock. */
		if (maxfd < 0 || maxfd > STATE_CLUSTER_FD_MAX)
			maxfd = STATE_CLUSTER_FD_MAX;
		for (int fd = 3; fd < maxfd; fd++)
			close(fd);
		if (c->as_other) {
			if (setgroups(0, NULL) < 0 || setgid(c->run_gid) < 0 || setuid(c->run_uid) < 0)
				_exit(127);
			if (access(c->pgdir, R_OK | W_OK | X_OK) < 0)
				_exit(EXIT_CANNOT_REACH);
		}
		execv(prog, argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int prog_error(const struct state_cluster *c, const char *what, int rc, struct fleet_err *err)
{
	if (rc == EXIT_CANNOT_REACH && c->as_other) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
			      "cannot %s the embedded state database: user %s cannot reach %s", what,
			      c->run_user, c->pgdir);
		fleet_err_detail(err, "make the parent directories traversable (chmod o+x) or use --state");
		return -1;
	}
	fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
		      "could not %s the embedded state database in %s (exit %d)", what, c->pgdir, rc);
	fleet_err_detail(err, "see %s and %s", c->toolslog, c->logpath);
	return -1;
}

static int chown_tree(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (lstat(path, &st) < 0 || lchown(path, uid, gid) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode))
		return 0;
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char *sub;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		sub = xasprintf("%s/%s", path, e->d_name);
		if (chown_tree(sub, uid, gid) < 0)
			rc = -1;
		xfree(&sub);
	}
	closedir(d);
	return rc;
}

static int cluster_initdb(struct state_cluster *c, struct fleet_err *err)
{
	char *argv[] = {"initdb", "-D",	   c->pgdir, "-U",   CLUSTER_USER,
			"-A",	  "trust", "-E",     "UTF8", "--no-instructions",
			NULL};
	struct fleet_buf conf = FLEET_BUF_INIT(STATE_CONNINFO_MAX);
	char *confpath;
	FILE *f;
	int rc;

	log_info("state: creating the embedded PostgreSQL cluster in %s", c->pgdir);
	if (mkdir(c->pgdir, 0700) < 0 && errno != EEXIST)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
				     "could not create %s: %s", c->pgdir, strerror(errno));
	if (c->as_other && chown_tree(c->pgdir, c->run_uid, c->run_gid) < 0)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
				     "could not give %s to user %s: %s", c->pgdir, c->run_user,
				     strerror(errno));
	rc = run_prog(c, argv);
	if (rc != 0)
		return prog_error(c, "initialise", rc, err);
	/* A private server: no TCP, a socket only its owner may use, in its own directory. */
	fleet_buf_add_str(&conf, "\n# imapfleet embedded state database\nlisten_addresses = ''\n"
				    "unix_socket_permissions = 0700\nmax_connections = 200\n"
				    "unix_socket_directories = '");
	for (const char *p = c->pgdir; *p; p++) {
		fleet_buf_add(&conf, p, 1);
		if (*p == '\'')
			fleet_buf_add(&conf, "'", 1);
	}
	fleet_buf_add_str(&conf, "'\n");
	if (fleet_buf_truncated(&conf)) {
		fleet_buf_release(&conf);
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
				     "cannot create the cluster in %s: its path is too long", c->pgdir);
	}
	confpath = xasprintf("%s/postgresql.conf", c->pgdir);
	f = fopen(confpath, "a");
	if (!f || fputs(fleet_buf_cstr(&conf), f) < 0 || fclose(f) != 0) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
			      "could not write %s: %s", confpath, strerror(errno));
		xfree(&confpath);
		fleet_buf_release(&conf);
		return -1;
	}
	xfree(&confpath);
	fleet_buf_release(&conf);
	return 0;
}

static int cluster_ensure_db(struct state_cluster *c, struct fleet_err *err)
{
	char *ci = state_conninfo_with_dbname(c->conninfo, "postgres");
	PGconn *pg = PQconnectdb(ci);
	PGresult *res;
	int rc = -1;

	xfree(&ci);
	if (PQstatus(pg) != CONNECTION_OK) {
		fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
			      "could not connect to the embedded state database: %s", PQerrorMessage(pg));
		goto out;
	}
	res = PQexecParams(pg, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL,
			   (const char *const[]){CLUSTER_DB}, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		rc = 0;
	} else if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		PQclear(res);
		/* A constant identifier: no value is interpolated. */
		res = PQexecParams(pg, "CREATE DATABASE " CLUSTER_DB, 0, NULL, NULL, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			rc = 0;
	}
	if (rc < 0)
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
			      "could not create the database " CLUSTER_DB ": %s", PQerrorMessage(pg));
	PQclear(res);
out:
	PQfinish(pg);
	return rc;
}

static int lock_file(const char *path, int *fd_out, int op, struct fleet_err *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
				     "could not open %s: %s", path, strerror(errno));
	while (flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		close(fd);
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
				     "could not lock %s: %s", path, strerror(errno));
	}
	*fd_out = fd;
	return 0;
}

static char *abs_base(const char *base_dir)
{
	char cwd[PATH_MAX];

	if (base_dir && base_dir[0] == '/')
		return xasprintf("%s/.imapfleet", base_dir);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (base_dir && *base_dir && strcmp(base_dir, ".") != 0)
		return xasprintf("%s/%s/.imapfleet", cwd, base_dir);
	return xasprintf("%s/.imapfleet", cwd);
}

int state_cluster_start(const char *base_dir, struct state_cluster **out, struct fleet_err *err)
{
	struct state_cluster *c = xcalloc(1, sizeof(*c));
	struct fleet_buf ci = FLEET_BUF_INIT(STATE_CONNINFO_MAX);
	char *path = NULL, *pgversion = NULL;
	int lock_fd = -1, rc;
	struct sockaddr_un sun;

	*out = NULL;
	c->users_fd = -1;
	c->base = abs_base(base_dir);
	if (!c->base) {
		cluster_free(c);
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
				     "could not find the current directory: %s", strerror(errno));
	}
	c->pgdir = xasprintf("%s/pg", c->base);
	c->logpath = xasprintf("%s/server.log", c->pgdir);
	c->toolslog = xasprintf("%s/pg-tools.log", c->base);
	if (strlen(c->pgdir) + sizeof("/.s.PGSQL." CLUSTER_PORT) > sizeof(sun.sun_path)) {
		fleet_err_set(
		    err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
		    "cannot use %s for the embedded state database: the path is too long for a unix "
		    "socket",
		    c->pgdir);
		fleet_err_detail(err, "run imapfleet from a shorter directory or use --state");
		goto fail;
	}
	c->bindir = state_cluster_find_bindir(err);
	if (!c->bindir)
		goto fail;
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("postgres");

		if (!pw)
			pw = getpwnam("nobody");
		if (!pw) {
			fleet_err_set(
			    err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
			    "cannot run the embedded state database as root and found no postgres or "
			    "nobody user");
			goto fail;
		}
		c->as_other = 1;
		c->run_uid = pw->pw_uid;
		c->run_gid = pw->pw_gid;
		snprintf(c->run_user, sizeof(c->run_user), "%s", pw->pw_name);
	}
	/* .imapfleet holds the key file (0600) too; the server user only needs to pass through it. */
	if (mkdir(c->base, c->as_other ? 0711 : 0700) < 0 && errno != EEXIST) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
			      "could not create %s: %s", c->base, strerror(errno));
		goto fail;
	}
	if (c->as_other)
		chmod(c->base, 0711);
	conninfo_add(&ci, "host", c->pgdir);
	conninfo_add(&ci, "port", CLUSTER_PORT);
	conninfo_add(&ci, "dbname", CLUSTER_DB);
	conninfo_add(&ci, "user", CLUSTER_USER);
	if (fleet_buf_truncated(&ci)) { /* a conninfo cut short would name another server or database */
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER,
			      "cannot use %s for the embedded state database: its connection string passes %zu bytes",
			      c->pgdir, (size_t)STATE_CONNINFO_MAX);
		goto fail;
	}
	c->conninfo = fleet_buf_detach(&ci, NULL);

	path = xasprintf("%s/pg.lock", c->base);
	if (lock_file(path, &lock_fd, LOCK_EX, err) < 0)
		goto fail;
	xfree(&path);
	path = xasprintf("%s/pg.users", c->base);
	if (lock_file(path, &c->users_fd, LOCK_SH, err) < 0)
		goto fail;
	xfree(&path);

	pgversion = xasprintf("%s/PG_VERSION", c->pgdir);
	if (access(pgversion, F_OK) < 0 && cluster_initdb(c, err) < 0)
		goto fail;
	{
		char *status_argv[] = {"pg_ctl", "status", "-s", "-D", c->pgdir, NULL};
		char *start_argv[] = {"pg_ctl", "start",  "-w", "-t",	    "120", "-s",
				      "-D",	c->pgdir, "-l", c->logpath, NULL};

		rc = run_prog(c, status_argv);
		if (rc == EXIT_CANNOT_REACH)
			goto fail_prog_status;
		if (rc != 0) {
			log_info("state: starting the embedded PostgreSQL in %s", c->pgdir);
			rc = run_prog(c, start_argv);
			if (rc != 0) {
				prog_error(c, "start", rc, err);
				goto fail;
			}
		}
	}
	if (cluster_ensure_db(c, err) < 0)
		goto fail;
	close(lock_fd);
	xfree(&pgversion);
	*out = c;
	return 0;
fail_prog_status:
	prog_error(c, "check", rc, err);
fail:
	if (lock_fd >= 0)
		close(lock_fd);
	xfree(&path);
	xfree(&pgversion);
	fleet_buf_release(&ci);
	cluster_free(c);
	return -1;
}

const char *state_cluster_conninfo(const struct state_cluster *c)
{
	return c->conninfo;
}

int state_cluster_release(struct state_cluster **pc, struct fleet_err *err)
{
	struct state_cluster *c = *pc;
	char *path;
	int lock_fd = -1, rc = 0;

	if (!c)
		return 0;
	*pc = NULL;
	path = xasprintf("%s/pg.lock", c->base);
	if (lock_file(path, &lock_fd, LOCK_EX, err) < 0) {
		xfree(&path);
		cluster_free(c);
		return -1;
	}
	xfree(&path);
	/* Converting our shared lock to exclusive succeeds only when nobody else holds one. */
	if (flock(c->users_fd, LOCK_EX | LOCK_NB) == 0) {
		char *stop_argv[] = {"pg_ctl", "stop", "-w", "-s", "-m", "fast", "-D", c->pgdir, NULL};
		int st;

		log_info("state: last user gone, stopping the embedded PostgreSQL in %s", c->pgdir);
		st = run_prog(c, stop_argv);
		if (st != 0)
			rc = prog_error(c, "stop", st, err);
	}
	close(lock_fd);
	cluster_free(c);
	return rc;
}

int state_location_open(const char *state_arg, const char *base_dir, char **conninfo,
			struct state_cluster **cluster, struct fleet_err *err)
{
	*cluster = NULL;
	if (state_location_resolve(state_arg, conninfo) != STATE_LOC_EMBEDDED)
		return 0;
	if (state_cluster_start(base_dir, cluster, err) < 0)
		return -1;
	*conninfo = xstrdup(state_cluster_conninfo(*cluster));
	return 0;
}
