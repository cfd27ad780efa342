/* io/cred.c: login secrets from inline values, files, commands and hooks (see cred.h). */
#include "io/cred.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/util.h"

void cred_free(char **s)
{
	if (!s || !*s)
		return;
	OPENSSL_cleanse(*s, strlen(*s));
	xfree(s);
}

/* Cuts buf (len bytes, NUL-terminated) at its first line end. */
static size_t first_line(char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\0') {
			OPENSSL_cleanse(buf + i, len - i);
			return i;
		}
	return len;
}

int cred_read_file(const char *path, const char *name, char **out, struct fleet_err *err)
{
	char why[256];
	char *s;

	*out = NULL;
	s = fleet_read_passfile(path, CRED_MAX, why, sizeof(why)); /* regular file, no key file, first line */
	if (!s)
		return fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, CRED_ERR_CREDENTIAL, "%s %s: %s", name,
				     path, why);
	first_line(s, strlen(s));
	if (!*s) {
		xfree(&s);
		return fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, CRED_ERR_CREDENTIAL,
				     "%s %s: the first line is empty", name, path);
	}
	fleet_log_add_secret(s);
	*out = s;
	return 0;
}

/* In the child, between fork and execvp: async-signal-safe calls only. */
static void child_exec(char *const *argv, int outfd)
{
	sigset_t none;
	struct sigaction dfl;
	int devnull = open("/dev/null", O_RDWR);

	/* Its own process group, so that a timeout kills whatever it started too. */
	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &dfl, NULL);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(outfd, 1) < 0 || dup2(devnull, 2) < 0)
		_exit(126);
	/* Nothing of imapfleet's (sockets, the state connection, the key file) leaks into it. */
	closefrom(3);
	execvp(argv[0], argv);
	_exit(127);
}

static void kill_group(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

int cred_run_command(char *const *argv, unsigned timeout_ms, const char *name, char **out, struct fleet_err *err)
{
	int fds[2], status = 0, rc = -1;
	pid_t pid;
	char *buf;
	size_t len = 0;
	uint64_t deadline;
	int overflow = 0, timed_out = 0, eof = 0;

	*out = NULL;
	if (!argv || !argv[0] || !argv[0][0])
		return fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, CRED_ERR_CREDENTIAL, "%s: the command is empty",
				     name);
	if (timeout_ms == 0)
		timeout_ms = CRED_CMD_TIMEOUT_MS;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, CRED_ERR_CREDENTIAL, "%s: could not make a pipe: %s",
				     name, strerror(errno));
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(fds[0]);
		close(fds[1]);
		return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, CRED_ERR_CREDENTIAL, "%s: could not start %s: %s",
				     name, argv[0], strerror(e));
	}
	if (pid == 0)
		child_exec(argv, fds[1]);
	setpgid(pid, pid); /* also here: no race with a kill before the child ran setpgid */
	close(fds[1]);

	buf = xmalloc(CRED_MAX + 1);
	deadline = fleet_now_ms() + timeout_ms;
	while (!eof) {
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		uint64_t now = fleet_now_ms();
		ssize_t n;
		int r;

		if (now >= deadline) {
			timed_out = 1;
			break;
		}
		r = poll(&p, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			timed_out = r == 0;
			break;
		}
		n = read(fds[0], buf + len, CRED_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			eof = 1;
			break;
		}
		len += (size_t)n;
		if (len > CRED_MAX) {
			overflow = 1;
			break;
		}
	}
	close(fds[0]);
	if (timed_out || overflow)
		kill_group(pid);
	/* The output is complete; the command gets what is left of its time to exit. */
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid || (w < 0 && errno != EINTR))
			break;
		if (w == 0 && fleet_now_ms() >= deadline) {
			timed_out = 1;
			kill_group(pid);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		fleet_sleep_ms(5);
	}
	if (timed_out)
		fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, CRED_ERR_TIMEOUT,
			      "%s: %s did not finish within %u s (killed)", name, argv[0], (timeout_ms + 999) / 1000);
	else if (overflow)
		fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, CRED_ERR_CREDENTIAL,
			      "%s: %s printed more than %d bytes (killed)", name, argv[0], CRED_MAX);
	else if (WIFSIGNALED(status))
		fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, CRED_ERR_CREDENTIAL, "%s: %s was killed by signal %d",
			      name, argv[0], WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, CRED_ERR_CREDENTIAL,
			      "%s: cannot run %s (not found or not executable; commands run without a shell)", name,
			      argv[0]);
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, CRED_ERR_CREDENTIAL, "%s: %s exited with status %d",
			      name, argv[0], WEXITSTATUS(status));
	else {
		buf[len] = '\0';
		len = first_line(buf, len);
		if (len == 0)
			fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, CRED_ERR_CREDENTIAL,
				      "%s: %s printed nothing on its first line", name, argv[0]);
		else {
			*out = xstrdup(buf);
			fleet_log_add_secret(*out);
			rc = 0;
		}
	}
	if (rc < 0)
		fleet_err_detail(err, "the command's output is never shown; run it by hand to see what it prints");
	OPENSSL_cleanse(buf, CRED_MAX + 1);
	xfree(&buf);
	return rc;
}

int cred_fetch(const struct cred_source *src, int refresh, char **out, struct fleet_err *err)
{
	const char *name = src->name ? src->name : (src->is_token ? "token" : "password");

	*out = NULL;
	switch (src->kind) {
	case CRED_INLINE:
		if (!src->value || !*src->value)
			return fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, CRED_ERR_CREDENTIAL, "%s is empty", name);
		fleet_log_add_secret(src->value);
		*out = xstrdup(src->value);
		return 0;
	case CRED_FILE:
		return cred_read_file(src->value, name, out, err);
	case CRED_CMD:
		return cred_run_command(src->argv, src->timeout_ms, name, out, err);
	case CRED_HOOK:
		if (src->hook(src->hook_ctx, refresh, out, err) < 0)
			return -1;
		fleet_log_add_secret(*out);
		return 0;
	case CRED_NONE:
		break;
	}
	return fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, CRED_ERR_CREDENTIAL, "no %s given", name);
}
