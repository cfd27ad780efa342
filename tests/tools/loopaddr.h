/* tests/tools/loopaddr.h: the HOST:PORT parser of the test and bench proxies (tests/tools/faultproxy.c,
 * scripts/bench/delayproxy.c). Header only, libc only, so that either builds on its own.
 *
 * loopaddr_parse("127.0.0.1:993" | "[::1]:993" | "::1:993" | "localhost:993"): the last colon
 * splits; the host must be a loopback address (127.0.0.0/8 or ::1; localhost is 127.0.0.1) and the
 * port 0..65535. Fills *ss and *len and returns 0, or returns -1 with the reason in why. */
#ifndef IMAPFLEET_TESTS_LOOPADDR_H
#define IMAPFLEET_TESTS_LOOPADDR_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

#endif
