/* tests/tools/loopaddr.h: the HOST:PORT parser of the test and bench proxies (tests/tools/faultproxy.c,
 * scripts/bench/delayproxy.c). Header only, libc only, so that either builds on its own.
 *
 * loopaddr_parse("127.0.0.1:993" | "[::1]:993" | "::1:993" | "localhost:993"): the last colon
 * splits; the host must be a loopback address (127.0.0.0/8 or ::1; localhost is 127.0.0.1) and the
 * port 0..65535. Fills *ss and *len and returns 0, or returns -1 with the reason in why.
 *
 * loopaddr_listen: a listening socket on such an address, its port (the chosen one for port 0) in
 * *port; -1 with why. loopaddr_accept: the next connection, polled 200 ms at a time so that a
 * signal handler's *stop is seen; -1 once it is set. loopaddr_signals: SIGPIPE ignored, SIGINT and
 * SIGTERM set *stop. */
#ifndef IMAPFLEET_TESTS_LOOPADDR_H
#define IMAPFLEET_TESTS_LOOPADDR_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int loopaddr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *why, size_t cap)
{
	char host[64], *end;
	const char *colon = strrchr(s, ':');
	unsigned long long port = 0;
	size_t hl;

	if (colon) {
		errno = 0;
		port = strtoull(colon + 1, &end, 10);
	}
	if (!colon || errno || end == colon + 1 || *end || colon[1] == '-' || port > 65535) {
		snprintf(why, cap, "bad address %s (want HOST:PORT)", s);
		return -1;
	}
	hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl >= sizeof(host)) {
		snprintf(why, cap, "bad address %s (host too long)", s);
		return -1;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	memset(ss, 0, sizeof(*ss));
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) == 1 && IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return 0;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		*len = sizeof(*a);
		if (inet_pton(AF_INET, host, &a->sin_addr) == 1 && (ntohl(a->sin_addr.s_addr) >> 24) == 127)
			return 0;
	}
	snprintf(why, cap, "%s is not a loopback address", host);
	return -1;
}

static int loopaddr_listen(const struct sockaddr_storage *addr, socklen_t len, int backlog, unsigned *port,
			   char *why, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int one = 1, fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(why, cap, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)addr, len) < 0 || listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(why, cap, "cannot listen: %s", strerror(errno));
		close(fd);
		return -1;
	}
	*port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static atomic_int *loopaddr_stop;

static void loopaddr_on_signal(int sig)
{
	(void)sig;
	atomic_store(loopaddr_stop, 1);
}

static void loopaddr_signals(atomic_int *stop)
{
	struct sigaction sa;

	loopaddr_stop = stop;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = loopaddr_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int loopaddr_accept(int lfd, atomic_int *stop)
{
	while (!atomic_load(stop)) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		int fd;

		if (poll(&p, 1, 200) <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
	}
	return -1;
}

#endif
