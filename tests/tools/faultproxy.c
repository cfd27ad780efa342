/* tests/tools/faultproxy: a fault-injecting TCP proxy on loopback, for fault tests.
 *
 *   faultproxy --listen 127.0.0.1:PORT --target 127.0.0.1:PORT [--seed N]
 *              [--drop-after MIN:MAX] [--drop-prob P] [--stall-ms N] [--stall-prob P]
 *              [--reset] [--max-conns N] [--count-file F] [--verbose]
 *
 * Forwards bytes both ways, one thread per connection. Faults, decided per connection from a
 * PRNG seeded with --seed and the connection's number (same seed, same faults):
 *   --drop-after MIN:MAX  cut the connection after a random number of server->client bytes in
 *                         [MIN,MAX] (exactly that many are delivered first);
 *   --drop-prob P         the share of connections that are cut (default 1 with --drop-after);
 *   --reset               cut with a TCP RST (SO_LINGER 0) instead of a FIN;
 *   --stall-ms N, --stall-prob P
 *                         before each server->client chunk, with probability P, pause N ms;
 *   --max-conns N         at most N connections at once; more are closed right after accept;
 *   --count-file F        keep "current=N peak=N total=N cut=N refused=N" in F (rewritten
 *                         atomically on every change), for "never more than 3 connections" tests.
 * With PORT 0 in --listen the chosen port is printed as the first line of stdout. Addresses must
 * be loopback (127.0.0.0/8 or ::1): this tool never forwards traffic off the machine.
 * SIGINT/SIGTERM stop it; exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/tools/loopaddr.h"

struct opts {
	struct sockaddr_storage listen_addr, target_addr;
	socklen_t listen_len, target_len;
	uint64_t seed;
	uint64_t drop_min, drop_max;
	int drop;
	double drop_prob;
	uint64_t stall_ms;
	double stall_prob;
	int reset;
	uint64_t max_conns;
	const char *count_file;
	int verbose;
};

static struct opts g_opt;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_current, g_peak, g_total, g_cut, g_refused;
static atomic_int g_stop; /* set by the signal handler, read by every connection thread */

static void usage(void)
{
	fprintf(stderr,
		"usage: faultproxy --listen 127.0.0.1:PORT --target 127.0.0.1:PORT [--seed N]\n"
		"       [--drop-after MIN:MAX] [--drop-prob P] [--stall-ms N] [--stall-prob P] [--reset]\n"
		"       [--max-conns N] [--count-file F] [--verbose]\n");
	exit(2);
}

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "faultproxy: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(2);
}

/* Loopback HOST:PORT only (see loopaddr.h). */
static void parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char why[160];

	if (loopaddr_parse(s, ss, len, why, sizeof(why)) < 0)
		die("%s", why);
}

static double parse_prob(const char *s)
{
	char *end;
	double p;

	errno = 0;
	p = strtod(s, &end);
	if (errno || end == s || *end || p < 0.0 || p > 1.0)
		die("bad probability %s (want 0..1)", s);
	return p;
}

static uint64_t parse_num(const char *s)
{
	uint64_t v;

	if (fleet_parse_u64(s, 0, UINT64_MAX, &v) < 0)
		die("bad number %s", s);
	return v;
}

static void parse_args(int argc, char **argv)
{
	int have_listen = 0, have_target = 0, have_drop_prob = 0;

	g_opt.seed = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--reset") == 0) {
			g_opt.reset = 1;
			continue;
		}
		if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
			g_opt.verbose = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (strcmp(a, "--listen") == 0) {
			parse_addr(v, &g_opt.listen_addr, &g_opt.listen_len);
			have_listen = 1;
		} else if (strcmp(a, "--target") == 0) {
			parse_addr(v, &g_opt.target_addr, &g_opt.target_len);
			have_target = 1;
		} else if (strcmp(a, "--seed") == 0) {
			g_opt.seed = parse_num(v);
		} else if (strcmp(a, "--drop-after") == 0) {
			const char *c = strchr(v, ':');
			char lo[32];

			if (!c || (size_t)(c - v) >= sizeof(lo))
				die("bad --drop-after %s (want MIN:MAX)", v);
			memcpy(lo, v, (size_t)(c - v));
			lo[c - v] = '\0';
			g_opt.drop_min = parse_num(lo);
			g_opt.drop_max = parse_num(c + 1);
			if (g_opt.drop_max < g_opt.drop_min)
				die("bad --drop-after %s (MAX < MIN)", v);
			g_opt.drop = 1;
		} else if (strcmp(a, "--drop-prob") == 0) {
			g_opt.drop_prob = parse_prob(v);
			have_drop_prob = 1;
		} else if (strcmp(a, "--stall-ms") == 0) {
			g_opt.stall_ms = parse_num(v);
		} else if (strcmp(a, "--stall-prob") == 0) {
			g_opt.stall_prob = parse_prob(v);
		} else if (strcmp(a, "--max-conns") == 0) {
			g_opt.max_conns = parse_num(v);
		} else if (strcmp(a, "--count-file") == 0) {
			g_opt.count_file = v;
		} else {
			usage();
		}
	}
	if (!have_listen || !have_target)
		usage();
	if (g_opt.drop && !have_drop_prob)
		g_opt.drop_prob = 1.0;
	if (g_opt.stall_ms && g_opt.stall_prob == 0.0)
		g_opt.stall_prob = 1.0;
}

/* splitmix64: small, good enough, reproducible. */
static uint64_t rng_next(uint64_t *st)
{
	uint64_t z = (*st += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double rng_unit(uint64_t *st)
{
	return (double)(rng_next(st) >> 11) / (double)(1ULL << 53);
}

/* Caller holds g_lock. */
static void write_counts(void)
{
	char tmp[4096];
	FILE *f;

	if (!g_opt.count_file)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", g_opt.count_file);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "current=%llu peak=%llu total=%llu cut=%llu refused=%llu\n", (unsigned long long)g_current,
		(unsigned long long)g_peak, (unsigned long long)g_total, (unsigned long long)g_cut,
		(unsigned long long)g_refused);
	if (fclose(f) == 0)
		rename(tmp, g_opt.count_file);
}

struct conn {
	int cfd;
	uint64_t id;
};

static int send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void cut(int fd, int reset)
{
	if (reset) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(fd);
}

/* A connection stops counting as open as soon as either side ends it: the server's close is the
 * end of its session, the client's is the end of the client's use of it. */
static void uncount(int *counted)
{
	if (!*counted)
		return;
	*counted = 0;
	pthread_mutex_lock(&g_lock);
	g_current--;
	write_counts();
	pthread_mutex_unlock(&g_lock);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	uint64_t rng = g_opt.seed * 0x2545f4914f6cdd1dULL + c->id;
	uint64_t limit = UINT64_MAX, s2c = 0, c2s = 0;
	int sfd, cut_it = 0, c_open = 1, s_open = 1, counted = 1;
	char buf[16384];

	if (g_opt.drop && rng_unit(&rng) < g_opt.drop_prob)
		limit = g_opt.drop_min + rng_next(&rng) % (g_opt.drop_max - g_opt.drop_min + 1);
	sfd = socket(g_opt.target_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sfd < 0 || connect(sfd, (struct sockaddr *)&g_opt.target_addr, g_opt.target_len) < 0) {
		if (g_opt.verbose)
			fprintf(stderr, "faultproxy: conn %llu: target: %s\n", (unsigned long long)c->id,
				strerror(errno));
		if (sfd >= 0)
			close(sfd);
		cut(c->cfd, 1);
		goto done;
	}
	if (g_opt.verbose && limit != UINT64_MAX)
		fprintf(stderr, "faultproxy: conn %llu: will cut after %llu bytes\n",
			(unsigned long long)c->id, (unsigned long long)limit);
	if (limit == 0)
		cut_it = 1;
	while (!cut_it && (c_open || s_open) && !atomic_load(&g_stop)) {
		struct pollfd p[2] = {{.fd = c_open ? c->cfd : -1, .events = POLLIN},
				      {.fd = s_open ? sfd : -1, .events = POLLIN}};
		ssize_t n;

		if (poll(p, 2, 200) <= 0)
			continue;
		if (p[0].revents) {
			n = recv(c->cfd, buf, sizeof(buf), 0);
			if (n > 0) {
				c2s += (uint64_t)n;
				if (send_all(sfd, buf, (size_t)n) < 0)
					break;
			} else if (n == 0 || errno != EINTR) {
				c_open = 0; /* client finished sending: pass the FIN on */
				uncount(&counted);
				shutdown(sfd, SHUT_WR);
				if (n < 0)
					break;
			}
		}
		if (p[1].revents) {
			size_t want = sizeof(buf);

			if (limit - s2c < want)
				want = (size_t)(limit - s2c);
			n = recv(sfd, buf, want, 0);
			if (n > 0) {
				if (g_opt.stall_ms && rng_unit(&rng) < g_opt.stall_prob)
					fleet_sleep_ms((unsigned)g_opt.stall_ms);
				if (send_all(c->cfd, buf, (size_t)n) < 0)
					break;
				s2c += (uint64_t)n;
				if (s2c >= limit)
					cut_it = 1;
			} else if (n == 0 || errno != EINTR) {
				s_open = 0;
				uncount(&counted); /* before the client can see the end */
				shutdown(c->cfd, SHUT_WR);
				if (n < 0)
					break;
			}
		}
		if (!c_open && !s_open)
			break;
	}
	if (cut_it && g_opt.verbose)
		fprintf(stderr, "faultproxy: conn %llu: cut after %llu bytes to the client (%s)\n",
			(unsigned long long)c->id, (unsigned long long)s2c, g_opt.reset ? "reset" : "close");
	else if (g_opt.verbose)
		fprintf(stderr, "faultproxy: conn %llu: closed after %llu bytes to the client, %llu to the server\n",
			(unsigned long long)c->id, (unsigned long long)s2c, (unsigned long long)c2s);
	close(sfd);
	if (cut_it)
		cut(c->cfd, g_opt.reset);
	else
		close(c->cfd);
done:
	uncount(&counted);
	pthread_mutex_lock(&g_lock);
	if (cut_it)
		g_cut++;
	write_counts();
	pthread_mutex_unlock(&g_lock);
	free(c);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_attr_t attr;
	uint64_t next_id = 0;
	int lfd, fd;

	parse_args(argc, argv);
	loopaddr_signals(&g_stop);

	{
		char why[160];
		unsigned port;
		uint16_t want = g_opt.listen_addr.ss_family == AF_INET6
				    ? ntohs(((struct sockaddr_in6 *)&g_opt.listen_addr)->sin6_port)
				    : ntohs(((struct sockaddr_in *)&g_opt.listen_addr)->sin_port);

		lfd = loopaddr_listen(&g_opt.listen_addr, g_opt.listen_len, 128, &port, why, sizeof(why));
		if (lfd < 0)
			die("%s", why);
		if (want == 0) {
			printf("%u\n", port);
			fflush(stdout);
		}
	}
	pthread_mutex_lock(&g_lock);
	write_counts();
	pthread_mutex_unlock(&g_lock);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	while ((fd = loopaddr_accept(lfd, &g_stop)) >= 0) {
		struct conn *c;
		pthread_t th;

		pthread_mutex_lock(&g_lock);
		if (g_opt.max_conns && g_current >= g_opt.max_conns) {
			g_refused++;
			write_counts();
			pthread_mutex_unlock(&g_lock);
			close(fd);
			continue;
		}
		g_current++;
		g_total++;
		if (g_current > g_peak)
			g_peak = g_current;
		write_counts();
		pthread_mutex_unlock(&g_lock);
		c = malloc(sizeof(*c));
		if (!c)
			abort();
		c->cfd = fd;
		c->id = next_id++;
		if (pthread_create(&th, &attr, conn_main, c) != 0) {
			close(fd);
			free(c);
			pthread_mutex_lock(&g_lock);
			g_current--;
			write_counts();
			pthread_mutex_unlock(&g_lock);
		}
	}
	close(lfd);
	/* Give the connection threads a moment to see g_stop and record their end. */
	for (int i = 0; i < 20; i++) {
		uint64_t cur;

		pthread_mutex_lock(&g_lock);
		cur = g_current;
		pthread_mutex_unlock(&g_lock);
		if (cur == 0)
			break;
		fleet_sleep_ms(50);
	}
	return 0;
}
